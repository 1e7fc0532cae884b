/**
 * The driver: wires the pure Raft core to storage, a transport, the state
 * machine and a clock. It is the only code that awaits, persists, sends and
 * keeps time; its ready loop (`ready_loop.ts`) persists, sends and applies.
 *
 * @module
 */

import { type Clock, systemClock } from "../clock.ts";
import { AssertionError } from "../core/assert.ts";
import type { Configuration } from "../core/config.ts";
import type { Message } from "../core/messages.ts";
import type { Raft } from "../core/raft.ts";
import type { SoftState } from "../core/types.ts";
import {
  type LeaderHint,
  ReadOnlyError,
  TimeoutError,
  UnavailableError,
  type WaterCraftError,
} from "../errors.ts";
import { memoryStorage } from "../storage/memory.ts";
import type { Storage } from "../storage/storage.ts";
import type {
  ForwardedAnswer,
  ForwardedProposal,
  PeerHandler,
  Transport,
} from "../transport/transport.ts";
import { answerFromError, RelayedWrites } from "./forward.ts";
import { LeaderWatch } from "./leader_watch.ts";
import { ClusterOps } from "./membership.ts";
import { recoverRaft } from "./recovery.ts";
import { nodeMetrics, nodeStats } from "./metrics.ts";
import {
  type EntryStatus,
  type MemberStatus,
  type NodeOptions,
  type NodeSettings,
  nodeSettings,
  type NodeStatus,
  type ProposeOptions,
  type ProposeResult,
  type ReadOptions,
  roleName,
} from "./options.ts";
import { memberStatuses } from "./status.ts";
import { PeerDirectory } from "./peers.ts";
import { askReadIndex, ReadBatcher } from "./reads.ts";
import { PendingWrites } from "./writes.ts";
import { WritePath } from "./write_path.ts";
import { Applier } from "./apply.ts";
import { FailFast } from "./fail_fast.ts";
import { recordSecurity } from "./security.ts";
import { Removal } from "./removal.ts";
import { ReadyLoop } from "./ready_loop.ts";
import { Ticks } from "./ticks.ts";
import { Snapshots } from "./snapshots.ts";
import { type WatchedEntry, type WatchEvent, WatchHub, type WatchOptions } from "./watch.ts";

/**
 * A running WaterCraft node. Create one with {@linkcode createNode}.
 *
 * @typeParam Command The state machine's commands: what `propose` takes.
 * @typeParam Result What applying one returns: what `propose` gives back.
 * @typeParam Query What `read` takes.
 * @typeParam Answer What `read` gives back.
 */
