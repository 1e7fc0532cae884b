/**
 * The Raft state machine: pure, synchronous and deterministic.
 *
 * Inputs are method calls (`step`, `tick`, `propose`, `readIndex`,
 * `transferLeader`, `campaign`); output is one {@linkcode Ready} batch at a
 * time, acknowledged with `advance()`. Time advances only through `tick()`;
 * randomness comes from the injected {@linkcode Prng}. The driver persists
 * `hardState` and `entries` before it sends `messages`, and applies
 * `committed` in order. While a leader's batch is being persisted,
 * `readyEarly()` hands out what it may send and apply meanwhile.
 *
 * This file holds the inputs and the output; the behaviour behind them lives
 * in one module per concern, plain functions over the node's
 * `RaftState` (`state.ts`): `election.ts`, `follower.ts`,
 * `replication.ts`, `leader.ts` and `transfer.ts`.
 *
 * @module
 */

import { assert } from "./assert.ts";
import { encodeConfig } from "./config.ts";
import { chainFault, createEntry, type Entry } from "./entry.ts";
import {
  becomeFollower,
  campaign,
  handleVote,
  leaseExpired,
  resetRandomizedElectionTimeout,
  stepCandidate,
  tickElection,
} from "./election.ts";
import { MembershipError, NotLeaderError } from "./errors.ts";
import { stepFollower } from "./follower.ts";
import {
  changeMembers,
  leaderReadIndex,
  propose,
  stepLeader,
  tickLeader,
  widenReadRound,
} from "./leader.ts";
import { EMPTY_SNAPSHOT, type LogView, RaftLog, readOnlyLog, type SnapshotMeta } from "./log.ts";
import { type Message, messageFault, ruledTerm, TERM_MAX, TERM_STEP_MAX } from "./messages.ts";
import { ProgressTracker } from "./progress.ts";
import { flushAppends, maybeCommit, owesAppends, seenTicks } from "./replication.ts";
import {
  appendOwn,
  createRaftState,
  currentVoters,
  hardState,
  isVoter,
  type RaftSettings,
  type RaftState,
  send,
  softState,
} from "./state.ts";
import { leaderTransfer } from "./transfer.ts";
import type {
  EarlyReady,
  FollowerView,
  HardState,
  MembershipChange,
  RaftOptions,
  RaftStatus,
  Ready,
  Role,
  SoftState,
} from "./types.ts";

/**
 * The most entries a leader keeps after a snapshot it is sending, beyond its
 * own `keepEntries` (see `Raft.compact()`): enough for a follower to catch up
 * by appends after a transfer under heavy writes, bounded so that a transfer
 * that never ends cannot hold the log in memory for good.
 */
export const SNAPSHOT_CATCH_UP_ENTRIES_MAX = 10_000;

/**
 * The Raft consensus state machine of one node. Drive it: feed it
 * {@linkcode Raft.step}, {@linkcode Raft.tick} and proposals, then take each
 * {@linkcode Ready} batch with `ready()`, persist it, send its messages, apply
 * its committed entries, and acknowledge it with `advance()`.
 *
 * @example A one-voter cluster commits a command
 * ```ts
 * import { deepStrictEqual, strictEqual } from "node:assert/strict";
 * import { type Entry, Raft, seededPrng } from "./mod.ts";
 *
 * const raft = new Raft({
 *   id: "n1",
 *   prng: seededPrng(1),
 *   bootstrap: { members: [{ id: "n1", voter: true }] },
 * });
 * const applied: Entry[] = [];
 * function drain(): void {
 *   while (raft.hasReady()) {
 *     const rd = raft.ready();
 *     // A driver persists rd.hardState and rd.entries, then sends rd.messages.
 *     applied.push(...rd.committed);
 *     raft.advance();
 *   }
 * }
 *
 * raft.campaign(); // alone in its cluster, it wins at once
 * drain();
 * strictEqual(raft.role, "leader");
 *
 * const entry = raft.propose(new TextEncoder().encode("set x=1"));
 * drain();
 * deepStrictEqual(
 *   applied.filter((e) => e.kind === "command").map((e) => e.hash),
 *   [entry.hash],
 * );
 * strictEqual(raft.status().head, entry.hash);
 * ```
 */
