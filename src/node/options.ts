/**
 * What a node is made of and what its public methods take and return: the
 * options of `createNode`, checked once into {@linkcode NodeSettings}, and
 * the shapes of writes, reads and status reports.
 *
 * @module
 */

import type { Member } from "../core/config.ts";
import { isNodeId, NODE_ID_RULE } from "../core/config.ts";
import type { Role } from "../core/types.ts";
import type { LeaderHint } from "../errors.ts";
import type { StateMachine } from "../state_machine.ts";
import type { Storage } from "../storage/storage.ts";
import type { PeerSecurity, Transport } from "../transport/transport.ts";
import type { Clock } from "../clock.ts";

/**
 * Options of {@linkcode createNode}.
 *
 * @typeParam Command The state machine's commands: what `propose` takes.
 * @typeParam Result What applying one returns: what `propose` gives back.
 * @typeParam Query What `read` takes.
 * @typeParam Answer What `read` gives back.
 */
export interface NodeOptions<
  Command = unknown,
  Result = unknown,
  Query = unknown,
  Answer = unknown,
> {
  /** This node's id: `[A-Za-z0-9._-]{1,64}`. */
  readonly id: string;
  /** The application's state machine: the node takes its types. */
  readonly stateMachine: StateMachine<Command, Result, Query, Answer>;
  /** How this node reaches its peers. */
  readonly transport: Transport;
  /**
   * The cluster secret: every peer request and membership change proves it
   * (without it, nothing reaches the node from the network). Given here
   * once; the transport and `createApp` take it from the node. A node on a
   * networked transport (HTTP) needs it, or `insecure: true`.
   */
  readonly secret?: string;
  /**
   * Run an open cluster: peers prove nothing, so anyone who reaches the
   * node's port can act as a member. For experiments on a trusted network;
   * not together with `secret`.
   */
  readonly insecure?: boolean;
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
   * Recompute the hash of every entry received from a leader and refuse
   * entries whose bytes do not match it. Default true; turn it off only
   * where every message is known intact (a checksummed, authenticated link).
   */
  readonly verifyHashes?: boolean;
  /**
   * Take a snapshot and compact the log after this many entries applied
   * since the last one. Default 10000.
   */
  readonly snapshotEvery?: number;
  /**
   * Entries before a snapshot the leader keeps in memory, so that a follower
   * a little behind catches up from the log instead of receiving the whole
   * snapshot. Default 1000. A leader sending a snapshot also keeps the
   * entries after it, at most 10,000, until the transfer ends. (Storage
   * keeps only what follows the snapshot.)
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

/**
 * The outcome of a write.
 *
 * @typeParam Result What the state machine returns for the command.
 */
export interface ProposeResult<Result = unknown> {
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
  readonly result?: Result;
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

/** {@linkcode NodeOptions} checked, with their defaults filled in. */
export interface NodeSettings {
  /** Leader heartbeat interval, and the tick, ms. */
  readonly heartbeatMs: number;
  /** Base election timeout, ms. */
  readonly electionMs: number;
  /** Default time a write or read may take, ms. */
  readonly requestTimeoutMs: number;
  /** Bound on clients waiting for writes and reads together. */
  readonly maxWaiting: number;
  /** Entries applied between two snapshots. */
  readonly snapshotEvery: number;
  /** Entries kept in memory behind a snapshot. */
  readonly snapshotKeepEntries: number;
  /** How peers prove they belong; null when neither a secret nor `insecure` was given. */
  readonly security: PeerSecurity | null;
}

/**
 * Checks the options of a node and fills in the defaults.
 *
 * @param options What the node is made of.
 * @returns The settings the node runs with.
 * @throws {TypeError} On an invalid id or an option out of range; when
 *   both `secret` and `insecure` are given, or neither for a networked
 *   transport.
 *
 * @example
 * ```ts
 * import { strictEqual, throws } from "node:assert/strict";
 * import { MemoryNetwork } from "../testing.ts";
 * import { kvStateMachine } from "../kv/mod.ts";
 * import { nodeSettings } from "./options.ts";
 *
 * const base = { id: "n1", stateMachine: kvStateMachine(), transport: new MemoryNetwork().transport() };
 * strictEqual(nodeSettings(base).electionMs, 500);
 * throws(() => nodeSettings({ ...base, heartbeatMs: 300 }), TypeError);
 * ```
 */
export function nodeSettings(options: NodeOptions): NodeSettings {
  if (!isNodeId(options.id)) {
    throw new TypeError(`Node id must match ${NODE_ID_RULE}: ${JSON.stringify(options.id)}`);
  }
  const heartbeatMs = positive("heartbeatMs", options.heartbeatMs ?? 50);
  const electionMs = positive("electionMs", options.electionMs ?? 500);
  if (electionMs < 2 * heartbeatMs) {
    throw new TypeError(
      `electionMs (${electionMs}) must be at least twice heartbeatMs (${heartbeatMs})`,
    );
  }
  const snapshotKeepEntries = options.snapshotKeepEntries ?? 1000;
  if (!(Number.isInteger(snapshotKeepEntries) && snapshotKeepEntries >= 0)) {
    throw new TypeError(
      `snapshotKeepEntries must be a non-negative integer: ${snapshotKeepEntries}`,
    );
  }
  return {
    heartbeatMs,
    electionMs,
    security: security(options),
    requestTimeoutMs: positive("requestTimeoutMs", options.requestTimeoutMs ?? 5000),
    maxWaiting: positive("maxWaiting", options.maxWaiting ?? 10_000),
    snapshotEvery: positive("snapshotEvery", options.snapshotEvery ?? 10_000),
    snapshotKeepEntries,
  };
}

/**
 * The role `/v1/status` reports: any non-voter is a learner, and a PreVote
 * round counts as a candidacy.
 *
 * @param role The core's role.
 * @param voter Whether this node votes.
 * @returns The reported role.
 */
export function roleName(role: Role, voter: boolean): NodeStatus["role"] {
  if (!voter) return "learner";
  return role === "leader" ? "leader" : role === "follower" ? "follower" : "candidate";
}

function security(options: NodeOptions): PeerSecurity | null {
  const { secret, insecure } = options;
  if (insecure !== undefined && typeof insecure !== "boolean") {
    throw new TypeError(`insecure must be a boolean: ${insecure}`);
  }
  if (secret !== undefined) {
    if (typeof secret !== "string" || secret.length === 0) {
      throw new TypeError("The cluster secret must be a non-empty string");
    }
    if (insecure === true) {
      throw new TypeError("Give a node either the cluster secret or insecure: true, not both");
    }
    return { secret };
  }
  if (insecure === true) return { insecure: true };
  if (options.transport.networked === true) {
    throw new TypeError(
      "A node on a networked transport needs the cluster secret (secret) or an explicit " +
        "insecure: true (an open cluster: anyone who reaches its port can act as a member)",
    );
  }
  return null;
}

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) {
    throw new TypeError(`${name} must be a positive number: ${value}`);
  }
  return value;
}
