/**
 * Scenario tests for leader election (src/core/election.ts, and the term
 * rules of `Raft.step()`): one vote per term, the election restriction,
 * PreVote and the leader lease, each named after the claim of the Raft paper
 * (§ numbers) or thesis it checks. Nodes are stepped by hand through the
 * small driver in `_harness.ts`.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import type { VoteMessage, VoteResponseMessage } from "../../src/core/messages.ts";
import { seededPrng } from "../../src/core/prng.ts";
import { Raft } from "../../src/core/raft.ts";
import { bootstrapCluster, buildLog, Cluster, ELECTION_TICKS, ofType } from "./_harness.ts";

/** A RequestVote (or PreVote) message. */
function voteRequest(
  fields: Pick<VoteMessage, "from" | "to" | "term" | "lastIndex" | "lastTerm"> & {
    preVote?: boolean;
    transfer?: boolean;
  },
): VoteMessage {
  return { type: "vote", preVote: false, transfer: false, ...fields };
}

// ------------------------------------------------------------------- §5.2 votes

Deno.test("§5.2 each node grants at most one vote per term", () => {
  const cluster = bootstrapCluster(["n1", "n2", "n3"]);
  const n3 = cluster.node("n3");
  const ask = (from: string) => voteRequest({ from, to: "n3", term: 2, lastIndex: 1, lastTerm: 1 });
  const answer = (): VoteResponseMessage => {
    const rd = n3.ready();
    n3.advance();
    const [response, ...rest] = ofType(rd.messages, "voteResponse");
    strictEqual(rest.length, 0);
    return response!;
  };

  n3.step(ask("n1"));
  deepStrictEqual(answer(), {
    type: "voteResponse",
    from: "n3",
    to: "n1",
    term: 2,
    preVote: false,
    granted: true,
  });
  n3.step(ask("n2"));
  const second = answer();
  strictEqual(second.to, "n2");
  strictEqual(second.granted, false, "a second candidate of the same term is refused");
  n3.step(ask("n1"));
  strictEqual(answer().granted, true, "a retry from the same candidate is granted again");
  strictEqual(n3.status().vote, "n1");
});

Deno.test("§5.4.1 a vote is refused to a candidate whose log is less up to date", async (t) => {
  // The voter's last entry is at index 3, term 2.
  const rows = [
    { name: "lower last term, longer log", lastIndex: 5, lastTerm: 1, granted: false },
    { name: "same last term, shorter log", lastIndex: 2, lastTerm: 2, granted: false },
    { name: "same last term, same length", lastIndex: 3, lastTerm: 2, granted: true },
    { name: "higher last term, shorter log", lastIndex: 2, lastTerm: 3, granted: true },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const voter = new Raft({
        id: "n3",
        prng: seededPrng(3),
        hardState: { term: 2, vote: null, commit: 1 },
        entries: buildLog(["n1", "n2", "n3"], [1, 2, 2]),
      });
      voter.step(
        voteRequest({
          from: "n1",
          to: "n3",
          term: 3,
          lastIndex: row.lastIndex,
          lastTerm: row.lastTerm,
        }),
      );
      const rd = voter.ready();
      const [response] = ofType(rd.messages, "voteResponse");
      strictEqual(response!.granted, row.granted);
      strictEqual(voter.term, 3, "the higher term is adopted either way");
      deepStrictEqual(rd.hardState, { term: 3, vote: row.granted ? "n1" : null, commit: 1 });
    });
  }
});

Deno.test("§5.2 a vote is in the hard state of the same ready() that carries it", async (t) => {
  await t.step("the voter's grant", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    const n2 = cluster.node("n2");
    n2.step(voteRequest({ from: "n1", to: "n2", term: 2, lastIndex: 1, lastTerm: 1 }));
    const rd = n2.ready();
    deepStrictEqual(rd.hardState, { term: 2, vote: "n1", commit: 1 });
    strictEqual(ofType(rd.messages, "voteResponse")[0]!.granted, true);
  });
  await t.step("the candidate's vote for itself", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"], { preVote: false });
    const n1 = cluster.node("n1");
    n1.campaign();
    const rd = n1.ready();
    deepStrictEqual(rd.hardState, { term: 2, vote: "n1", commit: 1 });
    deepStrictEqual(ofType(rd.messages, "vote").map((m) => [m.to, m.term]), [["n2", 2], ["n3", 2]]);
  });
});

// ---------------------------------------------------------------- thesis §9.6

