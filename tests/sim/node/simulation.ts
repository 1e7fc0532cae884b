/**
 * The node simulator: real `WaterCraftNode`s (the driver users run, over
 * the pure core) on a simulated network, disks, clocks and state machines,
 * all driven by one seeded {@linkcode SimScheduler}. A seed draws the
 * options (heartbeat, election timeout, snapshot frequency, message size),
 * the faults (loss, duplication, delay, reordering, partitions, corrupted
 * entries, crashes that interrupt writes, pauses, clock skew) and a
 * schedule (random, or one of the adversarial ones), while clients write
 * and read through the node API.
 *
 * Each node's disk is, by default, the real file adapter on a simulated
 * file system (`file_disks.ts`): crashes are power losses or killed
 * processes, fsyncs fail and disks fill (the node stops itself and is
 * restarted, as an operator would), and bits flip at rest on a node that is
 * down (its next start refuses; the node is then lost for good: at most one
 * per run, and only in runs that keep their membership, so that a majority
 * remains).
 *
 * A run has four phases: a faulty one; a healed one, in which the cluster
 * must commit a write while clients keep writing, every member must catch
 * up under that load, and then converge once they stop; a crash of every
 * node at once and a restart, after which every key is read (acknowledged
 * writes must have survived); and a final convergence check. The checkers of
 * `invariants.ts` watch every event, and the whole client history must be
 * linearizable.
 *
 * @module
 */

import { type Configuration, type Member, type Prng, seededPrng } from "../../../src/core/mod.ts";
import { WaterCraftNode } from "../../../src/node/node.ts";
import { Clients, type ClientTarget } from "./clients.ts";
import { type CheckedNode, NodeInvariants, NodeViolation } from "./invariants.ts";
import { checkLinearizable } from "./linearizability.ts";
import { SimScheduler } from "./scheduler.ts";
import { type ClockSkew, simClock } from "./sim_clock.ts";
import { type NetworkFaults, SimNetwork } from "./sim_network.ts";
import { fileDisks } from "./file_disks.ts";
import { SimStateMachine, type SnapshotTiming } from "./sim_state_machine.ts";
import {
  type CrashKind,
  type DiskFaults,
  memoryDisks,
  type NodeDisk,
  type NodeDiskFactory,
} from "./sim_storage.ts";

/** The node class under test: the real one, or a mutant built by `mutants.ts`. */
export type NodeClass = typeof WaterCraftNode;

/**
 * Schedules: `random` draws faults at random; `changes` starts with 4 or 6
 * voters and changes the membership right after elections, crashing new
 * leaders before they replicate and moving leadership during changes;
 * `pauses` pauses nodes for long and skews clocks hard; `snapshots` takes
 * and installs snapshots all the time, with slow snapshots of the state
 * machine; `errata` replays the membership-change pitfall of the Raft
 * dissertation's errata step by step.
 */
export type ScheduleName = "random" | "changes" | "pauses" | "snapshots" | "errata";

/** Every schedule, in the order seeds cycle through them. */
export const SCHEDULES: readonly ScheduleName[] = [
  "random",
  "changes",
  "snapshots",
  "pauses",
  "random",
  "errata",
];

/** What one simulated run does. */
export interface NodeSimOptions {
  /** Decides everything. */
  readonly seed: number;
  /** Voters at the start (the `changes` schedule adds one). */
  readonly nodes: number;
  /** The schedule; default: drawn from the seed. */
  readonly schedule?: ScheduleName;
  /** The node class; default the real one. */
  readonly nodeClass?: NodeClass;
  /** A planted disk bug: saves acknowledged without being written. */
  readonly skipSaveRate?: number;
  /** Length of the faulty phase, in election timeouts. Default 30. */
  readonly faultyElections?: number;
  /**
   * The disks: `file`, the real file adapter on a simulated file system with
   * disk faults (default), or `memory`, a memory-backed storage whose writes
   * land whole or not at all (faster; no disk faults).
   */
  readonly storage?: "file" | "memory";
}

/** What a run found. */
export interface NodeSimResult {
  /** The seed. */
  seed: number;
  /** The schedule it ran. */
  schedule: ScheduleName;
  /** The first safety violation, if any. */
  violation: string | null;
  /** Why the healed cluster failed to make progress, if it did. */
  livenessFailure: string | null;
  /** Hash of every event released and every answer seen: equal runs, equal hashes. */
  trace: string;
  /** Events released. */
  events: number;
  /** Simulated time at the end, ms. */
  simMs: number;
  /** Operations in the checked history. */
  ops: number;
  /** Writes acknowledged. */
  acknowledged: number;
  /** Writes whose outcome stayed unknown. */
  unknown: number;
  /** Keys whose linearizability search ran out of budget. */
  inconclusive: number;
  /** Highest index committed. */
  committed: number;
  /** Crashes (every node of the crash-all phase included). */
  crashes: number;
  /** Snapshots that reached a disk (taken or installed). */
  snapshotsSaved: number;
  /** Entries corrupted in flight. */
  corrupted: number;
  /** Committed configurations after the first. */
  configChanges: number;
  /** Disk faults injected: failed fsyncs, disks filled, bits flipped at rest. */
  diskFaults: number;
  /** Nodes that stopped themselves on a disk fault (fail-stop) and were restarted. */
  faultStops: number;
  /** Nodes that refused to start on a corrupt log and were kept down for good. */
  lost: number;
}

