/**
 * Fuzzes the Raft core with peers' messages: a 3-node cluster of real cores
 * (the scenario harness of `tests/core/_harness.ts`, time moving only by
 * ticks) runs a schedule that fast-check draws: ticks, proposals, reads,
 * transfers, partitions, lost and late messages, and, in between, messages
 * of every type injected with extreme or near-miss values, and messages the
 * nodes really sent, replayed as they were or bent.
 *
 * Two properties:
 *
 * - Any message at all, forgeries Raft trusts included: nothing throws (a
 *   peer's input must never trip an assertion), terms stay where a node can
 *   still count up and speak on the wire, every message a node sends still
 *   encodes as a peer frame, a node's commit index never falls and what it
 *   committed never changes, and refused messages are counted.
 * - Everything but the forgeries Raft trusts by design (`trustedForgery` in
 *   `_messages.ts` says which): on top of the above, Raft's safety as the
 *   simulator checks it (`tests/sim/checkers.ts`: one leader per term,
 *   leader completeness, log matching, committed entries never change, a
 *   snapshot stands for committed history), and once the fuzzing stops and
 *   the network heals, a leader is elected and a proposal commits on every
 *   node within a bounded number of ticks.
 *
 * One stall is excused, and counted: a term cliff. A message may move a
 * node to any term up to `TERM_MAX` (or `TERM_STEP_MAX` above its own);
 * a node moved there that then campaigns (without PreVote), or is moved
 * again, holds a term its peers refuse to follow, and terms never come
 * down, so it never rejoins. That is the price of bounding forged terms,
 * not a bug these runs can fix; it must stay rare (a few percent of runs).
 *
 * Replay a failure with the `FUZZ_SEED` it prints; `FUZZ_RUNS` runs more
 * cases (each property takes about a second at the default).
 *
 * @module
 */

import { ok, strictEqual } from "node:assert/strict";
import fc from "fast-check";
import {
  type Message,
  Raft,
  RaftError,
  seededPrng,
  TERM_MAX,
  TERM_STEP_MAX,
  TERM_WIRE_MAX,
} from "../../src/core/mod.ts";
import type { Prng } from "../../src/core/prng.ts";
import { encodeMessages } from "../../src/transport/http/frames.ts";
import { Cluster } from "../core/_harness.ts";
import { SafetyChecker, Violation } from "../sim/checkers.ts";
import { checkProperty } from "./_fuzz.ts";
import {
  idArb,
  MEMBERS,
  mutate,
  type Mutation,
  mutationArb,
  resolve,
  type Template,
  templateArb,
  trustedForgery,
} from "./_messages.ts";

const FILE = "tests/fuzz/core_test.ts";
const ELECTION_TICKS = 10;
/** Ticks a healed cluster gets to agree on a leader: many election rounds. */
const LEADER_TICKS = 40 * ELECTION_TICKS;
/** Ticks a stable leader gets to commit a proposal on every node. */
const COMMIT_TICKS = 20 * ELECTION_TICKS;
/** Messages kept back (lost, or delivered late), at most. */
const POOL_MAX = 200;
/** Sent messages remembered for replays, at most. */
const HISTORY_MAX = 400;

const encoder = new TextEncoder();

/** One step of a schedule. */
type Action =
  | { readonly t: "tick"; readonly mask: number; readonly times: number }
  | { readonly t: "inject"; readonly to: number; readonly template: Template }
  | { readonly t: "replay"; readonly pick: number; readonly mutation: Mutation | null }
  | { readonly t: "late"; readonly pick: number }
  | { readonly t: "propose"; readonly node: number }
  | { readonly t: "read"; readonly node: number }
  | { readonly t: "transfer"; readonly node: number; readonly target: string }
  | { readonly t: "campaign"; readonly node: number }
  | { readonly t: "compact"; readonly node: number; readonly keep: number }
  | { readonly t: "isolate"; readonly node: number }
  | { readonly t: "heal" };

/** One fuzz case: the cluster's settings and its schedule. */
interface Case {
  readonly seed: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** Percent of sent messages kept back: lost, or delivered late by a `late` action. */
  readonly holdPercent: number;
  readonly firstLeader: number;
  readonly actions: readonly Action[];
}