export class Raft {
  /** This node's id. */
  readonly id: string;
  /** Everything this node knows and does: the role modules change it. */
  readonly #r: RaftState;
  /** What others see of the log. */
  readonly #logView: LogView;

  /**
   * Creates a node from recovered state, or a fresh one.
   *
   * @param options Identity, timing, flow control and recovered state.
   * @throws {RangeError} On invalid timing or bounds.
   */
  constructor(options: RaftOptions) {
    this.id = options.id;
    const settings: RaftSettings = {
      id: options.id,
      prng: options.prng,
      electionTicks: options.electionTicks ?? 10,
      heartbeatTicks: options.heartbeatTicks ?? 1,
      preVote: options.preVote ?? true,
      checkQuorum: options.checkQuorum ?? true,
      maxMsgBytes: options.maxMsgBytes ?? 1 << 20,
      maxApplyBytes: options.maxApplyBytes ?? 4 << 20,
      maxUncommittedBytes: options.maxUncommittedBytes ?? 64 << 20,
      verifyHashes: options.verifyHashes ?? true,
      autoPromote: options.autoPromote ?? true,
      promoteLagEntries: options.promoteLagEntries ?? 16,
      seniority: options.seniority ?? true,
      acceptSnapshot: options.acceptSnapshot ?? null,
    };
    const { electionTicks, heartbeatTicks } = settings;
    if (!(heartbeatTicks >= 1 && Number.isInteger(heartbeatTicks))) {
      throw new RangeError(`heartbeatTicks must be a positive integer: ${heartbeatTicks}`);
    }
    if (!(electionTicks > heartbeatTicks && Number.isInteger(electionTicks))) {
      throw new RangeError(
        `electionTicks must be an integer above heartbeatTicks (${heartbeatTicks}): ${electionTicks}`,
      );
    }
    const maxInflight = options.maxInflight ?? 64;
    if (!(maxInflight >= 1)) {
      throw new RangeError(`maxInflight must be at least 1: ${maxInflight}`);
    }
    const progress = new ProgressTracker(this.id, maxInflight);

    const snapshot = options.snapshot ?? EMPTY_SNAPSHOT;
    const entries = options.entries ?? [];
    const fault = chainFault(snapshot.index, snapshot.hash, entries);
    assert(fault === null, `Recovered log is corrupt: ${fault}`);
    const hard = options.hardState ?? { term: 0, vote: null, commit: 0 };
    const log = new RaftLog(snapshot, entries, hard.commit);
    this.#logView = readOnlyLog(log);
    if (options.applied !== undefined) {
      log.appliedTo(Math.min(options.applied, log.committed));
    }
    const r = createRaftState(settings, {
      log,
      progress,
      snapshot: { meta: snapshot, data: options.snapshotData ?? new Uint8Array(0) },
      hardState: hard,
    });
    this.#r = r;

    if (options.bootstrap && log.lastIndex() === 0 && r.term === 0) {
      const first = createEntry(1, snapshot.hash, {
        term: 1,
        kind: "config",
        proposer: "",
        timeMs: 0,
        data: encodeConfig(options.bootstrap),
      });
      log.append([first]);
      log.commitTo(1);
      r.term = 1;
    }
    if (options.forceConfig) {
      // A fresh term makes the forced log more up to date than any other
      // node's, so no one can win an election under the old configuration
      // with an entry that conflicts with it.
      r.term = Math.max(r.term, log.lastTerm()) + 1;
      r.vote = null;
      appendOwn(r, "config", encodeConfig(options.forceConfig));
      log.commitTo(log.lastIndex());
    }
    resetRandomizedElectionTimeout(r);
    r.lastSoftState = softState(r);
  }