Deno.test("thesis §9.6 PreVote: elections that cannot win do not disturb the cluster", async (t) => {
  await t.step("a pre-candidate does not increase its term", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    const [n1, n2] = [cluster.node("n1"), cluster.node("n2")];
    n1.campaign();
    strictEqual(n1.role, "preCandidate");
    strictEqual(n1.term, 1);
    const rd = n1.ready();
    n1.advance();
    strictEqual(rd.hardState, null, "neither term nor vote changed");
    const probes = ofType(rd.messages, "vote");
    deepStrictEqual(probes.map((m) => [m.to, m.term, m.preVote]), [["n2", 2, true], [
      "n3",
      2,
      true,
    ]]);
    // A voter answering a PreVote does not change its term or vote either.
    n2.step(probes[0]!);
    const answer = n2.ready();
    n2.advance();
    strictEqual(answer.hardState, null);
    strictEqual(n2.term, 1);
    const grants = ofType(answer.messages, "voteResponse");
    deepStrictEqual(grants.map((m) => [m.granted, m.preVote, m.term]), [[true, true, 2]]);
    // Only a won PreVote starts the real election.
    n1.step(grants[0]!);
    strictEqual(n1.role, "candidate");
    strictEqual(n1.term, 2);
  });

  await t.step(
    "a partitioned node that rejoins neither raises the term nor deposes the leader",
    () => {
      const cluster = bootstrapCluster(["n1", "n2", "n3"]);
      const n1 = cluster.elect("n1");
      const n3 = cluster.node("n3");
      cluster.isolated.add("n3");
      for (let i = 0; i < 5 * ELECTION_TICKS; i++) cluster.tick();
      strictEqual(n3.term, 2);
      strictEqual(n3.role, "preCandidate");
      cluster.isolated.delete("n3");
      for (let i = 0; i < ELECTION_TICKS && n3.leader === null; i++) cluster.tick();
      strictEqual(n3.role, "follower");
      strictEqual(n3.leader, "n1");
      strictEqual(n1.role, "leader");
      for (const node of cluster.nodes.values()) strictEqual(node.term, 2);
    },
  );

  await t.step("control: without PreVote and CheckQuorum the same rejoin raises the term", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"], { preVote: false, checkQuorum: false });
    const n1 = cluster.elect("n1");
    const n3 = cluster.node("n3");
    cluster.isolated.add("n3");
    for (let i = 0; i < 5 * ELECTION_TICKS; i++) cluster.tick();
    ok(n3.term > 2, `the isolated node reached term ${n3.term}`);
    cluster.isolated.delete("n3");
    for (let i = 0; i < 3 * ELECTION_TICKS && n1.term === 2; i++) cluster.tick();
    ok(n1.term > 2, "the old leader was pushed to a new term");
  });

  await t.step("a node that heard from a leader recently ignores a PreVote (leader lease)", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    cluster.elect("n1");
    const n2 = cluster.node("n2");
    const probe = voteRequest({
      from: "n3",
      to: "n2",
      term: 3,
      lastIndex: n2.log.lastIndex(),
      lastTerm: n2.log.lastTerm(),
      preVote: true,
    });
    n2.step(probe);
    strictEqual(n2.hasReady(), false, "no answer at all");
    strictEqual(n2.term, 2);
    strictEqual(n2.leader, "n1");
    // Once a full election timeout passes without the leader, it answers.
    for (let i = 0; i < ELECTION_TICKS; i++) n2.tick();
    n2.step(probe);
    const rd = n2.ready();
    n2.advance();
    const answers = ofType(rd.messages, "voteResponse").filter((m) => m.to === "n3");
    deepStrictEqual(answers.map((m) => [m.granted, m.preVote]), [[true, true]]);
    strictEqual(n2.term, 2);
  });
});

// ----------------------------------------------------------------- seniority

/** The election timeout of the failover scenarios, in ticks: wide enough for three slices. */
const FAILOVER_TICKS = ELECTION_TICKS * 3;

/**
 * Voters n1, n2 and n3 (n3 a learner when `learner`), bootstrapped, each
 * drawing its timeouts from a PRNG seeded by `seed`; n1 elected, and each
 * follower has heard from it.
 */
function ledByN1(seed: number, learner = false, size = 3): Cluster {
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const members = ids.map((id) => ({ id, voter: !learner || id !== "n3" }));
  const cluster = new Cluster(
    ids.map((id, i) =>
      new Raft({
        id,
        prng: seededPrng(seed * 7 + i),
        bootstrap: { members },
        electionTicks: FAILOVER_TICKS,
        autoPromote: !learner,
      })
    ),
  );
  cluster.elect("n1");
  cluster.tick();
  return cluster;
}

Deno.test("seniority: when the leader is lost, the most senior follower times out first, in the first slice of [e, 2e)", () => {
  // The ranks are drawn among the followers of a known leader: the leader
  // that is lost takes no slice, so the next in line does not sit out the
  // slice of the dead one (a 3-voter cluster losing its senior leader would
  // otherwise wait [4e/3, 5e/3) instead of [e, 4e/3)).
  const e = FAILOVER_TICKS;
  for (let seed = 1; seed <= 40; seed++) {
    const cluster = ledByN1(seed);
    cluster.isolated.add("n1");
    const [n2, n3] = [cluster.node("n2"), cluster.node("n3")];
    let ticks = 0;
    while (n2.role === "follower" && n3.role === "follower" && ticks < 3 * e) {
      cluster.tick(["n2", "n3"]);
      ticks++;
    }
    strictEqual(n2.role !== "follower" && n3.role === "follower", true, `seed ${seed}: n2 first`);
    // The first of three slices (the dead leader still counts for their width).
    ok(ticks >= e && ticks < e + e / 3, `seed ${seed}: n2 timed out after ${ticks} ticks`);
  }
});

