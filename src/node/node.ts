/**
 * The driver: wires the pure Raft core to storage, a transport, the state
 * machine and a clock. It is the only code that awaits, persists, sends and
 * keeps time.
 *
 * Each pass of its ready loop persists a batch (hard state and entries, one
 * `save`: group commit), sends the batch's messages (a leader sends before
 * its own write finishes, which the core makes safe), applies committed
 * entries in order, releases reads, and resolves the clients waiting on
 * them. Inputs that arrive during a write are stepped at once and leave
 * together in the next batch.
 *
 * @module
 */

import { AssertionError } from "../core/assert.ts";
import { type Configuration, decodeConfig, type Member } from "../core/config.ts";
import type { Entry } from "../core/entry.ts";
import { NotLeaderError, ProposalDroppedError } from "../core/errors.ts";
import type { Message } from "../core/messages.ts";
import { seededPrng } from "../core/prng.ts";
import { Raft } from "../core/raft.ts";
import type { HardState, MembershipChange, ReadState, Role, SoftState } from "../core/types.ts";
import { type Clock, systemClock, type TimerId } from "../clock.ts";
import {
  type ErrorCode,
  errorFromCode,
  fromRaftError,
  type LeaderHint,
  ReadOnlyError,
  TimeoutError,
  UnavailableError,
  WaterCraftError,
} from "../errors.ts";
import { Histogram, type MetricFamily, renderMetrics } from "./metrics.ts";
import type { EntryMeta, StateMachine } from "../state_machine.ts";
import { memoryStorage } from "../storage/memory.ts";
import type { PersistedState, Storage } from "../storage/storage.ts";
import type {
  ForwardedAnswer,
  ForwardedProposal,
  PeerHandler,
  Transport,
} from "../transport/transport.ts";

/** Options of {@linkcode createNode}. */
export interface NodeOptions {
  /** This node's id: `[A-Za-z0-9._-]{1,64}`. */
  readonly id: string;
  /** The application's state machine. */
  // deno-lint-ignore no-explicit-any
  readonly stateMachine: StateMachine<any, unknown, any, unknown>;
  /** How this node reaches its peers. */
  readonly transport: Transport;
  /** Where it keeps its log; default {@linkcode memoryStorage}. */
  readonly storage?: Storage;
  /** The URL peers and clients use to reach this node. */
  readonly url?: string;
  /**
   * With empty storage: start a new cluster (the default), made of this node
   * alone or of `members`. With `false`, wait to be added by a leader.
   */
  readonly bootstrap?: boolean;
  /** The first configuration when several nodes bootstrap together (each with the same list). */
  readonly members?: readonly Member[];
  /** A read-only member replicates and serves reads, never votes, never takes writes. */
  readonly readOnly?: boolean;
  /** Leader heartbeat interval, ms; also the tick. Default 50. */
  readonly heartbeatMs?: number;
  /** Base election timeout, ms; randomised in `[n, 2n)`. Default 500. */
  readonly electionMs?: number;
  /** Default time a write may take before its outcome is `timeout`, ms. Default 5000. */
  readonly requestTimeoutMs?: number;
  /** Bound on the leader's uncommitted log, bytes; past it writes fail at once with 503. Default 64 MiB. */
  readonly maxUncommittedBytes?: number;
  /**
   * Soft bound on the entries of one append, and the size of a snapshot
   * chunk (at least 1 KiB). Default 1 MiB.
   */
  readonly maxMsgBytes?: number;
  /** Bound on clients waiting for writes or reads; past it they fail at once with 503. Default 10000. */
  readonly maxWaiting?: number;
  /**
   * Take a snapshot and compact the log after this many entries applied
   * since the last one. Default 10000.
   */
  readonly snapshotEvery?: number;
  /**
   * Entries before a snapshot the leader keeps in memory, so that a follower
   * a little behind catches up from the log instead of receiving the whole
   * snapshot. Default 1000. (Storage keeps only what follows the snapshot.)
   */
  readonly snapshotKeepEntries?: number;
  /** Time source; default the system clock. Tests pass a manual one. */
  readonly clock?: Clock;
  /** Seed for election jitter; default random. */
  readonly seed?: number;
  /**
   * With this set, the leader removes a voter it has not heard from for this
   * long, one at a time, never going below `minVoters`. Default off.
   */
  readonly evictAfterMs?: number;
  /** The fewest voters automatic eviction leaves. Default 3. */
  readonly minVoters?: number;
  /**
   * Disaster recovery after the permanent loss of a majority: make the
   * recovered configuration just this node (`true`) or it and the listed
   * voters, committing the whole local log. Entries the old cluster never
   * committed may become committed, and the lost members must not come back
   * as they were. Use once, on one node, then let the others join it afresh.
   */
  readonly forceNewCluster?: boolean | readonly string[];
  /** Where an error that stopped the node is reported; default `console.error`. */
  readonly onError?: (error: unknown) => void;
  /** Where notable events (an eviction) are reported; default `console.warn`. */
  readonly onWarning?: (message: string) => void;
}

/** Options of one write. */
export interface ProposeOptions {
  /** A retry with the same key returns the first result instead of writing again. */
  readonly idempotencyKey?: string;
  /** Resolve once the entry is in the leader's log (`accepted`) or applied (`committed`, default). */
  readonly wait?: "accepted" | "committed";
  /** How long to wait before answering `timeout`; default `requestTimeoutMs`. */
  readonly timeoutMs?: number;
}

/** The outcome of a write. */
export interface ProposeResult {
  /** The entry's hash: its transaction id. */
  readonly id: string;
  /** The entry's position in the log, from 1. */
  readonly index: number;
  /** Term of the leader that created the entry. */
  readonly term: number;
  /**
   * `accepted`: in the leader's log, not yet known to be committed (with
   * `wait: "accepted"`); `committed`: committed and applied on this node.
   */
  readonly state: "accepted" | "committed";
  /** Hash of the latest entry this node has applied. */
  readonly head: string;
  /** What the state machine returned (undefined when only accepted). */
  readonly result?: unknown;
}

/** Options of one read. */
export interface ReadOptions {
  /** `linearizable` (default) confirms with the leader; `local` answers from applied state. */
  readonly consistency?: "linearizable" | "local";
  /** How long to wait; default `requestTimeoutMs`. */
  readonly timeoutMs?: number;
}

/** One member as `/v1/members` reports it. */
export interface MemberStatus {
  /** The member's node id. */
  readonly id: string;
  /** Where peers and clients reach it, or null when it was added without one. */
  readonly url: string | null;
  /** Whether it votes; false for learners, read-only members included. */
  readonly voter: boolean;
  /** Whether it is a read-only member: a learner for good, refusing client writes. */
  readonly readOnly: boolean;
  /** Whether `lastSeenMs` is at most the election timeout (`electionMs`). */
  readonly alive: boolean;
  /**
   * Time since it was last heard from, ms, counted in heartbeat intervals:
   * by this node when it leads, else by the leader as its last heartbeat
   * told. 0 for this node itself; null when never heard from.
   */
  readonly lastSeenMs: number | null;
}

