/**
 * The Raft state machine: pure, synchronous and deterministic.
 *
 * Inputs are method calls (`step`, `tick`, `propose`, `readIndex`,
 * `transferLeader`, `campaign`); output is one {@linkcode Ready} batch at a
 * time, acknowledged with `advance()`. Time advances only through `tick()`;
 * randomness comes from the injected {@linkcode Prng}. The driver persists
 * `hardState` and `entries` before it sends `messages`, and applies
 * `committed` in order.
 *
 * @module
 */

import { assert } from "./assert.ts";
import { encodeConfig, voterIds } from "./config.ts";
import { chainFault, createEntry, type Entry } from "./entry.ts";
import { MembershipError, NotLeaderError, ProposalDroppedError } from "./errors.ts";
import { EMPTY_SNAPSHOT, type LogView, RaftLog, readOnlyLog, type SnapshotMeta } from "./log.ts";
import { applyMembershipChange, handoverTarget, promotionCandidate } from "./membership.ts";
import type {
  AppendMessage,
  AppendResponseMessage,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  Message,
  SnapshotMessage,
  VoteMessage,
  VoteResponseMessage,
} from "./messages.ts";
import { type Progress, ProgressTracker } from "./progress.ts";
import { randomInt } from "./prng.ts";
import { tallyVotes } from "./quorum.ts";
import type { ReadRequest } from "./read_only.ts";
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
import type {
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
    this.#resetRandomizedElectionTimeout();
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
    const { index, config } = this.#r.log.config();
    return {
      id: this.id,
      role: this.#r.role,
      term: this.#r.term,
      vote: this.#r.vote,
      leader: this.#r.leader,
      commitIndex: this.#r.log.committed,
      appliedIndex: this.#r.log.applied,
      lastIndex: this.#r.log.lastIndex(),
      head: this.#r.log.hash(this.#r.log.committed)!,
      config,
      configIndex: index,
      voter: isVoter(this.#r),
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
    if (timeMs !== undefined) this.#r.timeMs = Math.max(this.#r.timeMs, timeMs);
    this.#r.ticks++;
    if (this.#r.role === "leader") this.#tickLeader();
    else this.#tickElection();
  }

  /**
   * Starts an election now (PreVote first when enabled), as if the election
   * timeout had passed. Does nothing on a leader or a non-voter.
   */
  campaign(): void {
    if (this.#r.role !== "leader") this.#campaign("preVote");
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
    if (timeMs !== undefined) this.#r.timeMs = Math.max(this.#r.timeMs, timeMs);
    if (this.#r.role !== "leader") throw new NotLeaderError("propose", this.#r.leader);
    if (this.#r.transferee !== null) {
      throw new ProposalDroppedError(
        `Cannot propose while leadership moves to ${this.#r.transferee}`,
      );
    }
    const bytes = data.length;
    if (
      this.#r.uncommittedBytes > 0 && this.#r.uncommittedBytes + bytes > this.#r.maxUncommittedBytes
    ) {
      throw new ProposalDroppedError(
        `Cannot propose as the uncommitted log is full (${this.#r.uncommittedBytes} bytes)`,
      );
    }
    this.#r.uncommittedBytes += bytes;
    return appendOwn(this.#r, "command", data);
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
    if (this.#r.role === "leader") {
      this.#leaderReadIndex(context, this.id);
      return;
    }
    if (this.#r.leader === null) throw new NotLeaderError("read", null);
    send(this.#r, { type: "readIndex", to: this.#r.leader, term: 0, context });
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
    if (!currentVoters(this.#r).includes(target)) {
      throw new MembershipError(
        "not_member",
        `Cannot transfer leadership to ${target}: it is not a voter`,
      );
    }
    if (this.#r.role === "leader") {
      this.#leaderTransfer(target);
      return;
    }
    if (this.#r.leader === null) throw new NotLeaderError("transfer leadership", null);
    send(this.#r, { type: "transferLeader", to: this.#r.leader, term: 0, target });
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
    if (timeMs !== undefined) this.#r.timeMs = Math.max(this.#r.timeMs, timeMs);
    if (this.#r.role !== "leader") throw new NotLeaderError("change membership", this.#r.leader);
    if (this.#r.transferee !== null) {
      throw new ProposalDroppedError(
        `Cannot change membership while leadership moves to ${this.#r.transferee}`,
      );
    }
    // A new leader must commit an entry of its own term first, or a change
    // it makes could be lost beside one an earlier leader made (the known
    // pitfall of single-server changes, fixed in Ongaro's thesis errata).
    if (this.#r.log.term(this.#r.log.committed) !== this.#r.term) {
      throw new ProposalDroppedError(
        "Cannot change membership before the leader commits an entry of its term",
      );
    }
    if (this.#r.log.config().index > this.#r.log.committed) {
      throw new ProposalDroppedError(
        "Cannot change membership while another change is in progress",
      );
    }
    const next = applyMembershipChange(this.#r.log.config().config, change);
    if (next === null) return null;
    const entry = appendOwn(this.#r, "config", encodeConfig(next));
    this.#syncProgress();
    return entry;
  }

  /**
   * The alive list: for each member, ticks since this node (or, on a
   * follower, the leader) last heard from it. Members never heard from are
   * absent. The node itself is 0.
   */
  seenTicks(): Map<string, number> {
    const out = new Map<string, number>([[this.id, 0]]);
    if (this.#r.role === "leader") {
      return new Map([...out, ...this.#r.progress.seenTicks(this.#r.ticks)]);
    }
    const since = this.#r.ticks - this.#r.seen.tick;
    for (const [id, ago] of Object.entries(this.#r.seen.ticksAgo)) {
      if (id !== this.id) out.set(id, ago + since);
    }
    if (this.#r.leader !== null && this.#r.leader !== this.id && this.#r.leaderHeardTick >= 0) {
      out.set(this.#r.leader, this.#r.ticks - this.#r.leaderHeardTick);
    }
    return out;
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
   *   snapshots are frequent can chase one snapshot after another.
   * @returns The snapshot's metadata, to store beside `data`.
   * @throws {AssertionError} For an index outside `(snapshot, applied]`.
   */
  compact(index: number, data: Uint8Array, options: { keepEntries?: number } = {}): SnapshotMeta {
    assert(
      index > this.#r.snapshot.meta.index && index <= this.#r.log.applied,
      `Cannot snapshot at ${index}: outside (${this.#r.snapshot.meta.index}, ${this.#r.log.applied}]`,
    );
    const meta = this.#r.log.metaAt(index);
    this.#r.snapshot = { meta, data };
    const to = index - Math.max(0, options.keepEntries ?? 0);
    if (to > this.#r.log.snapshot.index) this.#r.log.compact(to);
    return meta;
  }

  /**
   * Processes one message from a peer. Messages for another node, from an
   * unknown past, or of no use in this role are dropped, as Raft allows.
   *
   * @param m The message.
   */
  step(m: Message): void {
    if (m.to !== this.id) return;
    if (m.term > this.#r.term) {
      if (m.type === "vote") {
        // A node that heard from a leader within the minimum election timeout
        // ignores votes, so a partitioned node coming back cannot depose a
        // healthy leader (thesis §4.2.3). A transfer overrides the lease.
        const inLease = this.#r.checkQuorum && this.#r.leader !== null &&
          this.#r.electionElapsed < this.#r.electionTicks;
        if (inLease && !m.transfer) return;
      }
      if (m.type === "vote" && m.preVote) {
        // A PreVote never changes our term.
      } else if (m.type === "voteResponse" && m.preVote && m.granted) {
        // A granted PreVote carries the term we will campaign at, not a newer one.
      } else if (m.type === "append" || m.type === "heartbeat" || m.type === "snapshot") {
        this.#becomeFollower(m.term, m.from);
      } else {
        this.#becomeFollower(m.term, null);
      }
    } else if (m.term !== 0 && m.term < this.#r.term) {
      if (m.type === "append" || m.type === "heartbeat" || m.type === "snapshot") {
        // A stale leader: answer with our term so it steps down. Without this a
        // node that raised its term behind a partition (or campaigning under a
        // stale configuration that the leader's log has replaced) could never
        // rejoin. Removed nodes get no appends, so this cannot make them
        // disruptive.
        send(this.#r, {
          type: "appendResponse",
          to: m.from,
          term: this.#r.term,
          success: false,
          index: 0,
          hintIndex: 0,
          hintTerm: 0,
        });
      } else if (m.type === "vote" && m.preVote) {
        send(this.#r, {
          type: "voteResponse",
          to: m.from,
          term: this.#r.term,
          preVote: true,
          granted: false,
        });
      }
      return;
    }

    if (m.type === "vote") {
      this.#handleVote(m);
      return;
    }
    switch (this.#r.role) {
      case "leader":
        this.#stepLeader(m);
        break;
      case "candidate":
      case "preCandidate":
        this.#stepCandidate(m);
        break;
      case "follower":
        this.#stepFollower(m);
        break;
    }
  }

  // ----------------------------------------------------------------- output

  /** Whether `ready()` has anything to hand out. */
  hasReady(): boolean {
    // Asks without sending: appends are cut only in ready(), so polling here
    // between proposals does not split a batch.
    return this.#r.messages.length > 0 || this.#owesAppends() ||
      this.#r.incomingSnapshot !== null ||
      this.#r.readStates.length > 0 ||
      this.#r.log.stable < this.#r.log.lastIndex() ||
      this.#r.log.applied < this.#r.log.committed ||
      !sameHardState(hardState(this.#r), this.#r.lastHardState) ||
      !sameSoftState(softState(this.#r), this.#r.lastSoftState);
  }

  /**
   * Hands out the next batch of work. Call `advance()` once it is done
   * (persisted, sent, applied) before the next `ready()`.
   *
   * @returns The batch.
   * @throws {AssertionError} If the previous batch was not advanced.
   */
  ready(): Ready {
    assert(this.#r.inReady === null, "ready() called again before advance()");
    this.#flushAppends();
    const hard = hardState(this.#r);
    const soft = softState(this.#r);
    const entries = this.#r.log.unstableEntries();
    const committed = this.#r.log.nextCommitted(this.#r.maxApplyBytes);
    const rd: Ready = {
      hardState: sameHardState(hard, this.#r.lastHardState) ? null : hard,
      entries,
      messages: this.#r.messages,
      committed,
      readStates: this.#r.readStates,
      softState: sameSoftState(soft, this.#r.lastSoftState) ? null : soft,
      snapshot: this.#r.incomingSnapshot,
    };
    this.#r.incomingSnapshot = null;
    this.#r.lastHardState = hard;
    this.#r.lastSoftState = soft;
    this.#r.messages = [];
    this.#r.readStates = [];
    this.#r.inReady = { entries, committedTo: committed.at(-1)?.index ?? 0 };
    return rd;
  }

  /**
   * Acknowledges the last `ready()` batch: its entries are durable and its
   * committed entries applied. A leader counts its own log towards the
   * commit quorum only from here, so it never commits what it has not
   * persisted.
   */
  advance(): void {
    const done = this.#r.inReady;
    assert(done !== null, "advance() called without a ready() batch");
    this.#r.inReady = null;
    if (done.entries.length > 0) this.#r.log.stableTo(done.entries);
    if (done.committedTo > 0) this.#r.log.appliedTo(done.committedTo);
    if (this.#r.role === "leader") this.#maybeCommit();
  }

  // ------------------------------------------------------------ transitions

  #reset(term: number): void {
    if (term !== this.#r.term) {
      this.#r.term = term;
      this.#r.vote = null;
      this.#r.receiver.reset();
    }
    this.#r.leader = null;
    this.#r.electionElapsed = 0;
    this.#r.heartbeatElapsed = 0;
    this.#resetRandomizedElectionTimeout();
    this.#r.transferee = null;
    this.#r.votes.clear();
    this.#r.progress.clear();
    this.#r.wantsAppend.clear();
    this.#r.reads.reset();
    this.#r.uncommittedBytes = 0;
  }

  #becomeFollower(term: number, leader: string | null): void {
    this.#reset(term);
    this.#r.role = "follower";
    this.#r.leader = leader;
  }

  #becomePreCandidate(): void {
    assert(this.#r.role !== "leader", "A leader cannot become a pre-candidate");
    // Neither the term nor the vote changes until PreVote succeeds.
    this.#r.votes.clear();
    this.#r.leader = null;
    this.#r.role = "preCandidate";
    this.#resetRandomizedElectionTimeout();
  }

  #becomeCandidate(): void {
    assert(this.#r.role !== "leader", "A leader cannot become a candidate");
    this.#reset(this.#r.term + 1);
    this.#r.vote = this.id;
    this.#r.role = "candidate";
  }

  #becomeLeader(): void {
    assert(this.#r.role === "candidate", "Only a candidate can become leader");
    this.#reset(this.#r.term);
    this.#r.role = "leader";
    this.#r.leader = this.id;
    this.#syncProgress();
    // Commit an entry of the new term at once: earlier terms' entries commit
    // only through it (§5.4.2), and ReadIndex waits for it (§6.4).
    appendOwn(this.#r, "noop", new Uint8Array(0));
  }

  /**
   * Starts a campaign: a PreVote round first (when enabled), a real election
   * once that succeeds, or straight away for a leadership transfer, whose
   * vote requests alone may override leader leases.
   */
  #campaign(kind: "preVote" | "election" | "transfer"): void {
    if (!this.#isPromotable()) return;
    const pre = kind === "preVote" && this.#r.preVote;
    if (pre) this.#becomePreCandidate();
    else this.#becomeCandidate();
    const term = pre ? this.#r.term + 1 : this.#r.term;
    const transfer = kind === "transfer";
    this.#r.votes.set(this.id, true);
    if (this.#tally() === "won") {
      if (pre) this.#campaign("election");
      else this.#becomeLeader();
      return;
    }
    for (const id of currentVoters(this.#r)) {
      if (id === this.id) continue;
      send(this.#r, {
        type: "vote",
        to: id,
        term,
        preVote: pre,
        transfer,
        lastIndex: this.#r.log.lastIndex(),
        lastTerm: this.#r.log.lastTerm(),
      });
    }
  }

  #tally(): "won" | "lost" | "pending" {
    return tallyVotes(currentVoters(this.#r), this.#r.votes);
  }

  // ------------------------------------------------------------------ ticks

  #tickElection(): void {
    this.#r.electionElapsed++;
    if (this.#isPromotable() && this.#r.electionElapsed >= this.#r.randomizedElectionTimeout) {
      this.#r.electionElapsed = 0;
      this.#campaign("preVote");
    }
  }

  #tickLeader(): void {
    this.#r.heartbeatElapsed++;
    this.#r.electionElapsed++;
    if (this.#r.electionElapsed >= this.#r.electionTicks) {
      this.#r.electionElapsed = 0;
      if (this.#r.checkQuorum && !this.#r.progress.quorumActive(currentVoters(this.#r))) {
        this.#becomeFollower(this.#r.term, null);
        return;
      }
      this.#r.transferee = null;
    }
    if (this.#r.heartbeatElapsed >= this.#r.heartbeatTicks) {
      this.#r.heartbeatElapsed = 0;
      this.#broadcastHeartbeat(this.#r.reads.lastContext());
    }
    if (this.#r.autoPromote) this.#maybePromote();
    // A chunk unanswered for an election timeout is taken as lost and sent again.
    for (const [, pr] of this.#r.progress) {
      pr.snapshot?.maybeExpire(this.#r.ticks, this.#r.electionTicks);
    }
  }

  #resetRandomizedElectionTimeout(): void {
    const e = this.#r.electionTicks;
    // Seniority needs PreVote: without it a senior node with a stale log would
    // time out first again and again, raising everyone's term and resetting
    // their timers, and no one else could ever win.
    const voters = this.#r.seniority && this.#r.preVote ? currentVoters(this.#r) : [];
    const rank = voters.indexOf(this.id);
    if (rank >= 0 && voters.length > 1) {
      // Each rank draws from its own slice of [e, 2e): seniors time out first.
      const width = Math.max(1, Math.floor(e / voters.length));
      this.#r.randomizedElectionTimeout = e + Math.min(rank * width, e - width) +
        randomInt(this.#r.prng, width);
    } else {
      this.#r.randomizedElectionTimeout = e + randomInt(this.#r.prng, e);
    }
  }

  // --------------------------------------------------------------- handlers

  #handleVote(m: VoteMessage): void {
    const canVote = this.#r.vote === m.from ||
      (this.#r.vote === null && this.#r.leader === null) ||
      (m.preVote && m.term > this.#r.term);
    if (canVote && this.#r.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      // A granted answer carries the term asked about, so a pre-candidate can
      // tell it from answers to an older round.
      send(this.#r, {
        type: "voteResponse",
        to: m.from,
        term: m.term,
        preVote: m.preVote,
        granted: true,
      });
      if (!m.preVote) {
        this.#r.electionElapsed = 0;
        this.#r.vote = m.from;
      }
    } else {
      send(this.#r, {
        type: "voteResponse",
        to: m.from,
        term: this.#r.term,
        preVote: m.preVote,
        granted: false,
      });
    }
  }

  /** A message from the current leader: it is alive, so no election yet. */
  #heardFromLeader(from: string): void {
    this.#r.electionElapsed = 0;
    this.#r.leader = from;
    this.#r.leaderHeardTick = this.#r.ticks;
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case "append":
        this.#heardFromLeader(m.from);
        this.#handleAppend(m);
        break;
      case "snapshot":
        this.#heardFromLeader(m.from);
        this.#handleSnapshot(m);
        break;
      case "heartbeat":
        this.#heardFromLeader(m.from);
        this.#handleHeartbeat(m);
        break;
      case "timeoutNow":
        this.#campaign("transfer");
        break;
      case "readIndexResponse":
        this.#r.readStates.push({ index: m.index, context: m.context });
        break;
      default:
        break;
    }
  }

  #stepCandidate(m: Message): void {
    switch (m.type) {
      case "append":
        this.#becomeFollower(m.term, m.from);
        this.#handleAppend(m);
        break;
      case "snapshot":
        this.#becomeFollower(m.term, m.from);
        this.#handleSnapshot(m);
        break;
      case "heartbeat":
        this.#becomeFollower(m.term, m.from);
        this.#handleHeartbeat(m);
        break;
      case "voteResponse":
        this.#handleVoteResponse(m);
        break;
      default:
        break;
    }
  }

  #handleVoteResponse(m: VoteResponseMessage): void {
    // Answers to the other kind of round are stale.
    if (m.preVote !== (this.#r.role === "preCandidate")) return;
    if (!this.#r.votes.has(m.from)) this.#r.votes.set(m.from, m.granted);
    const result = this.#tally();
    if (result === "won") {
      if (this.#r.role === "preCandidate") this.#campaign("election");
      else this.#becomeLeader();
    } else if (result === "lost") {
      this.#becomeFollower(this.#r.term, null);
    }
  }

  #stepLeader(m: Message): void {
    switch (m.type) {
      case "appendResponse":
        this.#handleAppendResponse(m);
        break;
      case "heartbeatResponse":
        this.#handleHeartbeatResponse(m);
        break;
      case "snapshotResponse":
        this.#r.progress.heard(m.from, this.#r.ticks)?.snapshot?.maybeAck(m.index, m.received);
        break;
      case "readIndex":
        this.#leaderReadIndex(m.context, m.from);
        break;
      case "transferLeader":
        if (currentVoters(this.#r).includes(m.target)) this.#leaderTransfer(m.target);
        break;
      default:
        break;
    }
  }

  #handleAppend(m: AppendMessage): void {
    const reply = (success: boolean, index: number, hintIndex = 0, hintTerm = 0): void => {
      send(this.#r, {
        type: "appendResponse",
        to: m.from,
        term: this.#r.term,
        success,
        index,
        hintIndex,
        hintTerm,
      });
    };
    if (m.prevIndex < this.#r.log.committed) {
      // Everything up to our commit index matches any current leader's log.
      reply(true, this.#r.log.committed);
      return;
    }
    if (!this.#r.log.matches(m.prevIndex, m.prevTerm, m.prevHash)) {
      // A hash mismatch under an equal term gives hint == prevIndex, which
      // still moves the leader's next probe one entry back.
      const hint = this.#r.log.findConflictByTerm(
        Math.min(m.prevIndex, this.#r.log.lastIndex()),
        m.prevTerm,
      );
      reply(false, m.prevIndex, hint.index, hint.term);
      return;
    }
    const last = m.prevIndex + m.entries.length;
    const conflict = this.#r.log.findConflict(m.entries);
    if (conflict !== 0) {
      const fresh = m.entries.slice(conflict - m.prevIndex - 1);
      if (this.#r.verifyHashes) {
        const fault = chainFault(conflict - 1, this.#r.log.hash(conflict - 1)!, fresh);
        // Entries that do not hash right are refused like a mismatch; the
        // leader will resend them.
        if (fault !== null) {
          reply(false, m.prevIndex, m.prevIndex, m.prevTerm);
          return;
        }
      }
      this.#r.log.append(fresh);
    }
    this.#r.log.commitTo(Math.min(m.commit, last));
    reply(true, last);
  }

  #handleSnapshot(m: SnapshotMessage): void {
    const meta = m.meta;
    const done = (index: number): void => {
      this.#r.receiver.reset();
      send(this.#r, {
        type: "appendResponse",
        to: m.from,
        term: this.#r.term,
        success: true,
        index,
        hintIndex: 0,
        hintTerm: 0,
      });
    };
    if (meta.index <= this.#r.log.committed) {
      done(this.#r.log.committed);
      return;
    }
    if (this.#r.log.matches(meta.index, meta.term, meta.hash)) {
      // We hold the snapshot's last entry, so our log already holds what it
      // stands for: only the commit index moves.
      this.#r.log.commitTo(meta.index);
      done(meta.index);
      return;
    }
    const chunk = this.#r.receiver.receive(m);
    if (!chunk.done) {
      send(this.#r, {
        type: "snapshotResponse",
        to: m.from,
        term: this.#r.term,
        index: meta.index,
        received: chunk.received,
      });
      return;
    }
    const data = chunk.data;
    this.#r.log.restore(meta);
    this.#r.incomingSnapshot = { meta, data };
    this.#r.snapshot = { meta, data };
    // The driver makes the snapshot durable before it sends this answer.
    done(meta.index);
  }

  #handleHeartbeat(m: HeartbeatMessage): void {
    this.#r.log.commitTo(m.commit);
    this.#r.seen = { tick: this.#r.ticks, ticksAgo: m.seen };
    send(this.#r, {
      type: "heartbeatResponse",
      to: m.from,
      term: this.#r.term,
      context: m.context,
      configIndex: this.#r.log.config().index,
    });
  }

  #handleAppendResponse(m: AppendResponseMessage): void {
    const pr = this.#r.progress.heard(m.from, this.#r.ticks);
    if (pr === undefined) return;
    if (!m.success) {
      const hint = m.hintTerm > 0
        ? this.#r.log.findConflictByTerm(m.hintIndex, m.hintTerm).index
        : m.hintIndex;
      if (pr.maybeDecrease(m.index, hint) && pr.state === "replicate") pr.becomeProbe();
      return;
    }
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === "probe" || (pr.snapshot !== null && pr.match >= pr.snapshot.index)) {
      pr.becomeReplicate();
    } else if (pr.state === "replicate") pr.freeUpTo(m.index);
    this.#maybeCommit();
    if (m.from === this.#r.transferee && pr.match === this.#r.log.lastIndex()) {
      send(this.#r, { type: "timeoutNow", to: m.from, term: this.#r.term });
    }
  }

  #handleHeartbeatResponse(m: HeartbeatResponseMessage): void {
    const pr = this.#r.progress.heard(m.from, this.#r.ticks);
    if (pr === undefined) return;
    pr.probeSent = false;
    // A full window may be all lost appends: free one slot so the follower
    // cannot stall for ever.
    if (pr.state === "replicate" && pr.isPaused()) pr.inflight.shift();
    // Behind, or missing the configuration in force: send what it lacks.
    if (pr.match < this.#r.log.lastIndex() || m.configIndex < this.#r.log.config().index) {
      this.#r.wantsAppend.add(m.from);
    }
    if (m.context !== null) {
      const voters = currentVoters(this.#r);
      for (const r of this.#r.reads.recvAck(m.context, m.from, voters)) this.#releaseRead(r);
    }
  }

  // ----------------------------------------------------------- replication

  /** Tracks the progress of exactly the members in force. */
  #syncProgress(): void {
    this.#r.progress.sync(this.#r.log.config().config.members, this.#r.log.lastIndex() + 1);
  }

  /** Whether `#flushAppends()` would send anything. */
  #owesAppends(): boolean {
    if (this.#r.role !== "leader") return false;
    for (const [id, pr] of this.#r.progress) {
      if (pr.isPaused()) continue;
      if (
        pr.next <= this.#r.log.lastIndex() || this.#r.wantsAppend.has(id) ||
        pr.sentCommit < this.#r.log.committed || pr.state === "snapshot" ||
        pr.next <= this.#r.log.snapshot.index
      ) {
        return true;
      }
    }
    return false;
  }

  /**
   * Sends every follower what it is owed: new entries while the window
   * allows, or an empty append when only the commit index moved. Called from
   * `ready()`, so proposals since the last batch travel together.
   */
  #flushAppends(): void {
    if (this.#r.role !== "leader") return;
    for (const [id, pr] of this.#r.progress) {
      const forced = this.#r.wantsAppend.delete(id);
      let first = true;
      while (!pr.isPaused()) {
        if (pr.state === "snapshot" || pr.next <= this.#r.log.snapshot.index) {
          // The entries it needs are compacted away: send the snapshot.
          this.#sendSnapshotChunk(id, pr);
          break;
        }
        const last = this.#r.log.lastIndex();
        const entries = pr.next <= last
          ? this.#r.log.slice(pr.next, last + 1, this.#r.maxMsgBytes)
          : [];
        if (entries.length === 0 && !(first && (forced || pr.sentCommit < this.#r.log.committed))) {
          break;
        }
        first = false;
        const prevIndex = pr.next - 1;
        send(this.#r, {
          type: "append",
          to: id,
          term: this.#r.term,
          prevIndex,
          prevTerm: this.#r.log.term(prevIndex)!,
          prevHash: this.#r.log.hash(prevIndex)!,
          entries,
          commit: this.#r.log.committed,
        });
        pr.sentCommit = this.#r.log.committed;
        const sentTo = entries.at(-1)?.index;
        if (sentTo !== undefined) pr.sentEntries(sentTo);
        else if (pr.state === "probe") pr.probeSent = true;
        if (sentTo === undefined || pr.state === "probe") break;
      }
    }
  }

  /** Sends `id` the next chunk of the latest snapshot (from the start if the snapshot is new). */
  #sendSnapshotChunk(id: string, pr: Progress): void {
    const { meta, data } = this.#r.snapshot;
    const sender = pr.snapshot?.index === meta.index ? pr.snapshot : pr.becomeSnapshot(meta.index);
    const chunk = sender.nextChunk(data, this.#r.maxMsgBytes);
    send(this.#r, {
      type: "snapshot",
      to: id,
      term: this.#r.term,
      meta,
      offset: chunk.offset,
      total: data.length,
      data: chunk.data,
    });
    sender.sent(this.#r.ticks);
  }

  #broadcastHeartbeat(context: string | null): void {
    const seen: Record<string, number> = {};
    for (const [id, ticks] of this.seenTicks()) seen[id] = ticks;
    for (const [id, pr] of this.#r.progress) {
      const commit = Math.min(pr.match, this.#r.log.committed);
      send(this.#r, { type: "heartbeat", to: id, term: this.#r.term, commit, context, seen });
    }
  }

  /** Commits the highest index a majority stores, if it is of this term (§5.4.2). */
  #maybeCommit(): void {
    const voters = currentVoters(this.#r);
    if (voters.length === 0) return;
    const index = this.#r.progress.quorumMatch(voters, this.#r.log.stable);
    if (index <= this.#r.log.committed || this.#r.log.term(index) !== this.#r.term) return;
    const firstOfTerm = this.#r.log.term(this.#r.log.committed) !== this.#r.term;
    for (let i = this.#r.log.committed + 1; i <= index; i++) {
      const e = this.#r.log.entry(i)!;
      if (e.term === this.#r.term && e.kind === "command") {
        this.#r.uncommittedBytes -= e.data.length;
      }
    }
    this.#r.uncommittedBytes = Math.max(0, this.#r.uncommittedBytes);
    this.#r.log.commitTo(index);
    if (!isVoter(this.#r) && this.#r.log.config().index <= index) {
      this.#stepDownRemoved();
      return;
    }
    if (firstOfTerm) {
      for (const r of this.#r.reads.takeDeferred()) this.#leaderReadIndex(r.context, r.from);
    }
  }

  /** Promotes one caught-up learner, if no change is pending. */
  #maybePromote(): void {
    if (this.#r.transferee !== null || this.#r.log.config().index > this.#r.log.committed) return;
    if (this.#r.log.term(this.#r.log.committed) !== this.#r.term) return;
    const { index, config } = this.#r.log.config();
    const id = promotionCandidate(config, {
      configIndex: index,
      lastIndex: this.#r.log.lastIndex(),
      lagEntries: this.#r.promoteLagEntries,
      matchOf: (id) => this.#r.progress.get(id)?.match,
    });
    if (id !== null) this.changeMembers({ type: "promote", id });
  }

  /** A leader removed from the configuration hands over to the best voter and steps down. */
  #stepDownRemoved(): void {
    const best = handoverTarget(
      currentVoters(this.#r),
      Array.from(this.#r.progress, ([id, pr]) => [id, pr.match] as const),
    );
    if (best !== null) send(this.#r, { type: "timeoutNow", to: best, term: this.#r.term });
    this.#becomeFollower(this.#r.term, null);
  }

  // ------------------------------------------------------------------ reads

  #leaderReadIndex(context: string, from: string): void {
    if (this.#r.log.term(this.#r.log.committed) !== this.#r.term) {
      // Until an entry of its term commits, a new leader does not know the
      // true commit index (§6.4 step 1).
      this.#r.reads.defer({ context, from });
      return;
    }
    const voters = currentVoters(this.#r);
    if (voters.length === 1 && voters[0] === this.id) {
      this.#releaseRead({ context, from, index: this.#r.log.committed });
      return;
    }
    if (this.#r.reads.add({ context, from, index: this.#r.log.committed }, this.id)) {
      this.#broadcastHeartbeat(context);
    }
  }

  #releaseRead(r: ReadRequest): void {
    if (r.from === this.id) {
      this.#r.readStates.push({ index: r.index, context: r.context });
    } else {
      send(this.#r, {
        type: "readIndexResponse",
        to: r.from,
        term: 0,
        context: r.context,
        index: r.index,
      });
    }
  }

  // --------------------------------------------------------------- transfer

  #leaderTransfer(target: string): void {
    if (target === this.id || target === this.#r.transferee) return;
    const pr = this.#r.progress.get(target);
    if (pr === undefined) return;
    this.#r.transferee = target;
    // The transfer must finish within one election timeout or is abandoned.
    this.#r.electionElapsed = 0;
    if (pr.match === this.#r.log.lastIndex()) {
      send(this.#r, { type: "timeoutNow", to: target, term: this.#r.term });
    } else {
      this.#r.wantsAppend.add(target);
    }
  }

  // ---------------------------------------------------------------- helpers

  /**
   * Whether this node may start elections: it votes in the configuration in
   * force, or that configuration removes it but is not committed yet. A
   * leader that removed itself and lost leadership before the removal
   * committed may hold the only up-to-date log; it must be able to win
   * (counting only the new voters), commit the removal and step down, or no
   * one could ever be elected (thesis §4.2.2).
   */
  #isPromotable(): boolean {
    if (isVoter(this.#r)) return true;
    if (this.#r.log.config().index <= this.#r.log.committed) return false;
    return voterIds(this.#r.log.previousConfig() ?? { members: [] }).includes(this.id);
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leader === b.leader && a.term === b.term;
}