export class WaterCraftNode<Command = unknown, Result = unknown, Query = unknown, Answer = unknown>
  implements PeerHandler {
  /** This node's id. */
  readonly id: string;
  /** This node's advertised URL, if any. */
  readonly url: string | null;
  /** Whether this node is a read-only member. */
  readonly readOnly: boolean;

  readonly #options: NodeOptions<Command, Result, Query, Answer>;
  readonly #settings: NodeSettings;
  readonly #applier: Applier;
  readonly #storage: Storage;
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #onError: (error: unknown) => void;

  #raft!: Raft;
  #started = false;
  #stopped = false;
  /** Resources released by `stop()` (also after a failure stopped the node). */
  #closed = false;
  #failure: unknown = null;
  readonly #removal: Removal;

  readonly #stats = nodeStats();
  readonly #relayed = new RelayedWrites();
  readonly #writes: PendingWrites;
  readonly #reads: ReadBatcher;
  readonly #leaderWatch: LeaderWatch;
  readonly #cluster: ClusterOps;
  readonly #peers: PeerDirectory;
  readonly #snapshots: Snapshots;
  readonly #failFast: FailFast;
  readonly #watch: WatchHub;
  readonly #writePath: WritePath;
  readonly #ready: ReadyLoop;
  readonly #ticks: Ticks;
  /** The leader watchers were last told of. */
  #watchedLeader: string | null = null;

  /**
   * Creates a stopped node; {@linkcode createNode} also starts it.
   *
   * @param options What the node is made of.
   * @throws {TypeError} On an invalid id or option.
   */
  constructor(options: NodeOptions<Command, Result, Query, Answer>) {
    this.#settings = nodeSettings(options);
    recordSecurity(this, this.#settings.security);
    this.id = options.id;
    this.url = options.url ?? null;
    this.readOnly = options.readOnly ?? false;
    this.#options = options;
    this.#applier = new Applier(options.stateMachine);
    this.#storage = options.storage ?? memoryStorage();
    this.#transport = options.transport;
    this.#clock = options.clock ?? systemClock();
    this.#onError = options.onError ?? ((e) => console.error("watercraft:", e));
    this.#peers = new PeerDirectory(this.id, this.url, this.#transport);
    this.#writes = new PendingWrites(this.#clock, (ms) => this.#stats.replication.observeMs(ms));
    this.#leaderWatch = new LeaderWatch(this.#clock);
    this.#reads = new ReadBatcher(this.id, {
      clock: this.#clock,
      retryMs: this.#settings.electionMs,
      readIndex: (context) => !this.#stopped && askReadIndex(this.#raft, context),
      schedule: () => this.#ready.schedule(),
    });
    this.#failFast = new FailFast({
      clock: this.#clock,
      electionMs: this.#settings.electionMs,
      stopped: () => this.#stopped,
      leading: () => this.#raft.role === "leader",
      leaderKnown: () => this.#raft.leader !== null,
      writes: this.#writes,
      reads: this.#reads,
    });
    this.#writePath = new WritePath({
      id: this.id,
      clock: this.#clock,
      transport: this.#transport,
      applier: this.#applier,
      writes: this.#writes,
      relayed: this.#relayed,
      raft: () => this.#raft,
      leaderHint: () => this.#leaderHint(),
      assertRoom: () => this.#assertRoom("write"),
      headHash: this.#headHash,
      schedule: () => this.#ready.schedule(),
    });
    this.#removal = new Removal(this.id, () => this.#started ? this.#raft : undefined);
    this.#watch = new WatchHub({
      log: () => this.#raft.log,
      applied: () => this.#ready.applied,
      commandOf: (entry) => this.#applier.commandOf(entry),
    });
    this.#snapshots = new Snapshots({
      raft: () => this.#raft,
      storage: this.#storage,
      applier: this.#applier,
      settings: this.#settings,
      stats: this.#stats,
      schedule: () => this.#ready.schedule(),
      fail: (e) => this.#fail(e),
    });
    this.#cluster = new ClusterOps({
      id: this.id,
      clock: this.#clock,
      heartbeatMs: this.#settings.heartbeatMs,
      electionMs: this.#settings.electionMs,
      raft: () => this.#raft,
      peers: this.#peers,
      leaderHint: () => this.#leaderHint(),
      awaitLeader: (deadline) => this.#awaitLeader(deadline),
      awaitCommitted: (entry, deadline) => this.#writes.wait(entry, "committed", deadline),
      awaitTransfer: (target, deadline) => this.#leaderWatch.transfer(target, deadline),
      awaitCaughtUp: (deadline) =>
        this.#reads.wait(Math.max(1, deadline - this.#clock.now())).then(() => {}),
      schedule: () => this.#ready.schedule(),
      transport: this.#transport,
      url: this.url,
      readOnly: this.readOnly,
    });
    this.#ready = new ReadyLoop({
      raft: () => this.#raft,
      storage: this.#storage,
      transport: this.#transport,
      clock: this.#clock,
      stats: this.#stats,
      snapshots: this.#snapshots,
      writes: this.#writes,
      reads: this.#reads,
      heartbeatMs: this.#settings.heartbeatMs,
      peers: this.#peers,
      leaderWatch: this.#leaderWatch,
      relayed: this.#relayed,
      applier: this.#applier,
      watch: this.#watch,
      softState: (soft) => this.#onSoftState(soft),
      headHash: this.#headHash,
      halted: () => this.#stopped || this.#failure !== null,
      failed: () => this.#failure !== null,
      fail: (e) => this.#fail(e),
    });
    this.#ticks = new Ticks({
      id: this.id,
      clock: this.#clock,
      settings: this.#settings,
      raft: () => this.#raft,
      reads: this.#reads,
      transport: this.#transport,
      stopped: () => this.#stopped,
      removed: () => this.removed,
      evict: () => this.#cluster.maybeEvict(this.#options, this.#settings.requestTimeoutMs),
      schedule: () => this.#ready.schedule(),
      fail: (e) => this.#fail(e),
    });
  }

  /** Recovers storage and starts ticking and receiving. Called by {@linkcode createNode}. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const state = await this.#storage.load();
    if (state.snapshot !== null) await this.#applier.restore(state.snapshot.data);
    this.#raft = recoverRaft(
      this.#options,
      this.#settings,
      state,
      (data) => this.#applier.canRestore(data),
    );
    this.#ready.recovered(state.hardState);
    this.#peers.refresh(this.#raft.log);
    await this.#transport.start(this.id, this, this.#settings.security);
    this.#ticks.start();
    this.#ready.schedule();
  }

  /**
   * Stops the node: no more ticks or traffic; waiting writes end with
   * `timeout` (their outcome is unknown), waiting reads with `unavailable`.
   * Storage is flushed (the last batch finishes) and closed.
   */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopped = true;
    this.#ticks.stop();
    this.#ready.stop();
    await this.#ready.idle();
    this.#failAll(
      new TimeoutError("The node stopped before the write finished: it may still commit"),
      new UnavailableError("The node stopped"),
    );
    await this.#transport.close();
    // A snapshot still being written finishes before the files close.
    await this.#snapshots.idle();
    await this.#storage.close();
  }

  // ------------------------------------------------------------ writes

  /**
   * Writes a command: validates and encodes it here, appends its bytes to
   * the leader's log (through the leader when this node follows) and
   * resolves once it is applied (or only accepted, when asked).
   *
   * @param command The command, as the state machine's `validate` takes it.
   * @param options Idempotency key, what to wait for, timeout.
   * @returns Where the entry landed and the state machine's result.
   * @throws {RejectedError} The validator or `apply` refused it (422).
   * @throws {ReadOnlyError} This is a read-only member (403).
   * @throws {UnavailableError} No leader, or over a bound; nothing was written (503).
   * @throws {TimeoutError} The outcome is unknown (504).
   */
  async propose(command: Command, options: ProposeOptions = {}): Promise<ProposeResult<Result>> {
    this.#assertRunning();
    if (this.readOnly) throw new ReadOnlyError(this.#leaderHint());
    const wait = options.wait ?? "committed";
    const deadline = this.#clock.now() + (options.timeoutMs ?? this.#settings.requestTimeoutMs);
    this.#stats.proposals++;
    try {
      const data = this.#applier.encode(command);
      const leader = await this.#awaitLeader(deadline);
      const result = await this.#writePath.write(leader, {
        command: data,
        idempotencyKey: options.idempotencyKey,
        wait,
        deadline,
      });
      return result as ProposeResult<Result>;
    } catch (e) {
      this.#stats.proposalsFailed++;
      throw e;
    }
  }

  /**
   * Runs what another member forwarded to this leader: a write, a
   * membership change or a leadership transfer. Never throws: errors
   * become answers.
   *
   * @param from The member that forwarded it.
   * @param proposal What it forwarded.
   * @returns The result (see {@linkcode ForwardedProposal}), or the error's
   *   code, message and details.
   */
  async forwarded(_from: string, proposal: ForwardedProposal): Promise<ForwardedAnswer> {
    try {
      this.#assertRunning();
      const write = "command" in proposal;
      if (this.#raft.role !== "leader") {
        const what = write ? "write" : "run the forwarded request";
        throw new UnavailableError(
          `Cannot ${what}: this node is no longer the leader`,
          this.#leaderHint(),
        );
      }
      const timeoutMs = Math.min(proposal.timeoutMs, this.#settings.requestTimeoutMs * 2);
      if (!("command" in proposal)) {
        return { ok: true, value: await this.#cluster.runForwarded(proposal, timeoutMs) };
      }
      const { command, idempotencyKey, wait } = proposal;
      const deadline = this.#clock.now() + timeoutMs;
      const value = await this.#writePath.asLeader({ command, idempotencyKey, wait, deadline });
      return { ok: true, value };
    } catch (e) {
      return answerFromError(e);
    }
  }

  // ------------------------------------------------------------ reads

  /**
   * Answers a query from the state machine. Linearizable by default: the
   * answer reflects every write that completed before the call (ReadIndex,
   * thesis §6.4), on any member. Concurrent reads share one confirmation
   * round.
   *
   * @param query The state machine's query.
   * @param options Consistency and timeout.
   * @returns The answer and the applied index it reflects.
   * @throws {UnavailableError} Leadership could not be confirmed in time (503).
   */
  async read(query: Query, options: ReadOptions = {}): Promise<{ value: Answer; index: number }> {
    this.#assertRunning();
    this.#stats.reads++;
    if (options.consistency !== "local") this.#assertRoom("read");
    await this.#confirmRead(options);
    return { value: this.#applier.query(query) as Answer, index: this.#ready.applied };
  }

  // ------------------------------------------------------------ cluster

  /**
   * Moves leadership to `target`, or to the most caught-up other voter.
   * Resolves once `target` leads. Any member may be asked: one that does
   * not lead forwards the transfer to the leader.
   *
   * @param target The voter to lead next.
   * @throws {WaterCraftError} `not_found` for an unknown voter, `unavailable`
   *   when no leader is known or leadership did not move within two election
   *   timeouts, `timeout` when a forwarded transfer's outcome is unknown.
   */
  async transferLeader(target?: string): Promise<void> {
    this.#assertRunning();
    await this.#cluster.transfer(target);
  }

  /**
   * Adds a member as a learner; unless read-only, the leader promotes it to
   * voter once it has caught up. Resolves once the addition is committed.
   * Adding a member that exists at the same URL succeeds without a change.
   * Any member may be asked: one that does not lead forwards the change to
   * the leader, as it forwards writes.
   *
   * @param member Who joins.
   * @param options How long to wait.
   * @throws {WaterCraftError} `conflict` (409) when the id exists at another URL.
   * @throws {UnavailableError} No leader is known; nothing changed (503).
   * @throws {TimeoutError} The outcome is unknown: the change may still commit (504).
   */
  async addMember(
    member: { id: string; url: string; readOnly?: boolean },
    options: { timeoutMs?: number } = {},
  ): Promise<void> {
    this.#assertRunning();
    await this.#cluster.add(member, {
      timeoutMs: options.timeoutMs ?? this.#settings.requestTimeoutMs,
    });
  }

  /**
   * Removes a member, the leader included (it steps down once the removal
   * commits). Resolves once the removal is committed. Any member may be
   * asked: one that does not lead forwards the change to the leader.
   *
   * @param id The member to remove.
   * @param options How long to wait.
   * @throws {WaterCraftError} `not_found` for an unknown member.
   * @throws {UnavailableError} No leader is known; nothing changed (503).
   * @throws {TimeoutError} The outcome is unknown: the change may still commit (504).
   */
  async removeMember(id: string, options: { timeoutMs?: number } = {}): Promise<void> {
    this.#assertRunning();
    await this.#cluster.remove(id, {
      timeoutMs: options.timeoutMs ?? this.#settings.requestTimeoutMs,
    });
  }

  /**
   * Joins a running cluster through any of `seeds` (member URLs), unless
   * this node already has state, in which case it does nothing: a restarted
   * member rejoins through its own log.
   *
   * @param seeds URLs of members to ask first.
   * @param options How long to keep trying (default 60 s).
   * @returns True when this node was added, false when it already had state.
   * @throws {WaterCraftError} `conflict` when the id is taken at another URL,
   *   `unavailable` when no member accepted in time.
   */
  join(seeds: readonly string[], options: { timeoutMs?: number } = {}): Promise<boolean> {
    this.#assertRunning();
    return this.#cluster.join(seeds, options.timeoutMs ?? 60_000);
  }

  /** This node's state, as `/v1/status` reports it. */
  status(): NodeStatus {
    const st = this.#raft.status();
    const head = this.head();
    return {
      id: this.id,
      url: this.url,
      role: roleName(st.role, st.voter),
      readOnly: this.readOnly,
      term: st.term,
      leader: this.#leaderHint(),
      commitIndex: st.commitIndex,
      appliedIndex: this.#ready.applied,
      lastIndex: st.lastIndex,
      head: head.head,
      configIndex: st.configIndex,
      members: this.members().members,
    };
  }

  /** The member list with the alive list, as `/v1/members` reports it. */
  members(): { leader: LeaderHint | null; configIndex: number; members: MemberStatus[] } {
    const members = memberStatuses(this.#peers.config, this.#raft.seenTicks(), this.#settings);
    return { leader: this.#leaderHint(), configIndex: this.#peers.configIndex, members };
  }

  /** The head: hash, index and term of the latest applied entry. */
  head(): { head: string; index: number; term: number } {
    return this.#ready.head();
  }

  /**
   * Where an entry stands on this node.
   *
   * @param id The entry's hash.
   * @returns Its state, or null when this node knows nothing of it.
   */
  entry(id: string): EntryStatus | null {
    const st = this.#raft.entryState(id);
    if (st !== null) return { id, ...st };
    const relayed = this.#relayed.get(id);
    return relayed === undefined ? null : { id, ...relayed, state: "pending" };
  }

  /**
   * Follows the committed log: every entry this node applies after
   * `options.after`, in order, and the leader changes between them.
   *
   * @param options Where to start (default: from now) and an abort signal.
   * @returns The events; a watcher that falls behind a snapshot gets a
   *   `dropped` event, then the iterator ends.
   * @throws {WaterCraftError} `compacted` when those entries are in a snapshot already.
   */
  watch(options: WatchOptions = {}): AsyncIterableIterator<WatchEvent> {
    return this.#watch.watch(options);
  }

  /**
   * Lists applied entries with their hashes: check them with `verifyChain`.
   *
   * @param after Entries after this index.
   * @param limit At most this many.
   * @returns The entries, and the index to ask after next.
   * @throws {WaterCraftError} `compacted` when those entries are in a snapshot already.
   */
  entries(after: number, limit: number): { entries: WatchedEntry[]; next: number } {
    return this.#watch.list(after, limit);
  }

  /** Metrics in the Prometheus text format. */
  metrics(): string {
    const st = this.#raft.status();
    return nodeMetrics(this.#stats, {
      ...st,
      role: roleName(st.role, st.voter),
      hasLeader: st.leader !== null,
      followerLag: this.followerLag(),
    });
  }

  /**
   * Whether this node was removed from the cluster's configuration (see
   * `removal.ts`): it then does not campaign. False before it starts and
   * while it joins.
   */
  get removed(): boolean {
    return this.#removal.removed;
  }

  /**
   * Takes another member's word that a configuration newer than this
   * node's own leaves it out (this node asked while it heard from no
   * leader): the node stops campaigning until a leader contacts it again.
   *
   * @param configIndex The index of that configuration.
   */
  noteRemoved(configIndex: number): void {
    this.#removal.note(configIndex);
  }

  /**
   * On a leader, how many entries each follower's log trails the leader's
   * last index by; empty on other nodes.
   *
   * @returns Follower id to entries behind.
   */
  followerLag(): Map<string, number> {
    const last = this.#raft.log.lastIndex();
    const lag = new Map<string, number>();
    for (const [id, view] of this.#raft.followers()) lag.set(id, Math.max(0, last - view.match));
    return lag;
  }

  /**
   * Captures this node's replicated state for a backup: the state machine
   * and the idempotency keys at the applied index, with that index's term
   * and hash (the head) and the configuration. Linearizable by default: it
   * reflects every write that completed before the call.
   *
   * @param options `consistency: "local"` skips the leader round (may be stale).
   * @returns The head (hash of the entry at `index`), the applied `index`
   *   and its `term`, the newest `config` in this node's log, and `data`,
   *   the node snapshot (state machine bytes and idempotency keys) as log
   *   compaction keeps it.
   * @throws {UnavailableError} When leadership cannot be confirmed in time.
   */
  async backup(options: ReadOptions = {}): Promise<
    { head: string; index: number; term: number; config: Configuration; data: Uint8Array }
  > {
    this.#assertRunning();
    await this.#confirmRead(options);
    // Holds the ready loop off (it is the only code that applies), so that
    // the state machine and the keys stand at the index reported.
    return await this.#ready.exclusive(async () => {
      this.#assertRunning();
      const head = this.head();
      const config = this.#raft.log.config().config;
      const data = await this.#applier.snapshot();
      return { ...head, config, data };
    });
  }

  /** The core, for tests and tools; do not drive it directly. */
  get raft(): Raft {
    return this.#raft;
  }

  /** The error that stopped this node, if one did. */
  get failure(): unknown {
    return this.#failure;
  }

  // ------------------------------------------------------------ peer input

  /**
   * Steps Raft messages from a peer (called by the transport or the HTTP app).
   *
   * @param from The sender's id.
   * @param messages What it sent.
   * @returns False once this node is stopped: it takes no more messages.
   */
  receive(from: string, messages: readonly Message[]): boolean {
    if (this.#stopped) return false;
    if (!this.#started) return true;
    for (const m of messages) {
      if (m.from !== from) continue;
      if (!this.#peers.admits(from, m.type)) {
        this.#stats.nonMemberMessages++;
        continue;
      }
      try {
        this.#raft.step(m);
      } catch (e) {
        this.#fail(e);
        return false;
      }
    }
    this.#leaderWatch.wake(this.#raft.leader);
    this.#ready.stepped();
    return true;
  }

  // ------------------------------------------------------------ applying

  #onSoftState(soft: SoftState): void {
    if (soft.leader !== null) this.#stats.leaderChanges++;
    if (soft.leader !== this.#watchedLeader) {
      this.#watchedLeader = soft.leader;
      this.#watch.leaderChanged(soft.term, this.#leaderHint());
    }
    if (soft.role === "leader") this.#cluster.becameLeader();
    else this.#applier.sessions.clearInFlight();
    this.#failFast.changed(soft);
    this.#reads.startRound();
  }

  /**
   * Unless the read is `local`, confirms with the leader that this node's
   * applied state holds every write completed before now (ReadIndex): one
   * deadline for finding a leader and confirming with it.
   */
  async #confirmRead(options: ReadOptions): Promise<void> {
    if (options.consistency === "local") return;
    const deadline = this.#clock.now() + (options.timeoutMs ?? this.#settings.requestTimeoutMs);
    await this.#awaitLeader(deadline);
    await this.#reads.wait(Math.max(1, deadline - this.#clock.now()));
  }

  /** Waits for a leader, at most two election timeouts (one randomised election). */
  #awaitLeader(deadline: number): Promise<string> {
    const limit = this.#clock.now() + 2 * this.#settings.electionMs;
    return this.#leaderWatch.leader(this.#raft.leader, Math.min(deadline, limit));
  }

  // ------------------------------------------------------------ helpers

  /** The head's hash, computed only when a client is answered. */
  readonly #headHash = (): string => this.head().head;

  #leaderHint(): LeaderHint | null {
    return this.#peers.leaderHint(this.#raft?.leader ?? null);
  }

  #assertRunning(): void {
    if (!this.#started) throw new UnavailableError("The node is not started");
    // `start()` awaits the storage's load before the core exists: a request
    // that arrives meanwhile is refused, not run against a missing core.
    if (this.#raft === undefined) throw new UnavailableError("The node is starting");
    if (this.#failure !== null) {
      throw new UnavailableError(`The node stopped after an error: ${String(this.#failure)}`);
    }
    if (this.#stopped) throw new UnavailableError("The node is stopped");
  }

  /** Refuses a write or read over the bound on waiting clients (`maxWaiting`). */
  #assertRoom(what: "write" | "read"): void {
    const max = this.#settings.maxWaiting;
    if (this.#writes.count + this.#reads.count >= max) {
      throw new UnavailableError(`Cannot ${what}: ${max} requests are already waiting`);
    }
  }

  /** Stops the node after an error it cannot recover from (storage failure, broken invariant). */
  #fail(error: unknown): void {
    if (this.#failure !== null) return;
    this.#failure = error;
    this.#stopped = true;
    this.#ticks.stop();
    this.#ready.stop();
    this.#onError(
      error instanceof AssertionError ? error : new Error("Node stopped", { cause: error }),
    );
    this.#failAll(
      new TimeoutError("The node stopped after an error: the write may still commit"),
      new UnavailableError("The node stopped after an error"),
    );
  }

  #failAll(writeError: WaterCraftError, readError: WaterCraftError): void {
    this.#watch.close();
    this.#writes.failAll(writeError);
    this.#reads.failAll(readError);
    this.#leaderWatch.failAll(readError);
  }
}