/** A node's state as `/v1/status` reports it. */
export interface NodeStatus {
  /** This node's id. */
  readonly id: string;
  /** This node's advertised URL (`NodeOptions.url`), or null. */
  readonly url: string | null;
  /**
   * `learner` for any non-voter (catching up, or read-only); `candidate` also
   * covers a PreVote round.
   */
  readonly role: "leader" | "follower" | "candidate" | "learner";
  /** Whether this node is a read-only member. */
  readonly readOnly: boolean;
  /** Current Raft term. */
  readonly term: number;
  /** The leader this node follows, or null when it knows none (e.g. during an election). */
  readonly leader: LeaderHint | null;
  /** Highest log index known to be committed. */
  readonly commitIndex: number;
  /** Highest log index the state machine reflects. */
  readonly appliedIndex: number;
  /** Index of the last entry in this node's log, committed or not. */
  readonly lastIndex: number;
  /** The head: hash of the entry at `appliedIndex`. */
  readonly head: string;
  /** Log index of the configuration entry in force. */
  readonly configIndex: number;
  /** Every member of that configuration, with the alive list. */
  readonly members: MemberStatus[];
}

/** Where an entry stands on this node. */
export interface EntryStatus {
  /** The entry's hash: its transaction id. */
  readonly id: string;
  /** Its position in the log, from 1. */
  readonly index: number;
  /** Term of the leader that created it. */
  readonly term: number;
  /**
   * `pending`: this node relayed the write to the leader and does not hold
   * the entry yet; `accepted`: in this node's log, not known to be
   * committed; `committed`: stored by a majority.
   */
  readonly state: "pending" | "accepted" | "committed";
}

/** A result kept for an idempotency key: part of the replicated state. */
interface KeptResult {
  readonly id: string;
  readonly index: number;
  readonly term: number;
  readonly outcome: Outcome;
}

type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: WaterCraftError };

interface WriteWaiter {
  readonly entry: Entry;
  readonly wait: "accepted" | "committed";
  readonly resolve: (r: ProposeResult) => void;
  readonly reject: (e: unknown) => void;
  readonly timer: TimerId;
  readonly startedMs: number;
}

interface ReadWaiter {
  readonly resolve: (index: number) => void;
  readonly reject: (e: unknown) => void;
  readonly timer: TimerId;
  index: number | null;
}

interface Waiting<T> {
  readonly resolve: (v: T) => void;
  readonly reject: (e: unknown) => void;
  readonly timer: TimerId;
}

const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/**
 * Idempotency keys remembered, oldest forgotten first. A constant, not an
 * option: every node must forget the same keys at the same index, or a late
 * duplicate would be applied on some nodes and not on others.
 */
