/**
 * A simulated cluster: Raft cores wired to a {@linkcode SimNetwork}, each with
 * a durable store that keeps exactly what its driver was told to persist.
 * One seed decides every fault: loss, duplication, delay and reordering,
 * partitions (symmetric and one-way), crashes (also in the middle of a
 * ready batch) and restarts, while clients propose and read throughout.
 * After a faulty phase the faults heal and the cluster must elect a leader
 * and commit new proposals within a tick budget.
 *
 * @module
 */

import {
  type Configuration,
  decodeConfig,
  type Entry,
  GENESIS_HASH,
  type HardState,
  type MembershipChange,
  NotLeaderError,
  type Prng,
  Raft,
  RaftError,
  type Ready,
  seededPrng,
  type SnapshotMeta,
  voterIds,
} from "../../src/core/mod.ts";
import { SafetyChecker, simSnapshotData, Violation } from "./checkers.ts";
import { type NetworkFaults, SimNetwork } from "./network.ts";

/**
 * A deliberately broken driver, to show the simulator catches it:
 * `forgetVote` does not persist the vote; `ackBeforePersist` sends messages
 * before persisting what they acknowledge. (Broken cores are built by
 * `mutants.ts`.)
 */
export type PlantedBug = "forgetVote" | "ackBeforePersist";

/** The Raft implementation under test: the real one, or a mutant. */
export type RaftClass = typeof Raft;

/** What one simulated run does. */
export interface SimOptions {
  /** Decides everything. */
  seed: number;
  /** Cluster size. */
  nodes: number;
  /** Ticks in the faulty phase. */
  steps: number;
  /** A planted driver bug, for testing the simulator itself. */
  bug?: PlantedBug;
  /** The core to run; default the real one. */
  core?: RaftClass;
  /**
   * Start with only some nodes as members and add, promote and remove
   * members under the same faults.
   */
  membership?: boolean;
}

/** What a run found. */
export interface SimResult {
  seed: number;
  /** The first safety violation, if any. */
  violation: string | null;
  /** Why the healed cluster failed to make progress, if it did. */
  livenessFailure: string | null;
  /** Ticks simulated, healing included. */
  ticks: number;
  /** Entries committed cluster-wide. */
  committed: number;
  /** Elections won. */
  leaders: number;
  /** Configuration entries committed after the first. */
  configChanges: number;
  /** Snapshots installed from a leader. */
  snapshotsInstalled: number;
}

interface DurableState {
  hardState: HardState;
  /** The latest snapshot saved; `entries` follow it. */
  snapshot: { meta: SnapshotMeta; data: Uint8Array } | null;
  entries: Entry[];
}

interface SimNode {
  readonly id: string;
  raft: Raft | null;
  readonly durable: DurableState;
  /** Index the simulated state machine has applied. */
  applied: number;
  /** Commit index already checked against history. */
  checkedCommit: number;
  restarts: number;
  /** Tick at which a crashed node restarts. */
  restartAt: number;
  /** A batch whose disk write is in flight, and when it finishes. */
  writing: { rd: Ready; sent: boolean; doneAt: number } | null;
}

interface PendingRead {
  node: string;
  mustSee: number;
}

const encoder = new TextEncoder();

/** Runs one seed and reports what it found. */
export function runSeed(options: SimOptions): SimResult {
  const sim = new Simulation(options);
  return sim.run();
}

class Simulation {
  readonly #opts: SimOptions;
  readonly #prng: Prng;
  readonly #net: SimNetwork;
  readonly #nodes: SimNode[];
  readonly #checker = new SafetyChecker();
  readonly #electionTicks: number;
  readonly #bootstrap: Configuration;
  readonly #founders: ReadonlySet<string>;
  /** Config entries already checked for a safe commit. */
  readonly #configsChecked = new Set<string>();
  readonly #preVote: boolean;
  readonly #maxMsgBytes: number;
  readonly #maxInflight: number;
  /** Leaders send appends before their own write is durable (thesis §10.2.1). */
  readonly #leaderSendsFirst: boolean;
  #diskTicks: number;
  readonly #diskStallRate: number;
  #compactRate: number;
  readonly #keepEntries: number;
  readonly #checkQuorum: boolean;
  #now = 0;
  #proposals = 0;
  #snapshotsInstalled = 0;
  #reads = new Map<string, PendingRead>();
  #readSeq = 0;

