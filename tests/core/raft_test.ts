/**
 * Scenario tests for the Raft core (src/core/raft.ts), each named after the
 * claim of the Raft paper (§ numbers) or thesis it checks. Nodes are stepped
 * by hand through the small driver in `_harness.ts`: no clock, no timers,
 * randomness only from seeded PRNGs.
 *
 * @module
 */

import { MembershipError, ProposalDroppedError } from "../../src/core/errors.ts";
import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { createEntry, type Entry } from "../../src/core/entry.ts";
import type {
  AppendMessage,
  AppendResponseMessage,
  Message,
  VoteMessage,
  VoteResponseMessage,
} from "../../src/core/messages.ts";
import { seededPrng } from "../../src/core/prng.ts";
import { Raft } from "../../src/core/raft.ts";
import { bootstrapCluster, buildLog, type Cluster, recoveredCluster } from "./_harness.ts";

const ELECTION_TICKS = 10;
const encoder = new TextEncoder();

/** The messages of one type, typed. */
function ofType<T extends Message["type"]>(
  messages: readonly Message[],
  type: T,
): Extract<Message, { type: T }>[] {
  return messages.filter((m): m is Extract<Message, { type: T }> => m.type === type);
}

/** A RequestVote (or PreVote) message. */
function voteRequest(
  fields: Pick<VoteMessage, "from" | "to" | "term" | "lastIndex" | "lastTerm"> & {
    preVote?: boolean;
    transfer?: boolean;
  },
): VoteMessage {
  return { type: "vote", preVote: false, transfer: false, ...fields };
}

/** Asserts that `follower` holds exactly the leader's log. */
function assertSameLog(leader: Raft, follower: Raft): void {
  strictEqual(follower.log.lastIndex(), leader.log.lastIndex(), `${follower.id} last index`);
  for (let i = 1; i <= leader.log.lastIndex(); i++) {
    strictEqual(follower.log.hash(i), leader.log.hash(i), `${follower.id} hash at ${i}`);
  }
}

// ------------------------------------------------------------- §5.3 Figure 7

const FIGURE_7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];

Deno.test("§5.3 Figure 7: a new leader makes every follower's log match its own", async (t) => {
  // Each follower of Figure 7, the term it is at, how many of the leader's
  // probes it rejects, and where the conflict-term hint sends the next probe.
  const rows = [
    { id: "a", terms: [1, 1, 1, 4, 4, 5, 5, 6, 6], term: 6, rejections: 1, reprobeAt: 9 },
    { id: "b", terms: [1, 1, 1, 4], term: 4, rejections: 1, reprobeAt: 4 },
    { id: "c", terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], term: 6, rejections: 0, reprobeAt: null },
    {
      id: "d",
      terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
      term: 7,
      rejections: 0,
      reprobeAt: null,
    },
    { id: "e", terms: [1, 1, 1, 4, 4, 4, 4], term: 4, rejections: 1, reprobeAt: 5 },
    { id: "f", terms: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], term: 3, rejections: 1, reprobeAt: 3 },
  ];
  const cluster = recoveredCluster([
    { id: "leader", terms: FIGURE_7_LEADER, hardState: { term: 7, vote: null, commit: 3 } },
    ...rows.map((r) => ({
      id: r.id,
      terms: r.terms,
      hardState: { term: r.term, vote: null, commit: 3 },
    })),
  ]);
  // a, b, e and f vote for it; c and d have more up-to-date logs and refuse.
  const leader = cluster.elect("leader");
  strictEqual(leader.term, 8);
  deepStrictEqual(
    Array.from({ length: 11 }, (_, i) => leader.log.term(i + 1)),
    [...FIGURE_7_LEADER, 8],
    "the leader's log is its own plus the no-op of term 8",
  );
  strictEqual(leader.log.committed, 11);

  for (const row of rows) {
    await t.step(`follower (${row.id})`, () => {
      const follower = cluster.node(row.id);
      assertSameLog(leader, follower);
      strictEqual(follower.log.committed, 11);
      strictEqual(follower.term, 8);
      const rejections = ofType(cluster.delivered, "appendResponse")
        .filter((m) => m.from === row.id && !m.success);
      strictEqual(rejections.length, row.rejections);
      const probes = ofType(cluster.delivered, "append")
        .filter((m) => m.to === row.id && m.entries.length > 0);
      strictEqual(probes[0]!.prevIndex, 10, "the first probe follows the leader's old last entry");
      strictEqual(probes.length, row.rejections + 1);
      if (row.reprobeAt !== null) strictEqual(probes[1]!.prevIndex, row.reprobeAt);
    });
  }
});

