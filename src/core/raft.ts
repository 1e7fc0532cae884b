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
import { chainFault, createEntry, type Entry, type EntryKind } from "./entry.ts";
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
import { type Prng, randomInt } from "./prng.ts";
import { tallyVotes } from "./quorum.ts";
import { ReadIndexQueue, type ReadRequest } from "./read_only.ts";
import { SnapshotReceiver } from "./snapshot_transfer.ts";
import type {
  FollowerView,
  HardState,
  MembershipChange,
  RaftOptions,
  RaftStatus,
  ReadState,
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
  /** The replicated log: only this class changes it. */
  readonly #log: RaftLog;
  /** What others see of `#log`. */
  readonly #logView: LogView;

  #term = 0;
  #vote: string | null = null;
  #leader: string | null = null;
  #role: Role = "follower";

  readonly #prng: Prng;
  readonly #electionTicks: number;
  readonly #heartbeatTicks: number;
  readonly #preVote: boolean;
  readonly #checkQuorum: boolean;
  readonly #maxMsgBytes: number;
  readonly #maxApplyBytes: number;
  readonly #maxUncommittedBytes: number;
  readonly #verifyHashes: boolean;
  /**
   * The latest snapshot, for followers behind the in-memory log (which may
   * start before it: entries kept for followers that are only a little behind).
   */
  #snapshot: { meta: SnapshotMeta; data: Uint8Array };
  /** A snapshot received and not yet handed out by `ready()`. */
  #incomingSnapshot: { meta: SnapshotMeta; data: Uint8Array } | null = null;
  /** The chunks of a snapshot arriving from a leader. */
  readonly #receiver = new SnapshotReceiver();
  readonly #autoPromote: boolean;
  readonly #promoteLagEntries: number;
  readonly #seniority: boolean;
  /** Ticks since start: the unit of the alive list. */
  #ticks = 0;
  /** Tick at which the leader was last heard from (followers). */
  #leaderHeardTick = -1;
  /** The leader's alive list from its last heartbeat, and the tick it arrived. */
  #seen: { tick: number; ticksAgo: Readonly<Record<string, number>> } = { tick: 0, ticksAgo: {} };

  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  #timeMs = 0;

  readonly #progress: ProgressTracker;
  /** Followers owed an append even if it carries nothing (a heartbeat saw them behind). */
  #wantsAppend = new Set<string>();
  #votes = new Map<string, boolean>();
  #transferee: string | null = null;
  #uncommittedBytes = 0;
  /** This leader's pending linearizable reads. */
  readonly #reads = new ReadIndexQueue();

  #messages: Message[] = [];
  #readStates: ReadState[] = [];
  #lastHardState: HardState;
  #lastSoftState: SoftState;
  #inReady: { entries: readonly Entry[]; committedTo: number } | null = null;

  /**
   * Creates a node from recovered state, or a fresh one.
   *
   * @param options Identity, timing, flow control and recovered state.
   * @throws {RangeError} On invalid timing or bounds.
   */
  constructor(options: RaftOptions) {
    this.id = options.id;
    this.#prng = options.prng;
    this.#electionTicks = options.electionTicks ?? 10;
    this.#heartbeatTicks = options.heartbeatTicks ?? 1;
    this.#preVote = options.preVote ?? true;
    this.#checkQuorum = options.checkQuorum ?? true;
    this.#maxMsgBytes = options.maxMsgBytes ?? 1 << 20;
    this.#maxApplyBytes = options.maxApplyBytes ?? 4 << 20;
    this.#maxUncommittedBytes = options.maxUncommittedBytes ?? 64 << 20;
    this.#verifyHashes = options.verifyHashes ?? true;
    this.#autoPromote = options.autoPromote ?? true;
    this.#promoteLagEntries = options.promoteLagEntries ?? 16;
    this.#seniority = options.seniority ?? true;
    if (!(this.#heartbeatTicks >= 1 && Number.isInteger(this.#heartbeatTicks))) {
      throw new RangeError(`heartbeatTicks must be a positive integer: ${this.#heartbeatTicks}`);
    }
    if (!(this.#electionTicks > this.#heartbeatTicks && Number.isInteger(this.#electionTicks))) {
      throw new RangeError(
        `electionTicks must be an integer above heartbeatTicks (${this.#heartbeatTicks}): ${this.#electionTicks}`,
      );
    }
    const maxInflight = options.maxInflight ?? 64;
    if (!(maxInflight >= 1)) {
      throw new RangeError(`maxInflight must be at least 1: ${maxInflight}`);
    }
    this.#progress = new ProgressTracker(this.id, maxInflight);

    const snapshot = options.snapshot ?? EMPTY_SNAPSHOT;
    const entries = options.entries ?? [];
    const fault = chainFault(snapshot.index, snapshot.hash, entries);
    assert(fault === null, `Recovered log is corrupt: ${fault}`);
    const hard = options.hardState ?? { term: 0, vote: null, commit: 0 };
    this.#log = new RaftLog(snapshot, entries, hard.commit);
    this.#logView = readOnlyLog(this.#log);
    this.#snapshot = { meta: snapshot, data: options.snapshotData ?? new Uint8Array(0) };
    this.#term = hard.term;
    this.#vote = hard.vote;
    if (options.applied !== undefined) {
      this.#log.appliedTo(Math.min(options.applied, this.#log.committed));
    }
    this.#lastHardState = { term: this.#term, vote: this.#vote, commit: this.#log.committed };

    if (options.bootstrap && this.#log.lastIndex() === 0 && this.#term === 0) {
      const first = createEntry(1, snapshot.hash, {
        term: 1,
        kind: "config",
        proposer: "",
        timeMs: 0,
        data: encodeConfig(options.bootstrap),
      });
      this.#log.append([first]);
      this.#log.commitTo(1);
      this.#term = 1;
    }
    if (options.forceConfig) {
      // A fresh term makes the forced log more up to date than any other
      // node's, so no one can win an election under the old configuration
      // with an entry that conflicts with it.
      this.#term = Math.max(this.#term, this.#log.lastTerm()) + 1;
      this.#vote = null;
      this.#appendOwn("config", encodeConfig(options.forceConfig));
      this.#log.commitTo(this.#log.lastIndex());
    }
    this.#resetRandomizedElectionTimeout();
    this.#lastSoftState = this.#softState();
  }

  // ---------------------------------------------------------------- queries

  /** Current term. */
  get term(): number {
    return this.#term;
  }

  /** Current role. */
  get role(): Role {
    return this.#role;
  }

  /** The leader this node follows (itself when leading), or null. */
  get leader(): string | null {
    return this.#leader;
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
    return this.#snapshot.meta;
  }

  /** A snapshot of this node's state. */
  status(): RaftStatus {
    const { index, config } = this.#log.config();
    return {
      id: this.id,
      role: this.#role,
      term: this.#term,
      vote: this.#vote,
      leader: this.#leader,
      commitIndex: this.#log.committed,
      appliedIndex: this.#log.applied,
      lastIndex: this.#log.lastIndex(),
      head: this.#log.hash(this.#log.committed)!,
      config,
      configIndex: index,
      voter: this.#isVoter(),
    };
  }

  /**
   * On a leader, what it knows of each follower's log; empty elsewhere.
   *
   * @returns Per follower: match and next index, flow-control state, and
   *   appends in flight.
   */
  followers(): Map<string, FollowerView> {
    return this.#progress.views();
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
    const index = this.#log.indexOfHash(hash);
    if (index === undefined) return null;
    return {
      state: index <= this.#log.committed ? "committed" : "accepted",
      index,
      term: this.#log.term(index)!,
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
    if (timeMs !== undefined) this.#timeMs = Math.max(this.#timeMs, timeMs);
    this.#ticks++;
    if (this.#role === "leader") this.#tickLeader();
    else this.#tickElection();
  }

  /**
   * Starts an election now (PreVote first when enabled), as if the election
   * timeout had passed. Does nothing on a leader or a non-voter.
   */
  campaign(): void {
    if (this.#role !== "leader") this.#campaign("preVote");
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
    if (timeMs !== undefined) this.#timeMs = Math.max(this.#timeMs, timeMs);
    if (this.#role !== "leader") throw new NotLeaderError("propose", this.#leader);
    if (this.#transferee !== null) {
      throw new ProposalDroppedError(
        `Cannot propose while leadership moves to ${this.#transferee}`,
      );
    }
    const bytes = data.length;
    if (this.#uncommittedBytes > 0 && this.#uncommittedBytes + bytes > this.#maxUncommittedBytes) {
      throw new ProposalDroppedError(
        `Cannot propose as the uncommitted log is full (${this.#uncommittedBytes} bytes)`,
      );
    }
    this.#uncommittedBytes += bytes;
    return this.#appendOwn("command", data);
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
    if (this.#role === "leader") {
      this.#leaderReadIndex(context, this.id);
      return;
    }
    if (this.#leader === null) throw new NotLeaderError("read", null);
    this.#send({ type: "readIndex", to: this.#leader, term: 0, context });
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
    if (!this.#voters().includes(target)) {
      throw new MembershipError(
        "not_member",
        `Cannot transfer leadership to ${target}: it is not a voter`,
      );
    }
    if (this.#role === "leader") {
      this.#leaderTransfer(target);
      return;
    }
    if (this.#leader === null) throw new NotLeaderError("transfer leadership", null);
    this.#send({ type: "transferLeader", to: this.#leader, term: 0, target });
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
    if (timeMs !== undefined) this.#timeMs = Math.max(this.#timeMs, timeMs);
    if (this.#role !== "leader") throw new NotLeaderError("change membership", this.#leader);
    if (this.#transferee !== null) {
      throw new ProposalDroppedError(
        `Cannot change membership while leadership moves to ${this.#transferee}`,
      );
    }
    // A new leader must commit an entry of its own term first, or a change
    // it makes could be lost beside one an earlier leader made (the known
    // pitfall of single-server changes, fixed in Ongaro's thesis errata).
    if (this.#log.term(this.#log.committed) !== this.#term) {
      throw new ProposalDroppedError(
        "Cannot change membership before the leader commits an entry of its term",
      );
    }
    if (this.#log.config().index > this.#log.committed) {
      throw new ProposalDroppedError(
        "Cannot change membership while another change is in progress",
      );
    }
    const next = applyMembershipChange(this.#log.config().config, change);
    if (next === null) return null;
    const entry = this.#appendOwn("config", encodeConfig(next));
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
    if (this.#role === "leader") return new Map([...out, ...this.#progress.seenTicks(this.#ticks)]);
    const since = this.#ticks - this.#seen.tick;
    for (const [id, ago] of Object.entries(this.#seen.ticksAgo)) {
      if (id !== this.id) out.set(id, ago + since);
    }
    if (this.#leader !== null && this.#leader !== this.id && this.#leaderHeardTick >= 0) {
      out.set(this.#leader, this.#ticks - this.#leaderHeardTick);
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
      index > this.#snapshot.meta.index && index <= this.#log.applied,
      `Cannot snapshot at ${index}: outside (${this.#snapshot.meta.index}, ${this.#log.applied}]`,
    );
    const meta = this.#log.metaAt(index);
    this.#snapshot = { meta, data };
    const to = index - Math.max(0, options.keepEntries ?? 0);
    if (to > this.#log.snapshot.index) this.#log.compact(to);
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
    if (m.term > this.#term) {
      if (m.type === "vote") {
        // A node that heard from a leader within the minimum election timeout
        // ignores votes, so a partitioned node coming back cannot depose a
        // healthy leader (thesis §4.2.3). A transfer overrides the lease.
        const inLease = this.#checkQuorum && this.#leader !== null &&
          this.#electionElapsed < this.#electionTicks;
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
    } else if (m.term !== 0 && m.term < this.#term) {
      if (m.type === "append" || m.type === "heartbeat" || m.type === "snapshot") {
        // A stale leader: answer with our term so it steps down. Without this a
        // node that raised its term behind a partition (or campaigning under a
        // stale configuration that the leader's log has replaced) could never
        // rejoin. Removed nodes get no appends, so this cannot make them
        // disruptive.
        this.#send({
          type: "appendResponse",
          to: m.from,
          term: this.#term,
          success: false,
          index: 0,
          hintIndex: 0,
          hintTerm: 0,
        });
      } else if (m.type === "vote" && m.preVote) {
        this.#send({
          type: "voteResponse",
          to: m.from,
          term: this.#term,
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
    switch (this.#role) {
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
    return this.#messages.length > 0 || this.#owesAppends() || this.#incomingSnapshot !== null ||
      this.#readStates.length > 0 ||
      this.#log.stable < this.#log.lastIndex() ||
      this.#log.applied < this.#log.committed ||
      !sameHardState(this.#hardState(), this.#lastHardState) ||
      !sameSoftState(this.#softState(), this.#lastSoftState);
  }

  /**
   * Hands out the next batch of work. Call `advance()` once it is done
   * (persisted, sent, applied) before the next `ready()`.
   *
   * @returns The batch.
   * @throws {AssertionError} If the previous batch was not advanced.
   */
  ready(): Ready {
    assert(this.#inReady === null, "ready() called again before advance()");
    this.#flushAppends();
    const hard = this.#hardState();
    const soft = this.#softState();
    const entries = this.#log.unstableEntries();
    const committed = this.#log.nextCommitted(this.#maxApplyBytes);
    const rd: Ready = {
      hardState: sameHardState(hard, this.#lastHardState) ? null : hard,
      entries,
      messages: this.#messages,
      committed,
      readStates: this.#readStates,
      softState: sameSoftState(soft, this.#lastSoftState) ? null : soft,
      snapshot: this.#incomingSnapshot,
    };
    this.#incomingSnapshot = null;
    this.#lastHardState = hard;
    this.#lastSoftState = soft;
    this.#messages = [];
    this.#readStates = [];
    this.#inReady = { entries, committedTo: committed.at(-1)?.index ?? 0 };
    return rd;
  }

  /**
   * Acknowledges the last `ready()` batch: its entries are durable and its
   * committed entries applied. A leader counts its own log towards the
   * commit quorum only from here, so it never commits what it has not
   * persisted.
   */
  advance(): void {
    const done = this.#inReady;
    assert(done !== null, "advance() called without a ready() batch");
    this.#inReady = null;
    if (done.entries.length > 0) this.#log.stableTo(done.entries);
    if (done.committedTo > 0) this.#log.appliedTo(done.committedTo);
    if (this.#role === "leader") this.#maybeCommit();
  }

  // ------------------------------------------------------------ transitions

  #reset(term: number): void {
    if (term !== this.#term) {
      this.#term = term;
      this.#vote = null;
      this.#receiver.reset();
    }
    this.#leader = null;
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#resetRandomizedElectionTimeout();
    this.#transferee = null;
    this.#votes.clear();
    this.#progress.clear();
    this.#wantsAppend.clear();
    this.#reads.reset();
    this.#uncommittedBytes = 0;
  }

  #becomeFollower(term: number, leader: string | null): void {
    this.#reset(term);
    this.#role = "follower";
    this.#leader = leader;
  }

  #becomePreCandidate(): void {
    assert(this.#role !== "leader", "A leader cannot become a pre-candidate");
    // Neither the term nor the vote changes until PreVote succeeds.
    this.#votes.clear();
    this.#leader = null;
    this.#role = "preCandidate";
    this.#resetRandomizedElectionTimeout();
  }

  #becomeCandidate(): void {
    assert(this.#role !== "leader", "A leader cannot become a candidate");
    this.#reset(this.#term + 1);
    this.#vote = this.id;
    this.#role = "candidate";
  }

  #becomeLeader(): void {
    assert(this.#role === "candidate", "Only a candidate can become leader");
    this.#reset(this.#term);
    this.#role = "leader";
    this.#leader = this.id;
    this.#syncProgress();
    // Commit an entry of the new term at once: earlier terms' entries commit
    // only through it (§5.4.2), and ReadIndex waits for it (§6.4).
    this.#appendOwn("noop", new Uint8Array(0));
  }

  /**
   * Starts a campaign: a PreVote round first (when enabled), a real election
   * once that succeeds, or straight away for a leadership transfer, whose
   * vote requests alone may override leader leases.
   */
  #campaign(kind: "preVote" | "election" | "transfer"): void {
    if (!this.#isPromotable()) return;
    const pre = kind === "preVote" && this.#preVote;
    if (pre) this.#becomePreCandidate();
    else this.#becomeCandidate();
    const term = pre ? this.#term + 1 : this.#term;
    const transfer = kind === "transfer";
    this.#votes.set(this.id, true);
    if (this.#tally() === "won") {
      if (pre) this.#campaign("election");
      else this.#becomeLeader();
      return;
    }
    for (const id of this.#voters()) {
      if (id === this.id) continue;
      this.#send({
        type: "vote",
        to: id,
        term,
        preVote: pre,
        transfer,
        lastIndex: this.#log.lastIndex(),
        lastTerm: this.#log.lastTerm(),
      });
    }
  }

  #tally(): "won" | "lost" | "pending" {
    return tallyVotes(this.#voters(), this.#votes);
  }

  // ------------------------------------------------------------------ ticks

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#isPromotable() && this.#electionElapsed >= this.#randomizedElectionTimeout) {
      this.#electionElapsed = 0;
      this.#campaign("preVote");
    }
  }

  #tickLeader(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#electionTicks) {
      this.#electionElapsed = 0;
      if (this.#checkQuorum && !this.#progress.quorumActive(this.#voters())) {
        this.#becomeFollower(this.#term, null);
        return;
      }
      this.#transferee = null;
    }
    if (this.#heartbeatElapsed >= this.#heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      this.#broadcastHeartbeat(this.#reads.lastContext());
    }
    if (this.#autoPromote) this.#maybePromote();
    // A chunk unanswered for an election timeout is taken as lost and sent again.
    for (const [, pr] of this.#progress) pr.snapshot?.maybeExpire(this.#ticks, this.#electionTicks);
  }

  #resetRandomizedElectionTimeout(): void {
    const e = this.#electionTicks;
    // Seniority needs PreVote: without it a senior node with a stale log would
    // time out first again and again, raising everyone's term and resetting
    // their timers, and no one else could ever win.
    const voters = this.#seniority && this.#preVote ? this.#voters() : [];
    const rank = voters.indexOf(this.id);
    if (rank >= 0 && voters.length > 1) {
      // Each rank draws from its own slice of [e, 2e): seniors time out first.
      const width = Math.max(1, Math.floor(e / voters.length));
      this.#randomizedElectionTimeout = e + Math.min(rank * width, e - width) +
        randomInt(this.#prng, width);
    } else {
      this.#randomizedElectionTimeout = e + randomInt(this.#prng, e);
    }
  }

  // --------------------------------------------------------------- handlers

  #handleVote(m: VoteMessage): void {
    const canVote = this.#vote === m.from ||
      (this.#vote === null && this.#leader === null) ||
      (m.preVote && m.term > this.#term);
    if (canVote && this.#log.isUpToDate(m.lastIndex, m.lastTerm)) {
      // A granted answer carries the term asked about, so a pre-candidate can
      // tell it from answers to an older round.
      this.#send({
        type: "voteResponse",
        to: m.from,
        term: m.term,
        preVote: m.preVote,
        granted: true,
      });
      if (!m.preVote) {
        this.#electionElapsed = 0;
        this.#vote = m.from;
      }
    } else {
      this.#send({
        type: "voteResponse",
        to: m.from,
        term: this.#term,
        preVote: m.preVote,
        granted: false,
      });
    }
  }

  /** A message from the current leader: it is alive, so no election yet. */
  #heardFromLeader(from: string): void {
    this.#electionElapsed = 0;
    this.#leader = from;
    this.#leaderHeardTick = this.#ticks;
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
        this.#readStates.push({ index: m.index, context: m.context });
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
    if (m.preVote !== (this.#role === "preCandidate")) return;
    if (!this.#votes.has(m.from)) this.#votes.set(m.from, m.granted);
    const result = this.#tally();
    if (result === "won") {
      if (this.#role === "preCandidate") this.#campaign("election");
      else this.#becomeLeader();
    } else if (result === "lost") {
      this.#becomeFollower(this.#term, null);
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
        this.#progress.heard(m.from, this.#ticks)?.snapshot?.maybeAck(m.index, m.received);
        break;
      case "readIndex":
        this.#leaderReadIndex(m.context, m.from);
        break;
      case "transferLeader":
        if (this.#voters().includes(m.target)) this.#leaderTransfer(m.target);
        break;
      default:
        break;
    }
  }

  #handleAppend(m: AppendMessage): void {
    const reply = (success: boolean, index: number, hintIndex = 0, hintTerm = 0): void => {
      this.#send({
        type: "appendResponse",
        to: m.from,
        term: this.#term,
        success,
        index,
        hintIndex,
        hintTerm,
      });
    };
    if (m.prevIndex < this.#log.committed) {
      // Everything up to our commit index matches any current leader's log.
      reply(true, this.#log.committed);
      return;
    }
    if (!this.#log.matches(m.prevIndex, m.prevTerm, m.prevHash)) {
      // A hash mismatch under an equal term gives hint == prevIndex, which
      // still moves the leader's next probe one entry back.
      const hint = this.#log.findConflictByTerm(
        Math.min(m.prevIndex, this.#log.lastIndex()),
        m.prevTerm,
      );
      reply(false, m.prevIndex, hint.index, hint.term);
      return;
    }
    const last = m.prevIndex + m.entries.length;
    const conflict = this.#log.findConflict(m.entries);
    if (conflict !== 0) {
      const fresh = m.entries.slice(conflict - m.prevIndex - 1);
      if (this.#verifyHashes) {
        const fault = chainFault(conflict - 1, this.#log.hash(conflict - 1)!, fresh);
        // Entries that do not hash right are refused like a mismatch; the
        // leader will resend them.
        if (fault !== null) {
          reply(false, m.prevIndex, m.prevIndex, m.prevTerm);
          return;
        }
      }
      this.#log.append(fresh);
    }
    this.#log.commitTo(Math.min(m.commit, last));
    reply(true, last);
  }

  #handleSnapshot(m: SnapshotMessage): void {
    const meta = m.meta;
    const done = (index: number): void => {
      this.#receiver.reset();
      this.#send({
        type: "appendResponse",
        to: m.from,
        term: this.#term,
        success: true,
        index,
        hintIndex: 0,
        hintTerm: 0,
      });
    };
    if (meta.index <= this.#log.committed) {
      done(this.#log.committed);
      return;
    }
    if (this.#log.matches(meta.index, meta.term, meta.hash)) {
      // We hold the snapshot's last entry, so our log already holds what it
      // stands for: only the commit index moves.
      this.#log.commitTo(meta.index);
      done(meta.index);
      return;
    }
    const chunk = this.#receiver.receive(m);
    if (!chunk.done) {
      this.#send({
        type: "snapshotResponse",
        to: m.from,
        term: this.#term,
        index: meta.index,
        received: chunk.received,
      });
      return;
    }
    const data = chunk.data;
    this.#log.restore(meta);
    this.#incomingSnapshot = { meta, data };
    this.#snapshot = { meta, data };
    // The driver makes the snapshot durable before it sends this answer.
    done(meta.index);
  }

  #handleHeartbeat(m: HeartbeatMessage): void {
    this.#log.commitTo(m.commit);
    this.#seen = { tick: this.#ticks, ticksAgo: m.seen };
    this.#send({
      type: "heartbeatResponse",
      to: m.from,
      term: this.#term,
      context: m.context,
      configIndex: this.#log.config().index,
    });
  }

  #handleAppendResponse(m: AppendResponseMessage): void {
    const pr = this.#progress.heard(m.from, this.#ticks);
    if (pr === undefined) return;
    if (!m.success) {
      const hint = m.hintTerm > 0
        ? this.#log.findConflictByTerm(m.hintIndex, m.hintTerm).index
        : m.hintIndex;
      if (pr.maybeDecrease(m.index, hint) && pr.state === "replicate") pr.becomeProbe();
      return;
    }
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === "probe" || (pr.snapshot !== null && pr.match >= pr.snapshot.index)) {
      pr.becomeReplicate();
    } else if (pr.state === "replicate") pr.freeUpTo(m.index);
    this.#maybeCommit();
    if (m.from === this.#transferee && pr.match === this.#log.lastIndex()) {
      this.#send({ type: "timeoutNow", to: m.from, term: this.#term });
    }
  }

  #handleHeartbeatResponse(m: HeartbeatResponseMessage): void {
    const pr = this.#progress.heard(m.from, this.#ticks);
    if (pr === undefined) return;
    pr.probeSent = false;
    // A full window may be all lost appends: free one slot so the follower
    // cannot stall for ever.
    if (pr.state === "replicate" && pr.isPaused()) pr.inflight.shift();
    // Behind, or missing the configuration in force: send what it lacks.
    if (pr.match < this.#log.lastIndex() || m.configIndex < this.#log.config().index) {
      this.#wantsAppend.add(m.from);
    }
    if (m.context !== null) {
      const voters = this.#voters();
      for (const r of this.#reads.recvAck(m.context, m.from, voters)) this.#releaseRead(r);
    }
  }

  // ----------------------------------------------------------- replication

  #appendOwn(kind: EntryKind, data: Uint8Array): Entry {
    const entry = createEntry(this.#log.lastIndex() + 1, this.#log.lastHash(), {
      term: this.#term,
      kind,
      proposer: this.id,
      timeMs: this.#timeMs,
      data,
    });
    this.#log.append([entry]);
    return entry;
  }

  /** Tracks the progress of exactly the members in force. */
  #syncProgress(): void {
    this.#progress.sync(this.#log.config().config.members, this.#log.lastIndex() + 1);
  }

  /** Whether `#flushAppends()` would send anything. */
  #owesAppends(): boolean {
    if (this.#role !== "leader") return false;
    for (const [id, pr] of this.#progress) {
      if (pr.isPaused()) continue;
      if (
        pr.next <= this.#log.lastIndex() || this.#wantsAppend.has(id) ||
        pr.sentCommit < this.#log.committed || pr.state === "snapshot" ||
        pr.next <= this.#log.snapshot.index
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
    if (this.#role !== "leader") return;
    for (const [id, pr] of this.#progress) {
      const forced = this.#wantsAppend.delete(id);
      let first = true;
      while (!pr.isPaused()) {
        if (pr.state === "snapshot" || pr.next <= this.#log.snapshot.index) {
          // The entries it needs are compacted away: send the snapshot.
          this.#sendSnapshotChunk(id, pr);
          break;
        }
        const last = this.#log.lastIndex();
        const entries = pr.next <= last
          ? this.#log.slice(pr.next, last + 1, this.#maxMsgBytes)
          : [];
        if (entries.length === 0 && !(first && (forced || pr.sentCommit < this.#log.committed))) {
          break;
        }
        first = false;
        const prevIndex = pr.next - 1;
        this.#send({
          type: "append",
          to: id,
          term: this.#term,
          prevIndex,
          prevTerm: this.#log.term(prevIndex)!,
          prevHash: this.#log.hash(prevIndex)!,
          entries,
          commit: this.#log.committed,
        });
        pr.sentCommit = this.#log.committed;
        const sentTo = entries.at(-1)?.index;
        if (sentTo !== undefined) pr.sentEntries(sentTo);
        else if (pr.state === "probe") pr.probeSent = true;
        if (sentTo === undefined || pr.state === "probe") break;
      }
    }
  }

  /** Sends `id` the next chunk of the latest snapshot (from the start if the snapshot is new). */
  #sendSnapshotChunk(id: string, pr: Progress): void {
    const { meta, data } = this.#snapshot;
    const sender = pr.snapshot?.index === meta.index ? pr.snapshot : pr.becomeSnapshot(meta.index);
    const chunk = sender.nextChunk(data, this.#maxMsgBytes);
    this.#send({
      type: "snapshot",
      to: id,
      term: this.#term,
      meta,
      offset: chunk.offset,
      total: data.length,
      data: chunk.data,
    });
    sender.sent(this.#ticks);
  }

  #broadcastHeartbeat(context: string | null): void {
    const seen: Record<string, number> = {};
    for (const [id, ticks] of this.seenTicks()) seen[id] = ticks;
    for (const [id, pr] of this.#progress) {
      const commit = Math.min(pr.match, this.#log.committed);
      this.#send({ type: "heartbeat", to: id, term: this.#term, commit, context, seen });
    }
  }

  /** Commits the highest index a majority stores, if it is of this term (§5.4.2). */
  #maybeCommit(): void {
    const voters = this.#voters();
    if (voters.length === 0) return;
    const index = this.#progress.quorumMatch(voters, this.#log.stable);
    if (index <= this.#log.committed || this.#log.term(index) !== this.#term) return;
    const firstOfTerm = this.#log.term(this.#log.committed) !== this.#term;
    for (let i = this.#log.committed + 1; i <= index; i++) {
      const e = this.#log.entry(i)!;
      if (e.term === this.#term && e.kind === "command") this.#uncommittedBytes -= e.data.length;
    }
    this.#uncommittedBytes = Math.max(0, this.#uncommittedBytes);
    this.#log.commitTo(index);
    if (!this.#isVoter() && this.#log.config().index <= index) {
      this.#stepDownRemoved();
      return;
    }
    if (firstOfTerm) {
      for (const r of this.#reads.takeDeferred()) this.#leaderReadIndex(r.context, r.from);
    }
  }

  /** Promotes one caught-up learner, if no change is pending. */
  #maybePromote(): void {
    if (this.#transferee !== null || this.#log.config().index > this.#log.committed) return;
    if (this.#log.term(this.#log.committed) !== this.#term) return;
    const { index, config } = this.#log.config();
    const id = promotionCandidate(config, {
      configIndex: index,
      lastIndex: this.#log.lastIndex(),
      lagEntries: this.#promoteLagEntries,
      matchOf: (id) => this.#progress.get(id)?.match,
    });
    if (id !== null) this.changeMembers({ type: "promote", id });
  }

  /** A leader removed from the configuration hands over to the best voter and steps down. */
  #stepDownRemoved(): void {
    const best = handoverTarget(
      this.#voters(),
      Array.from(this.#progress, ([id, pr]) => [id, pr.match] as const),
    );
    if (best !== null) this.#send({ type: "timeoutNow", to: best, term: this.#term });
    this.#becomeFollower(this.#term, null);
  }

  // ------------------------------------------------------------------ reads

  #leaderReadIndex(context: string, from: string): void {
    if (this.#log.term(this.#log.committed) !== this.#term) {
      // Until an entry of its term commits, a new leader does not know the
      // true commit index (§6.4 step 1).
      this.#reads.defer({ context, from });
      return;
    }
    const voters = this.#voters();
    if (voters.length === 1 && voters[0] === this.id) {
      this.#releaseRead({ context, from, index: this.#log.committed });
      return;
    }
    if (this.#reads.add({ context, from, index: this.#log.committed }, this.id)) {
      this.#broadcastHeartbeat(context);
    }
  }

  #releaseRead(r: ReadRequest): void {
    if (r.from === this.id) {
      this.#readStates.push({ index: r.index, context: r.context });
    } else {
      this.#send({
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
    if (target === this.id || target === this.#transferee) return;
    const pr = this.#progress.get(target);
    if (pr === undefined) return;
    this.#transferee = target;
    // The transfer must finish within one election timeout or is abandoned.
    this.#electionElapsed = 0;
    if (pr.match === this.#log.lastIndex()) {
      this.#send({ type: "timeoutNow", to: target, term: this.#term });
    } else {
      this.#wantsAppend.add(target);
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
    if (this.#isVoter()) return true;
    if (this.#log.config().index <= this.#log.committed) return false;
    return voterIds(this.#log.previousConfig() ?? { members: [] }).includes(this.id);
  }

  /** The voters of the configuration in force. */
  #voters(): string[] {
    return voterIds(this.#log.config().config);
  }

  #isVoter(): boolean {
    return this.#voters().includes(this.id);
  }

  #send(m: DistributiveOmit<Message, "from">): void {
    this.#messages.push({ ...m, from: this.id } as Message);
  }

  #hardState(): HardState {
    return { term: this.#term, vote: this.#vote, commit: this.#log.committed };
  }

  #softState(): SoftState {
    return { role: this.#role, leader: this.#leader, term: this.#term };
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leader === b.leader && a.term === b.term;
}
