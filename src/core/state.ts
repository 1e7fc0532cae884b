/**
 * The state of one Raft node in one record, and the few operations every
 * role needs on it (send a message, append an entry of its own, list the
 * voters). The `Raft` class holds the record; the role modules
 * (`election.ts`, `follower.ts`, `replication.ts`, `leader.ts`) are plain
 * functions over it, as etcd spreads the methods of its `raft` struct over
 * files. Internal to the core: not exported from `mod.ts`.
 *
 * @module
 */

import { voterIds } from "./config.ts";
import { createEntry, type Entry, type EntryKind } from "./entry.ts";
import type { RaftLog, SnapshotMeta } from "./log.ts";
import type { Message } from "./messages.ts";
import type { ProgressTracker } from "./progress.ts";
import type { Prng } from "./prng.ts";
import { ReadIndexQueue } from "./read_only.ts";
import { SnapshotReceiver } from "./snapshot_transfer.ts";
import type { HardState, ReadState, Role, SoftState } from "./types.ts";

/** The options of a node once checked and defaulted: fixed for its lifetime. */
export interface RaftSettings {
  /** This node's id. */
  readonly id: string;
  /** The only source of randomness: election timeouts draw from it. */
  readonly prng: Prng;
  /** Base election timeout in ticks; an integer above `heartbeatTicks`. */
  readonly electionTicks: number;
  /** Ticks between a leader's heartbeats; a positive integer. */
  readonly heartbeatTicks: number;
  /** Campaigns start with a PreVote round (thesis §9.6). */
  readonly preVote: boolean;
  /** Leaders step down without a live quorum; followers honour a leader lease (§6.2, §4.2.3). */
  readonly checkQuorum: boolean;
  /** Soft cap on the entry bytes of one append, and the size of a snapshot chunk. */
  readonly maxMsgBytes: number;
  /** Soft cap on the entry bytes of one `committed` batch. */
  readonly maxApplyBytes: number;
  /** Bound on the leader's uncommitted command bytes. */
  readonly maxUncommittedBytes: number;
  /** A follower recomputes the hash chain of entries it receives. */
  readonly verifyHashes: boolean;
  /** The leader promotes caught-up learners itself. */
  readonly autoPromote: boolean;
  /** A learner at most this many entries behind the leader is caught up. */
  readonly promoteLagEntries: number;
  /** Voters earlier in the member list time out first (with PreVote only). */
  readonly seniority: boolean;
  /** Checks a leader's snapshot data before it replaces the log; null: every one is taken. */
  readonly acceptSnapshot: ((data: Uint8Array) => boolean) | null;
}

/** A snapshot and its bytes. */
export interface SnapshotWithData {
  /** Where the snapshot stands in the log. */
  readonly meta: SnapshotMeta;
  /** The state machine's bytes at `meta.index`. */
  readonly data: Uint8Array;
}

/** The whole state of one node: its settings, then what changes. */
export interface RaftState extends RaftSettings {
  // ------------------ persistent: Figure 3.1, and the snapshot of chapter 5

  /** Latest term this node has seen: it never decreases. */
  term: number;
  /** Whom this node voted for in `term`, or null: set at most once per term. */
  vote: string | null;
  /** The replicated log: only the core changes it, each change reaching the driver in `ready()`. */
  readonly log: RaftLog;
  /**
   * The latest snapshot, for followers behind the in-memory log (which may
   * start before it: entries kept for followers that are only a little behind).
   */
  snapshot: SnapshotWithData;

  // ------------------------------------------------------------- volatile

  /** This node's role; only the `becomeX()` functions of `election.ts` change it. */
  role: Role;
  /** The leader of `term` this node knows of (itself when leading), or null. */
  leader: string | null;
  /** A snapshot received and not yet handed out by `ready()`. */
  incomingSnapshot: SnapshotWithData | null;
  /** The chunks of a snapshot arriving from a leader; reset on a new term. */
  readonly receiver: SnapshotReceiver;
  /** The driver's latest time in ms, for entry stamps only: never decreases. */
  timeMs: number;

  // ---------------------------------------------------------------- timers

  /** Ticks since start: the unit of the alive list; never decreases. */
  ticks: number;
  /**
   * Messages refused because no correct peer sends them (a term past
   * `TERM_MAX`, a heartbeat committing past this log, an acknowledgement
   * past a leader's log or past its snapshot, what `messageFault()` names):
   * a bug or a forgery.
   * Never decreases.
   */
  refused: number;
  /** Tick at which the leader was last heard from (followers); -1 before that. */
  leaderHeardTick: number;
  /** The leader's alive list from its last heartbeat, and the tick it arrived. */
  seen: { tick: number; ticksAgo: Readonly<Record<string, number>> };
  /**
   * Ticks since the last reset: on a follower or candidate since it last
   * heard from a leader, granted a vote, timed out or changed term; on a
   * leader since the last CheckQuorum round or the start of a transfer.
   */
  electionElapsed: number;
  /** Leader: ticks since the last heartbeat broadcast; below `heartbeatTicks` between ticks. */
  heartbeatElapsed: number;
  /** The election timeout drawn for this term: in `[electionTicks, 2 * electionTicks)`. */
  randomizedElectionTimeout: number;
  /** The configuration (its index) whose voters ranked that draw, for seniority. */
  rankedConfigIndex: number;

