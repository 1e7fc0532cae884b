/**
 * A node's ready loop: the only code that persists, sends and applies.
 *
 * Each pass takes the core's batch and persists it: hard state and entries
 * in one `save` (group commit). It sends the batch's messages; a leader
 * sends before its own write finishes, which the core makes safe. It
 * applies committed entries in order, releases reads, and resolves the
 * clients waiting on them. Inputs that arrive during a write are stepped
 * at once and leave together in the next pass. One pass runs at a time,
 * but while a leader's pass waits for its disk, the followers' answers it
 * steps meanwhile are acted on at once (`Raft.readyEarly()`): new entries
 * go out to the followers and entries a quorum holds are applied and
 * answered, instead of waiting for the leader's own write to end.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Entry } from "../core/entry.ts";
import type { Message } from "../core/messages.ts";
import type { Raft } from "../core/raft.ts";
import type { HardState, SoftState } from "../core/types.ts";
import type { Storage } from "../storage/storage.ts";
import type { Transport } from "../transport/transport.ts";
import type { Applier } from "./apply.ts";
import type { RelayedWrites } from "./forward.ts";
import type { LeaderWatch } from "./leader_watch.ts";
import type { NodeStats } from "./metrics.ts";
import type { PeerDirectory } from "./peers.ts";
import { ReadWidener, readWidenMs } from "./read_widener.ts";
import type { ReadBatcher } from "./reads.ts";
import type { Snapshots } from "./snapshots.ts";
import type { WatchHub } from "./watch.ts";
import type { PendingWrites } from "./writes.ts";

/** The parts of a node the loop drives. */
export interface ReadyLoopHost {
  /** The core. */
  raft(): Raft;
  /** Where batches are saved. */
  readonly storage: Storage;
  /** Where messages go. */
  readonly transport: Transport;
  /** Times disk writes. */
  readonly clock: Clock;
  /** Where sends and disk times are counted. */
  readonly stats: NodeStats;
  /** Installs a leader's snapshot, takes this node's own. */
  readonly snapshots: Snapshots;
  /** Writes waiting to be accepted and committed. */
  readonly writes: PendingWrites;
  /** Reads waiting for their confirmation. */
  readonly reads: ReadBatcher;
  /** The heartbeat interval, ms: a narrow read round sent is widened after a tenth of it. */
  readonly heartbeatMs: number;
  /** Peer URLs, kept in step with the log's configuration. */
  readonly peers: PeerDirectory;
  /** Clients waiting for a leader. */
  readonly leaderWatch: LeaderWatch;
  /** Ids of writes relayed to the leader, forgotten once applied. */
  readonly relayed: RelayedWrites;
  /** The state machine and the kept results. */
  readonly applier: Applier;
  /** Watchers of the applied log. */
  readonly watch: WatchHub;
  /** Hears a change of role, leader or term. */
  softState(soft: SoftState): void;
  /** The head's hash, for the answers to accepted writes. */
  headHash(): string;
  /** Whether the node stopped (or failed): no new pass starts. */
  halted(): boolean;
  /** Whether an error stopped the node: a running pass ends too. */
  failed(): boolean;
  /** Stops the node after an error it cannot recover from. */
  fail(error: unknown): void;
}

/** The ready loop of one node. */
export class ReadyLoop {
  readonly #host: ReadyLoopHost;
  /** The hard state storage holds: a leader sends early only when nothing newer is unsaved. */
  #durableHard: HardState = { term: 0, vote: null, commit: 0 };
  /** The pass running, or what holds passes off; null when idle. */
  #running: Promise<void> | null = null;
  /** Highest index the state machine reflects (ahead of the core's until `advance()`). */
  #applied = 0;
  /**
   * Hash and term of the entry at `#applied`, kept beside it: while a
   * leader's snapshot is being installed the core's log already stands at
   * the snapshot and no longer holds that entry.
   */
  #appliedHead = { hash: "", term: 0 };
  /** Whether a leader's pass is waiting for its write, and may act early meanwhile. */
  #leaderSaving = false;
  /** Whether an early turn is queued. */
  #earlyQueued = false;
  /** Widens a narrow read round among the messages sent, if it waits too long. */
  readonly #readWidener: ReadWidener;