Deno.test("§5.3 the conflict-term hint skips a long conflicting tail in one round trip", () => {
  // Figure 7's (f), with 200 conflicting entries of terms 2 and 3.
  const tail = [...Array(50).fill(2), ...Array(150).fill(3)];
  const cluster = recoveredCluster([
    { id: "leader", terms: FIGURE_7_LEADER, hardState: { term: 7, vote: null, commit: 3 } },
    { id: "f", terms: [1, 1, 1, ...tail], hardState: { term: 3, vote: null, commit: 3 } },
    { id: "g", terms: FIGURE_7_LEADER, hardState: { term: 6, vote: null, commit: 3 } },
  ]);
  const f = cluster.node("f");
  strictEqual(f.log.lastIndex(), 203);
  const leader = cluster.elect("leader");
  assertSameLog(leader, f);
  strictEqual(f.log.lastIndex(), 11);
  const toF = ofType(cluster.delivered, "append").filter((m) => m.to === "f");
  const rejected = ofType(cluster.delivered, "appendResponse")
    .filter((m) => m.from === "f" && !m.success);
  strictEqual(rejected.length, 1, "one rejection, not one per conflicting entry");
  deepStrictEqual(toF.filter((m) => m.entries.length > 0).map((m) => m.prevIndex), [10, 3]);
  ok(toF.length <= 3, `${toF.length} appends for a 203-entry log`);
});

// ------------------------------------------------------------- §5.4.2 Figure 8

/**
 * Figure 8 (c), from recovered logs: s1 led term 2 and wrote index 2 (term
 * 2); s5 led term 3 and wrote another index 2 (term 3) that s3 and s4 voted
 * for but never received. s1 now wins term 4 with s2 and s3 (s4 and s5 are
 * down) and replicates its index 2 to both, one entry per append. Appends of
 * its own no-op (index 3) to followers that already have index 2 are held.
 */
function figure8c(): { cluster: Cluster; held: Message[] } {
  const cluster = recoveredCluster([
    { id: "s1", terms: [1, 2], hardState: { term: 3, vote: null, commit: 1 } },
    { id: "s2", terms: [1], hardState: { term: 2, vote: "s1", commit: 1 } },
    { id: "s3", terms: [1], hardState: { term: 3, vote: "s5", commit: 1 } },
    { id: "s4", terms: [1], hardState: { term: 3, vote: "s5", commit: 1 } },
    { id: "s5", terms: [1, 3], hardState: { term: 3, vote: "s5", commit: 1 } },
  ], { preVote: false, checkQuorum: false, maxMsgBytes: 1 });
  cluster.isolated.add("s4");
  cluster.isolated.add("s5");
  cluster.node("s1").campaign();
  const held = cluster.settle((m) =>
    m.type === "append" && m.entries.some((e) => e.index === 3) &&
    cluster.node(m.to).log.lastIndex() >= 2
  );
  return { cluster, held };
}

/** Crashes s1, brings s4 and s5 back, and has s5 campaign twice (terms 4 and 5). */
function s5Campaigns(cluster: Cluster): Raft {
  cluster.isolated.add("s1");
  cluster.isolated.delete("s4");
  cluster.isolated.delete("s5");
  const s5 = cluster.node("s5");
  s5.campaign();
  cluster.settle();
  s5.campaign();
  cluster.settle();
  return s5;
}

