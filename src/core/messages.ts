/**
 * The messages Raft nodes exchange. Their wire encoding belongs to the
 * transport; the core sees plain objects.
 *
 * @module
 */

import { configDataFault, configurationFault } from "./config.ts";
import type { Entry } from "./entry.ts";
import type { SnapshotMeta } from "./log.ts";

/**
 * The highest term a peer may move a node to in one message. A cluster's
 * own terms never get near it (it takes 2^48 elections). Past it, a node
 * follows a term at most {@linkcode TERM_STEP_MAX} above its own, so that a
 * forger needs billions of messages to climb to the last safe integer,
 * while elections past the bound still count up one by one.
 */
export const TERM_MAX: number = 2 ** 48;

/** How far past {@linkcode TERM_MAX} one message may move a node's term. */
export const TERM_STEP_MAX: number = 2 ** 20;

/** The highest term the wire carries: what a node can still count up from. */
export const TERM_WIRE_MAX: number = Number.MAX_SAFE_INTEGER - 2 ** 21;

/**
 * The highest log index a message may name. Logs grow one entry at a time,
 * so no real one comes near it (2^52 entries at a million a second take 140
 * years); a node whose log a forged snapshot moved up to it can still count
 * up exactly for as long again. Past 2^53, `index + 1` is no longer exact
 * and a loop over indexes never ends.
 */
export const INDEX_MAX: number = 2 ** 52;

/** Fields every message has: who sent it, to whom, and in which term. */
export interface Envelope {
  /** Sender id. */
  readonly from: string;
  /** Recipient id. */
  readonly to: string;
  /**
   * Sender's term. 0 marks a term-less request (`readIndexResponse`,
   * `transferLeader`) that no term rule applies to. A `readIndex` carries
   * the term its sender follows the leader in, or 0, and no term rule
   * applies to it either.
   */
  readonly term: number;
}

/** RequestVote (§5.2), or a PreVote probe (thesis §9.6) when `preVote`. */
export interface VoteMessage extends Envelope {
  /** The message kind, which tells the members of {@linkcode Message} apart. */
  readonly type: "vote";
  /** A PreVote asks "would you vote for me at `term`?" without changing terms. */
  readonly preVote: boolean;
  /** Set when a leadership transfer asked for this election: bypasses the leader lease. */
  readonly transfer: boolean;
  /** Index of the candidate's last log entry, for the up-to-date check (§5.4.1). */
  readonly lastIndex: number;
  /** Term of the candidate's last log entry, for the up-to-date check (§5.4.1). */
  readonly lastTerm: number;
}

/** Answer to a {@linkcode VoteMessage}. */
export interface VoteResponseMessage extends Envelope {
  /** The message kind, which tells the members of {@linkcode Message} apart. */
  readonly type: "voteResponse";
  /** Copied from the request: whether this answers a PreVote probe. */
  readonly preVote: boolean;
  /**
   * Whether the vote (or the would-be vote) is given. A granted answer
   * carries the term asked about; a refusal carries the voter's own term.
   */
  readonly granted: boolean;
}

/** AppendEntries (§5.3): the log-matching check covers index, term and hash. */
export interface AppendMessage extends Envelope {
  /** The message kind, which tells the members of {@linkcode Message} apart. */
  readonly type: "append";
  /** Index of the entry just before `entries` (0 when they start the log). */
  readonly prevIndex: number;
  /** Term of the entry at `prevIndex`, which the follower must hold. */
  readonly prevTerm: number;
  /** Hash of the entry at `prevIndex`, which the follower must hold too. */
  readonly prevHash: string;
  /** Entries from `prevIndex + 1` on, consecutive; empty for a probe. */
  readonly entries: readonly Entry[];
  /** Leader's commit index. */
  readonly commit: number;
}