  /**
   * Creates the loop of a node.
   *
   * @param host The node's parts.
   */
  constructor(host: ReadyLoopHost) {
    this.#host = host;
    this.#readWidener = new ReadWidener({
      clock: host.clock,
      widenMs: readWidenMs(host.heartbeatMs),
      raft: () => host.raft(),
      stopped: () => host.halted(),
      schedule: () => this.schedule(),
      widened: () => host.stats.readRoundsWidened++,
    });
  }

  /** The node stopped: cancels the loop's timer (a read round's widening). */
  stop(): void {
    this.#readWidener.stop();
  }

  /**
   * Takes up where the node recovered: what storage held, and the
   * recovered core's applied position.
   *
   * @param hard The hard state loaded.
   */
  recovered(hard: HardState): void {
    this.#durableHard = hard;
    const log = this.#host.raft().log;
    this.#applied = log.applied;
    this.#appliedHead = {
      hash: log.hash(this.#applied) ?? log.snapshot.hash,
      term: log.term(this.#applied) ?? 0,
    };
  }

  /** The highest index the state machine reflects. */
  get applied(): number {
    return this.#applied;
  }

  /** The head: hash, index and term of the latest applied entry. */
  head(): { head: string; index: number; term: number } {
    return { head: this.#appliedHead.hash, index: this.#applied, term: this.#appliedHead.term };
  }

  /** Runs a pass unless one is running; another follows while input is left. */
  schedule(): void {
    if (this.#running !== null || this.#host.halted()) return;
    this.#running = this.#loop().finally(() => {
      this.#running = null;
      // Input that arrived while the loop was finishing gets a new pass.
      if (!this.#host.halted() && this.#hasWork()) this.schedule();
    });
  }

  /**
   * Messages were stepped: runs a pass, or, while a leader's pass waits for
   * its disk, acts at once on what they allow (once per burst of messages,
   * so that proposals arriving meanwhile still leave together).
   */
  stepped(): void {
    this.schedule();
    if (!this.#leaderSaving || this.#earlyQueued) return;
    this.#earlyQueued = true;
    queueMicrotask(() => {
      this.#earlyQueued = false;
      if (this.#leaderSaving && !this.#host.halted()) this.#early();
    });
  }

  /** Resolves once no pass is running. */
  async idle(): Promise<void> {
    for (let i = 0; i < 1_000 && this.#running !== null; i++) await this.#running;
  }

  /**
   * Runs `fn` with no pass running (nothing applies meanwhile), then
   * resumes the loop.
   *
   * @param fn What must see the state machine stand still.
   * @returns What `fn` returns.
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.idle();
    let release!: () => void;
    this.#running = new Promise<void>((resolve) => release = resolve);
    try {
      return await fn();
    } finally {
      this.#running = null;
      release();
      this.schedule();
    }
  }

  async #loop(): Promise<void> {
    await Promise.resolve();
    const host = this.#host;
    const raft = host.raft();
    try {
      // A pass running when the node is stopped finishes what is ready: its
      // batches reach storage before it closes.
      for (let guard = 0; guard < 10_000 && !host.failed() && this.#hasWork(); guard++) {
        if (raft.hasReady()) await this.#pass();
        await host.snapshots.maybeTake();
      }
    } catch (e) {
      host.fail(e);
    }
  }

  /** Whether the core has a batch ready, or a snapshot taken in the background waits. */
  #hasWork(): boolean {
    return this.#host.raft().hasReady() || this.#host.snapshots.ready;
  }

  /** Handles one batch of the core's: saves, sends, applies, answers. */
  async #pass(): Promise<void> {
    const host = this.#host;
    const raft = host.raft();
    const rd = raft.ready();
    // A leader's messages depend on nothing of its own that is not yet
    // durable (its term and vote were saved before it could win): send
    // them while its write is in flight (thesis §10.2.1).
    // Whether the batch's term and vote are already durable (only the commit index moves).
    const d = this.#durableHard;
    const voteDurable = rd.hardState === null ||
      (rd.hardState.term === d.term && rd.hardState.vote === d.vote);
    const early = raft.role === "leader" && voteDurable;
    if (early) this.#send(rd.messages);
    // A snapshot from the leader replaces our log; the answer goes out
    // with this batch's messages.
    if (rd.snapshot !== null) {
      this.#applied = await host.snapshots.install(rd.snapshot);
      this.#appliedHead = { hash: rd.snapshot.meta.hash, term: rd.snapshot.meta.term };
      host.watch.snapshotInstalled(this.#applied);
    }
    // Committed entries are durable on a majority, and the commit index is
    // volatile (Figure 3.1): apply without waiting for this batch's write,
    // and let a commit index alone ride along with the next entries.
    if (rd.committed.length > 0) this.#apply(rd.committed);
    const onlyCommit = rd.entries.length === 0 && rd.hardState !== null && voteDurable;
    if ((rd.hardState !== null || rd.entries.length > 0) && !onlyCommit) {
      const started = host.clock.now();
      this.#leaderSaving = early;
      try {
        // A node that sends nothing until its batch is durable (a follower)
        // waits for the disk on its own thread, sparing two wake-ups.
        await host.storage.save(rd.hardState, rd.entries, { waitOnThread: !early });
      } finally {
        this.#leaderSaving = false;
      }
      host.stats.diskSync.observeMs(host.clock.now() - started);
      if (rd.hardState !== null) this.#durableHard = rd.hardState;
    }
    if (!early) this.#send(rd.messages);
    for (const e of rd.entries) {
      // An entry truncated while its write was in flight is not accepted.
      if (raft.log.hash(e.index) === e.hash) host.writes.accepted(e, host.headHash);
    }
    for (const rs of rd.readStates) host.reads.confirmed(rs, this.#applied);
    if (rd.softState !== null) host.softState(rd.softState);
    raft.advance();
    host.peers.refresh(raft.log);
    host.reads.release(this.#applied);
    host.leaderWatch.wake(raft.leader);
  }

  /** Sends and applies what the core allows a leader before its write ends. */
  #early(): void {
    const host = this.#host;
    try {
      const early = host.raft().readyEarly();
      if (early === null) return;
      this.#send(early.messages);
      if (early.committed.length > 0) {
        this.#apply(early.committed);
        host.reads.release(this.#applied);
      }
    } catch (e) {
      host.fail(e);
    }
  }

  /** Sends messages, counting the snapshot chunks among them. */
  #send(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    this.#host.transport.send(messages);
    for (const m of messages) if (m.type === "snapshot") this.#host.stats.snapshotChunksSent++;
    this.#readWidener.sent();
  }

  #apply(entries: readonly Entry[]): void {
    const host = this.#host;
    const started = host.clock.now();
    for (const e of entries) {
      this.#applied = e.index;
      this.#appliedHead = { hash: e.hash, term: e.term };
      host.relayed.forget(e.hash);
      const { outcome, as, ran } = host.applier.apply(e);
      if (ran) host.stats.applied++;
      host.watch.applied(e, outcome);
      host.writes.committed(e, outcome, host.headHash, as);
    }
    host.stats.apply.observeMs(host.clock.now() - started);
  }
}