Deno.test("§5.4.2 Figure 8: a leader does not commit an entry of an earlier term by counting replicas", async (t) => {
  await t.step("(c) index 2 of term 2 on s1, s2, s3 (a majority) is not committed", () => {
    const { cluster } = figure8c();
    const s1 = cluster.node("s1");
    strictEqual(s1.role, "leader");
    strictEqual(s1.term, 4);
    for (const id of ["s2", "s3"]) {
      strictEqual(s1.followers().get(id)!.match, 2, `s1 knows ${id} holds index 2`);
      strictEqual(cluster.node(id).log.hash(2), s1.log.hash(2));
    }
    strictEqual(s1.log.stable, 3, "s1's own log is durable up to its no-op");
    strictEqual(s1.log.committed, 1);
    strictEqual(s1.entryState(s1.log.hash(2)!)!.state, "accepted");
  });

  await t.step("(d) so s5 may still win term 5 and overwrite it", () => {
    const { cluster } = figure8c();
    const lost = cluster.node("s1").log.hash(2)!;
    const s5 = s5Campaigns(cluster);
    strictEqual(s5.role, "leader");
    strictEqual(s5.term, 5);
    for (const id of ["s2", "s3", "s4"]) {
      const node = cluster.node(id);
      assertSameLog(s5, node);
      strictEqual(node.log.term(2), 3);
      strictEqual(node.entryState(lost), null);
      strictEqual(node.log.committed, 3);
    }
  });

  await t.step("(e) it commits once its own no-op is on a majority, and then s5 cannot win", () => {
    const { cluster, held } = figure8c();
    const s1 = cluster.node("s1");
    const index2 = s1.log.hash(2)!;
    const hold = (m: Message) => m.type === "append" && m.entries.some((e) => e.index === 3);
    cluster.deliver(held.filter((m) => m.to === "s2"));
    cluster.settle(hold);
    strictEqual(s1.followers().get("s2")!.match, 3);
    strictEqual(s1.log.committed, 1, "the no-op is on s1 and s2 only: 2 of 5");
    cluster.deliver(held.filter((m) => m.to === "s3"));
    cluster.settle(hold);
    strictEqual(s1.log.committed, 3);
    strictEqual(s1.entryState(index2)!.state, "committed");
    for (const id of ["s2", "s3"]) strictEqual(cluster.node(id).log.committed, 3);

    const s5 = s5Campaigns(cluster);
    strictEqual(s5.role, "candidate");
    strictEqual(s5.term, 5);
    const refusals = ofType(cluster.delivered, "voteResponse")
      .filter((m) => m.to === "s5" && m.term === 5 && !m.granted)
      .map((m) => m.from);
    deepStrictEqual(refusals.toSorted(), ["s2", "s3"]);
    for (const id of ["s2", "s3"]) {
      strictEqual(cluster.node(id).entryState(index2)!.state, "committed");
    }
  });
});

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

// --------------------------------------------------------- thesis §6.2 CheckQuorum