/** Answer to an {@linkcode AppendMessage}. */
export interface AppendResponseMessage extends Envelope {
  /** The message kind, which tells the members of {@linkcode Message} apart. */
  readonly type: "appendResponse";
  /** Whether the follower's log matched at `prevIndex` and took the entries. */
  readonly success: boolean;
  /**
   * On success, the index up to which the follower's log now matches the
   * leader's. On rejection, the `prevIndex` that was rejected.
   */
  readonly index: number;
  /**
   * On rejection, a hint for the leader's next probe: the follower's largest
   * index whose term is at most `prevTerm` (and that term), so the leader can
   * skip a whole conflicting term in one round trip (thesis §5.3 optimisation).
   */
  readonly hintIndex: number;
  /** The follower's term at `hintIndex`; 0 when it has none, or on success. */
  readonly hintTerm: number;
}

/**
 * Leader heartbeat. `commit` is capped at the follower's known match index so a
 * follower never commits entries it may not have. `context` confirms a
 * pending ReadIndex round.
 */
export interface HeartbeatMessage extends Envelope {
  /** The message kind, which tells the members of {@linkcode Message} apart. */
  readonly type: "heartbeat";
  /** The leader's commit index, capped at what the follower is known to hold. */
  readonly commit: number;
  /** The ReadIndex round whose acknowledgement this heartbeat asks for, or null. */
  readonly context: string | null;
  /**
   * The leader's alive list: for each member, ticks since the leader last
   * heard from it (0 for the leader itself).
   */
  readonly seen: Readonly<Record<string, number>>;
}

/** Answer to a {@linkcode HeartbeatMessage}. */
export interface HeartbeatResponseMessage extends Envelope {
  /** The message kind, which tells the members of {@linkcode Message} apart. */
  readonly type: "heartbeatResponse";
  /** The heartbeat's `context`, echoed: acknowledges that ReadIndex round. */
  readonly context: string | null;
  /** Index of the configuration the follower has in force, so a leader notices a stale one. */
  readonly configIndex: number;
}

/**
 * One chunk of InstallSnapshot (§7): the leader sends its latest snapshot to
 * a follower that needs entries it has compacted away, one chunk of at most
 * the message size at a time, so no message and no request body grows with
 * the state machine.
 */
export interface SnapshotMessage extends Envelope {
  /** The message kind, which tells the members of {@linkcode Message} apart. */
  readonly type: "snapshot";
  /** The snapshot's position and configuration. */
  readonly meta: SnapshotMeta;
  /** Byte offset of `data` in the whole snapshot. */
  readonly offset: number;
  /** Size of the whole snapshot in bytes. */
  readonly total: number;
  /** The chunk: bytes `[offset, offset + data.length)` of the snapshot. */
  readonly data: Uint8Array;
}

/**
 * Acknowledges snapshot chunks: the follower holds the first `received`
 * bytes of the snapshot at `index` from this leader. The last chunk is
 * answered with an {@linkcode AppendResponseMessage} instead, once the
 * snapshot is durable.
 */
export interface SnapshotResponseMessage extends Envelope {
  /** The message kind, which tells the members of {@linkcode Message} apart. */
  readonly type: "snapshotResponse";
  /** The snapshot's index. */
  readonly index: number;
  /** Bytes received so far, from offset 0: where the next chunk starts. */
  readonly received: number;
}

/** Tells a caught-up follower to start an election now (thesis §3.10). */
export interface TimeoutNowMessage extends Envelope {
  /** The message kind, which tells the members of {@linkcode Message} apart. */
  readonly type: "timeoutNow";
}

/** A follower asks the leader for a read index on behalf of a client. */
export interface ReadIndexMessage extends Envelope {
  /** The message kind, which tells the members of {@linkcode Message} apart. */
  readonly type: "readIndex";
  /** The caller's read id, as passed to `Raft.readIndex()`; echoed in the answer. */
  readonly context: string;
}

/** The leader's answer: reads for `context` may be served once `index` is applied. */
export interface ReadIndexResponseMessage extends Envelope {
  /** The message kind, which tells the members of {@linkcode Message} apart. */
  readonly type: "readIndexResponse";
  /** The `context` of the {@linkcode ReadIndexMessage} answered. */
  readonly context: string;
  /** The leader's commit index when the read arrived: the read point. */
  readonly index: number;
}

