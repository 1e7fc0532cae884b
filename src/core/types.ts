/**
 * The shared vocabulary of the Raft core: the roles, the state the driver
 * persists and reports, the {@linkcode Ready} batch, the node options and the
 * read-only reports (`RaftStatus`, `FollowerView`). Storage adapters and the
 * driver import these without pulling in the state machine itself.
 *
 * @module
 */

import type { Configuration, Member } from "./config.ts";
import type { Entry } from "./entry.ts";
import type { SnapshotMeta } from "./log.ts";
import type { Message } from "./messages.ts";
import type { Prng } from "./prng.ts";

/** A node's role. A learner (non-voter) is always a `follower` here. */
export type Role = "follower" | "preCandidate" | "candidate" | "leader";

/** What must be durable before messages that depend on it are sent. */
export interface HardState {
  /** Current term. */
  readonly term: number;
  /** Who this node voted for in `term`, or null. */
  readonly vote: string | null;
  /** Highest index known committed. */
  readonly commit: number;
}

/** Volatile state the driver may want to report; changes come out of `ready()`. */
export interface SoftState {
  /** This node's role now. */
  readonly role: Role;
  /** Id of the leader this node follows (itself when leading), or null when unknown. */
  readonly leader: string | null;
  /** Current term. */
  readonly term: number;
}

/** A released linearizable read: serve it once `index` is applied. */
export interface ReadState {
  /** Commit index at the time the leader confirmed its leadership. */
  readonly index: number;
  /** The caller's context, as passed to `readIndex()`. */
  readonly context: string;
}

/** One batch of work for the driver. */
export interface Ready {
  /** New hard state to persist, or null when unchanged. */
  readonly hardState: HardState | null;
  /**
   * Entries to persist. When `entries[0].index` is at or below the last index
   * persisted earlier, everything from there on is replaced.
   */
  readonly entries: readonly Entry[];
  /** Messages to send once `hardState` and `entries` are durable. */
  readonly messages: readonly Message[];
  /** Committed entries to apply, in order, exactly once. */
  readonly committed: readonly Entry[];
  /** Linearizable reads released by this batch. */
  readonly readStates: readonly ReadState[];
  /** New role, leader or term, or null when unchanged. */
  readonly softState: SoftState | null;
  /**
   * A snapshot from the leader to install: persist it and restore the state
   * machine from it before `entries`, `messages` and `committed` (which
   * follow it).
   */
  readonly snapshot: { readonly meta: SnapshotMeta; readonly data: Uint8Array } | null;
}

/**
 * What a leader may act on while its last {@linkcode Ready} batch is being
 * persisted (`Raft.readyEarly()`): acknowledged by the `advance()` of that
 * batch.
 */
export interface EarlyReady {
  /** Messages to send now: a leader's appends may run ahead of its own disk. */
  readonly messages: readonly Message[];
  /** Committed entries to apply now, in order, after those of the batch. */
  readonly committed: readonly Entry[];
}