Deno.test("seniority: a learner made a voter draws its timeout again, ranked", () => {
  // Voters n1 and n2, learner n3 (it drew from the whole range): once
  // promoted, n3 ranks last among the leader's followers, so n2 times out
  // first when n1 is lost.
  const e = FAILOVER_TICKS;
  for (let seed = 1; seed <= 40; seed++) {
    const cluster = ledByN1(seed, true);
    cluster.node("n1").changeMembers({ type: "promote", id: "n3" });
    cluster.settle();
    cluster.tick();
    const [n2, n3] = [cluster.node("n2"), cluster.node("n3")];
    strictEqual(n3.status().voter, true, "n3 was promoted");
    cluster.isolated.add("n1");
    let ticks = 0;
    while (n2.role === "follower" && n3.role === "follower" && ticks < 3 * e) {
      cluster.tick(["n2", "n3"]);
      ticks++;
    }
    strictEqual(n3.role, "follower", `seed ${seed}: n3 timed out first, after ${ticks} ticks`);
  }
});

Deno.test("thesis §4.2.3 the leader lease allows for followers whose ticks are out of phase by one", () => {
  // Followers tick on their own timers: when the leader is lost, one may
  // count a tick more than another. The senior one, drawing the shortest
  // timeout (e ticks), must not find the others still in a lease of e ticks
  // and be ignored: the failover would then last until the next in line
  // times out.
  const e = FAILOVER_TICKS;
  let shortest = 0;
  for (let seed = 1; seed <= 100; seed++) {
    const cluster = ledByN1(seed);
    cluster.isolated.add("n1");
    const [n2, n3] = [cluster.node("n2"), cluster.node("n3")];
    // n2 counts its ticks one ahead of n3.
    cluster.tick(["n2"]);
    let ticks = 1;
    while (n2.role !== "leader" && n3.role !== "leader" && ticks < 3 * e) {
      cluster.tick(["n2", "n3"]);
      ticks++;
    }
    strictEqual(n2.role, "leader", `seed ${seed}: n2 led after ${ticks} ticks`);
    if (ticks === e) shortest++;
  }
  ok(shortest > 0, "no seed drew the shortest timeout: the test checks nothing");
});

Deno.test("a voter that refuses a PreVote for a stale log, with no leader heard for an election timeout, campaigns at once", () => {
  // The senior follower times out first, but its log missed the lost
  // leader's last entry: the other follower refuses it. Waiting out its own,
  // later, timeout would stretch the failover to the end of the range; it
  // holds the newer log and the leader is gone, so it campaigns right away.
  const e = FAILOVER_TICKS;
  for (let seed = 1; seed <= 20; seed++) {
    const cluster = ledByN1(seed);
    cluster.node("n1").propose(new TextEncoder().encode("last"));
    cluster.settle((m) => m.to === "n2" || m.from === "n2");
    cluster.isolated.add("n1");
    const [n2, n3] = [cluster.node("n2"), cluster.node("n3")];
    ok(n3.log.lastIndex() > n2.log.lastIndex(), "n2 missed the last entry");
    let ticks = 0;
    while (n3.role !== "leader" && ticks < 3 * e) {
      cluster.tick(["n2", "n3"]);
      ticks++;
    }
    strictEqual(n3.role, "leader", `seed ${seed}`);
    ok(ticks < e + e / 2, `seed ${seed}: n3 led only after ${ticks} ticks`);
  }
});

Deno.test("of the voters that refuse a stale PreVote, only the most senior campaigns at once: the others would split the vote", () => {
  // Five voters; the senior follower n2 missed the last entry. Its PreVote
  // reaches n3, n4 and n5 together. Were all three to campaign at once, each
  // would vote for itself and none would win; n2, timing out first again,
  // would set off the same split at every timeout.
  const e = FAILOVER_TICKS;
  for (let seed = 1; seed <= 20; seed++) {
    const cluster = ledByN1(seed, false, 5);
    cluster.node("n1").propose(new TextEncoder().encode("last"));
    cluster.settle((m) => m.to === "n2" || m.from === "n2");
    cluster.isolated.add("n1");
    const others = ["n3", "n4", "n5"].map((id) => cluster.node(id));
    ok(others.every((n) => n.log.lastIndex() > cluster.node("n2").log.lastIndex()));
    let first: string[] | null = null;
    let ticks = 0;
    while (!others.some((n) => n.role === "leader") && ticks < 3 * e) {
      for (const id of ["n2", "n3", "n4", "n5"]) cluster.node(id).tick();
      // One round: the PreVotes of whoever timed out reach the others.
      cluster.deliver(cluster.drain());
      const campaigning = others.filter((n) => n.role !== "follower").map((n) => n.id);
      if (first === null && campaigning.length > 0) first = campaigning;
      cluster.settle();
      ticks++;
    }
    deepStrictEqual(first, ["n3"], `seed ${seed}: the first to campaign after n2`);
    ok(others.some((n) => n.role === "leader"), `seed ${seed}: no leader after ${ticks} ticks`);
    ok(ticks < e + e / 2, `seed ${seed}: a leader only after ${ticks} ticks`);
  }
});
