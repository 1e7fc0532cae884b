/**
 * Scenario tests for a leader's replication (src/core/replication.ts): logs
 * made to match (Figure 7), the commit rule (Figure 8), and commits that wait
 * for the leader's own durable copy, each named after the claim of the Raft
 * paper (§ numbers) it checks. Nodes are stepped by hand through the small
 * driver in `_harness.ts`.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import type { Message } from "../../src/core/messages.ts";
import { type Raft, SNAPSHOT_CATCH_UP_ENTRIES_MAX } from "../../src/core/raft.ts";
import {
  bootstrapCluster,
  type Cluster,
  ELECTION_TICKS,
  ofType,
  recoveredCluster,
} from "./_harness.ts";

const encoder = new TextEncoder();

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

Deno.test("§10.2.1 while its write runs, a leader sends new entries and applies what a quorum of followers holds", async (t) => {
  /** n1 leads; `rd` is its batch whose write is still running. */
  const start = () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    const n1 = cluster.elect("n1");
    const entry = n1.propose(encoder.encode("x"));
    const rd = n1.ready();
    return { cluster, n1, entry, rd };
  };
  /** Delivers `messages` to the follower `id` and steps its acknowledgements on n1. */
  const ackFrom = (cluster: Cluster, id: string, messages: readonly Message[]) => {
    const follower = cluster.node(id);
    for (const m of ofType(messages, "append").filter((m) => m.to === id)) follower.step(m);
    const ack = follower.ready();
    follower.advance();
    for (const m of ofType(ack.messages, "appendResponse")) cluster.node("n1").step(m);
  };

  await t.step("both followers' acks commit the entry: it is handed out before advance()", () => {
    const { cluster, n1, entry, rd } = start();
    strictEqual(n1.readyEarly()!.committed.length, 0, "nothing is committed yet");
    ackFrom(cluster, "n2", rd.messages);
    deepStrictEqual(n1.readyEarly()!.committed, [], "1 follower and an unsaved leader: no quorum");
    ackFrom(cluster, "n3", rd.messages);
    strictEqual(n1.log.stable, 2, "the leader's own write has not ended");
    deepStrictEqual(n1.readyEarly()!.committed, [entry]);
    deepStrictEqual(n1.readyEarly()!.committed, [], "handed out once");
    n1.advance();
    deepStrictEqual(n1.ready().committed, [], "advance() acknowledged it with the batch");
    n1.advance();
    strictEqual(n1.log.applied, 3);
  });

  await t.step(
    "an entry proposed during the write goes out at once, and is applied only after the next batch",
    () => {
      const { cluster, n1, rd } = start();
      const later = n1.propose(encoder.encode("y"));
      const early = n1.readyEarly()!;
      deepStrictEqual(
        ofType(early.messages, "append").map((m) => [m.to, m.entries.map((e) => e.index)]),
        [["n2", [4]], ["n3", [4]]],
      );
      ackFrom(cluster, "n2", [...rd.messages, ...early.messages]);
      ackFrom(cluster, "n3", [...rd.messages, ...early.messages]);
      strictEqual(n1.log.committed, 4, "both followers hold entry 4");
      deepStrictEqual(
        n1.readyEarly()!.committed.map((e) => e.index),
        [3],
        "entry 4 is not in the write that runs: this node's storage may lack it",
      );
      n1.advance();
      const next = n1.ready();
      deepStrictEqual(next.entries, [later]);
      deepStrictEqual(next.committed, [later]);
      n1.advance();
    },
  );

  await t.step("a candidate that wins while its vote is being written sends nothing early", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"], { preVote: false });
    const n1 = cluster.node("n1");
    const n2 = cluster.node("n2");
    n1.campaign();
    const rd = n1.ready();
    deepStrictEqual(rd.hardState, { term: 2, vote: "n1", commit: 1 });
    for (const m of ofType(rd.messages, "vote").filter((m) => m.to === "n2")) n2.step(m);
    const answer = n2.ready();
    n2.advance();
    for (const m of ofType(answer.messages, "voteResponse")) n1.step(m);
    strictEqual(n1.role, "leader");
    strictEqual(n1.readyEarly(), null, "its term and vote are not durable yet");
    n1.advance();
    n1.ready();
    ok(n1.readyEarly() !== null, "once they are");
    n1.advance();
  });

  await t.step("nothing early without a batch out, for a follower, or after a new term", () => {
    const { cluster, n1, rd } = start();
    const n2 = cluster.node("n2");
    for (const m of ofType(rd.messages, "append").filter((m) => m.to === "n2")) n2.step(m);
    n2.ready();
    strictEqual(n2.readyEarly(), null, "a follower's answers wait for its disk");
    n2.advance();
    n1.advance();
    strictEqual(n1.readyEarly(), null, "no batch out");
    n1.propose(encoder.encode("z"));
    n1.ready();
    n1.step({
      type: "heartbeat",
      from: "n2",
      to: "n1",
      term: 9,
      commit: 0,
      context: null,
      seen: {},
    });
    strictEqual(n1.role, "follower");
    strictEqual(n1.readyEarly(), null, "the new term must reach the disk first");
  });
});

// ------------------------------------------------------------- chapter 5, under load

/**
 * A cluster of a, b and c led by a, with c cut off while a wrote `writes`
 * entries and took a snapshot of `bytes` bytes, keeping no entries: c,
 * connected again, needs the snapshot. Messages are bounded to 1 byte, so
 * snapshot chunks are SNAPSHOT_CHUNK_MIN_BYTES (1024).
 */