Deno.test("thesis §6.2 CheckQuorum: a leader needs a live majority, followers honour its lease", async (t) => {
  await t.step("a leader cut off from the majority steps down within two election timeouts", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    const n1 = cluster.elect("n1");
    cluster.isolated.add("n1");
    let steppedDownAt = 0;
    for (let tick = 1; tick <= 3 * ELECTION_TICKS && steppedDownAt === 0; tick++) {
      n1.tick();
      cluster.settle();
      if (n1.role !== "leader") steppedDownAt = tick;
    }
    ok(
      steppedDownAt > ELECTION_TICKS && steppedDownAt <= 2 * ELECTION_TICKS,
      `stepped down at tick ${steppedDownAt}`,
    );
    strictEqual(n1.role, "follower");
    strictEqual(n1.leader, null);
    strictEqual(n1.term, 2, "stepping down does not change the term");
  });

  await t.step("control: a leader that hears from a bare majority keeps leading", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    const n1 = cluster.elect("n1");
    cluster.isolated.add("n3");
    for (let i = 0; i < 5 * ELECTION_TICKS; i++) cluster.tick(["n1", "n2"]);
    strictEqual(n1.role, "leader");
    strictEqual(n1.term, 2);
  });

  await t.step("a follower in the lease ignores a vote request of a higher term", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    cluster.elect("n1");
    const n2 = cluster.node("n2");
    const request = {
      from: "n3",
      to: "n2",
      term: 5,
      lastIndex: n2.log.lastIndex(),
      lastTerm: n2.log.lastTerm(),
    };
    n2.step(voteRequest(request));
    strictEqual(n2.hasReady(), false);
    strictEqual(n2.term, 2);
    strictEqual(n2.leader, "n1");
    // A leadership transfer overrides the lease.
    n2.step(voteRequest({ ...request, transfer: true }));
    const rd = n2.ready();
    strictEqual(n2.term, 5);
    deepStrictEqual(ofType(rd.messages, "voteResponse").map((m) => [m.to, m.granted]), [[
      "n3",
      true,
    ]]);
  });
});

// ------------------------------------------------------ thesis §3.10 transfer

Deno.test("thesis §3.10 leadership transfer", async (t) => {
  await t.step("to a caught-up follower: timeoutNow, and the target wins term + 1", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    const n1 = cluster.elect("n1");
    n1.transferLeader("n2");
    const rd = n1.ready();
    deepStrictEqual(ofType(rd.messages, "timeoutNow").map((m) => [m.to, m.term]), [["n2", 2]]);
    cluster.deliver(rd.messages);
    n1.advance();
    cluster.settle();
    const n2 = cluster.node("n2");
    strictEqual(n2.role, "leader");
    strictEqual(n2.term, 3);
    for (const id of ["n1", "n3"]) strictEqual(cluster.node(id).leader, "n2");
  });

  await t.step("a lagging target is caught up first; proposals are refused meanwhile", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    const n1 = cluster.elect("n1");
    const n3 = cluster.node("n3");
    cluster.isolated.add("n3");
    const proposed = ["a", "b", "c"].map((s) => n1.propose(encoder.encode(s)));
    cluster.settle();
    strictEqual(n1.log.committed, 5);
    strictEqual(n3.log.lastIndex(), 2);
    cluster.isolated.delete("n3");

    n1.transferLeader("n3");
    throws(() => n1.propose(encoder.encode("d")), ProposalDroppedError);
    const rd = n1.ready();
    strictEqual(ofType(rd.messages, "timeoutNow").length, 0, "not before n3 has the log");
    cluster.deliver(rd.messages);
    n1.advance();
    cluster.settle();
    strictEqual(n3.role, "leader");
    strictEqual(n3.term, 3);
    for (const e of proposed) strictEqual(n3.entryState(e.hash)?.index, e.index);
    strictEqual(n1.log.entry(6), n3.log.entry(6), "no entry d was appended");
    const timeoutNow = cluster.delivered.findIndex((m) => m.type === "timeoutNow");
    const caughtUp = cluster.delivered.findIndex((m) =>
      m.type === "appendResponse" && m.from === "n3" && m.success && m.index === 5
    );
    ok(caughtUp >= 0 && caughtUp < timeoutNow, "timeoutNow only after n3 acknowledged index 5");
  });

  await t.step("is abandoned after an election timeout when the target never answers", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    const n1 = cluster.elect("n1");
    cluster.isolated.add("n2");
    n1.transferLeader("n2");
    for (let i = 1; i < ELECTION_TICKS; i++) cluster.tick();
    throws(() => n1.propose(encoder.encode("x")), ProposalDroppedError);
    cluster.tick();
    const entry = n1.propose(encoder.encode("x"));
    strictEqual(entry.term, 2);
    strictEqual(n1.role, "leader");
    strictEqual(n1.term, 2);
  });

  await t.step("on a follower it is forwarded to the leader", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    cluster.elect("n1");
    const n3 = cluster.node("n3");
    n3.transferLeader("n2");
    const rd = n3.ready();
    deepStrictEqual(rd.messages, [{
      type: "transferLeader",
      from: "n3",
      to: "n1",
      term: 0,
      target: "n2",
    }]);
    cluster.deliver(rd.messages);
    n3.advance();
    cluster.settle();
    strictEqual(cluster.node("n2").role, "leader");
    strictEqual(cluster.node("n2").term, 3);
  });

  await t.step("a target that is not a voter is refused", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    const n1 = cluster.elect("n1");
    throws(
      () => n1.transferLeader("n9"),
      (e) => e instanceof MembershipError && e.problem === "not_member",
    );
  });
});