  // ---------------------------------------------------------- candidate

  /** Votes received in this campaign; empty outside one. */
  readonly votes: Map<string, boolean>;

  // -------------------------------------------------------------- leader

  /** Leader: progress of exactly the members in force; empty on other roles. */
  readonly progress: ProgressTracker;
  /** Followers owed an append even if it carries nothing (a heartbeat saw them behind). */
  readonly wantsAppend: Set<string>;
  /** Leader: the voter leadership is moving to, or null; proposals are refused meanwhile. */
  transferee: string | null;
  /** Leader: command bytes appended in this term and not yet committed; never negative. */
  uncommittedBytes: number;
  /** This leader's pending linearizable reads; empty on other roles. */
  readonly reads: ReadIndexQueue;

  // -------------------------------------------------------------- output

  /** Messages for the next `ready()` batch, in the order they were made. */
  messages: Message[];
  /** Reads released for the next `ready()` batch. */
  readStates: ReadState[];
  /** The hard state of the last `ready()` batch (or as recovered). */
  lastHardState: HardState;
  /** The soft state of the last `ready()` batch (or at start). */
  lastSoftState: SoftState;
  /**
   * The batch handed out by `ready()` and not yet advanced, or null: its
   * entries to persist, the last entry handed out to apply (the applied
   * index when none was), and the term and vote that were durable when it
   * was cut (those of the batch before).
   */
  inReady: {
    entries: readonly Entry[];
    committedTo: number;
    durable: Pick<HardState, "term" | "vote">;
  } | null;
}

/**
 * Builds the state of a node that starts as a follower with no leader.
 *
 * @param settings The checked options.
 * @param recovered The log, the tracker and what was recovered from storage.
 * @returns The state; the caller still draws its election timeout.
 */
export function createRaftState(
  settings: RaftSettings,
  recovered: {
    log: RaftLog;
    progress: ProgressTracker;
    snapshot: SnapshotWithData;
    hardState: HardState;
  },
): RaftState {
  const { log, hardState } = recovered;
  return {
    ...settings,
    term: hardState.term,
    vote: hardState.vote,
    log,
    snapshot: recovered.snapshot,
    role: "follower",
    leader: null,
    incomingSnapshot: null,
    receiver: new SnapshotReceiver(),
    timeMs: 0,
    ticks: 0,
    refused: 0,
    leaderHeardTick: -1,
    seen: { tick: 0, ticksAgo: {} },
    electionElapsed: 0,
    heartbeatElapsed: 0,
    randomizedElectionTimeout: 0,
    rankedConfigIndex: 0,
    votes: new Map(),
    progress: recovered.progress,
    wantsAppend: new Set(),
    transferee: null,
    uncommittedBytes: 0,
    reads: new ReadIndexQueue(),
    messages: [],
    readStates: [],
    lastHardState: { term: hardState.term, vote: hardState.vote, commit: log.committed },
    lastSoftState: { role: "follower", leader: null, term: hardState.term },
    inReady: null,
  };
}

/** A message as the core builds it: `from` is always the sender's id. */
export type OutgoingMessage = DistributiveOmit<Message, "from">;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * Queues a message for the next `ready()` batch.
 *
 * @param r The sender's state.
 * @param m The message, without `from`.
 */
export function send(r: RaftState, m: OutgoingMessage): void {
  r.messages.push({ ...m, from: r.id } as Message);
}

/**
 * Appends an entry this node creates (a leader's command, no-op or
 * configuration), stamped with its term, id and latest time.
 *
 * @param r The node's state.
 * @param kind The entry's kind.
 * @param data Its bytes.
 * @returns The new entry.
 */
export function appendOwn(r: RaftState, kind: EntryKind, data: Uint8Array): Entry {
  const entry = createEntry(r.log.lastIndex() + 1, r.log.lastHash(), {
    term: r.term,
    kind,
    proposer: r.id,
    timeMs: r.timeMs,
    data,
  });
  r.log.append([entry]);
  return entry;
}

/**
 * The voters of the configuration in force.
 *
 * @param r The node's state.
 * @returns Their ids, in member order.
 */
export function currentVoters(r: RaftState): string[] {
  return voterIds(r.log.config().config);
}

/**
 * Whether this node votes in the configuration in force.
 *
 * @param r The node's state.
 * @returns True for a voter, false for a learner or a non-member.
 */
export function isVoter(r: RaftState): boolean {
  return currentVoters(r).includes(r.id);
}

/**
 * What the driver must persist now.
 *
 * @param r The node's state.
 * @returns Term, vote and commit index.
 */
export function hardState(r: RaftState): HardState {
  return { term: r.term, vote: r.vote, commit: r.log.committed };
}

/**
 * What the driver may report now.
 *
 * @param r The node's state.
 * @returns Role, leader and term.
 */
export function softState(r: RaftState): SoftState {
  return { role: r.role, leader: r.leader, term: r.term };
}