/** One node across its lives. */
interface Slot {
  readonly id: string;
  readonly url: string;
  readonly disk: NodeDisk;
  readonly skew: ClockSkew;
  readonly founder: boolean;
  lives: number;
  life: string;
  node: WaterCraftNode | null;
  sm: SimStateMachine | null;
  cut: (() => void) | null;
  /** Removed from the cluster, or never to run again. */
  retired: boolean;
  /** Its log was found corrupt: down for good, though still a member. */
  lost: boolean;
  /** A restart is booked. */
  restarting: boolean;
}

/** Options drawn from the seed. */
interface Drawn {
  heartbeatMs: number;
  electionMs: number;
  snapshotEvery: number;
  snapshotKeepEntries: number;
  maxMsgBytes: number | undefined;
  requestTimeoutMs: number;
  net: NetworkFaults;
  disk: DiskFaults;
  segmentBytes: number;
  syncFailureRate: number;
  fillRate: number;
  flipRate: number;
  verifyHashes: boolean;
  snapshotTiming: SnapshotTiming;
  crashRate: number;
  pauseRate: number;
  partitionRate: number;
  changeRate: number;
  transferRate: number;
  skewRate: number;
}

/**
 * Runs one seed of the node simulator.
 *
 * @param options The seed and what to run.
 * @returns What it found.
 */
export async function runNodeSeed(options: NodeSimOptions): Promise<NodeSimResult> {
  return await new NodeSimulation(options).run();
}

function pick<T>(p: Prng, items: readonly T[]): T {
  return items[Math.floor(p.next() * items.length)]!;
}

function between(p: Prng, lo: number, hi: number): number {
  return lo + p.next() * (hi - lo);
}

class NodeSimulation {
  readonly #opts: NodeSimOptions;
  readonly #schedule: ScheduleName;
  readonly #prng: Prng;
  readonly #scheduler: SimScheduler;
  readonly #net: SimNetwork;
  readonly #disks: NodeDiskFactory;
  readonly #slots: Slot[] = [];
  readonly #checks: NodeInvariants;
  readonly #clients: Clients;
  readonly #d: Drawn;
  readonly #nodeClass: NodeClass;
  readonly #bootstrap: Configuration;
  #violation: string | null = null;
  #crashes = 0;
  #lastLeaderTerm = 0;
  #faulty = true;
  #errata: ErrataScript | null = null;
  #faultStops = 0;
  #lost = 0;
  /** A bit was flipped: no other may be, lest two nodes be lost. */
  #flipped = false;