  // ---------------------------------------------------------------- queries

  /** Current term. */
  get term(): number {
    return this.#r.term;
  }

  /** Current role. */
  get role(): Role {
    return this.#r.role;
  }

  /** The leader this node follows (itself when leading), or null. */
  get leader(): string | null {
    return this.#r.leader;
  }

  /**
   * The replicated log, read-only: every change goes through this node's
   * methods, so that each one reaches the driver in a `ready()` batch.
   */
  get log(): LogView {
    return this.#logView;
  }

  /** The latest snapshot's position (index 0 before the first). */
  get snapshot(): SnapshotMeta {
    return this.#r.snapshot.meta;
  }

  /** A snapshot of this node's state. */
  status(): RaftStatus {
    const r = this.#r;
    const { index, config } = r.log.config();
    return {
      id: this.id,
      role: r.role,
      term: r.term,
      vote: r.vote,
      leader: r.leader,
      commitIndex: r.log.committed,
      appliedIndex: r.log.applied,
      lastIndex: r.log.lastIndex(),
      head: r.log.hash(r.log.committed)!,
      config,
      configIndex: index,
      voter: isVoter(r),
      refusedMessages: r.refused,
    };
  }

  /**
   * On a leader, what it knows of each follower's log; empty elsewhere.
   *
   * @returns Per follower: match and next index, flow-control state, and
   *   appends in flight.
   */
  followers(): Map<string, FollowerView> {
    return this.#r.progress.views();
  }

  /**
   * Returns where an entry stands on this node.
   *
   * @param hash The entry's id.
   * @returns "committed" or "accepted" (in the log, not committed) with its
   *   index and term, or null if this node's log does not hold it.
   */
  entryState(
    hash: string,
  ): { state: "accepted" | "committed"; index: number; term: number } | null {
    const index = this.#r.log.indexOfHash(hash);
    if (index === undefined) return null;
    return {
      state: index <= this.#r.log.committed ? "committed" : "accepted",
      index,
      term: this.#r.log.term(index)!,
    };
  }

  // ----------------------------------------------------------------- inputs

  /**
   * Advances logical time by one tick.
   *
   * @param timeMs The driver's current time in ms, stamped on entries this
   *   node creates; never used for ordering or timeouts.
   */
  tick(timeMs?: number): void {
    const r = this.#r;
    if (timeMs !== undefined) r.timeMs = Math.max(r.timeMs, timeMs);
    r.ticks++;
    if (r.role === "leader") tickLeader(r);
    else tickElection(r);
  }