/** Options of a Raft node. */
export interface RaftOptions {
  /** This node's id. */
  readonly id: string;
  /** Source of randomness for election timeouts. */
  readonly prng: Prng;
  /** Base election timeout in ticks; the real one is drawn from `[n, 2n)`. Default 10. */
  readonly electionTicks?: number;
  /** Heartbeat interval in ticks; must be below `electionTicks`. Default 1. */
  readonly heartbeatTicks?: number;
  /** Probe with PreVote before starting an election (thesis §9.6). Default true. */
  readonly preVote?: boolean;
  /** Leader steps down without a live quorum; followers honour a leader lease. Default true. */
  readonly checkQuorum?: boolean;
  /** Appends in flight per follower in replicate state. Default 64. */
  readonly maxInflight?: number;
  /** Soft cap on the entry bytes of one append. Default 1 MiB. */
  readonly maxMsgBytes?: number;
  /** Soft cap on the entry bytes of one `committed` batch. Default 4 MiB. */
  readonly maxApplyBytes?: number;
  /** Bound on the leader's uncommitted entry bytes; proposals past it fail. Default 64 MiB. */
  readonly maxUncommittedBytes?: number;
  /** Recompute the hash of every entry received from a leader. Default true. */
  readonly verifyHashes?: boolean;
  /** Recovered hard state. */
  readonly hardState?: HardState;
  /** Recovered snapshot point. */
  readonly snapshot?: SnapshotMeta;
  /** The recovered snapshot's bytes, sent to followers that need them. */
  readonly snapshotData?: Uint8Array;
  /** Recovered durable entries following the snapshot. */
  readonly entries?: readonly Entry[];
  /** Highest index the state machine already reflects (e.g. from a snapshot). */
  readonly applied?: number;
  /** Promote a caught-up learner (not read-only) to voter automatically. Default true. */
  readonly autoPromote?: boolean;
  /** A learner is caught up when its log is at most this many entries behind the leader's. Default 16. */
  readonly promoteLagEntries?: number;
  /**
   * Among voters, the longest-standing (earliest in the member list) times out
   * first, so it tends to win elections. Timing only: no safety rule changes.
   * Applies only with PreVote on. Default true.
   */
  readonly seniority?: boolean;
  /**
   * Checks the data of a snapshot a leader sent, once whole, before it
   * replaces this node's log: false refuses it (counted with the refused
   * messages) and the log stays as it was, so that data the state machine
   * could not restore never takes the place of a good log. Must be
   * deterministic. Default: every snapshot is taken.
   */
  readonly acceptSnapshot?: (data: Uint8Array) => boolean;
  /**
   * Disaster recovery: after loading, append this configuration and commit
   * the whole local log, whatever the old cluster says. Only for a node whose
   * cluster permanently lost its majority: entries that never committed
   * become committed, and the old members must never rejoin as they are.
   */
  readonly forceConfig?: Configuration;
  /**
   * For a node with empty state: start a new cluster with this configuration.
   * Every node bootstrapped with the same configuration gets the same first
   * entry (term 1, index 1), committed. Ignored when state was recovered.
   */
  readonly bootstrap?: Configuration;
}

/** A single-server membership change; see `Raft.changeMembers()`. */
export type MembershipChange =
  | { readonly type: "add"; readonly member: Member }
  | { readonly type: "promote"; readonly id: string }
  | { readonly type: "remove"; readonly id: string };

/** A point-in-time view of a node, for status reports and tests. */
export interface RaftStatus {
  /** This node's id. */
  readonly id: string;
  /** Its role (a learner is a `follower`; see `voter`). */
  readonly role: Role;
  /** Current term. */
  readonly term: number;
  /** Who this node voted for in `term`, or null. */
  readonly vote: string | null;
  /** Id of the leader this node follows (itself when leading), or null when unknown. */
  readonly leader: string | null;
  /** Highest log index known to be committed. */
  readonly commitIndex: number;
  /** Highest index handed out in `Ready.committed` for applying. */
  readonly appliedIndex: number;
  /** Index of the last entry in the log, durable or not. */
  readonly lastIndex: number;
  /** Hash of the last committed entry. */
  readonly head: string;
  /** Configuration in force, and the index of the entry that set it. */
  readonly config: Configuration;
  /**
   * Index of the `config` entry that set `config`; when that entry came with a
   * snapshot and its index is unknown, the snapshot's index.
   */
  readonly configIndex: number;
  /** Whether this node votes in the configuration in force. */
  readonly voter: boolean;
  /**
   * Messages refused because no correct peer sends them (a term past
   * `TERM_MAX`, a heartbeat committing past this log, an acknowledgement
   * past a leader's log or past its snapshot, a term-carrying message of
   * term 0, an index past `INDEX_MAX`, append entries out of sequence):
   * each is a bug or a forgery, worth an operator's look.
   */
  readonly refusedMessages: number;
}

/** A leader's view of one follower's replication. */
export interface FollowerView {
  /** Highest index known to match the leader's log (0 before the first answer). */
  readonly match: number;
  /** Index of the next entry the leader will send it. */
  readonly next: number;
  /**
   * Flow control: `probe` sends one append at a time until the follower's
   * position is known, `replicate` pipelines appends, `snapshot` sends a
   * snapshot and nothing else.
   */
  readonly state: "probe" | "replicate" | "snapshot";
  /** Whether the leader holds further appends back (probe or chunk in flight, or window full). */
  readonly paused: boolean;
  /** Appends in flight, unacknowledged (replicate state), at most `maxInflight`. */
  readonly inflight: number;
  /** Whether the follower was heard from since the last CheckQuorum round. */
  readonly recentActive: boolean;
}