  constructor(opts: NodeSimOptions) {
    this.#opts = opts;
    this.#prng = seededPrng(opts.seed);
    const p = this.#prng;
    this.#schedule = opts.schedule ?? SCHEDULES[opts.seed % SCHEDULES.length]!;
    this.#scheduler = new SimScheduler(seededPrng(opts.seed ^ 0x7e57));
    this.#nodeClass = opts.nodeClass ?? WaterCraftNode;
    this.#d = this.#draw(p);
    this.#net = new SimNetwork(this.#scheduler, seededPrng(opts.seed ^ 0x0e7), this.#d.net);
    // The errata needs an even number of voters (four) beside its learner.
    const voters = this.#schedule === "changes"
      ? opts.nodes + 1
      : this.#schedule === "errata"
      ? 4
      : opts.nodes;
    const learners = this.#schedule === "errata" ? 1 : 0;
    const ids = Array.from({ length: voters + learners }, (_, i) => `n${i + 1}`);
    const members: Member[] = ids.map((id, i) => ({ id, voter: i < voters, url: urlOf(id) }));
    this.#bootstrap = { members };
    this.#checks = new NodeInvariants(() => this.#slots.map((s) => this.#checked(s)), {
      members,
    });
    const diskPrng = seededPrng(opts.seed ^ 0xd15c);
    const skip = opts.skipSaveRate === undefined ? {} : { skipSaveRate: opts.skipSaveRate };
    this.#disks = opts.storage === "memory"
      ? memoryDisks(this.#scheduler, diskPrng, { ...this.#d.disk, ...skip }, this.#checks)
      : fileDisks(this.#scheduler, diskPrng, {
        seed: opts.seed ^ 0xf11e,
        // A save is a write and an fdatasync: two operations.
        minOpMs: this.#d.disk.minWriteMs / 2,
        maxOpMs: this.#d.disk.maxWriteMs / 2,
        segmentBytes: this.#d.segmentBytes,
        syncFailureRate: this.#d.syncFailureRate,
        ...skip,
      }, this.#checks);
    this.#net.watch((m) => {
      try {
        this.#checks.sent(m);
      } catch (e) {
        this.#fail(e);
      }
    });
    for (const id of ids) this.#addSlot(id, true);
    const attemptMs = this.#d.requestTimeoutMs;
    this.#clients = new Clients({
      scheduler: this.#scheduler,
      prng: seededPrng(opts.seed ^ 0xc11e),
      nodes: () => this.#targets(),
      undocumented: (detail) => this.#fail(new NodeViolation("documented errors", detail)),
    }, {
      clients: pick(p, [2, 4, 8]),
      keys: ["a", "b", "c"].slice(0, pick(p, [1, 2, 3])),
      attemptMs,
      attempts: 3,
      thinkMs: this.#d.heartbeatMs * pick(p, [0.5, 2, 6]),
    });
  }

  #draw(p: Prng): Drawn {
    const schedule = this.#schedule;
    const heartbeatMs = pick(p, [10, 20, 50]);
    const electionMs = heartbeatMs * pick(p, [5, 8, 12]);
    const snapshots = schedule === "snapshots";
    const calm = schedule === "errata";
    const corruptRate = calm ? 0 : pick(p, [0, 0.01, 0.05]);
    const changeRate = schedule === "changes" ? 0.15 : calm ? 0 : pick(p, [0, 0, 0.03]);
    return {
      heartbeatMs,
      electionMs,
      snapshotEvery: snapshots ? pick(p, [1, 2, 3, 5]) : pick(p, [4, 16, 64, 10_000]),
      snapshotKeepEntries: snapshots ? pick(p, [0, 0, 1]) : pick(p, [0, 2, 20, 1000]),
      maxMsgBytes: pick(p, [undefined, 1024, 4096]),
      requestTimeoutMs: electionMs * pick(p, [2, 4]),
      net: {
        lossRate: calm ? 0 : pick(p, [0, 0.01, 0.05, 0.15]),
        duplicateRate: calm ? 0 : pick(p, [0, 0.02, 0.1]),
        minDelayMs: 0.1,
        maxDelayMs: heartbeatMs * (calm ? 0.2 : pick(p, [0.1, 0.5, 1, 3])),
        fifo: p.next() < 0.5,
        corruptRate,
      },
      disk: {
        minWriteMs: 0.05,
        maxWriteMs: heartbeatMs * pick(p, [0.05, 0.3, 1]),
        landsOnCrashRate: 0.5,
      },
      segmentBytes: pick(p, [2048, 16_384, 1 << 20]),
      syncFailureRate: calm ? 0 : pick(p, [0, 0, 0.001, 0.005]),
      fillRate: calm ? 0 : pick(p, [0, 0, 0.02, 0.05]),
      flipRate: pick(p, [0, 0.05, 0.3]),
      // Without the check a corrupted entry would be taken: only on a clean network.
      verifyHashes: corruptRate > 0 || p.next() < 0.7,
      snapshotTiming: {
        immediateRate: snapshots ? pick(p, [0, 0.3]) : pick(p, [1, 0.5, 0]),
        maxMs: heartbeatMs * pick(p, [0.5, 2, 5]),
      },
      crashRate: calm ? 0 : pick(p, [0, 0.03, 0.1]),
      pauseRate: calm ? 0 : schedule === "pauses" ? pick(p, [0.1, 0.2]) : pick(p, [0, 0.02, 0.05]),
      partitionRate: calm ? 0 : pick(p, [0, 0.05, 0.15]),
      changeRate,
      transferRate: schedule === "changes" ? 0.1 : calm ? 0 : pick(p, [0, 0.02]),
      skewRate: schedule === "pauses" ? 0.25 : pick(p, [0, 0.01, 0.05]),
    };
  }

  // ------------------------------------------------------------ phases

  async run(): Promise<NodeSimResult> {
    const s = this.#scheduler;
    const d = this.#d;
    let livenessFailure: string | null = null;
    try {
      s.at(0, "boot", () => {
        for (const slot of this.#slots) this.#start(slot);
      });
      s.at(d.electionMs, "clients start", () => this.#clients.start());
      if (this.#schedule === "errata") this.#errata = new ErrataScript(this);
      else this.#chaos();
      const faultyMs = (this.#opts.faultyElections ?? 30) * d.electionMs;
      await this.#runTo(faultyMs);
      if (this.#violation === null) livenessFailure = await this.#healAndConverge("healed");
      if (this.#violation === null && livenessFailure === null) {
        livenessFailure = await this.#crashAllAndRecover();
      }
      if (this.#violation === null && livenessFailure === null) {
        livenessFailure = await this.#converge("after the crash of every node", false);
      }
      this.#clients.stop();
      // Let the last operations finish, with the cluster whole.
      await this.#runTo(s.now + 3 * d.requestTimeoutMs, () => this.#clients.open === 0);
    } catch (e) {
      this.#fail(e);
    }
    let inconclusive = 0;
    if (this.#violation === null) {
      const lin = checkLinearizable(this.#clients.history);
      inconclusive = lin.inconclusive.length;
      if (!lin.ok) {
        const f = lin.failure!;
        this.#violation =
          `linearizability: key ${f.key} has no linearization (${f.ops.length} ops)`;
      }
    }
    const history = this.#clients.history;
    return {
      seed: this.#opts.seed,
      schedule: this.#schedule,
      violation: this.#violation,
      livenessFailure: this.#violation === null ? livenessFailure : null,
      trace: s.traceHash,
      events: s.released,
      simMs: Math.round(s.now),
      ops: history.length,
      acknowledged: this.#clients.acknowledged,
      unknown: history.filter((h) => h.output === undefined).length,
      inconclusive,
      committed: this.#checks.maxCommitted,
      crashes: this.#crashes,
      snapshotsSaved: this.#checks.snapshotsSaved,
      corrupted: this.#net.corrupted,
      configChanges: this.#configChanges(),
      diskFaults: this.#slots.reduce((sum, slot) => {
        const c = slot.disk.faults?.counts;
        return sum + (c === undefined ? 0 : c.failedSyncs + c.fills + c.flips);
      }, 0),
      faultStops: this.#faultStops,
      lost: this.#lost,
    };
  }

  #configChanges(): number {
    return this.#committedConfigs;
  }

  #committedConfigs = 0;

  /** Runs events until `until` (or `done()`), checking after each. */
  async #runTo(until: number, done: () => boolean = () => false): Promise<boolean> {
    let finished = false;
    await this.#scheduler.runUntil(until, () => {
      if (this.#violation !== null) return true;
      try {
        this.#afterEvent();
      } catch (e) {
        this.#fail(e);
        return true;
      }
      finished = done();
      return finished;
    });
    return finished;
  }

  #afterEvent(): void {
    const lives = this.#slots.filter((s) => s.node !== null).map((s) => ({
      life: s.life,
      node: this.#checked(s),
    }));
    const before = this.#checks.config;
    this.#checks.afterEvent(lives);
    if (this.#checks.config !== before) this.#committedConfigs++;
    for (const s of this.#slots) {
      const raft = s.node?.raft;
      if (raft !== undefined && raft.role === "leader" && raft.term > this.#lastLeaderTerm) {
        this.#lastLeaderTerm = raft.term;
        this.#onNewLeader(s);
      }
    }
    this.#errata?.step();
  }

  /**
   * Heals every fault. Clients go on writing: the cluster must commit a
   * probe write and every member must catch up with it under that load
   * (with snapshots every few entries, a follower that needs a snapshot of
   * many chunks must still finish one); then clients stop and the members
   * must converge.
   */
  async #healAndConverge(phase: string): Promise<string | null> {
    this.#faulty = false;
    const d = this.#d;
    this.#net.heal();
    this.#net.faults = {
      lossRate: 0,
      duplicateRate: 0,
      minDelayMs: 0.1,
      maxDelayMs: Math.min(d.net.maxDelayMs, d.electionMs / 8),
      fifo: true,
      corruptRate: 0,
    };
    for (const slot of this.#slots) {
      const faults = slot.disk.faults;
      if (faults !== null) {
        faults.syncFailureRate = 0;
        faults.freeSpace();
      }
      if (this.#scheduler.paused(slot.id)) this.#scheduler.resume(slot.id);
      if (!slot.retired && slot.node === null) this.#start(slot);
    }
    const underLoad = await this.#converge(`${phase}, under load`, true);
    this.#clients.stop();
    if (underLoad !== null || this.#violation !== null) return underLoad;
    return await this.#converge(phase, false);
  }

  /**
   * Waits until a probe write commits and then, with `underLoad`, until every
   * member has applied what was committed when the probe was (clients still
   * write); without, until every member has applied as far as the leader
   * committed, with equal heads and equal states.
   */
  async #converge(phase: string, underLoad: boolean): Promise<string | null> {
    const d = this.#d;
    const s = this.#scheduler;
    let probed = false;
    const probe = this.#probe().then(() => probed = true);
    const budgetMs = 60 * d.electionMs + 40 * d.requestTimeoutMs;
    const deadline = s.now + budgetMs;
    await this.#runTo(deadline, () => probed);
    void probe;
    if (this.#violation !== null) return null;
    if (!probed) return `${phase}: no write committed within ${budgetMs} ms (${this.#describe()})`;
    // Members are those of the leader's configuration; others retire.
    const settledBy = s.now + 30 * d.electionMs;
    if (underLoad) {
      const target = this.#leader()?.node?.raft.log.committed ?? 0;
      const caughtUp = await this.#runTo(settledBy, () => this.#caughtUp(target));
      if (this.#violation !== null) return null;
      if (!caughtUp) return `${phase}: members did not reach ${target} (${this.#describe()})`;
      return null;
    }
    const converged = await this.#runTo(settledBy, () => this.#converged());
    if (this.#violation !== null) return null;
    if (!converged) return `${phase}: members did not converge (${this.#describe()})`;
    return null;
  }

  /** Writes one probe, retrying until it is acknowledged (bounded). */
  async #probe(): Promise<void> {
    for (let attempt = 0; attempt < 40; attempt++) {
      const before = this.#clients.acknowledged;
      await this.#clients.runOne(1000, {
        kind: "put",
        key: "probe",
        value: 1_000_000_000 + this.#scheduler.released,
      });
      if (this.#clients.acknowledged > before) return;
      await this.#backOff();
    }
  }

  /**
   * Retires the nodes out of the leader's and the committed configuration
   * and starts its members that are down.
   *
   * @returns The ids of the leader's configuration.
   */
  #syncMembers(leader: Slot): Set<string> {
    const raft = leader.node!.raft;
    const members = new Set(raft.log.config().config.members.map((m) => m.id));
    const committed = new Set(this.#checks.config.members.map((m) => m.id));
    for (const slot of this.#slots) {
      // Retired only once out of both the committed and the leader's
      // configuration; back when a removal that never committed was undone.
      if (!members.has(slot.id) && !committed.has(slot.id) && !slot.retired) this.#retire(slot);
      if (members.has(slot.id) && slot.retired) slot.retired = false;
      if (members.has(slot.id) && slot.node === null && !slot.restarting) this.#start(slot);
    }
    return members;
  }

  /** Whether every member that is not lost has applied up to `target`. */
  #caughtUp(target: number): boolean {
    const leader = this.#leader();
    if (leader === null) return false;
    const members = this.#syncMembers(leader);
    return this.#slots.every((slot) =>
      !members.has(slot.id) || slot.lost ||
      (slot.node?.raft !== undefined && slot.node.head().index >= target)
    );
  }

  /** Waits a little before a retry, as a client refused at once (503) does. */
  #backOff(): Promise<void> {
    return new Promise((resolve) => this.#scheduler.at(this.#d.heartbeatMs, "back off", resolve));
  }

  #converged(): boolean {
    const leader = this.#leader();
    if (leader === null) return false;
    const raft = leader.node!.raft;
    const members = this.#syncMembers(leader);
    const target = raft.log.committed;
    const heads = new Set<string>();
    const states = new Set<string>();
    for (const slot of this.#slots) {
      if (!members.has(slot.id) || slot.lost) continue;
      const node = slot.node;
      if (node === null || node.raft === undefined) return false;
      const head = node.head();
      if (head.index !== target) return false;
      heads.add(head.head);
      states.add(new TextDecoder().decode(slot.sm!.kvSnapshot()));
    }
    if (heads.size > 1) throw new NodeViolation("equal heads", `members differ at ${target}`);
    if (states.size > 1) {
      throw new NodeViolation("state machine safety", `members' states differ at ${target}`);
    }
    return true;
  }

  /** Crashes every node at once, restarts them, and reads every key. */
  async #crashAllAndRecover(): Promise<string | null> {
    const s = this.#scheduler;
    const d = this.#d;
    s.at(0, "crash all", () => {
      for (const slot of this.#slots) {
        if (slot.node !== null) this.#crash(slot, null, "power");
        // Every machine loses power, those whose node was down too.
        else if (!slot.retired && !slot.lost) slot.disk.crash("power");
      }
      for (const slot of this.#slots) {
        if (slot.retired || slot.lost) continue;
        slot.restarting = true;
        s.at(between(this.#prng, 0, d.electionMs), `restart ${slot.id}`, () => this.#start(slot));
      }
    });
    await this.#runTo(s.now + 1);
    let read = 0;
    const keys = ["a", "b", "c", "probe"];
    const budgetMs = 60 * d.electionMs + 40 * d.requestTimeoutMs;
    const deadline = s.now + budgetMs;
    // Retried until the budget runs out, not for a number of attempts: a
    // node replaying a large log refuses reads at once ("starting") for as
    // long as that takes. Each attempt waits at least a back-off, so the
    // count only guards the loop.
    const reads = keys.map(async (key, i) => {
      for (let attempt = 0; attempt < 100_000 && s.now < deadline; attempt++) {
        const before = this.#clients.reads;
        await this.#clients.runOne(1001 + i, { kind: "get", key });
        if (this.#clients.reads > before) {
          read++;
          return;
        }
        await this.#backOff();
      }
    });
    await this.#runTo(deadline, () => read === keys.length);
    void reads;
    if (this.#violation !== null) return null;
    if (read < keys.length) {
      return `after the crash of every node: only ${read} of ${keys.length} keys read (${this.#describe()})`;
    }
    return null;
  }

  // ------------------------------------------------------------ faults

  /** Books the next random fault, every half election timeout of the faulty phase. */
  #chaos(): void {
    const d = this.#d;
    this.#scheduler.at(d.electionMs / 2, "chaos", () => {
      if (!this.#faulty) return;
      this.#chaosStep();
      this.#chaos();
    });
  }

  #chaosStep(): void {
    const p = this.#prng;
    const d = this.#d;
    const s = this.#scheduler;
    const running = this.#slots.filter((x) => x.node !== null);
    if (running.length > 0 && p.next() < d.crashRate) {
      const slot = pick(p, running);
      this.#crash(slot, between(p, 0, 4 * d.electionMs), p.next() < 0.6 ? "power" : "process");
    }
    if (running.length > 0 && p.next() < d.fillRate) pick(p, running).disk.faults?.fill();
    this.#maybeFlipBit();
    const awake = running.filter((x) => x.node !== null && !s.paused(x.id));
    if (awake.length > 0 && p.next() < d.pauseRate) {
      const slot = pick(p, awake);
      s.pause(slot.id);
      s.at(between(p, 0.2, 6) * d.electionMs, `resume ${slot.id}`, () => s.resume(slot.id));
    }
    if (!this.#net.partitioned && p.next() < d.partitionRate) this.#partition();
    if (p.next() < d.changeRate) this.#changeMembers(null);
    if (p.next() < d.transferRate) this.#transfer();
  }

  /**
   * Flips a bit at rest on a node that is down, if losing it would leave a
   * majority of the voters: at most one node per run, with three voters or
   * more (Raft's guarantees hold through the loss of a minority's disks, no
   * further). Not in runs that change the membership: removals already
   * asked for may shrink the voters to two, one of them the lost node, and
   * no majority would remain (an operator would first replace the lost node).
   */
  #maybeFlipBit(): void {
    const p = this.#prng;
    if (this.#d.changeRate > 0 || this.#schedule === "errata") return;
    const down = this.#slots.filter((x) =>
      x.node === null && x.restarting && !x.retired && !x.lost && x.disk.faults !== null
    );
    if (down.length === 0 || !(p.next() < this.#d.flipRate)) return;
    const voters = this.#checks.config.members.filter((m) => m.voter).length;
    if (this.#lost > 0 || this.#flipped || voters < 3) return;
    if (pick(p, down).disk.faults!.flipBit()) this.#flipped = true;
  }

  #partition(): void {
    const p = this.#prng;
    const d = this.#d;
    const ids = this.#slots.filter((x) => !x.retired).map((x) => x.id);
    if (p.next() < 0.7) {
      const side = ids.filter(() => p.next() < 0.5);
      this.#net.partition(side, ids.filter((id) => !side.includes(id)));
    } else {
      // One-way: some links lose one direction only.
      for (let i = 0; i < 1 + Math.floor(p.next() * ids.length); i++) {
        this.#net.block(pick(p, ids), pick(p, ids));
      }
    }
    this.#scheduler.at(between(p, 1, 6) * d.electionMs, "heal partition", () => {
      if (this.#faulty) this.#net.heal();
    });
  }

  /** A membership change through any node, or through `via`. */
  #changeMembers(via: Slot | null): void {
    const p = this.#prng;
    const through = via ?? this.#randomRunning();
    if (through === null) return;
    const voters = this.#checks.config.members.filter((m) => m.voter).map((m) => m.id);
    const live = this.#slots.filter((x) => !x.retired);
    if (voters.length > 3 && (p.next() < 0.5 || live.length >= 8)) {
      const victim = pick(p, voters);
      through.node!.removeMember(victim).catch(() => {});
      return;
    }
    if (live.length >= 8) return;
    const id = `n${this.#slots.length + 1}`;
    const slot = this.#addSlot(id, false);
    this.#start(slot);
    through.node!.addMember({ id, url: slot.url }).catch(() => {});
  }

  #transfer(): void {
    const p = this.#prng;
    const through = this.#randomRunning();
    if (through === null) return;
    const voters = this.#checks.config.members.filter((m) => m.voter).map((m) => m.id);
    through.node!.transferLeader(pick(p, voters)).catch(() => {});
  }

  /** What a new leader meets in the `changes` schedule: a change at once, maybe a crash. */
  #onNewLeader(slot: Slot): void {
    if (this.#schedule !== "changes" || !this.#faulty) return;
    const p = this.#prng;
    const d = this.#d;
    if (p.next() < 0.5) this.#changeMembers(slot);
    if (p.next() < 0.2) this.#transfer();
    if (p.next() < 0.3) {
      const life = slot.life;
      this.#scheduler.at(between(p, 0, d.heartbeatMs), `crash new leader ${slot.id}`, () => {
        if (slot.life === life && slot.node !== null) {
          this.#crash(slot, between(p, 0, 3 * d.electionMs), "power");
        }
      });
    }
  }

  // ------------------------------------------------------------ nodes

  #addSlot(id: string, founder: boolean): Slot {
    const p = this.#prng;
    const skewed = p.next() < this.#d.skewRate * 4;
    const spread = this.#schedule === "pauses" ? 0.3 : 0.1;
    const slot: Slot = {
      id,
      url: urlOf(id),
      disk: this.#disks(id),
      skew: {
        rate: skewed ? between(p, 1 - spread, 1 + spread) : 1,
        offsetMs: Math.floor(p.next() * 1_000_000),
      },
      founder,
      lives: 0,
      life: "",
      node: null,
      sm: null,
      cut: null,
      retired: false,
      lost: false,
      restarting: false,
    };
    this.#slots.push(slot);
    return slot;
  }

  #start(slot: Slot): void {
    if (slot.node !== null || slot.retired || slot.lost) return;
    slot.restarting = false;
    slot.lives++;
    const life = `${slot.id}#${slot.lives}`;
    slot.life = life;
    const d = this.#d;
    const s = this.#scheduler;
    const { transport, crash } = this.#net.transport(slot.id, life);
    const smPrng = seededPrng(this.#opts.seed ^ hashString(life));
    const sm = new SimStateMachine({
      node: slot.id,
      life,
      scheduler: s,
      timing: d.snapshotTiming,
      violation: (detail) => this.#fail(new NodeViolation("apply once, in order", detail)),
      draw: () => smPrng.next(),
      // Half the lives snapshot in the background, as the built-in machine
      // does: the node goes on applying while their snapshots finish.
      background: smPrng.next() < 0.5,
    });
    const node = new this.#nodeClass({
      id: slot.id,
      url: slot.url,
      stateMachine: sm,
      transport,
      storage: slot.disk.open(life),
      clock: simClock(s, life, slot.id, slot.skew),
      seed: (this.#opts.seed * 31 + hashString(life)) >>> 0,
      insecure: true,
      heartbeatMs: d.heartbeatMs,
      electionMs: d.electionMs,
      requestTimeoutMs: d.requestTimeoutMs,
      snapshotEvery: d.snapshotEvery,
      snapshotKeepEntries: d.snapshotKeepEntries,
      verifyHashes: d.verifyHashes,
      ...(d.maxMsgBytes === undefined ? {} : { maxMsgBytes: d.maxMsgBytes }),
      ...(slot.founder ? { members: this.#bootstrap.members } : { bootstrap: false }),
      onError: (e) => this.#stopped(slot, life, e, "stopped"),
      onWarning: () => {},
    });
    slot.node = node;
    slot.sm = sm;
    slot.cut = crash;
    node.start().catch((e) => this.#stopped(slot, life, e, "start"));
  }

  /**
   * A node life stopped itself, or failed to start. An injected disk fault
   * explains it: a failed fsync or a full disk (the node must stop, and an
   * operator frees space and restarts it), or a corrupt log at start (the
   * node must refuse; it is lost for good). Anything else is a violation.
   */
  #stopped(slot: Slot, life: string, error: unknown, when: "stopped" | "start"): void {
    if (slot.life !== life) return;
    const cause = slot.disk.faults?.explain(error) ?? null;
    const d = this.#d;
    if (cause === "io") {
      this.#faultStops++;
      this.#scheduler.at(0, `fault stop ${slot.id}`, () => {
        if (slot.life !== life || slot.node === null) return;
        slot.disk.faults?.freeSpace();
        this.#crash(slot, between(this.#prng, 0.5, 3) * d.electionMs, "process");
      });
      return;
    }
    if (cause === "corrupt" && when === "start") {
      this.#lost++;
      this.#scheduler.at(0, `lost ${slot.id}`, () => {
        if (slot.life !== life) return;
        slot.lost = true;
        this.#crash(slot, null, "process");
      });
      return;
    }
    const property = when === "start" ? "node start" : "node stopped";
    this.#fail(new NodeViolation(property, `${life}: ${describeError(error)}`));
  }

  /**
   * Drops a node life without a graceful stop (a power loss or a killed
   * process); restarts it after `restartMs` unless null.
   */
  #crash(slot: Slot, restartMs: number | null, kind: CrashKind): void {
    if (slot.node === null) return;
    this.#crashes++;
    this.#scheduler.discard(slot.life);
    if (this.#scheduler.paused(slot.id)) this.#scheduler.resume(slot.id);
    slot.cut?.();
    slot.disk.crash(kind);
    slot.node = null;
    slot.sm = null;
    slot.cut = null;
    if (restartMs !== null && !slot.retired && !slot.lost) {
      slot.restarting = true;
      this.#scheduler.at(restartMs, `restart ${slot.id}`, () => this.#start(slot));
    }
  }

  #retire(slot: Slot): void {
    slot.retired = true;
    this.#crash(slot, null, "process");
  }

  #randomRunning(): Slot | null {
    const running = this.#slots.filter((x) => x.node !== null && !this.#scheduler.paused(x.id));
    return running.length === 0 ? null : pick(this.#prng, running);
  }

  #targets(): ClientTarget[] {
    return this.#slots
      .filter((x) => x.node !== null && !this.#scheduler.paused(x.id) && !x.retired)
      .map((x) => x.node! as ClientTarget);
  }

  #leader(): Slot | null {
    let best: Slot | null = null;
    for (const slot of this.#slots) {
      const raft = slot.node?.raft;
      if (raft === undefined || raft.role !== "leader") continue;
      if (best === null || raft.term > best.node!.raft.term) best = slot;
    }
    return best;
  }

  #checked(slot: Slot): CheckedNode {
    const node = slot.node;
    return {
      id: slot.id,
      durable: slot.disk.durable,
      get raft() {
        return node === null ? null : node.raft ?? null;
      },
      head: () => {
        if (node === null || node.raft === undefined) return null;
        const h = node.head();
        return { index: h.index, head: h.head };
      },
    };
  }

  #fail(e: unknown): void {
    if (this.#violation !== null) return;
    this.#violation = e instanceof NodeViolation
      ? e.message
      : `simulator error: ${e instanceof Error ? e.stack ?? e.message : String(e)}`;
  }

  #describe(): string {
    return this.#slots.map((x) => {
      const r = x.node?.raft;
      if (x.retired) return `${x.id}:retired`;
      if (x.lost) return `${x.id}:lost`;
      if (r === undefined || x.node === null) return `${x.id}:down`;
      return `${x.id}:${r.role[0]}${r.term}/c${r.log.committed}/a${x.node.head().index}`;
    }).join(" ");
  }

  // ------------------------------------------------------------ for the errata script

  /** The running nodes, for scripted schedules. */
  get slots(): readonly Slot[] {
    return this.#slots;
  }

  /** The network, for scripted schedules. */
  get net(): SimNetwork {
    return this.#net;
  }

  /** The checkers, for scripted schedules. */
  get checks(): NodeInvariants {
    return this.#checks;
  }

  /** The event queue, for scripted schedules. */
  get scheduler(): SimScheduler {
    return this.#scheduler;
  }

  /** Timing drawn for this seed. */
  get electionMs(): number {
    return this.#d.electionMs;
  }
}