const IDEMPOTENCY_KEYS_MAX = 100_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Creates and starts a node: recovers its storage, bootstraps a new cluster
 * when the storage is empty (unless told to wait to be added), starts ticking
 * and accepts traffic.
 *
 * @param options What the node is made of.
 * @returns The running node.
 * @throws {TypeError} On an invalid id or option.
 *
 * @example A one-node cluster in memory
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { createNode, kvStateMachine } from "../../mod.ts";
 * import { MemoryNetwork } from "../testing.ts";
 *
 * const node = await createNode({
 *   id: "n1",
 *   stateMachine: kvStateMachine(),
 *   transport: new MemoryNetwork().transport(),
 * });
 * const put = await node.propose({ op: "put", key: "a", value: 1 });
 * strictEqual(put.state, "committed");
 * const got = await node.read({ op: "get", key: "a" });
 * strictEqual((got.value as { value: number }).value, 1);
 * await node.stop();
 * ```
 */
export async function createNode(options: NodeOptions): Promise<WaterCraftNode> {
  const node = new WaterCraftNode(options);
  await node.start();
  return node;
}

/** A running WaterCraft node. Create one with {@linkcode createNode}. */
export class WaterCraftNode implements PeerHandler {
  /** This node's id. */
  readonly id: string;
  /** This node's advertised URL, if any. */
  readonly url: string | null;
  /** Whether this node is a read-only member. */
  readonly readOnly: boolean;

  readonly #options: NodeOptions;
  readonly #sm: NodeOptions["stateMachine"];
  readonly #storage: Storage;
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #heartbeatMs: number;
  readonly #electionMs: number;
  readonly #requestTimeoutMs: number;
  readonly #maxWaiting: number;
  readonly #snapshotEvery: number;
  readonly #snapshotKeepEntries: number;
  readonly #onError: (error: unknown) => void;

  #raft!: Raft;
  #durableHard: HardState = { term: 0, vote: null, commit: 0 };
  #started = false;
  #stopped = false;
  /** Resources released by `stop()` (also after a failure stopped the node). */
  #closed = false;
  #failure: unknown = null;
  #looping: Promise<void> | null = null;
  #tickTimer: TimerId | null = null;
  #configIndex = -1;
  /** Highest index the state machine reflects (ahead of the core's until `advance()`). */
  #applied = 0;
  #config: Configuration = { members: [] };

  readonly #writes = new Map<number, WriteWaiter[]>();
  #writeCount = 0;
  readonly #keys = new Map<string, KeptResult>();
  readonly #keysInFlight = new Map<string, Promise<ProposeResult>>();
  #readQueue: ReadWaiter[] = [];
  #readRound: { context: string; reads: ReadWaiter[]; timer: TimerId } | null = null;
  #readsAwaitingApply: ReadWaiter[] = [];
  #readSeq = 0;
  /** Makes read contexts unique across restarts, so a late answer to a read of a past life never matches. */
  readonly #readNonce = crypto.getRandomValues(new Uint32Array(2)).join("");
  #leaderWaiters: Waiting<string>[] = [];
  #transferWaiters: (Waiting<void> & { target: string })[] = [];
  /** Peers known from joining, until the replicated configuration names them. */
  readonly #extraPeers = new Map<string, string>();
  /** Membership changes run one at a time. */
  #membershipChain: Promise<unknown> = Promise.resolve();
  #evicting = false;
  #leaderSinceMs = 0;
  /** Ids of writes this follower relayed, until its own log has them. */
  readonly #relayed = new Map<string, { index: number; term: number }>();

  readonly #stats = {
    proposals: 0,
    proposalsFailed: 0,
    leaderChanges: 0,
    reads: 0,
    applied: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    snapshotChunksSent: 0,
    replication: new Histogram(),
    diskSync: new Histogram(),
    apply: new Histogram(),
  };

  /**
   * Creates a stopped node; {@linkcode createNode} also starts it.
   *
   * @param options What the node is made of.
   */
  constructor(options: NodeOptions) {
    if (!ID_PATTERN.test(options.id)) {
      throw new TypeError(`Node id must match [A-Za-z0-9._-]{1,64}: ${JSON.stringify(options.id)}`);
    }
    this.id = options.id;
    this.url = options.url ?? null;
    this.readOnly = options.readOnly ?? false;
    this.#options = options;
    this.#sm = options.stateMachine;
    this.#storage = options.storage ?? memoryStorage();
    this.#transport = options.transport;
    this.#clock = options.clock ?? systemClock();
    this.#heartbeatMs = positive("heartbeatMs", options.heartbeatMs ?? 50);
    this.#electionMs = positive("electionMs", options.electionMs ?? 500);
    if (this.#electionMs < 2 * this.#heartbeatMs) {
      throw new TypeError(
        `electionMs (${this.#electionMs}) must be at least twice heartbeatMs (${this.#heartbeatMs})`,
      );
    }
    this.#requestTimeoutMs = positive("requestTimeoutMs", options.requestTimeoutMs ?? 5000);
    this.#maxWaiting = positive("maxWaiting", options.maxWaiting ?? 10_000);
    this.#snapshotEvery = positive("snapshotEvery", options.snapshotEvery ?? 10_000);
    this.#snapshotKeepEntries = options.snapshotKeepEntries ?? 1000;
    if (!(Number.isInteger(this.#snapshotKeepEntries) && this.#snapshotKeepEntries >= 0)) {
      throw new TypeError(
        `snapshotKeepEntries must be a non-negative integer: ${this.#snapshotKeepEntries}`,
      );
    }
    this.#onError = options.onError ?? ((e) => console.error("watercraft:", e));
  }

  /** Recovers storage and starts ticking and receiving. Called by {@linkcode createNode}. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const state = await this.#storage.load();
    if (state.snapshot !== null) await this.#restoreSnapshot(state.snapshot.data);
    const empty = state.entries.length === 0 && state.hardState.term === 0 &&
      state.snapshot === null;
    const options = this.#options;
    let bootstrap: Configuration | undefined;
    if (empty && options.bootstrap !== false) {
      if (this.readOnly) {
        throw new TypeError("A read-only node cannot start a cluster: join an existing one");
      }
      const self: Member = { id: this.id, voter: true, ...(this.url ? { url: this.url } : {}) };
      bootstrap = { members: options.members ? [...options.members] : [self] };
    }
    this.#durableHard = state.hardState;
    const force = options.forceNewCluster;
    const forceConfig = force ? forcedConfig(this.id, state, force) : null;
    this.#raft = new Raft({
      id: this.id,
      prng: seededPrng(options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]!),
      electionTicks: Math.max(2, Math.round(this.#electionMs / this.#heartbeatMs)),
      heartbeatTicks: 1,
      maxUncommittedBytes: options.maxUncommittedBytes ?? 64 << 20,
      ...(options.maxMsgBytes === undefined ? {} : { maxMsgBytes: options.maxMsgBytes }),
      hardState: state.hardState,
      entries: state.entries,
      ...(state.snapshot === null ? {} : {
        snapshot: state.snapshot.meta,
        snapshotData: state.snapshot.data,
        applied: state.snapshot.meta.index,
      }),
      ...(bootstrap ? { bootstrap } : {}),
      ...(forceConfig ? { forceConfig } : {}),
    });
    this.#applied = this.#raft.log.applied;
    this.#refreshConfig();
    await this.#transport.start(this.id, this);
    // The original node of a new one-member cluster leads at once.
    const voters = this.#config.members.filter((m) => m.voter);
    if (voters.length === 1 && voters[0]!.id === this.id) this.#raft.campaign();
    this.#armTick();
    this.#schedule();
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
    if (this.#tickTimer !== null) this.#clock.clearTimer(this.#tickTimer);
    await this.#looping;
    this.#failAll(
      new TimeoutError("The node stopped before the write finished: it may still commit"),
      new UnavailableError("The node stopped"),
    );
    await this.#transport.close();
    await this.#storage.close();
  }

  // ------------------------------------------------------------ writes

  /**
   * Writes a command: validates it, appends it to the leader's log (through
   * the leader when this node follows) and resolves once it is applied (or
   * only accepted, when asked).
   *
   * @param command The command, a JSON value.
   * @param options Idempotency key, what to wait for, timeout.
   * @returns Where the entry landed and the state machine's result.
   * @throws {RejectedError} The validator or `apply` refused it (422).
   * @throws {ReadOnlyError} This is a read-only member (403).
   * @throws {UnavailableError} No leader, or over a bound; nothing was written (503).
   * @throws {TimeoutError} The outcome is unknown (504).
   */
  async propose(command: unknown, options: ProposeOptions = {}): Promise<ProposeResult> {
    this.#assertRunning();
    if (this.readOnly) throw new ReadOnlyError(this.#leaderHint());
    const wait = options.wait ?? "committed";
    const timeoutMs = options.timeoutMs ?? this.#requestTimeoutMs;
    const deadline = this.#clock.now() + timeoutMs;
    this.#stats.proposals++;
    try {
      const leader = await this.#awaitLeader(deadline);
      if (leader === this.id) {
        return await this.#proposeAsLeader(command, options.idempotencyKey, wait, deadline);
      }
      return await this.#forward(leader, command, options.idempotencyKey, wait, deadline);
    } catch (e) {
      this.#stats.proposalsFailed++;
      throw e;
    }
  }

  async #forward(
    leader: string,
    command: unknown,
    idempotencyKey: string | undefined,
    wait: "accepted" | "committed",
    deadline: number,
  ): Promise<ProposeResult> {
    const remaining = Math.max(1, deadline - this.#clock.now());
    const proposal: ForwardedProposal = {
      command,
      wait,
      timeoutMs: remaining,
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
    };
    // A little longer than the leader's own deadline, so its answer wins.
    const signal = AbortSignal.timeout(remaining + 1000);
    const answer = await this.#transport.forward(leader, proposal, signal);
    if (!answer.ok) throw errorFromAnswer(answer);
    const result = answer.value as ProposeResult;
    if (typeof result?.id === "string" && this.#raft.log.indexOfHash(result.id) === undefined) {
      this.#relayed.set(result.id, { index: result.index, term: result.term });
      if (this.#relayed.size > 10_000) this.#relayed.delete(this.#relayed.keys().next().value!);
    }
    return result;
  }

  #proposeAsLeader(
    command: unknown,
    key: string | undefined,
    wait: "accepted" | "committed",
    deadline: number,
  ): Promise<ProposeResult> {
    if (this.#raft.role !== "leader") {
      throw new UnavailableError("Cannot write: leadership changed");
    }
    if (key !== undefined) {
      const kept = this.#keys.get(key);
      if (kept !== undefined) return settleKept(kept, this.#head().head);
      const inFlight = this.#keysInFlight.get(key);
      if (inFlight !== undefined) return inFlight;
    }
    if (this.#writeCount + this.#readCount() >= this.#maxWaiting) {
      throw new UnavailableError(`Cannot write: ${this.#maxWaiting} requests are already waiting`);
    }
    const validated = this.#sm.validate ? this.#sm.validate(command) : command;
    const data = encoder.encode(
      JSON.stringify(key === undefined ? { c: validated } : { c: validated, k: key }),
    );
    let entry: Entry;
    try {
      entry = this.#raft.propose(data, this.#clock.now());
    } catch (e) {
      throw fromRaftError(e, this.#leaderHint());
    }
    const promise = this.#awaitEntry(entry, wait, deadline);
    if (key !== undefined) {
      this.#keysInFlight.set(key, promise);
      const forget = () => this.#keysInFlight.delete(key);
      promise.then(forget, forget);
    }
    this.#schedule();
    return promise;
  }

  /** Waits until `entry` is accepted or applied, or the deadline passes (then `timeout`). */
  #awaitEntry(
    entry: Entry,
    wait: "accepted" | "committed",
    deadline: number,
  ): Promise<ProposeResult> {
    return new Promise<ProposeResult>((resolve, reject) => {
      const timer = this.#clock.setTimer(() => {
        this.#dropWrite(entry.index, waiter);
        reject(new TimeoutError(`Write ${entry.hash} did not finish in time: it may still commit`));
      }, Math.max(1, deadline - this.#clock.now()));
      const waiter: WriteWaiter = {
        entry,
        wait,
        resolve,
        reject,
        timer,
        startedMs: this.#clock.now(),
      };
      const list = this.#writes.get(entry.index);
      if (list === undefined) this.#writes.set(entry.index, [waiter]);
      else list.push(waiter);
      this.#writeCount++;
    });
  }

  /** Runs a write forwarded by a follower; never throws (errors become answers). */
  async forwarded(from: string, proposal: ForwardedProposal): Promise<ForwardedAnswer> {
    void from;
    try {
      this.#assertRunning();
      if (this.#raft.role !== "leader") {
        throw new UnavailableError(
          "Cannot write: this node is no longer the leader",
          this.#leaderHint(),
        );
      }
      const deadline = this.#clock.now() + Math.min(proposal.timeoutMs, this.#requestTimeoutMs * 2);
      const value = await this.#proposeAsLeader(
        proposal.command,
        proposal.idempotencyKey,
        proposal.wait,
        deadline,
      );
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
  async read(
    query: unknown,
    options: ReadOptions = {},
  ): Promise<{ value: unknown; index: number }> {
    this.#assertRunning();
    this.#stats.reads++;
    if (options.consistency !== "local") {
      const timeoutMs = options.timeoutMs ?? this.#requestTimeoutMs;
      if (this.#writeCount + this.#readCount() >= this.#maxWaiting) {
        throw new UnavailableError(`Cannot read: ${this.#maxWaiting} requests are already waiting`);
      }
      await new Promise<number>((resolve, reject) => {
        const waiter: ReadWaiter = {
          resolve,
          reject,
          index: null,
          timer: this.#clock.setTimer(() => {
            this.#dropRead(waiter);
            reject(
              new UnavailableError(
                "Cannot confirm a linearizable read: no leader answered in time",
              ),
            );
          }, timeoutMs),
        };
        this.#readQueue.push(waiter);
        this.#startReadRound();
      });
    }
    if (!this.#sm.query) throw new TypeError("The state machine has no query() method");
    return { value: this.#sm.query(query), index: this.#applied };
  }

  #readCount(): number {
    return this.#readQueue.length + (this.#readRound?.reads.length ?? 0) +
      this.#readsAwaitingApply.length;
  }

  #startReadRound(): void {
    if (this.#readRound !== null || this.#readQueue.length === 0 || this.#stopped) return;
    const context = `${this.id}:${this.#readNonce}:${++this.#readSeq}`;
    try {
      this.#raft.readIndex(context);
    } catch (e) {
      if (!(e instanceof NotLeaderError)) throw e;
      // No leader: try again on the next tick or leader change.
      return;
    }
    const reads = this.#readQueue;
    this.#readQueue = [];
    // A round lost with a leader change is retried after an election timeout.
    const timer = this.#clock.setTimer(() => {
      if (this.#readRound?.context !== context) return;
      this.#readRound = null;
      this.#readQueue.unshift(...reads);
      this.#startReadRound();
    }, this.#electionMs);
    this.#readRound = { context, reads, timer };
    this.#schedule();
  }

  #onReadState(rs: ReadState): void {
    const round = this.#readRound;
    if (round === null || round.context !== rs.context) return;
    this.#clock.clearTimer(round.timer);
    this.#readRound = null;
    for (const r of round.reads) r.index = rs.index;
    this.#readsAwaitingApply.push(...round.reads);
    this.#releaseReads();
    this.#startReadRound();
  }

  #releaseReads(): void {
    const applied = this.#applied;
    const still: ReadWaiter[] = [];
    for (const r of this.#readsAwaitingApply) {
      if (r.index !== null && r.index <= applied) {
        this.#clock.clearTimer(r.timer);
        r.resolve(r.index);
      } else still.push(r);
    }
    this.#readsAwaitingApply = still;
  }

  #dropRead(waiter: ReadWaiter): void {
    this.#readQueue = this.#readQueue.filter((r) => r !== waiter);
    this.#readsAwaitingApply = this.#readsAwaitingApply.filter((r) => r !== waiter);
    if (this.#readRound !== null) {
      const reads = this.#readRound.reads;
      const at = reads.indexOf(waiter);
      if (at >= 0) reads.splice(at, 1);
    }
  }

  // ------------------------------------------------------------ cluster

  /**
   * Moves leadership to `target`, or to the most up-to-date other voter.
   *
   * @param target The voter to lead next.
   * @throws {WaterCraftError} `not_found` for an unknown voter, `unavailable`
   *   when leadership did not move within two election timeouts.
   */
  async transferLeader(target?: string): Promise<void> {
    this.#assertRunning();
    const deadline = this.#clock.now() + 2 * this.#electionMs;
    const leader = await this.#awaitLeader(deadline);
    let to = target;
    if (to === undefined) {
      if (leader !== this.id) {
        throw new UnavailableError("Cannot pick a target: ask the leader", this.#leaderHint());
      }
      const best = [...this.#raft.followers()].filter(([id]) =>
        this.#isVoter(id)
      ).sort((a, b) => b[1].match - a[1].match)[0];
      if (best === undefined) {
        throw new UnavailableError("Cannot transfer leadership: there is no other voter");
      }
      to = best[0];
    }
    if (leader === to) return;
    try {
      this.#raft.transferLeader(to);
    } catch (e) {
      throw fromRaftError(e, this.#leaderHint());
    }
    this.#schedule();
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        target: to,
        resolve,
        reject,
        timer: this.#clock.setTimer(() => {
          this.#transferWaiters = this.#transferWaiters.filter((w) => w !== waiter);
          reject(new UnavailableError(`Leadership did not move to ${to} in time`));
        }, Math.max(1, deadline - this.#clock.now())),
      };
      this.#transferWaiters.push(waiter);
    });
  }

  /**
   * Adds a member as a learner; unless read-only, the leader promotes it to
   * voter once it has caught up. Resolves once the addition is committed.
   * Adding a member that exists at the same URL succeeds without a change.
   * Only the leader accepts changes: elsewhere the error names the leader.
   *
   * @param member Who joins.
   * @param options How long to wait.
   * @throws {WaterCraftError} `conflict` (409) when the id exists at another URL.
   * @throws {UnavailableError} On a follower, with the leader.
   */
  addMember(
    member: { id: string; url: string; readOnly?: boolean },
    options: { timeoutMs?: number } = {},
  ): Promise<void> {
    return this.#changeMembership((members) => {
      const current = members.find((m) => m.id === member.id);
      if (current === undefined) {
        return {
          type: "add",
          member: {
            id: member.id,
            url: member.url,
            voter: false,
            readOnly: member.readOnly ?? false,
          },
        };
      }
      if (
        current.url !== member.url || (current.readOnly ?? false) !== (member.readOnly ?? false)
      ) {
        throw new WaterCraftError(
          "conflict",
          `Cannot add ${member.id} at ${member.url}: it is already a member at ${
            current.url ?? "no URL"
          }`,
        );
      }
      return null;
    }, options.timeoutMs);
  }

  /**
   * Removes a member, the leader included (it steps down once the removal
   * commits). Resolves once the removal is committed.
   *
   * @param id The member to remove.
   * @param options How long to wait.
   * @throws {WaterCraftError} `not_found` for an unknown member.
   * @throws {UnavailableError} On a follower, with the leader.
   */
  removeMember(id: string, options: { timeoutMs?: number } = {}): Promise<void> {
    return this.#changeMembership((members) => {
      if (!members.some((m) => m.id === id)) {
        throw new WaterCraftError("not_found", `No member ${id}`);
      }
      return { type: "remove", id };
    }, options.timeoutMs);
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
  async join(seeds: readonly string[], options: { timeoutMs?: number } = {}): Promise<boolean> {
    this.#assertRunning();
    if (this.#raft.log.lastIndex() > 0 || this.#raft.term > 0) return false;
    if (this.url === null) throw new TypeError("A node needs a url to join a cluster");
    if (this.#transport.join === undefined) {
      throw new TypeError(
        "This node's transport cannot join a cluster: it reaches no member by URL",
      );
    }
    const answer = await this.#transport.join({
      id: this.id,
      url: this.url,
      readOnly: this.readOnly,
      seeds,
      timeoutMs: options.timeoutMs ?? 60_000,
      clock: this.#clock,
    });
    // Until our log holds the configuration, this is how we answer the leader.
    for (const m of answer.members) {
      if (m.url && m.id !== this.id) this.#extraPeers.set(m.id, m.url);
    }
    this.#updatePeers();
    return true;
  }

  #changeMembership(
    decide: (members: readonly Member[]) => MembershipChange | null,
    timeoutMs = this.#requestTimeoutMs,
  ): Promise<void> {
    this.#assertRunning();
    const run = async () => {
      const deadline = this.#clock.now() + timeoutMs;
      for (let attempt = 0; attempt < 10_000; attempt++) {
        const leader = await this.#awaitLeader(deadline);
        if (leader !== this.id) {
          throw new UnavailableError("Membership changes go to the leader", this.#leaderHint());
        }
        // Decide against a committed configuration only: a retry must not
        // answer "done" (or "no such member") for a change still pending.
        const pending = this.#raft.log.config().index;
        if (pending > this.#raft.log.committed) {
          try {
            await this.#awaitEntry(this.#raft.log.entry(pending)!, "committed", deadline);
          } catch (e) {
            if (!(e instanceof UnavailableError)) throw e;
          }
          continue;
        }
        const change = decide(this.#raft.log.config().config.members);
        if (change === null) return;
        let entry: Entry | null;
        try {
          entry = this.#raft.changeMembers(change, this.#clock.now());
        } catch (e) {
          // Another change (an automatic promotion) or the new leader's first
          // commit is pending: try again shortly.
          if (!(e instanceof ProposalDroppedError) || this.#clock.now() >= deadline) {
            throw fromRaftError(e, this.#leaderHint());
          }
          await new Promise((r) => this.#clock.setTimer(() => r(undefined), this.#heartbeatMs));
          continue;
        }
        if (entry === null) return;
        this.#schedule();
        await this.#awaitEntry(entry, "committed", deadline);
        return;
      }
    };
    const result = this.#membershipChain.then(run, run);
    this.#membershipChain = result.catch(() => {});
    return result;
  }

  /** Removes a voter silent for longer than `evictAfterMs`, if allowed. */
  #maybeEvict(): void {
    const after = this.#options.evictAfterMs;
    if (after === undefined || this.#evicting || this.#raft.role !== "leader") return;
    const voters = this.#config.members.filter((m) => m.voter);
    if (voters.length <= (this.#options.minVoters ?? 3)) return;
    const seen = this.#raft.seenTicks();
    const sinceLeading = this.#clock.now() - this.#leaderSinceMs;
    const silent = voters.find((m) => {
      if (m.id === this.id) return false;
      const ticks = seen.get(m.id);
      return (ticks === undefined ? sinceLeading : ticks * this.#heartbeatMs) > after;
    });
    if (silent === undefined) return;
    this.#evicting = true;
    const warn = this.#options.onWarning ??
      ((message: string) => console.warn(`watercraft: ${message}`));
    this.removeMember(silent.id).then(
      () => warn(`evicted member ${silent.id}: silent for over ${after} ms`),
      (e) => warn(`could not evict ${silent.id}: ${e instanceof Error ? e.message : String(e)}`),
    ).finally(() => this.#evicting = false);
  }

  /** This node's state, as `/v1/status` reports it. */
  status(): NodeStatus {
    const st = this.#raft.status();
    const head = this.#head();
    return {
      id: this.id,
      url: this.url,
      role: roleName(st.role, st.voter),
      readOnly: this.readOnly,
      term: st.term,
      leader: this.#leaderHint(),
      commitIndex: st.commitIndex,
      appliedIndex: this.#applied,
      lastIndex: st.lastIndex,
      head: head.head,
      configIndex: st.configIndex,
      members: this.members().members,
    };
  }

  /** The member list with the alive list, as `/v1/members` reports it. */
  members(): { leader: LeaderHint | null; configIndex: number; members: MemberStatus[] } {
    const seen = this.#raft.seenTicks();
    const members = this.#config.members.map((m): MemberStatus => {
      const ticks = seen.get(m.id);
      const lastSeenMs = ticks === undefined ? null : ticks * this.#heartbeatMs;
      return {
        id: m.id,
        url: m.url ?? null,
        voter: m.voter,
        readOnly: m.readOnly ?? false,
        alive: lastSeenMs !== null && lastSeenMs <= this.#electionMs,
        lastSeenMs,
      };
    });
    return { leader: this.#leaderHint(), configIndex: this.#configIndex, members };
  }

  /** The head: hash, index and term of the latest applied entry. */
  head(): { head: string; index: number; term: number } {
    return this.#head();
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

  /** Metrics in the Prometheus text format. */
  metrics(): string {
    const st = this.#raft.status();
    const s = this.#stats;
    const roles = new Map<string, number>(
      (["leader", "follower", "candidate", "learner"] as const).map((r) => [r, 0]),
    );
    roles.set(roleName(st.role, st.voter), 1);
    const families: MetricFamily[] = [
      {
        name: "watercraft_role",
        help: "1 for the role this node has.",
        type: "gauge",
        value: roles,
        label: "role",
      },
      { name: "watercraft_term", help: "Current Raft term.", type: "gauge", value: st.term },
      {
        name: "watercraft_commit_index",
        help: "Highest committed index.",
        type: "gauge",
        value: st.commitIndex,
      },
      {
        name: "watercraft_applied_index",
        help: "Highest applied index.",
        type: "gauge",
        value: st.appliedIndex,
      },
      {
        name: "watercraft_last_index",
        help: "Last log index.",
        type: "gauge",
        value: st.lastIndex,
      },
      {
        name: "watercraft_proposals_total",
        help: "Writes received.",
        type: "counter",
        value: s.proposals,
      },
      {
        name: "watercraft_proposals_failed_total",
        help: "Writes that ended in an error.",
        type: "counter",
        value: s.proposalsFailed,
      },
      { name: "watercraft_reads_total", help: "Reads received.", type: "counter", value: s.reads },
      {
        name: "watercraft_applied_total",
        help: "Entries applied.",
        type: "counter",
        value: s.applied,
      },
      {
        name: "watercraft_snapshots_taken_total",
        help: "Snapshots of the state machine taken (each compacts the log).",
        type: "counter",
        value: s.snapshotsTaken,
      },
      {
        name: "watercraft_snapshots_installed_total",
        help: "Snapshots received from a leader and installed.",
        type: "counter",
        value: s.snapshotsInstalled,
      },
      {
        name: "watercraft_snapshot_chunks_sent_total",
        help: "Snapshot chunks sent to followers behind the compacted log.",
        type: "counter",
        value: s.snapshotChunksSent,
      },
      {
        name: "watercraft_leader_changes_total",
        help: "Times the known leader changed.",
        type: "counter",
        value: s.leaderChanges,
      },
      {
        name: "watercraft_write_replication_seconds",
        help:
          "Leader: from proposal until committed (replication round trip, followers' disk included).",
        type: "histogram",
        value: s.replication,
      },
      {
        name: "watercraft_disk_sync_seconds",
        help: "Time to make one batch durable.",
        type: "histogram",
        value: s.diskSync,
      },
      {
        name: "watercraft_apply_seconds",
        help: "Time to apply one batch.",
        type: "histogram",
        value: s.apply,
      },
    ];
    return renderMetrics(families);
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

  /** Steps Raft messages from a peer (called by the transport or the HTTP app). */
  receive(from: string, messages: readonly Message[]): void {
    if (this.#stopped || !this.#started) return;
    for (const m of messages) {
      if (m.from !== from) continue;
      try {
        this.#raft.step(m);
      } catch (e) {
        this.#fail(e);
        return;
      }
    }
    this.#wakeLeaderWaiters();
    this.#schedule();
  }

  // ------------------------------------------------------------ loop

  #armTick(): void {
    if (this.#stopped) return;
    this.#tickTimer = this.#clock.setTimer(() => {
      if (this.#stopped) return;
      try {
        this.#raft.tick(this.#clock.now());
      } catch (e) {
        this.#fail(e);
        return;
      }
      if (this.#readRound === null) this.#startReadRound();
      this.#maybeEvict();
      this.#schedule();
      this.#armTick();
    }, this.#heartbeatMs);
  }

  #schedule(): void {
    if (this.#looping !== null || this.#stopped || this.#failure !== null) return;
    this.#looping = this.#loop().finally(() => {
      this.#looping = null;
      // Input that arrived while the loop was finishing gets a new pass.
      if (!this.#stopped && this.#failure === null && this.#raft.hasReady()) this.#schedule();
    });
  }

  async #loop(): Promise<void> {
    await Promise.resolve();
    try {
      for (
        let guard = 0;
        guard < 10_000 && this.#failure === null && this.#raft.hasReady();
        guard++
      ) {
        const rd = this.#raft.ready();
        // A leader's messages depend on nothing of its own that is not yet
        // durable (its term and vote were saved before it could win): send
        // them while its write is in flight (thesis §10.2.1).
        const d = this.#durableHard;
        const early = this.#raft.role === "leader" &&
          (rd.hardState === null || (rd.hardState.term === d.term && rd.hardState.vote === d.vote));
        if (early && rd.messages.length > 0) this.#transport.send(rd.messages);
        for (const m of rd.messages) if (m.type === "snapshot") this.#stats.snapshotChunksSent++;
        if (rd.snapshot !== null) {
          // A snapshot from the leader replaces our log: durable first, then
          // the state machine; the answer goes out with this batch's messages.
          await this.#storage.saveSnapshot(rd.snapshot);
          await this.#restoreSnapshot(rd.snapshot.data);
          this.#applied = rd.snapshot.meta.index;
          this.#stats.snapshotsInstalled++;
        }
        if (rd.hardState !== null || rd.entries.length > 0) {
          const started = this.#clock.now();
          await this.#storage.save(rd.hardState, rd.entries);
          this.#stats.diskSync.observeMs(this.#clock.now() - started);
          if (rd.hardState !== null) this.#durableHard = rd.hardState;
        }
        if (!early && rd.messages.length > 0) this.#transport.send(rd.messages);
        for (const e of rd.entries) this.#settleAccepted(e);
        if (rd.committed.length > 0) this.#applyAll(rd.committed);
        for (const rs of rd.readStates) this.#onReadState(rs);
        if (rd.softState !== null) this.#onSoftState(rd.softState);
        this.#raft.advance();
        this.#refreshConfig();
        this.#releaseReads();
        this.#wakeLeaderWaiters();
        await this.#maybeSnapshot();
      }
    } catch (e) {
      this.#fail(e);
    }
  }

  #settleAccepted(e: Entry): void {
    const waiters = this.#writes.get(e.index);
    // An entry truncated while its write was in flight is not accepted.
    if (waiters === undefined || this.#raft.log.hash(e.index) !== e.hash) return;
    for (const w of [...waiters]) {
      if (w.wait !== "accepted" || w.entry.hash !== e.hash) continue;
      this.#dropWrite(e.index, w);
      this.#clock.clearTimer(w.timer);
      w.resolve({
        id: e.hash,
        index: e.index,
        term: e.term,
        state: "accepted",
        head: this.#head().head,
      });
    }
  }

  #applyAll(entries: readonly Entry[]): void {
    const started = this.#clock.now();
    for (const e of entries) this.#apply(e);
    this.#stats.apply.observeMs(this.#clock.now() - started);
  }

  #apply(e: Entry): void {
    let outcome: Outcome = { ok: true, value: undefined };
    if (e.kind === "command") {
      const envelope = JSON.parse(decoder.decode(e.data)) as { c: unknown; k?: string };
      const key = envelope.k;
      const kept = key === undefined ? undefined : this.#keys.get(key);
      if (kept !== undefined) {
        // A retry that reached the log twice: the first entry and its result stand.
        this.#applied = e.index;
        this.#relayed.delete(e.hash);
        this.#settleCommitted(e, kept.outcome, kept);
        return;
      } else {
        const meta: EntryMeta = {
          index: e.index,
          term: e.term,
          id: e.hash,
          proposer: e.proposer,
          timeMs: e.timeMs,
        };
        try {
          outcome = { ok: true, value: this.#sm.apply(envelope.c, meta) };
        } catch (err) {
          // Only a deliberate, deterministic refusal may pass; anything else
          // would let nodes diverge.
          if (!(err instanceof WaterCraftError)) throw err;
          outcome = { ok: false, error: err };
        }
        if (key !== undefined) {
          this.#keep(key, { id: e.hash, index: e.index, term: e.term, outcome });
        }
      }
      this.#stats.applied++;
    }
    this.#applied = e.index;
    this.#relayed.delete(e.hash);
    this.#settleCommitted(e, outcome);
  }

  /**
   * Snapshots the state machine and compacts the log once `snapshotEvery`
   * entries were applied since the last snapshot. The snapshot holds the
   * state machine's bytes and the idempotency keys (replicated state too).
   */
  async #maybeSnapshot(): Promise<void> {
    const log = this.#raft.log;
    if (log.applied - this.#raft.snapshot.index < this.#snapshotEvery) return;
    const data = encodeSnapshot(await this.#sm.snapshot(), this.#keys);
    // Nothing applies while we await (applying happens only in this loop),
    // so the state machine still stands at the applied index.
    const meta = this.#raft.compact(log.applied, data, {
      keepEntries: this.#snapshotKeepEntries,
    });
    await this.#storage.saveSnapshot({ meta, data });
    this.#stats.snapshotsTaken++;
  }

  async #restoreSnapshot(data: Uint8Array): Promise<void> {
    const { machine, keys } = decodeSnapshot(data);
    await this.#sm.restore(machine);
    this.#keys.clear();
    for (const [key, kept] of keys) this.#keys.set(key, kept);
  }

  #keep(key: string, result: KeptResult): void {
    this.#keys.set(key, result);
    // Oldest first, in apply order: the same on every node.
    if (this.#keys.size > IDEMPOTENCY_KEYS_MAX) this.#keys.delete(this.#keys.keys().next().value!);
  }

  /**
   * Answers the writes waiting on index `e.index`: those whose entry is `e`
   * get its outcome (reported as `as`, the first entry of an idempotency
   * key, when `e` repeats one); any other entry at that index never commits.
   */
  #settleCommitted(e: Entry, outcome: Outcome, as: { id: string; index: number; term: number } = {
    id: e.hash,
    index: e.index,
    term: e.term,
  }): void {
    const waiters = this.#writes.get(e.index);
    if (waiters === undefined) return;
    this.#writes.delete(e.index);
    this.#writeCount -= waiters.length;
    for (const w of waiters) {
      this.#clock.clearTimer(w.timer);
      if (w.entry.hash !== e.hash) {
        // Another entry committed at this index: this write never will.
        w.reject(
          new UnavailableError("Cannot write: leadership changed before the write committed"),
        );
        continue;
      }
      this.#stats.replication.observeMs(this.#clock.now() - w.startedMs);
      if (w.wait === "accepted") {
        w.resolve({
          id: e.hash,
          index: e.index,
          term: e.term,
          state: "accepted",
          head: this.#head().head,
        });
      } else if (outcome.ok) {
        w.resolve({
          ...as,
          state: "committed",
          head: this.#head().head,
          result: outcome.value,
        });
      } else {
        w.reject(outcome.error);
      }
    }
  }

  #dropWrite(index: number, waiter: WriteWaiter): void {
    const list = this.#writes.get(index);
    if (list === undefined) return;
    const at = list.indexOf(waiter);
    if (at < 0) return;
    list.splice(at, 1);
    this.#writeCount--;
    if (list.length === 0) this.#writes.delete(index);
  }

  #onSoftState(soft: SoftState): void {
    if (soft.leader !== null) this.#stats.leaderChanges++;
    if (soft.role === "leader") this.#leaderSinceMs = this.#clock.now();
    else this.#keysInFlight.clear();
    this.#startReadRound();
  }

  /**
   * Wakes whoever waits for a leader, or for a transfer to land. Checked
   * after every input, not only on a reported change: the leader may come
   * back before the next batch, and then no change is reported at all.
   */
  #wakeLeaderWaiters(): void {
    const leader = this.#raft.leader;
    if (leader === null) return;
    if (this.#leaderWaiters.length > 0) {
      const waiters = this.#leaderWaiters;
      this.#leaderWaiters = [];
      for (const w of waiters) {
        this.#clock.clearTimer(w.timer);
        w.resolve(leader);
      }
    }
    if (this.#transferWaiters.some((w) => w.target === leader)) {
      const done = this.#transferWaiters.filter((w) => w.target === leader);
      this.#transferWaiters = this.#transferWaiters.filter((w) => w.target !== leader);
      for (const w of done) {
        this.#clock.clearTimer(w.timer);
        w.resolve();
      }
    }
  }

  #refreshConfig(): void {
    const { index, config } = this.#raft.log.config();
    if (index === this.#configIndex) return;
    this.#configIndex = index;
    this.#config = config;
    this.#updatePeers();
  }

  #updatePeers(): void {
    const peers = new Map<string, string>(this.#extraPeers);
    for (const m of this.#config.members) if (m.url) peers.set(m.id, m.url);
    peers.delete(this.id);
    this.#transport.setPeers(peers);
  }

  // ------------------------------------------------------------ helpers

  #awaitLeader(deadline: number): Promise<string> {
    const leader = this.#raft.leader;
    if (leader !== null) return Promise.resolve(leader);
    return new Promise<string>((resolve, reject) => {
      const waiter: Waiting<string> = {
        resolve,
        reject,
        timer: this.#clock.setTimer(() => {
          this.#leaderWaiters = this.#leaderWaiters.filter((w) => w !== waiter);
          reject(new UnavailableError("Cannot serve the request: no leader is known"));
        }, Math.max(1, deadline - this.#clock.now())),
      };
      this.#leaderWaiters.push(waiter);
    });
  }

  #head(): { head: string; index: number; term: number } {
    const log = this.#raft.log;
    const index = this.#applied;
    return { head: log.hash(index) ?? log.snapshot.hash, index, term: log.term(index) ?? 0 };
  }

  #leaderHint(): LeaderHint | null {
    const id = this.#raft?.leader ?? null;
    if (id === null) return null;
    const member = this.#config.members.find((m) => m.id === id);
    return { id, url: member?.url ?? (id === this.id ? this.url : null) };
  }

  #isVoter(id: string): boolean {
    return this.#config.members.some((m) => m.id === id && m.voter);
  }

  #assertRunning(): void {
    if (!this.#started) throw new UnavailableError("The node is not started");
    if (this.#failure !== null) {
      throw new UnavailableError(`The node stopped after an error: ${String(this.#failure)}`);
    }
    if (this.#stopped) throw new UnavailableError("The node is stopped");
  }

  /** Stops the node after an error it cannot recover from (storage failure, broken invariant). */
  #fail(error: unknown): void {
    if (this.#failure !== null) return;
    this.#failure = error;
    this.#stopped = true;
    if (this.#tickTimer !== null) this.#clock.clearTimer(this.#tickTimer);
    this.#onError(
      error instanceof AssertionError ? error : new Error("Node stopped", { cause: error }),
    );
    this.#failAll(
      new TimeoutError("The node stopped after an error: the write may still commit"),
      new UnavailableError("The node stopped after an error"),
    );
  }

  #failAll(writeError: WaterCraftError, readError: WaterCraftError): void {
    for (const list of this.#writes.values()) {
      for (const w of list) {
        this.#clock.clearTimer(w.timer);
        w.reject(writeError);
      }
    }
    this.#writes.clear();
    this.#writeCount = 0;
    const reads = [
      ...this.#readQueue,
      ...(this.#readRound?.reads ?? []),
      ...this.#readsAwaitingApply,
    ];
    if (this.#readRound !== null) this.#clock.clearTimer(this.#readRound.timer);
    this.#readQueue = [];
    this.#readRound = null;
    this.#readsAwaitingApply = [];
    for (const r of reads) {
      this.#clock.clearTimer(r.timer);
      r.reject(readError);
    }
    for (const w of [...this.#leaderWaiters, ...this.#transferWaiters]) {
      this.#clock.clearTimer(w.timer);
      w.reject(readError);
    }
    this.#leaderWaiters = [];
    this.#transferWaiters = [];
  }
}

/**
 * A node snapshot: u32 length and the state machine's bytes, then the
 * idempotency keys as UTF-8 JSON (oldest first, refusals as code and message).
 */
function encodeSnapshot(machine: Uint8Array, keys: ReadonlyMap<string, KeptResult>): Uint8Array {
  const kept = [...keys].map(([key, k]) => [key, {
    id: k.id,
    index: k.index,
    term: k.term,
    outcome: k.outcome.ok ? k.outcome : {
      ok: false,
      code: k.outcome.error.code,
      message: k.outcome.error.message,
      details: k.outcome.error.details,
    },
  }]);
  const json = encoder.encode(JSON.stringify(kept));
  const out = new Uint8Array(4 + machine.length + json.length);
  new DataView(out.buffer).setUint32(0, machine.length);
  out.set(machine, 4);
  out.set(json, 4 + machine.length);
  return out;
}

function decodeSnapshot(data: Uint8Array): { machine: Uint8Array; keys: [string, KeptResult][] } {
  const length = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
  const machine = data.subarray(4, 4 + length);
  type Stored = {
    id: string;
    index: number;
    term: number;
    outcome: {
      ok: boolean;
      value?: unknown;
      code?: string;
      message?: string;
      details?: Record<string, unknown>;
    };
  };
  const stored = JSON.parse(decoder.decode(data.subarray(4 + length))) as [string, Stored][];
  const keys = stored.map(([key, k]): [string, KeptResult] => [key, {
    id: k.id,
    index: k.index,
    term: k.term,
    outcome: k.outcome.ok ? { ok: true, value: k.outcome.value } : {
      ok: false,
      error: errorFromCode(
        k.outcome.code as ErrorCode,
        k.outcome.message ?? "",
        k.outcome.details ?? {},
      ),
    },
  }]);
  return { machine, keys };
}

/** The configuration `forceNewCluster` asks for: this node (and the named ids) as the only voters. */
function forcedConfig(
  id: string,
  state: PersistedState,
  force: true | readonly string[],
): Configuration {
  const last = state.entries.findLast((e) => e.kind === "config");
  const known = last !== undefined
    ? decodeConfig(last.data).members
    : state.snapshot?.meta.config.members ?? [];
  const keep = new Set(force === true ? [id] : [id, ...force]);
  const members = known.filter((m) => keep.has(m.id)).map((m) => ({ ...m, voter: true }));
  if (!members.some((m) => m.id === id)) members.unshift({ id, voter: true });
  return { members };
}

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) {
    throw new TypeError(`${name} must be a positive number: ${value}`);
  }
  return value;
}