const nodeArb = fc.nat(2);

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant("tick" as const),
      mask: fc.integer({ min: 1, max: 7 }),
      times: fc.integer({ min: 1, max: 8 }),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({ t: fc.constant("inject" as const), to: nodeArb, template: templateArb }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant("replay" as const),
      pick: fc.nat(),
      mutation: fc.option(mutationArb, { freq: 3 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("late" as const), pick: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant("propose" as const), node: nodeArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("read" as const), node: nodeArb }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant("transfer" as const), node: nodeArb, target: idArb }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("campaign" as const), node: nodeArb }) },
  {
    weight: 3,
    arbitrary: fc.record({ t: fc.constant("compact" as const), node: nodeArb, keep: fc.nat(3) }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("isolate" as const), node: nodeArb }) },
  { weight: 1, arbitrary: fc.constant({ t: "heal" as const }) },
);

const caseArb: fc.Arbitrary<Case> = fc.record({
  seed: fc.nat(),
  preVote: fc.boolean(),
  checkQuorum: fc.boolean(),
  holdPercent: fc.constantFrom(0, 5, 20),
  firstLeader: nodeArb,
  actions: fc.array(actionArb, { minLength: 1, maxLength: 100, size: "max" }),
});

/** Runs of each property: a second or two each. */
const RUNS = 1000;

/** What the runs of one property did, to check that they did real work. */
interface Stats {
  /** Fuzzed messages stepped on a node. */
  stepped: number;
  /** Forgeries Raft trusts, kept out of a safe run. */
  trusted: number;
  /** Messages the nodes refused, in all. */
  refused: number;
  /** Entries committed, in all (the highest commit index of each run). */
  committed: number;
  /** Snapshot chunks the nodes sent to followers left behind. */
  snapshots: number;
}

function newStats(): Stats {
  return { stepped: 0, trusted: 0, refused: 0, committed: 0, snapshots: 0 };
}

/** The fuzzing must reach the core and the cluster must work meanwhile, or the runs prove nothing. */
function checkWork(stats: Stats): void {
  ok(stats.stepped > 10 * RUNS, `only ${stats.stepped} fuzzed messages stepped`);
  ok(stats.refused > RUNS, `only ${stats.refused} messages refused`);
  ok(stats.committed > 3 * RUNS, `only ${stats.committed} entries committed`);
  ok(stats.snapshots > RUNS / 20, `only ${stats.snapshots} snapshot chunks sent`);
}

/**
 * One run of a case: the cluster, the messages kept back and sent, and the
 * checks made after every action.
 */
class FuzzRun {
  readonly cluster: Cluster;
  /** Null when forgeries Raft trusts are let through: then only each node's own invariants hold. */
  readonly #checker: SafetyChecker | null;
  /** Per committed index (safe runs), the term it was first seen committed in. */
  readonly #commitTerms: number[] = [0];
  readonly #prng: Prng;
  #holdRate: number;
  /** Messages kept back: lost unless a `late` action delivers one. */
  #pool: Message[] = [];
  /** Messages the nodes sent, the latest last, for replays. */
  #history: Message[] = [];
  /** Per node: refused messages, commit index and the hash of every index it committed. */
  readonly #seen = new Map<string, { refused: number; commit: number; hashes: string[] }>();
  #reads = 0;
  #proposals = 0;

  readonly #stats: Stats;

  constructor(c: Case, safe: boolean, stats: Stats) {
    this.#stats = stats;
    this.cluster = new Cluster(MEMBERS.map((id, i) =>
      new Raft({
        id,
        prng: seededPrng(c.seed * 7 + i),
        bootstrap: { members: MEMBERS.map((m) => ({ id: m, voter: true })) },
        electionTicks: ELECTION_TICKS,
        preVote: c.preVote,
        checkQuorum: c.checkQuorum,
      })
    ));
    this.#checker = safe ? new SafetyChecker() : null;
    this.#prng = seededPrng(c.seed);
    this.#holdRate = c.holdPercent / 100;
    for (const id of MEMBERS) this.#seen.set(id, { refused: 0, commit: 0, hashes: [] });
    this.#raft(c.firstLeader).campaign();
    this.settle();
  }