  // Fault rates for this seed.
  readonly #crashRate: number;
  readonly #crashInReadyRate: number;
  readonly #partitionRate: number;
  readonly #proposeRate: number;
  readonly #partitionTicks: number;
  #partitionEndsAt = 0;
  /** False once the faults are healed. */
  #faulty = true;

  constructor(opts: SimOptions) {
    this.#opts = opts;
    this.#prng = seededPrng(opts.seed);
    const p = this.#prng;
    this.#electionTicks = pick(p, [4, 5, 6, 10]);
    this.#preVote = p.next() < 0.75;
    this.#checkQuorum = p.next() < 0.75;
    const faults: NetworkFaults = {
      lossRate: pick(p, [0, 0.01, 0.05, 0.1, 0.25]),
      duplicateRate: pick(p, [0, 0.01, 0.05, 0.2]),
      // Delays beyond an election timeout deliver votes into later terms.
      maxDelayTicks: pick(p, [1, 2, 4, 8, 16]),
      fifo: p.next() < 0.5,
    };
    this.#net = new SimNetwork(seededPrng(opts.seed ^ 0x5eed), faults);
    this.#crashRate = pick(p, [0, 0.002, 0.01, 0.03]);
    this.#crashInReadyRate = pick(p, [0, 0.005, 0.02, 0.05, 0.2]);
    // How often a node snapshots and compacts its log after applying, and
    // how many entries before the snapshot it keeps for followers.
    this.#compactRate = pick(p, [0, 0.02, 0.1, 0.5]);
    this.#keepEntries = pick(p, [0, 3, 50]);
    // Tiny messages and windows split batches, so entries of old terms get
    // acknowledged apart from the new leader's no-op.
    this.#maxMsgBytes = pick(p, [1, 300, 1 << 20]);
    this.#maxInflight = pick(p, [1, 4, 64]);
    this.#leaderSendsFirst = p.next() < 0.5;
    // Slow disks keep a batch in flight while new messages are stepped.
    this.#diskTicks = pick(p, [0, 2, 8]);
    this.#diskStallRate = pick(p, [0.1, 0.5]);
    this.#partitionRate = pick(p, [0, 0.002, 0.01, 0.03]);
    this.#partitionTicks = pick(p, [20, 100, 200]);
    this.#proposeRate = pick(p, [0.05, 0.2, 0.6]);
    const ids = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    this.#nodes = ids.map((id) => ({
      id,
      raft: null,
      durable: { hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [] },
      applied: 0,
      checkedCommit: 0,
      restarts: 0,
      restartAt: 0,
      writing: null,
    }));
    // With membership changes, the last nodes start outside the cluster.
    const founders = opts.membership ? ids.slice(0, Math.max(1, ids.length - 2)) : ids;
    this.#founders = new Set(founders);
    this.#bootstrap = { members: founders.map((id) => ({ id, voter: true })) };
    for (const node of this.#nodes) this.#start(node);
  }

  run(): SimResult {
    let violation: string | null = null;
    let livenessFailure: string | null = null;
    try {
      for (; this.#now < this.#opts.steps; this.#now++) this.#faultyTick();
      livenessFailure = this.#heal();
    } catch (e) {
      if (e instanceof Violation) violation = e.message;
      else violation = `crash: ${e instanceof Error ? e.stack ?? e.message : String(e)}`;
    }
    return {
      seed: this.#opts.seed,
      violation,
      livenessFailure,
      ticks: this.#now,
      committed: this.#checker.maxCommitted,
      leaders: this.#checker.leaders.size,
      configChanges: this.#configsChecked.size,
      snapshotsInstalled: this.#snapshotsInstalled,
    };
  }

  // ------------------------------------------------------------ phases

  #faultyTick(): void {
    const p = this.#prng;
    if (this.#net.partitioned && this.#now >= this.#partitionEndsAt) this.#net.healPartitions();
    if (!this.#net.partitioned && p.next() < this.#partitionRate) this.#partition();
    for (const node of this.#nodes) {
      if (node.raft === null && this.#now >= node.restartAt) this.#start(node);
    }
    if (p.next() < this.#crashRate) {
      const node = pickOne(p, this.#nodes);
      if (node.raft !== null) this.#crash(node, 5 + Math.floor(p.next() * 100));
    }
    this.#commonTick();
  }

  /** Heals every fault, then requires a leader and fresh commits within a budget. */
  #heal(): string | null {
    this.#faulty = false;
    this.#net.healPartitions();
    // A healed network is also fast again: a round trip well inside the
    // election timeout, which Raft needs for liveness (§5.6).
    const maxDelay = Math.min(
      this.#net.faults.maxDelayTicks,
      Math.max(1, this.#electionTicks >> 2),
    );
    this.#net.faults = { lossRate: 0, duplicateRate: 0, maxDelayTicks: maxDelay, fifo: true };
    this.#diskTicks = Math.min(this.#diskTicks, this.#electionTicks >= 10 ? 1 : 0);
    // Snapshots stay, but not one after every batch: a follower catching up
    // through a snapshot must be able to finish before the next one.
    this.#compactRate = Math.min(this.#compactRate, 0.02);
    for (const node of this.#nodes) if (node.raft === null) this.#start(node);

    // Split votes are possible but each round has a fair chance to succeed.
    const electionBudget = 30 * this.#electionTicks + 20 * maxDelay;
    const leaderDeadline = this.#now + electionBudget;
    let leader: Raft | null = null;
    for (; this.#now < leaderDeadline; this.#now++) {
      this.#commonTick();
      leader = this.#stableLeader();
      if (leader !== null) break;
    }
    if (leader === null) {
      return `no stable leader within ${electionBudget} ticks of healing (${this.#describe()})`;
    }

    // Propose probes, re-proposing (as a client would) any lost with a leader change.
    const probes = Array.from(
      { length: 5 },
      (_, i) => encoder.encode(`probe-${this.#opts.seed}-${i}`),
    );
    const hashes = new Map<number, string>();
    // Catching a node up takes time in proportion to how far behind it is
    // and how much one round trip carries (tiny messages and windows are
    // among the drawn configurations).
    const entriesPerTrip = Math.max(1, Math.floor(this.#maxMsgBytes / 100)) * this.#maxInflight;
    const tripTicks = 2 * maxDelay + 2 * this.#diskTicks + 2;
    const commitBudget = electionBudget +
      Math.ceil(leader.log.lastIndex() / entriesPerTrip) * tripTicks;
    const commitDeadline = this.#now + commitBudget;
    for (; this.#now < commitDeadline; this.#now++) {
      const current = this.#stableLeader();
      if (current !== null) {
        for (const [i, data] of probes.entries()) {
          const hash = hashes.get(i);
          // Held by the leader, or committed (and maybe compacted away).
          if (
            hash !== undefined &&
            (current.log.indexOfHash(hash) !== undefined ||
              this.#checker.committedIndex(hash) !== undefined)
          ) continue;
          try {
            hashes.set(i, current.propose(data, this.#now).hash);
          } catch (e) {
            if (!(e instanceof RaftError)) throw e;
          }
        }
      }
      this.#commonTick();
      if (
        hashes.size === probes.length && this.#allApplied(current ?? leader, [...hashes.values()])
      ) return null;
    }
    return `probes not applied on every node within ${commitBudget} ticks of a leader (${this.#describe()})`;
  }

  #commonTick(): void {
    const p = this.#prng;
    this.#finishWrites();
    for (const m of this.#net.due(this.#now)) {
      const node = this.#node(m.to);
      if (node.raft === null) continue;
      node.raft.step(m);
      this.#process(node);
    }
    for (const node of shuffled(p, this.#nodes)) {
      if (node.raft === null) continue;
      node.raft.tick(this.#now);
      this.#process(node);
    }
    if (p.next() < (this.#faulty ? this.#proposeRate : 0.2)) this.#propose();
    if (p.next() < 0.3) this.#read();
    if (this.#faulty && p.next() < 0.003) this.#transfer();
    if (this.#faulty && this.#opts.membership && p.next() < 0.01) this.#changeMembers();
  }

  // ------------------------------------------------------------ clients

  #propose(): void {
    // A client asks a random node and follows its leader hint, as a
    // forwarding follower would.
    let node = pickOne(this.#prng, this.#nodes);
    const hint = node.raft?.leader;
    if (hint !== null && hint !== undefined) node = this.#node(hint);
    if (node.raft === null) return;
    try {
      node.raft.propose(encoder.encode(`cmd-${this.#opts.seed}-${this.#proposals++}`), this.#now);
      this.#process(node);
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
  }

  #read(): void {
    const node = pickOne(this.#prng, this.#nodes);
    if (node.raft === null) return;
    const context = `read-${this.#readSeq++}`;
    try {
      node.raft.readIndex(context);
    } catch (e) {
      if (!(e instanceof NotLeaderError)) throw e;
      return;
    }
    this.#reads.set(context, { node: node.id, mustSee: this.#checker.maxCommitted });
    this.#process(node);
  }

  /** A client asks the leader to add, remove or promote a member. */
  #changeMembers(): void {
    const p = this.#prng;
    let node = pickOne(p, this.#nodes);
    const hint = node.raft?.leader;
    if (hint !== null && hint !== undefined) node = this.#node(hint);
    const raft = node.raft;
    if (raft === null || raft.role !== "leader") return;
    const members = raft.log.config().config.members;
    const outside = this.#nodes.filter((n) => !members.some((m) => m.id === n.id));
    const learners = members.filter((m) => !m.voter);
    const r = p.next();
    let change: MembershipChange;
    if (r < 0.4 && outside.length > 0) {
      change = { type: "add", member: { id: pickOne(p, outside).id, voter: false } };
    } else if (r < 0.8) change = { type: "remove", id: pickOne(p, members).id };
    else if (learners.length > 0) change = { type: "promote", id: pickOne(p, learners).id };
    else return;
    try {
      raft.changeMembers(change, this.#now);
      this.#process(node);
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
  }

  #transfer(): void {
    const node = pickOne(this.#prng, this.#nodes);
    if (node.raft === null) return;
    try {
      node.raft.transferLeader(pickOne(this.#prng, this.#nodes).id);
      this.#process(node);
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
  }

  // ------------------------------------------------------------ nodes

  /**
   * Starts (or restarts) a node on its durable state. Like a real node, one
   * whose storage is still empty (it crashed before its first write) starts
   * the cluster again; with state, the core ignores `bootstrap`.
   */
  #start(node: SimNode): void {
    const d = node.durable;
    const Core = this.#opts.core ?? Raft;
    node.raft = new Core({
      id: node.id,
      prng: seededPrng(
        this.#opts.seed * 31 + node.id.length * 7 + node.restarts * 1009 + node.id.charCodeAt(1),
      ),
      electionTicks: this.#electionTicks,
      preVote: this.#preVote,
      checkQuorum: this.#checkQuorum,
      maxMsgBytes: this.#maxMsgBytes,
      maxInflight: this.#maxInflight,
      hardState: d.hardState,
      entries: d.entries,
      ...(d.snapshot === null ? {} : {
        snapshot: d.snapshot.meta,
        snapshotData: d.snapshot.data,
        applied: d.snapshot.meta.index,
      }),
      ...(this.#founders.has(node.id) ? { bootstrap: this.#bootstrap } : {}),
    });
    node.applied = d.snapshot?.meta.index ?? 0;
    node.checkedCommit = 0;
    this.#process(node);
  }

  #crash(node: SimNode, downTicks: number): false {
    node.raft = null;
    node.writing = null;
    node.restarts++;
    node.restartAt = this.#now + downTicks;
    // Reads pending on a crashed node are lost with it.
    for (const [ctx, r] of this.#reads) if (r.node === node.id) this.#reads.delete(ctx);
    return false;
  }

  /**
   * Runs the driver loop of one node until it has nothing ready, or until a
   * batch waits on its (simulated, slow) disk write.
   */
  #process(node: SimNode): void {
    this.#observe(node);
    for (let guard = 0; guard < 100; guard++) {
      const raft = node.raft;
      if (raft === null || node.writing !== null || !raft.hasReady()) return;
      const rd = raft.ready();
      // A leader's messages depend on no durable state of its own (its
      // term and vote were persisted before it could win), so it may send
      // them while its write is in flight. Anything else must wait.
      const d = node.durable.hardState;
      const termDurable = rd.hardState === null ||
        (rd.hardState.term === d.term && rd.hardState.vote === d.vote);
      const sent = this.#opts.bug === "ackBeforePersist" ||
        (this.#leaderSendsFirst && raft.role === "leader" && termDurable);
      if (sent) { for (const m of rd.messages) this.#net.send(m, this.#now); }
      if (this.#diskTicks > 0) {
        // Each write takes its own time, so a leader's disk may lag its followers'.
        node.writing = { rd, sent, doneAt: this.#now + this.#diskDelay() };
        return;
      }
      if (!this.#complete(node, rd, sent)) return;
    }
    throw new Violation("driver loop", `${node.id} kept producing ready batches`);
  }

  /** How long one write takes: usually no time, sometimes a stall. */
  #diskDelay(): number {
    if (this.#prng.next() >= this.#diskStallRate) return 0;
    return 1 + Math.floor(this.#prng.next() * this.#diskTicks);
  }

  /** Finishes writes whose disk time is up. */
  #finishWrites(): void {
    for (const node of this.#nodes) {
      const w = node.writing;
      if (w === null || w.doneAt > this.#now) continue;
      node.writing = null;
      if (this.#complete(node, w.rd, w.sent)) this.#process(node);
    }
  }

  /**
   * Completes one batch: persist, send, apply, release reads, advance. A
   * seeded crash may strike before the write, after it, or part-way through
   * sending.
   *
   * @returns False when the node crashed.
   */
  #complete(node: SimNode, rd: Ready, sent: boolean): boolean {
    const raft = node.raft!;
    const crashAt = this.#faulty && this.#prng.next() < this.#crashInReadyRate
      ? Math.floor(this.#prng.next() * 3)
      : -1;
    const downTicks = 1 + Math.floor(this.#prng.next() * 20);
    if (crashAt === 0) return this.#crash(node, downTicks);
    if (rd.snapshot !== null) {
      // The snapshot replaces the whole log, durably, before anything else.
      node.durable.snapshot = rd.snapshot;
      node.durable.entries = [];
      this.#checker.snapshotInstalled(node.id, rd.snapshot.meta, rd.snapshot.data);
      this.#snapshotsInstalled++;
      node.applied = rd.snapshot.meta.index;
    }
    this.#persist(node, rd.hardState, rd.entries);
    if (crashAt === 1) return this.#crash(node, downTicks);
    if (!sent) {
      const partial = crashAt === 2
        ? Math.floor(this.#prng.next() * (rd.messages.length + 1))
        : Infinity;
      for (const [i, m] of rd.messages.entries()) {
        if (i >= partial) return this.#crash(node, downTicks);
        this.#net.send(m, this.#now);
      }
    }
    for (const e of rd.committed) {
      this.#checker.applied(node.id, node.applied + 1, e);
      node.applied = e.index;
    }
    for (const rs of rd.readStates) {
      const pending = this.#reads.get(rs.context);
      if (pending === undefined) continue;
      this.#checker.readReleased(node.id, rs.index, pending.mustSee);
      this.#reads.delete(rs.context);
    }
    raft.advance();
    this.#observe(node);
    if (raft.log.applied > raft.snapshot.index && this.#prng.next() < this.#compactRate) {
      this.#compact(node);
    }
    return true;
  }

  /** Snapshots a node at its applied index (the "state machine" is the applied index) and compacts its log. */
  #compact(node: SimNode): void {
    const raft = node.raft!;
    const data = simSnapshotData(raft.log.applied);
    const meta = raft.compact(raft.log.applied, data, { keepEntries: this.#keepEntries });
    const d = node.durable;
    d.entries = d.entries.filter((e) => e.index > meta.index);
    d.snapshot = { meta, data };
  }

  /** Checks what a node's last input changed: leadership and commits. */
  #observe(node: SimNode): void {
    const raft = node.raft;
    if (raft === null) return;
    // Nobody here forges messages: a refused one means some node sent what
    // no correct node sends.
    const refused = raft.status().refusedMessages;
    if (refused > 0) {
      throw new Violation("impossible message", `${raft.id} refused ${refused} message(s)`);
    }
    if (raft.role === "leader" && this.#checker.leaders.get(raft.term) !== raft.id) {
      this.#checker.becameLeader(raft);
    }
    if (raft.role === "leader" && this.#opts.membership) this.#checker.oneChangeAtATime(raft);
    if (raft.log.committed > node.checkedCommit) {
      this.#checker.committedUpTo(raft, node.checkedCommit);
      for (let i = node.checkedCommit + 1; i <= raft.log.committed; i++) {
        const e = raft.log.entry(i);
        if (e?.kind === "config" && !this.#configsChecked.has(e.hash)) {
          this.#checkConfigCommit(raft, e);
        }
      }
      node.checkedCommit = raft.log.committed;
    }
  }

  /**
   * A configuration commits safely: it differs from the one before by at
   * most one voter, and the nodes that durably hold it are a majority of
   * the new voters and meet every majority of the old ones (for an odd old
   * size, that is a majority of it too).
   */
  #checkConfigCommit(raft: Raft, e: Entry): void {
    this.#configsChecked.add(e.hash);
    let before = e.index - 1;
    while (before > 0 && raft.log.entry(before)?.kind !== "config") before--;
    if (before === 0) return;
    const oldVoters = voterIds(decodeConfig(raft.log.entry(before)!.data));
    const newVoters = voterIds(decodeConfig(e.data));
    const changed = oldVoters.filter((v) => !newVoters.includes(v)).length +
      newVoters.filter((v) => !oldVoters.includes(v)).length;
    this.#checker.configCommitted(e.index, {
      changed,
      oldVoters: oldVoters.length,
      newVoters: newVoters.length,
      oldHolders: oldVoters.filter((id) => this.#holds(id, e)).length,
      newHolders: newVoters.filter((id) => this.#holds(id, e)).length,
    });
  }

  /** Whether node `id` durably holds entry `e`. */
  #holds(id: string, e: Entry): boolean {
    const d = this.#node(id).durable;
    return d.entries[e.index - 1 - (d.snapshot?.meta.index ?? 0)]?.hash === e.hash;
  }

  #persist(node: SimNode, hard: HardState | null, entries: readonly Entry[]): void {
    const d = node.durable;
    if (hard !== null) {
      d.hardState = this.#opts.bug === "forgetVote" ? { ...hard, vote: null } : hard;
    }
    const first = entries[0];
    if (first === undefined) return;
    const base = d.snapshot?.meta.index ?? 0;
    d.entries.length = Math.min(d.entries.length, first.index - 1 - base);
    this.#checker.persisted(
      node.id,
      d.entries.at(-1)?.hash ?? d.snapshot?.meta.hash ?? GENESIS_HASH,
      entries,
    );
    d.entries.push(...entries);
  }

  // ------------------------------------------------------------ faults

  #partition(): void {
    const p = this.#prng;
    const ids = this.#nodes.map((n) => n.id);
    const side = new Set(ids.filter(() => p.next() < 0.5));
    const oneWay = p.next() < 0.3;
    for (const a of ids) {
      for (const b of ids) {
        if (side.has(a) && !side.has(b)) {
          this.#net.block(a, b);
          if (!oneWay) this.#net.block(b, a);
        }
      }
    }
    this.#partitionEndsAt = this.#now + 5 + Math.floor(p.next() * this.#partitionTicks);
  }

  // ------------------------------------------------------------ queries

  #node(id: string): SimNode {
    const node = this.#nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`No node ${id}`);
    return node;
  }

  /** The leader every member of its configuration follows, if there is one. */
  #stableLeader(): Raft | null {
    let leader: Raft | null = null;
    for (const node of this.#nodes) {
      const raft = node.raft;
      if (raft?.role === "leader" && (leader === null || raft.term > leader.term)) leader = raft;
    }
    if (leader === null) return null;
    for (const node of this.#members(leader)) {
      if (node.raft?.leader !== leader.id || node.raft.term !== leader.term) return null;
    }
    return leader;
  }

  /** The nodes in `leader`'s configuration (all nodes without membership changes). */
  #members(leader: Raft): SimNode[] {
    const ids = new Set(leader.log.config().config.members.map((m) => m.id));
    return this.#nodes.filter((n) => ids.has(n.id));
  }

  /** One line on every node, for failure reports. */
  #describe(): string {
    return this.#nodes.map((n) => {
      const r = n.raft;
      if (r === null) return `${n.id} down`;
      const st = r.status();
      const followers = [...r.followers()].map(([id, f]) => `${id}:${JSON.stringify(f)}`).join(",");
      const config = st.config.members.map((m) => m.id + (m.voter ? "" : "(l)")).join(",");
      return `${n.id} ${st.role} t${st.term} lead=${st.leader} last=${st.lastIndex} commit=${st.commitIndex} ` +
        `applied=${n.applied} config@${st.configIndex}=[${config}] ${followers}`;
    }).join("; ");
  }

  #allApplied(leader: Raft, hashes: readonly string[]): boolean {
    return this.#members(leader).every((node) => {
      const raft = node.raft;
      if (raft === null) return false;
      // By the committed index: an applied entry may be compacted away.
      return hashes.every((h) => {
        const index = this.#checker.committedIndex(h);
        return index !== undefined && index <= node.applied;
      });
    });
  }
}

function pick<T>(p: Prng, options: readonly T[]): T {
  return options[Math.floor(p.next() * options.length)]!;
}

function pickOne<T>(p: Prng, items: readonly T[]): T {
  return pick(p, items);
}

function shuffled<T>(p: Prng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(p.next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