// ------------------------------------------------------- thesis §6.4 ReadIndex

Deno.test("thesis §6.4 ReadIndex: reads are released only with confirmed leadership", async (t) => {
  await t.step(
    "on the leader, only after a majority answered the heartbeat carrying the context",
    () => {
      const cluster = bootstrapCluster(["n1", "n2", "n3", "n4", "n5"]);
      const n1 = cluster.elect("n1");
      strictEqual(n1.log.committed, 2);
      n1.readIndex("r1");
      let rd = n1.ready();
      n1.advance();
      deepStrictEqual(rd.readStates, []);
      const heartbeats = ofType(rd.messages, "heartbeat");
      deepStrictEqual(heartbeats.map((m) => [m.to, m.context]), [
        ["n2", "r1"],
        ["n3", "r1"],
        ["n4", "r1"],
        ["n5", "r1"],
      ]);
      const answerOf = (to: string): Message => {
        const follower = cluster.node(to);
        follower.step(heartbeats.find((m) => m.to === to)!);
        const out = follower.ready();
        follower.advance();
        return ofType(out.messages, "heartbeatResponse")[0]!;
      };
      n1.step(answerOf("n2"));
      rd = n1.ready();
      n1.advance();
      deepStrictEqual(rd.readStates, [], "2 of 5 is not a majority");
      n1.step(answerOf("n3"));
      rd = n1.ready();
      n1.advance();
      deepStrictEqual(rd.readStates, [{ index: 2, context: "r1" }]);
    },
  );

  await t.step("on a follower it is forwarded and answered with the leader's commit index", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    const n1 = cluster.elect("n1");
    const n2 = cluster.node("n2");
    // n2 does not get the next entry, so its commit index lags the leader's.
    const hold = (m: Message) => m.type === "append" && m.to === "n2";
    n1.propose(encoder.encode("x"));
    cluster.settle(hold);
    strictEqual(n1.log.committed, 3);
    strictEqual(n2.log.committed, 2);
    n2.readIndex("f1");
    const rd = n2.ready();
    deepStrictEqual(rd.messages, [{
      type: "readIndex",
      from: "n2",
      to: "n1",
      term: 0,
      context: "f1",
    }]);
    cluster.deliver(rd.messages);
    n2.advance();
    cluster.settle(hold);
    deepStrictEqual(cluster.readStates.get("n2"), [{ index: 3, context: "f1" }]);
    deepStrictEqual(cluster.readStates.get("n1"), []);
  });

  await t.step("a new leader defers reads until an entry of its term commits", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    const n1 = cluster.node("n1");
    n1.campaign();
    const acks = cluster.settle((m) => m.type === "appendResponse");
    strictEqual(n1.role, "leader");
    strictEqual(
      n1.log.committed,
      1,
      "the bootstrap entry is of term 1; nothing of term 2 commits yet",
    );
    n1.readIndex("early");
    const rd = n1.ready();
    n1.advance();
    deepStrictEqual(rd.readStates, []);
    deepStrictEqual(ofType(rd.messages, "heartbeat"), [], "no confirmation round yet");
    cluster.deliver(acks);
    cluster.settle();
    strictEqual(n1.log.committed, 2);
    strictEqual(n1.log.term(2), 2);
    deepStrictEqual(cluster.readStates.get("n1"), [{ index: 2, context: "early" }]);
  });

  await t.step("a single-node cluster answers at once", () => {
    const cluster = bootstrapCluster(["n1"]);
    const n1 = cluster.elect("n1");
    strictEqual(n1.log.committed, 2);
    n1.readIndex("solo");
    const rd = n1.ready();
    n1.advance();
    deepStrictEqual(rd.readStates, [{ index: 2, context: "solo" }]);
    deepStrictEqual(rd.messages, []);
  });
});