/** A follower forwards a leadership-transfer request to the leader. */
export interface TransferLeaderMessage extends Envelope {
  /** The message kind, which tells the members of {@linkcode Message} apart. */
  readonly type: "transferLeader";
  /** Id of the voter that should become leader. */
  readonly target: string;
}

/** Any Raft message. */
export type Message =
  | VoteMessage
  | VoteResponseMessage
  | AppendMessage
  | AppendResponseMessage
  | SnapshotMessage
  | SnapshotResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | TimeoutNowMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage
  | TransferLeaderMessage;

/** The `type` of any message. */
export type MessageType = Message["type"];

/** The messages no term rule applies to, as `Envelope.term` says: they may carry term 0. */
const TERMLESS: ReadonlySet<MessageType> = new Set([
  "readIndex",
  "readIndexResponse",
  "transferLeader",
]);

/**
 * The term the term rules (thesis §3.3) see in a message: its own, or 0 for
 * a term-less one, whatever it carries (a read request's term only vouches
 * for its sender).
 *
 * @param m The message.
 * @returns The term to compare with the recipient's.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { ruledTerm } from "./messages.ts";
 *
 * strictEqual(ruledTerm({ type: "readIndex", from: "a", to: "b", term: 4, context: "c" }), 0);
 * strictEqual(ruledTerm({ type: "timeoutNow", from: "a", to: "b", term: 4 }), 4);
 * ```
 */
export function ruledTerm(m: Message): number {
  return TERMLESS.has(m.type) ? 0 : m.term;
}

/**
 * Says what makes a message one that no correct peer sends, whatever the
 * recipient's state: term 0 on a message that carries a term (no term rule
 * would apply to it, so it would count as current), an index past
 * {@linkcode INDEX_MAX}, an append whose entries do not follow `prevIndex`
 * one by one (its last index is `prevIndex` plus their count) or hold a
 * configuration that does not decode, or a snapshot whose configuration is
 * malformed.
 * A node refuses such a message whole; the wire decoders need not know
 * these rules.
 *
 * @param m The message, of well-formed shape (numbers are non-negative
 *   safe integers).
 * @returns What is wrong, or null when nothing is.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { messageFault } from "./messages.ts";
 *
 * strictEqual(messageFault({ type: "timeoutNow", from: "n1", to: "n2", term: 3 }), null);
 * strictEqual(
 *   messageFault({ type: "timeoutNow", from: "n1", to: "n2", term: 0 }),
 *   "a timeoutNow of term 0",
 * );
 * ```
 */
export function messageFault(m: Message): string | null {
  if (m.term === 0 && !TERMLESS.has(m.type)) return `a ${m.type} of term 0`;
  const index = highestIndex(m);
  if (index > INDEX_MAX) return `a ${m.type} naming index ${index}, past ${INDEX_MAX}`;
  if (m.type === "append") {
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i]!;
      const want = m.prevIndex + 1 + i;
      if (e.index !== want) return `an append whose entry ${i} has index ${e.index}, not ${want}`;
      // Taken in, a configuration that does not decode would stop the node
      // the first time it looks for its voters.
      const fault = e.kind === "config" ? configDataFault(e.data) : null;
      if (fault !== null) return `an append whose configuration entry ${e.index} is ${fault}`;
    }
  }
  if (m.type === "snapshot") {
    const fault = configurationFault(m.meta.config);
    if (fault !== null) return `a snapshot whose configuration has ${fault}`;
  }
  return null;
}

/** The highest log index a message names (0 for one that names none). */
function highestIndex(m: Message): number {
  switch (m.type) {
    case "vote":
      return m.lastIndex;
    case "append":
      return Math.max(m.prevIndex, m.commit, m.entries.at(-1)?.index ?? 0);
    case "appendResponse":
      return Math.max(m.index, m.hintIndex);
    case "snapshot":
      return m.meta.index;
    case "snapshotResponse":
      return m.index;
    case "heartbeat":
      return m.commit;
    case "heartbeatResponse":
      return m.configIndex;
    case "readIndexResponse":
      return m.index;
    case "voteResponse":
    case "timeoutNow":
    case "readIndex":
    case "transferLeader":
      return 0;
  }
}