/**
 * The errata scenario (Ongaro, raft-dev, 2015), step by step: leader L1
 * promotes a learner (the change reaches only the learner) and is cut off;
 * L2 is elected by the others and at once removes a voter V, which it can
 * commit on a majority of the smaller configuration only if it does not wait
 * for an entry of its own term to commit; then L1, the learner and V (cut
 * off before L2's first append reached it) elect L1 under L1's
 * configuration, and L1 overwrites what L2 committed. A correct node never
 * commits L2's change, so nothing committed is lost.
 */
class ErrataScript {
  readonly #sim: NodeSimulation;
  #stage = 0;
  #l1: string | null = null;
  #l2: string | null = null;
  #victim: string | null = null;
  #l1Term = 0;
  #waitUntil = 0;

  constructor(sim: NodeSimulation) {
    this.#sim = sim;
  }

  step(): void {
    const sim = this.#sim;
    const now = sim.scheduler.now;
    const slots = sim.slots;
    const voters = slots.filter((s) => s.founder).map((s) => s.id).slice(0, -1);
    const learner = slots.filter((s) => s.founder).at(-1)!.id;
    const all = slots.map((s) => s.id);
    if (this.#stage === 0) {
      for (const s of slots) {
        const raft = s.node?.raft;
        if (raft === undefined || raft.role !== "leader") continue;
        const { index, config } = raft.log.config();
        const promoted = config.members.some((m) => m.id === learner && m.voter);
        if (promoted && index > raft.log.committed) {
          this.#l1 = s.id;
          this.#l1Term = raft.term;
          sim.net.partition([s.id, learner], all.filter((id) => id !== s.id && id !== learner));
          this.#stage = 1;
          return;
        }
      }
    } else if (this.#stage === 1) {
      for (const s of slots) {
        const raft = s.node?.raft;
        if (
          raft === undefined || raft.role !== "leader" || s.id === this.#l1 ||
          raft.term <= this.#l1Term
        ) continue;
        this.#l2 = s.id;
        const others = voters.filter((id) => id !== this.#l1 && id !== s.id);
        this.#victim = others[0]!;
        sim.net.partition([this.#victim], all.filter((id) => id !== this.#victim));
        s.node!.removeMember(this.#victim, { timeoutMs: 4 * sim.electionMs }).catch(() => {});
        this.#waitUntil = now + 5 * sim.electionMs;
        this.#stage = 2;
        return;
      }
    } else if (this.#stage === 2 && now >= this.#waitUntil) {
      sim.net.heal();
      const side = [this.#l1!, learner, this.#victim!];
      sim.net.partition(side, all.filter((id) => !side.includes(id)));
      this.#waitUntil = now + 8 * sim.electionMs;
      this.#stage = 3;
    } else if (this.#stage === 3 && now >= this.#waitUntil) {
      sim.net.heal();
      this.#stage = 4;
    }
  }
}

function urlOf(id: string): string {
  return `sim://${id}`;
}

function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function describeError(e: unknown): string {
  if (e instanceof Error) {
    const cause = e.cause instanceof Error ? ` (cause: ${e.cause.message})` : "";
    return `${e.name}: ${e.message}${cause}`;
  }
  return String(e);
}