// ------------------------------------------------- §5.3 Log Matching, hash chain

/**
 * A 3-node cluster led by n1 (log: bootstrap config, no-op of term 2), and an
 * append from n1 to n2 after index 2.
 */
function chainCase(
  verifyHashes = true,
): { cluster: Cluster; append: (over: Partial<AppendMessage>) => AppendMessage; next: Entry } {
  const cluster = bootstrapCluster(["n1", "n2", "n3"], { verifyHashes });
  const n1 = cluster.elect("n1");
  const next = createEntry(3, n1.log.hash(2)!, {
    term: 2,
    kind: "command",
    proposer: "n1",
    timeMs: 0,
    data: encoder.encode("x"),
  });
  const append = (over: Partial<AppendMessage>): AppendMessage => ({
    type: "append",
    from: "n1",
    to: "n2",
    term: 2,
    prevIndex: 2,
    prevTerm: 2,
    prevHash: n1.log.hash(2)!,
    entries: [next],
    commit: n1.log.committed,
    ...over,
  });
  return { cluster, append, next };
}

/** Steps `m` on n2 and returns its one append response. */
function answerOf(cluster: Cluster, m: AppendMessage): AppendResponseMessage {
  const n2 = cluster.node("n2");
  n2.step(m);
  const rd = n2.ready();
  n2.advance();
  const responses = ofType(rd.messages, "appendResponse");
  strictEqual(responses.length, 1);
  return responses[0]!;
}

Deno.test("§5.3 Log Matching over the hash chain: appends must link to the follower's log", async (t) => {
  await t.step("control: an append that links is accepted", () => {
    const { cluster, append, next } = chainCase();
    const response = answerOf(cluster, append({}));
    strictEqual(response.success, true);
    strictEqual(response.index, 3);
    strictEqual(cluster.node("n2").log.hash(3), next.hash);
  });

  await t.step("an append whose prevHash differs (same prevIndex and prevTerm) is rejected", () => {
    const { cluster, append, next } = chainCase();
    const n2 = cluster.node("n2");
    const otherIndex2 = createEntry(2, n2.log.hash(1)!, {
      term: 2,
      kind: "noop",
      proposer: "n3",
      timeMs: 0,
      data: new Uint8Array(0),
    });
    const response = answerOf(cluster, append({ prevHash: otherIndex2.hash }));
    strictEqual(response.success, false);
    strictEqual(response.index, 2);
    strictEqual(n2.log.lastIndex(), 2);
    strictEqual(n2.entryState(next.hash), null);
  });

  const tampered = (e: Entry): Entry => ({ ...e, data: encoder.encode("evil") });
  const rows = [
    {
      name: "an entry whose hash does not match its contents",
      entries: (e: Entry) => [tampered(e)],
    },
    {
      name: "a good entry followed by a tampered one",
      entries: (e: Entry) => [
        e,
        tampered(createEntry(4, e.hash, { ...e, data: encoder.encode("y") })),
      ],
    },
    {
      name: "an entry that does not link to the one before it",
      entries: (
        e: Entry,
      ) => [e, createEntry(4, "a".repeat(64), { ...e, data: encoder.encode("y") })],
    },
  ];
  for (const row of rows) {
    await t.step(`refuses ${row.name}, and the log is unchanged`, () => {
      const { cluster, append, next } = chainCase();
      const n2 = cluster.node("n2");
      const before = n2.log.lastHash();
      const response = answerOf(cluster, append({ entries: row.entries(next) }));
      strictEqual(response.success, false);
      strictEqual(n2.log.lastIndex(), 2);
      strictEqual(n2.log.lastHash(), before);
      strictEqual(n2.entryState(next.hash), null);
    });
  }

  await t.step("control: with verifyHashes off, the tampered entry is taken", () => {
    const { cluster, append, next } = chainCase(false);
    const response = answerOf(cluster, append({ entries: [tampered(next)] }));
    strictEqual(response.success, true);
    strictEqual(cluster.node("n2").log.lastIndex(), 3);
  });
});