  #raft(i: number): Raft {
    return this.cluster.node(MEMBERS[i % MEMBERS.length]!);
  }

  get rafts(): Raft[] {
    return [...this.cluster.nodes.values()];
  }

  /** Delivers until quiet, keeping some messages back; checks everything a node sends. */
  settle(): void {
    const held = this.cluster.settle((m) => {
      this.#sent(m);
      // Answers to ids outside the cluster go nowhere.
      if (!this.cluster.nodes.has(m.to)) return true;
      return this.#holdRate > 0 && this.#prng.next() < this.#holdRate;
    });
    this.#pool.push(...held.filter((m) => this.cluster.nodes.has(m.to)));
    if (this.#pool.length > POOL_MAX) this.#pool.splice(0, this.#pool.length - POOL_MAX);
    this.check();
  }

  /** A node sent `m`: it must fit the wire, and a new leader must be the only one of its term. */
  #sent(m: Message): void {
    try {
      encodeMessages([m]);
    } catch (e) {
      throw new Error(`${m.from} sent a message the wire cannot carry: ${describe(m)}: ${e}`);
    }
    if (m.type === "snapshot") this.#stats.snapshots++;
    if (this.cluster.nodes.has(m.to)) this.#history.push(m);
    if (this.#history.length > 2 * HISTORY_MAX) this.#history.splice(0, HISTORY_MAX);
    for (const raft of this.rafts) this.#observeLeader(raft);
  }

  /**
   * Election safety: at most one leader per term. Leader completeness: a
   * leader holds every entry committed in an earlier term (Figure 3.2).
   * The simulator's `becameLeader()` asks for every entry committed so far,
   * which a leader of an old term elected late does not owe: here a replay
   * can hand a candidate its last vote long after a later term committed.
   */
  #observeLeader(raft: Raft): void {
    const checker = this.#checker;
    if (checker === null || raft.role !== "leader") return;
    const known = checker.leaders.get(raft.term);
    if (known === raft.id) return;
    if (known !== undefined) {
      throw new Violation(
        "election safety",
        `term ${raft.term} has leaders ${known} and ${raft.id}`,
      );
    }
    checker.leaders.set(raft.term, raft.id);
    // Entries a snapshot stands for are checked through its hash (`check()`).
    for (let i = raft.log.snapshot.index + 1; i <= checker.maxCommitted; i++) {
      if (this.#commitTerms[i]! >= raft.term) continue;
      strictEqual(
        raft.log.hash(i),
        checker.committed[i],
        `${raft.id} leads term ${raft.term} without entry ${i}, committed in term ${
          this.#commitTerms[i]
        }`,
      );
    }
  }

  /** Each node's own invariants, then (in safe runs) the cluster's. */
  check(): void {
    for (const raft of this.rafts) {
      const st = raft.status();
      const seen = this.#seen.get(raft.id)!;
      ok(st.term < TERM_WIRE_MAX, `${raft.id} reached term ${st.term}: it can no longer count up`);
      ok(st.refusedMessages >= seen.refused, `${raft.id}'s refused count fell`);
      ok(st.commitIndex >= seen.commit, `${raft.id}'s commit index fell to ${st.commitIndex}`);
      ok(st.commitIndex <= st.lastIndex, `${raft.id} committed past its log`);
      for (let i = raft.log.snapshot.index; i <= st.commitIndex; i++) {
        const hash = raft.log.hash(i);
        if (hash === undefined) continue;
        const before = seen.hashes[i];
        if (before === undefined) seen.hashes[i] = hash;
        else strictEqual(hash, before, `${raft.id} changed its committed entry ${i}`);
      }
      const checked = seen.commit;
      seen.refused = st.refusedMessages;
      seen.commit = st.commitIndex;
      if (this.#checker === null) continue;
      const entries = [];
      for (let i = raft.log.snapshot.index + 1; i <= raft.log.lastIndex(); i++) {
        entries.push(raft.log.entry(i)!);
      }
      this.#checker.persisted(raft.id, raft.log.snapshot.hash, entries);
      this.#observeLeader(raft);
      // A snapshot stands for committed history: its hash is the committed
      // head at its index.
      const snap = raft.log.snapshot;
      if (snap.index > 0) {
        strictEqual(
          this.#checker.committed[snap.index],
          snap.hash,
          `${raft.id} holds a snapshot at ${snap.index} that is not the committed head`,
        );
      }
      // From what was checked before (a snapshot's index at the least, as
      // the entries it stands for are gone): a jump past every index known
      // committed is a violation of its own.
      const before = this.#checker.maxCommitted;
      this.#checker.committedUpTo(raft, Math.max(checked, raft.log.snapshot.index));
      // The term it committed in is at most the term of the first node seen holding it committed.
      for (let i = before + 1; i <= this.#checker.maxCommitted; i++) {
        this.#commitTerms[i] = raft.term;
      }
    }
  }

  /** Steps a message on a node, unless it is a forgery Raft trusts and this run keeps them out. */
  inject(raft: Raft, m: Message): void {
    if (this.#checker !== null && trustedForgery(raft, m)) {
      this.#stats.trusted++;
      return;
    }
    this.#stats.stepped++;
    raft.step(m);
    this.settle();
  }

  /** Adds this run's refusals and commits to the stats. */
  finish(): void {
    this.#stats.refused += this.rafts.reduce((n, r) => n + r.status().refusedMessages, 0);
    this.#stats.committed += Math.max(...this.rafts.map((r) => r.log.committed));
  }

  /** Runs one action. */
  act(a: Action): void {
    switch (a.t) {
      case "tick":
        for (let n = 0; n < a.times; n++) {
          for (let i = 0; i < MEMBERS.length; i++) if (a.mask & (1 << i)) this.#raft(i).tick();
          this.settle();
        }
        return;
      case "inject": {
        const raft = this.#raft(a.to);
        this.inject(raft, resolve(a.template, raft, this.rafts));
        return;
      }
      case "replay": {
        const m = this.#history[a.pick % Math.max(1, this.#history.length)];
        if (m === undefined) return;
        const raft = this.cluster.node(m.to);
        // An exact replay is a duplicate the network made: Raft tolerates it.
        if (a.mutation === null) {
          raft.step(m);
          this.settle();
        } else {
          this.inject(raft, mutate(m, a.mutation, raft));
        }
        return;
      }
      case "late": {
        const [m] = this.#pool.splice(a.pick % Math.max(1, this.#pool.length), 1);
        if (m === undefined) return;
        this.cluster.deliver([m]);
        this.settle();
        return;
      }
      case "propose": {
        // A client asks a node and follows its leader hint, as a forwarding follower would.
        const asked = this.#raft(a.node);
        const hint = asked.leader;
        const raft = hint !== null && this.cluster.nodes.has(hint)
          ? this.cluster.node(hint)
          : asked;
        this.#tolerate(() => raft.propose(encoder.encode(`p${this.#proposals++}`)));
        return;
      }
      case "read":
        this.#tolerate(() => this.#raft(a.node).readIndex(`r${this.#reads++}`));
        return;
      case "transfer":
        this.#tolerate(() => this.#raft(a.node).transferLeader(a.target));
        return;
      case "campaign":
        this.#raft(a.node).campaign();
        this.settle();
        return;
      case "compact": {
        // A snapshot at the applied index, so that a follower left behind
        // gets the snapshot, in chunks, instead of entries.
        const raft = this.#raft(a.node);
        const index = raft.log.applied;
        if (index > raft.snapshot.index) {
          raft.compact(index, encoder.encode(`state@${index}|${"s".repeat(index * 97 % 3000)}`), {
            keepEntries: a.keep,
          });
        }
        return;
      }
      case "isolate":
        this.cluster.isolated.add(MEMBERS[a.node]!);
        return;
      case "heal":
        this.cluster.isolated.clear();
        return;
    }
  }

  /** Runs a client call that the core may refuse (not leader, transfer under way). */
  #tolerate(call: () => unknown): void {
    try {
      call();
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
    this.settle();
  }

  /** Ends the faults: no partition, no message lost; what was kept back is gone. */
  heal(): void {
    this.cluster.isolated.clear();
    this.#pool = [];
    this.#holdRate = 0;
  }

  tickAll(): void {
    for (const raft of this.rafts) raft.tick();
    this.settle();
  }

  /** The leader every node follows in its term, if there is one. */
  stableLeader(): Raft | null {
    const leaders = this.rafts.filter((r) => r.role === "leader");
    const leader = leaders.find((l) =>
      this.rafts.every((r) => r.leader === l.id && r.term === l.term)
    );
    return leader ?? null;
  }

  /**
   * Whether some node's term is past what another node may follow
   * (`TERM_MAX`, or `TERM_STEP_MAX` above its own term): the second refuses
   * every message of the first, and no term ever comes down, so the two
   * never talk again. Forged terms can do this; see the test file's doc.
   */
  termCliff(): boolean {
    return this.rafts.some((a) =>
      this.rafts.some((b) => a.term > Math.max(TERM_MAX, b.term + TERM_STEP_MAX))
    );
  }

  /** One line per node, for failure messages. */
  describe(): string {
    return this.rafts.map((r) => {
      const st = r.status();
      return `${r.id} ${st.role} t${st.term} lead=${st.leader} last=${st.lastIndex} ` +
        `commit=${st.commitIndex} refused=${st.refusedMessages}`;
    }).join("; ");
  }
}

function describe(m: Message): string {
  return JSON.stringify(m, (_, v) => v instanceof Uint8Array ? `<${v.length} bytes>` : v);
}

/**
 * After the faults heal, a leader is elected and a proposal commits on
 * every node, each within a tick budget.
 */
function checkLiveness(run: FuzzRun): "live" | "term cliff" {
  run.heal();
  let leader: Raft | null = null;
  for (let t = 0; t < LEADER_TICKS && leader === null; t++) {
    run.tickAll();
    leader = run.stableLeader();
  }
  if (leader === null && run.termCliff()) return "term cliff";
  ok(leader !== null, `no stable leader ${LEADER_TICKS} ticks after healing: ${run.describe()}`);
  const probe = encoder.encode("probe");
  let hash: string | null = null;
  for (let t = 0; t < COMMIT_TICKS; t++) {
    const current = run.stableLeader();
    // A leader change may drop the probe: propose it again, as a client would.
    if (current !== null && (hash === null || current.log.indexOfHash(hash) === undefined)) {
      try {
        hash = current.propose(probe).hash;
      } catch (e) {
        if (!(e instanceof RaftError)) throw e;
      }
      run.settle();
    }
    if (
      hash !== null &&
      run.rafts.every((r) => {
        const state = r.entryState(hash!);
        return state !== null && state.state === "committed";
      })
    ) return "live";
    run.tickAll();
  }
  if (run.termCliff()) return "term cliff";
  throw new Error(
    `a proposal did not commit on every node within ${COMMIT_TICKS} ticks: ${run.describe()}`,
  );
}

Deno.test("fuzz: no message a peer sends trips an assertion in the core or breaks a node's own invariants", () => {
  const stats = newStats();
  checkProperty(
    fc.property(caseArb, (c) => {
      const run = new FuzzRun(c, false, stats);
      for (const a of c.actions) run.act(a);
      // Healed, the nodes must keep running: ticks and elections after
      // the worst inputs still trip nothing.
      run.heal();
      for (let t = 0; t < 4 * ELECTION_TICKS; t++) run.tickAll();
      run.finish();
    }),
    { numRuns: RUNS, file: FILE },
  );
  checkWork(stats);
});

Deno.test("fuzz: messages a correct Raft must refute keep every safety property, and a healed cluster commits", () => {
  const stats = newStats();
  const outcomes = { live: 0, "term cliff": 0 };
  checkProperty(
    fc.property(caseArb, (c) => {
      const run = new FuzzRun(c, true, stats);
      for (const a of c.actions) run.act(a);
      outcomes[checkLiveness(run)]++;
      run.finish();
    }),
    { numRuns: RUNS, file: FILE },
  );
  checkWork(stats);
  ok(stats.trusted > 0, "no forgery was ever kept out: the filter is never exercised");
  // A term cliff excuses a stalled cluster; it must stay the exception.
  ok(outcomes.live >= 0.9 * (outcomes.live + outcomes["term cliff"]), JSON.stringify(outcomes));
});