function behindBySnapshot(
  bytes: number,
  writes: number,
): { cluster: Cluster; leader: Raft; c: Raft } {
  const cluster = bootstrapCluster(["a", "b", "c"], {
    preVote: false,
    checkQuorum: false,
    maxMsgBytes: 1,
  });
  const leader = cluster.elect("a");
  const c = cluster.node("c");
  cluster.isolated.add("c");
  for (let i = 0; i < writes; i++) leader.propose(encoder.encode(`early ${i}`));
  cluster.settle();
  leader.compact(leader.log.applied, new Uint8Array(bytes).fill(1));
  cluster.isolated.delete("c");
  return { cluster, leader, c };
}

Deno.test("§7 a network that repeats every message sends each snapshot chunk about once, not in ever more copies", () => {
  // A 16,000-byte snapshot needs 16 chunks.
  const { cluster, leader, c } = behindBySnapshot(16_000, 3);
  const behind = leader.snapshot.index;
  let chunks = 0;
  // Every message to or from c arrives twice, the copy one round late: after
  // the next chunk has left.
  let copies: Message[] = [];
  for (let round = 0; round < 200 && c.log.committed < behind; round++) {
    const outbox = cluster.drain();
    if (outbox.length === 0 && copies.length === 0) leader.tick();
    const late = copies;
    copies = [];
    for (const m of outbox) {
      if (m.type === "snapshot") chunks++;
      cluster.deliver([m]);
      if (m.to === "c" || m.from === "c") copies.push(m);
    }
    cluster.deliver(late);
  }
  strictEqual(c.log.committed >= behind, true, "c caught up");
  ok(chunks <= 20, `${chunks} chunks sent for a snapshot of 16`);
});

Deno.test("§5 a leader keeps the entries after a snapshot it is sending: the follower needs no second one", () => {
  // Each snapshot needs eight chunks.
  const { cluster, leader, c } = behindBySnapshot(8000, 5);
  // One exchange with c per round; between two, a write commits and the
  // leader takes a new snapshot keeping no entries of its own.
  let held: Message[] = [];
  for (let round = 0; round < 20; round++) {
    cluster.deliver(held);
    leader.propose(encoder.encode(`write ${round}`));
    leader.tick();
    held = cluster.settle((m) => m.to === "c" || m.from === "c");
    leader.compact(leader.log.applied, new Uint8Array(8000).fill(round % 251));
  }
  // The writes stop; c catches up.
  cluster.deliver(held);
  for (let i = 0; i < 30 && c.log.committed < leader.log.committed; i++) cluster.tick(["a"]);
  strictEqual(c.log.committed, leader.log.committed, "c caught up");
  const transfers = cluster.delivered.filter((m) =>
    m.type === "snapshot" && m.to === "c" && m.offset === 0
  );
  strictEqual(transfers.length, 1, "snapshots sent to c from their first byte");
});

Deno.test("§5 the entries kept for a snapshot being sent are bounded", () => {
  // The snapshot needs five chunks.
  const { cluster, leader } = behindBySnapshot(5000, 1);
  // c's answers to snapshot chunks never come back: the transfer stays under way.
  const hold = (m: Message) => m.type === "snapshotResponse";
  const stateOfC = () => leader.followers().get("c")!.state;
  for (let i = 0; i < 3 * ELECTION_TICKS && stateOfC() !== "snapshot"; i++) {
    leader.propose(encoder.encode(`probe ${i}`));
    leader.tick();
    cluster.settle(hold);
  }
  strictEqual(stateOfC(), "snapshot");
  for (let i = 0; i < SNAPSHOT_CATCH_UP_ENTRIES_MAX + 100; i++) {
    leader.propose(encoder.encode(`w${i}`));
    if (i % 500 === 499) cluster.settle(hold);
  }
  cluster.settle(hold);
  const index = leader.log.applied;
  leader.compact(index, new Uint8Array(10).fill(2));
  strictEqual(leader.log.snapshot.index, index - SNAPSHOT_CATCH_UP_ENTRIES_MAX);
});

Deno.test("§5 a follower catches up by snapshot under load, though the leader snapshots after every write", () => {
  // Each snapshot needs four chunks.
  const { cluster, leader, c } = behindBySnapshot(4000, 5);
  const behind = leader.snapshot.index;
  ok(c.log.lastIndex() < behind, "c needs the snapshot");
  // One exchange with c per round; between two, a write commits and the
  // leader takes a new snapshot, as a busy leader with `snapshotEvery: 1` does.
  let held: Message[] = [];
  let rounds = 0;
  for (; rounds < 60 && c.log.committed < behind; rounds++) {
    cluster.deliver(held);
    leader.propose(encoder.encode(`write ${rounds}`));
    // Time passes too: a chunk unanswered for an election timeout is sent again.
    leader.tick();
    held = cluster.settle((m) => m.to === "c" || m.from === "c");
    if (leader.log.applied > leader.snapshot.index) {
      leader.compact(leader.log.applied, new Uint8Array(4000).fill(rounds % 251));
    }
  }
  ok(
    c.log.committed >= behind,
    `c reached ${c.log.committed} of ${behind} in ${rounds} rounds: the transfer kept restarting`,
  );
  ok(rounds <= 10, `${rounds} rounds for a four-chunk snapshot`);
});