function roleName(role: Role, voter: boolean): NodeStatus["role"] {
  if (!voter) return "learner";
  return role === "leader" ? "leader" : role === "follower" ? "follower" : "candidate";
}

function settleKept(kept: KeptResult, head: string): Promise<ProposeResult> {
  if (!kept.outcome.ok) return Promise.reject(kept.outcome.error);
  return Promise.resolve({
    id: kept.id,
    index: kept.index,
    term: kept.term,
    state: "committed",
    head,
    result: kept.outcome.value,
  });
}

/** Turns an error into a forwarded answer. */
function answerFromError(e: unknown): ForwardedAnswer {
  if (e instanceof WaterCraftError) {
    const details: Record<string, unknown> = { ...e.details };
    if ((e instanceof UnavailableError || e instanceof ReadOnlyError) && e.leader !== null) {
      details.leader = e.leader;
    }
    return { ok: false, code: e.code, message: e.message, details };
  }
  return { ok: false, code: "unavailable", message: `The leader failed: ${String(e)}` };
}

/** Rebuilds the error a forwarded answer stands for. */
function errorFromAnswer(answer: Extract<ForwardedAnswer, { ok: false }>): WaterCraftError {
  return errorFromCode(answer.code as ErrorCode, answer.message, answer.details ?? {});
}