// ------------------------------------------------------- durability and batching

Deno.test("§5.3 durability: a leader counts its own entries toward commit only once persisted", () => {
  const cluster = bootstrapCluster(["n1", "n2", "n3"]);
  const n1 = cluster.elect("n1");
  const n2 = cluster.node("n2");
  strictEqual(n1.log.committed, 2);
  const entry = n1.propose(encoder.encode("x"));
  const rd = n1.ready();
  deepStrictEqual(rd.entries, [entry]);
  // The driver writes the entry and sends the appends; n2 acknowledges
  // before the leader's own write is acknowledged with advance(). n3 is slow.
  const toN2 = ofType(rd.messages, "append").filter((m) => m.to === "n2");
  strictEqual(toN2.length, 1);
  n2.step(toN2[0]!);
  const ack = n2.ready();
  n2.advance();
  n1.step(ofType(ack.messages, "appendResponse")[0]!);
  strictEqual(n1.followers().get("n2")!.match, 3);
  strictEqual(n1.log.stable, 2);
  strictEqual(
    n1.log.committed,
    2,
    "n2's ack alone is 1 of 3: the leader's copy is not durable yet",
  );
  n1.advance();
  strictEqual(n1.log.committed, 3);
  deepStrictEqual(n1.ready().committed, [entry]);
  n1.advance();
});

Deno.test("proposals between two ready() calls leave as one append per follower", () => {
  const cluster = bootstrapCluster(["n1", "n2", "n3"]);
  const n1 = cluster.elect("n1");
  for (const [id, view] of n1.followers()) strictEqual(view.state, "replicate", id);
  const proposed = ["a", "b", "c"].map((s) => n1.propose(encoder.encode(s)));
  const rd = n1.ready();
  n1.advance();
  const appends = ofType(rd.messages, "append");
  deepStrictEqual(appends.map((m) => [m.to, m.prevIndex, m.entries.map((e) => e.index)]), [
    ["n2", 2, [3, 4, 5]],
    ["n3", 2, [3, 4, 5]],
  ]);
  deepStrictEqual(appends[0]!.entries, proposed);
});

Deno.test("proposals between two ready() calls stay one batch when the driver polls hasReady()", () => {
  const cluster = bootstrapCluster(["n1", "n2", "n3"]);
  const n1 = cluster.elect("n1");
  for (const s of ["a", "b", "c"]) {
    n1.propose(encoder.encode(s));
    strictEqual(n1.hasReady(), true);
  }
  const rd = n1.ready();
  n1.advance();
  deepStrictEqual(ofType(rd.messages, "append").map((m) => [m.to, m.entries.length]), [["n2", 3], [
    "n3",
    3,
  ]]);
});

Deno.test("Raft.log is a read-only view that follows the node's log", () => {
  const cluster = bootstrapCluster(["n1"], { electionTicks: ELECTION_TICKS });
  const n1 = cluster.elect("n1");
  const log = n1.log;
  strictEqual("append" in log, false);
  strictEqual("commitTo" in log, false);
  strictEqual(Object.isFrozen(log), true);
  const entry = n1.propose(encoder.encode("x"));
  cluster.settle();
  strictEqual(n1.log, log, "one view for the node's lifetime");
  strictEqual(log.lastIndex(), entry.index);
  strictEqual(log.committed, entry.index);
  strictEqual(log.entry(entry.index), entry);
});