  /**
   * Starts an election now (PreVote first when enabled), as if the election
   * timeout had passed. Does nothing on a leader or a non-voter.
   */
  campaign(): void {
    if (this.#r.role !== "leader") campaign(this.#r, "preVote");
  }

  /**
   * Appends a command to the leader's log. Proposals made between two
   * `ready()` calls go out to followers as one batch.
   *
   * @param data The command bytes.
   * @param timeMs The proposal time to stamp on the entry.
   * @returns The new entry (its hash is the transaction id).
   * @throws {NotLeaderError} When this node is not the leader.
   * @throws {ProposalDroppedError} During a leadership transfer, or when the
   *   uncommitted log would exceed its bound.
   */
  propose(data: Uint8Array, timeMs?: number): Entry {
    const r = this.#r;
    if (timeMs !== undefined) r.timeMs = Math.max(r.timeMs, timeMs);
    return propose(r, data);
  }

  /**
   * Asks for a linearizable read point (thesis §6.4). The answer arrives as a
   * {@linkcode ReadState} with the same `context` in a later `ready()`, once
   * the leader has confirmed it still leads. Requests lost with a leader
   * change produce no answer: the caller retries or times out.
   *
   * @param context A caller-chosen id, unique among pending reads.
   * @throws {NotLeaderError} When no leader is known.
   */
  readIndex(context: string): void {
    const r = this.#r;
    if (r.role === "leader") {
      leaderReadIndex(r, context, this.id);
      return;
    }
    if (r.leader === null) throw new NotLeaderError("read", null);
    // The term tells the leader this node follows it now, when the read
    // has begun: in a cluster of three that confirms the read at once.
    send(r, { type: "readIndex", to: r.leader, term: r.term, context });
  }

  /**
   * The context of the leader's read round out, when it went only to as
   * many voters as a quorum needs. The driver widens it with
   * {@linkcode Raft.widenReadRound} if it is not confirmed soon (a target
   * may be slow or paused); the next periodic heartbeat would carry it to
   * everyone anyway, a heartbeat interval later.
   *
   * @returns The round's context, or null when no narrow round is out.
   */
  narrowReadRound(): string | null {
    return this.#r.reads.narrowRound()?.context ?? null;
  }

  /** Sends the narrow read round out to the peers it did not go to; nothing when none is out. */
  widenReadRound(): void {
    if (this.#r.role === "leader") widenReadRound(this.#r);
  }

  /**
   * Moves leadership to `target` (thesis §3.10): the leader brings it up to
   * date, then tells it to campaign at once. Proposals are refused meanwhile;
   * the attempt is abandoned after one election timeout. On a follower, the
   * request is forwarded to the leader.
   *
   * @param target The voter to hand leadership to.
   * @throws {NotLeaderError} When no leader is known.
   * @throws {MembershipError} `not_member` when `target` is not a voter.
   */
  transferLeader(target: string): void {
    const r = this.#r;
    if (!currentVoters(r).includes(target)) {
      throw new MembershipError(
        "not_member",
        `Cannot transfer leadership to ${target}: it is not a voter`,
      );
    }
    if (r.role === "leader") {
      leaderTransfer(r, target);
      return;
    }
    if (r.leader === null) throw new NotLeaderError("transfer leadership", null);
    send(r, { type: "transferLeader", to: r.leader, term: 0, target });
  }

  /**
   * Proposes a single-server membership change (thesis §4.1): add a member
   * (always as a learner first), promote a learner to voter, or remove a
   * member (the leader included: it steps down once the removal commits).
   * The new configuration takes effect as soon as it is in the log.
   *
   * @param change The change.
   * @param timeMs The time to stamp on the entry.
   * @returns The configuration entry, or null when the change is already in force.
   * @throws {NotLeaderError} When this node is not the leader.
   * @throws {ProposalDroppedError} Before this leader committed an entry of its
   *   term, while another change is uncommitted, or during a transfer.
   * @throws {MembershipError} `already_member` when adding an existing id,
   *   `not_member` for an unknown id, `not_allowed` when removing the last
   *   voter or promoting a read-only member.
   */
  changeMembers(change: MembershipChange, timeMs?: number): Entry | null {
    const r = this.#r;
    if (timeMs !== undefined) r.timeMs = Math.max(r.timeMs, timeMs);
    return changeMembers(r, change);
  }

  /**
   * The alive list: for each member, ticks since this node (or, on a
   * follower, the leader) last heard from it. Members never heard from are
   * absent. The node itself is 0.
   */
  seenTicks(): Map<string, number> {
    return seenTicks(this.#r);
  }

  /**
   * Records a snapshot of the state machine at `index` (an applied index)
   * and compacts the log behind it: the snapshot now stands for every entry
   * up to `index`. The core keeps `data` to send to followers that need
   * compacted entries; the driver saves it durably.
   *
   * @param index The index the snapshot covers, at most the applied index.
   * @param data The snapshot's bytes.
   * @param options `keepEntries`: entries before `index` to keep in memory
   *   (default 0), so that a follower a little behind gets entries, not the
   *   whole snapshot; without them a follower that falls behind while
   *   snapshots are frequent can chase one snapshot after another. A leader
   *   also keeps, up to {@linkcode SNAPSHOT_CATCH_UP_ENTRIES_MAX} of them,
   *   the entries after a snapshot it is sending to a follower: once that
   *   follower has installed it, appends bring it up to date, where a
   *   compacted log would make it need the next snapshot, and the next.
   * @returns The snapshot's metadata, to store beside `data`.
   * @throws {AssertionError} For an index outside `(snapshot, applied]`.
   */
  compact(index: number, data: Uint8Array, options: { keepEntries?: number } = {}): SnapshotMeta {
    const r = this.#r;
    assert(
      index > r.snapshot.meta.index && index <= r.log.applied,
      `Cannot snapshot at ${index}: outside (${r.snapshot.meta.index}, ${r.log.applied}]`,
    );
    const meta = r.log.metaAt(index);
    r.snapshot = { meta, data };
    let to = index - Math.max(0, options.keepEntries ?? 0);
    if (r.role === "leader") {
      for (const [, pr] of r.progress) {
        const sending = pr.snapshot?.index;
        if (sending !== undefined) {
          to = Math.min(to, Math.max(sending, index - SNAPSHOT_CATCH_UP_ENTRIES_MAX));
        }
      }
    }
    if (to > r.log.snapshot.index) r.log.compact(to);
    return meta;
  }

  /**
   * Processes one message from a peer. Messages for another node, from an
   * unknown past, or of no use in this role are dropped, as Raft allows.
   *
   * @param m The message.
   */
  step(m: Message): void {
    const r = this.#r;
    if (m.to !== this.id) return;
    // No peer may push this node to a term it could not count up from, nor
    // hand it what no correct peer sends (a term-carrying message of term
    // 0, an index that could not be counted up from, entries that skip or
    // repeat an index): taken in, such a message could elect a second
    // leader or trip an assertion that stops the node.
    if (m.term > Math.max(TERM_MAX, r.term + TERM_STEP_MAX) || messageFault(m) !== null) {
      r.refused++;
      return;
    }
    // Terms first (thesis §3.3): a newer term makes this node a follower in
    // it, an older one marks the message stale; term-less requests skip them.
    const term = ruledTerm(m);
    if (term > r.term) {
      if (m.type === "vote") {
        // A node that heard from a leader within the minimum election timeout
        // ignores votes, so a partitioned node coming back cannot depose a
        // healthy leader (thesis §4.2.3). A transfer overrides the lease.
        const inLease = r.checkQuorum && r.leader !== null && !leaseExpired(r);
        if (inLease && !m.transfer) return;
      }
      if (m.type === "vote" && m.preVote) {
        // A PreVote never changes our term.
      } else if (m.type === "voteResponse" && m.preVote && m.granted) {
        // A granted PreVote carries the term we will campaign at, not a newer one.
      } else if (m.type === "append" || m.type === "heartbeat" || m.type === "snapshot") {
        becomeFollower(r, m.term, m.from);
      } else {
        becomeFollower(r, m.term, null);
      }
    } else if (term !== 0 && term < r.term) {
      if (m.type === "append" || m.type === "heartbeat" || m.type === "snapshot") {
        // A stale leader: answer with our term so it steps down. Without this a
        // node that raised its term behind a partition (or campaigning under a
        // stale configuration that the leader's log has replaced) could never
        // rejoin. Removed nodes get no appends, so this cannot make them
        // disruptive.
        send(r, {
          type: "appendResponse",
          to: m.from,
          term: r.term,
          success: false,
          index: 0,
          hintIndex: 0,
          hintTerm: 0,
        });
      } else if (m.type === "vote" && m.preVote) {
        send(r, {
          type: "voteResponse",
          to: m.from,
          term: r.term,
          preVote: true,
          granted: false,
        });
      }
      return;
    }

    if (m.type === "vote") {
      handleVote(r, m);
      return;
    }
    switch (r.role) {
      case "leader":
        stepLeader(r, m);
        break;
      case "candidate":
      case "preCandidate":
        stepCandidate(r, m);
        break;
      case "follower":
        stepFollower(r, m);
        break;
    }
  }

  // ----------------------------------------------------------------- output

  /** Whether `ready()` has anything to hand out. */
  hasReady(): boolean {
    const r = this.#r;
    // Asks without sending: appends are cut only in ready(), so polling here
    // between proposals does not split a batch.
    return r.messages.length > 0 || owesAppends(r) || r.incomingSnapshot !== null ||
      r.readStates.length > 0 ||
      r.log.stable < r.log.lastIndex() ||
      r.log.applied < r.log.committed ||
      !sameHardState(hardState(r), r.lastHardState) ||
      !sameSoftState(softState(r), r.lastSoftState);
  }

  /**
   * Hands out the next batch of work. Call `advance()` once it is done
   * (persisted, sent, applied) before the next `ready()`.
   *
   * @returns The batch.
   * @throws {AssertionError} If the previous batch was not advanced.
   */
  ready(): Ready {
    const r = this.#r;
    assert(r.inReady === null, "ready() called again before advance()");
    flushAppends(r);
    const hard = hardState(r);
    const soft = softState(r);
    const entries = r.log.unstableEntries();
    const committed = r.log.nextCommitted(r.maxApplyBytes);
    const rd: Ready = {
      hardState: sameHardState(hard, r.lastHardState) ? null : hard,
      entries,
      messages: r.messages,
      committed,
      readStates: r.readStates,
      softState: sameSoftState(soft, r.lastSoftState) ? null : soft,
      snapshot: r.incomingSnapshot,
    };
    r.incomingSnapshot = null;
    // Every earlier batch was advanced: its hard state is durable.
    const durable = { term: r.lastHardState.term, vote: r.lastHardState.vote };
    r.lastHardState = hard;
    r.lastSoftState = soft;
    r.messages = [];
    r.readStates = [];
    r.inReady = { entries, committedTo: committed.at(-1)?.index ?? r.log.applied, durable };
    return rd;
  }

  /**
   * While the last `ready()` batch is being persisted, hands out what a
   * leader may act on before that write ends, so that neither replication
   * nor answers wait for its own disk: the messages made since (appends of
   * entries not yet durable here included, thesis §10.2.1) and the entries
   * committed since. Those are durable on a quorum already; only those up to
   * the batch's last entry are handed out, so that once `advance()` comes
   * nothing applied is missing from this node's storage (a snapshot taken
   * then covers no entry it lacks). `advance()` acknowledges them with the
   * batch.
   *
   * @returns Null unless a batch is out and this node is a leader whose
   *   term and vote are durable already (a new term or vote must reach the
   *   disk before any message that depends on it).
   */
  readyEarly(): EarlyReady | null {
    const r = this.#r;
    const out = r.inReady;
    if (out === null || r.role !== "leader") return null;
    if (r.term !== out.durable.term || r.vote !== out.durable.vote) return null;
    flushAppends(r);
    const from = out.committedTo;
    const upTo = Math.min(r.log.committed, Math.max(r.log.stable, out.entries.at(-1)?.index ?? 0));
    const committed = from < upTo ? r.log.slice(from + 1, upTo + 1, r.maxApplyBytes) : [];
    if (committed.length > 0) out.committedTo = committed.at(-1)!.index;
    const messages = r.messages;
    r.messages = [];
    return { messages, committed };
  }

  /**
   * Acknowledges the last `ready()` batch: its entries are durable and its
   * committed entries applied. A leader counts its own log towards the
   * commit quorum only from here, so it never commits what it has not
   * persisted.
   */
  advance(): void {
    const r = this.#r;
    const done = r.inReady;
    assert(done !== null, "advance() called without a ready() batch");
    r.inReady = null;
    if (done.entries.length > 0) r.log.stableTo(done.entries);
    r.log.appliedTo(done.committedTo);
    if (r.role === "leader") maybeCommit(r);
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leader === b.leader && a.term === b.term;
}
