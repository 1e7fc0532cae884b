/**
 * Scenario tests for a leader's own duties (src/core/leader.ts): CheckQuorum
 * and linearizable reads, each named after the claim of the Raft thesis it
 * checks. Nodes are stepped by hand through the small driver in
 * `_harness.ts`.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import type { HeartbeatMessage, Message, VoteMessage } from "../../src/core/messages.ts";
import type { Raft } from "../../src/core/raft.ts";
import { bootstrapCluster, type Cluster, ELECTION_TICKS, ofType } from "./_harness.ts";

const encoder = new TextEncoder();

/** A RequestVote (or PreVote) message. */
function voteRequest(
  fields: Pick<VoteMessage, "from" | "to" | "term" | "lastIndex" | "lastTerm"> & {
    preVote?: boolean;
    transfer?: boolean;
  },
): VoteMessage {
  return { type: "vote", preVote: false, transfer: false, ...fields };
}

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

// ------------------------------------------------------- thesis §6.4 ReadIndex

/**
 * A node's next batch, acknowledged: the heartbeats it sends and the reads
 * it releases, its own by context and a follower's as `to:context`.
 */
function nextBatch(node: Raft): { heartbeats: HeartbeatMessage[]; released: string[] } {
  const rd = node.ready();
  node.advance();
  return {
    heartbeats: ofType(rd.messages, "heartbeat"),
    released: [
      ...rd.readStates.map((s) => s.context),
      ...ofType(rd.messages, "readIndexResponse").map((m) => `${m.to}:${m.context}`),
    ],
  };
}

/** Where heartbeats go, as `to:context`. */
function targets(heartbeats: readonly HeartbeatMessage[]): string[] {
  return heartbeats.map((m) => `${m.to}:${m.context}`);
}

/** The answer of the follower a heartbeat is for. */
function heartbeatAnswer(cluster: Cluster, heartbeat: HeartbeatMessage): Message {
  const follower = cluster.node(heartbeat.to);
  follower.step(heartbeat);
  const out = follower.ready();
  follower.advance();
  return ofType(out.messages, "heartbeatResponse")[0]!;
}

Deno.test("thesis §6.4 ReadIndex: reads are released only with confirmed leadership", async (t) => {
  await t.step(
    "on the leader, only after a majority answered the heartbeat carrying the context",
    () => {
      const cluster = bootstrapCluster(["n1", "n2", "n3", "n4", "n5"]);
      const n1 = cluster.elect("n1");
      strictEqual(n1.log.committed, 2);
      n1.readIndex("r1");
      const { heartbeats, released } = nextBatch(n1);
      deepStrictEqual(released, []);
      deepStrictEqual(
        targets(heartbeats),
        ["n2:r1", "n3:r1"],
        "only as many voters as a majority needs besides the leader",
      );
      n1.step(heartbeatAnswer(cluster, heartbeats[0]!));
      deepStrictEqual(nextBatch(n1).released, [], "2 of 5 is not a majority");
      n1.step(heartbeatAnswer(cluster, heartbeats[1]!));
      const rd = n1.ready();
      n1.advance();
      deepStrictEqual(rd.readStates, [{ index: 2, context: "r1" }]);
    },
  );

  await t.step(
    "reads that arrive while a round is out, the leader's own or forwarded, share the next round",
    () => {
      const cluster = bootstrapCluster(["n1", "n2", "n3"]);
      const n1 = cluster.elect("n1");
      n1.readIndex("r1");
      const first = nextBatch(n1).heartbeats;
      deepStrictEqual(targets(first), ["n2:r1"]);
      n1.readIndex("r2");
      n1.step({ type: "readIndex", from: "n2", to: "n1", term: 0, context: "f1" });
      deepStrictEqual(nextBatch(n1).heartbeats, [], "r1's round is out");
      // n2 answers r1's heartbeat: r1 is released and one round carries r2 and f1.
      n1.step(heartbeatAnswer(cluster, first[0]!));
      const { heartbeats, released } = nextBatch(n1);
      deepStrictEqual(released, ["r1"]);
      deepStrictEqual(targets(heartbeats), ["n2:f1"]);
    },
  );

  await t.step(
    "a round goes to the voters that confirmed reads last; widened, it goes to the others",
    () => {
      const cluster = bootstrapCluster(["n1", "n2", "n3"]);
      const n1 = cluster.elect("n1");
      n1.readIndex("r1");
      const [toN2, ...none] = nextBatch(n1).heartbeats;
      deepStrictEqual([toN2!.to, none], ["n2", []]);
      strictEqual(n1.narrowReadRound(), "r1");
      // n2 is slow to answer: the driver widens the round to n3, which answers first.
      n1.widenReadRound();
      strictEqual(n1.narrowReadRound(), null);
      const [toN3, ...again] = nextBatch(n1).heartbeats;
      deepStrictEqual([toN3!.to, toN3!.context, again], ["n3", "r1", []]);
      n1.widenReadRound();
      deepStrictEqual(nextBatch(n1).heartbeats, [], "a round widened once is not sent again");
      n1.step(heartbeatAnswer(cluster, toN3!));
      n1.readIndex("r2");
      const next = nextBatch(n1);
      deepStrictEqual(next.released, ["r1"]);
      deepStrictEqual(
        targets(next.heartbeats),
        ["n3:r2"],
        "the voter that confirmed r1 gets the next round",
      );
      // n2's late answer to r1 changes nothing: r1 is released already.
      n1.step(heartbeatAnswer(cluster, toN2!));
      deepStrictEqual(nextBatch(n1), { heartbeats: [], released: [] });
      strictEqual(n1.narrowReadRound(), "r2");
    },
  );

  await t.step("the periodic heartbeat carries the round out to every peer", () => {
    const cluster = bootstrapCluster(["n1", "n2", "n3"]);
    const n1 = cluster.elect("n1");
    n1.readIndex("r1");
    nextBatch(n1);
    strictEqual(n1.narrowReadRound(), "r1");
    let sent: string[] = [];
    for (let i = 0; i < 10 && sent.length === 0; i++) {
      n1.tick();
      sent = targets(nextBatch(n1).heartbeats);
    }
    deepStrictEqual(sent, ["n2:r1", "n3:r1"]);
    strictEqual(n1.narrowReadRound(), null, "nothing left to widen");
  });

  await t.step("a round goes to every peer when a quorum needs them all", () => {
    const cluster = bootstrapCluster(["n1", "n2"]);
    const n1 = cluster.elect("n1");
    n1.readIndex("r1");
    deepStrictEqual(targets(nextBatch(n1).heartbeats), ["n2:r1"]);
    strictEqual(n1.narrowReadRound(), null);
  });

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
      term: n1.term,
      context: "f1",
    }]);
    cluster.deliver(rd.messages);
    n2.advance();
    cluster.settle(hold);
    deepStrictEqual(cluster.readStates.get("n2"), [{ index: 3, context: "f1" }]);
    deepStrictEqual(cluster.readStates.get("n1"), []);
  });

  await t.step(
    "a follower's request in the leader's term confirms its own read where the two are a quorum",
    () => {
      const cluster = bootstrapCluster(["n1", "n2", "n3"]);
      const n1 = cluster.elect("n1");
      const released: string[] = [];
      const answers = (): string[] => {
        const rd = n1.ready();
        n1.advance();
        released.push(...rd.readStates.map((rs) => rs.context));
        return rd.messages.map((m) =>
          m.type === "readIndexResponse" ? `${m.to}:${m.context}@${m.index}` : `${m.type}:${m.to}`
        );
      };
      // The leader's own read waits for its round, which n2 is not answering.
      n1.readIndex("r1");
      deepStrictEqual(answers(), ["heartbeat:n2"]);
      const request = { type: "readIndex", from: "n3", to: "n1", context: "f1" } as const;
      n1.step({ ...request, term: n1.term });
      deepStrictEqual(answers(), ["n3:f1@2"], "answered at once, no round");
      deepStrictEqual(released, [], "r1 may have begun after n3 sent: it still waits");
      // Of another term, or from no one in the leader's term, it waits for a round.
      for (const term of [0, n1.term - 1, n1.term + 1]) {
        n1.step({ ...request, term, context: `t${term}` });
        deepStrictEqual(answers(), [], `term ${term}: behind r1's round`);
      }
      strictEqual(n1.role, "leader", "a request's term moves no one's term");
      strictEqual(n1.term, 2);
    },
  );

  await t.step(
    "in a cluster of five a follower's request counts its sender: one answer from another voter confirms it",
    () => {
      const cluster = bootstrapCluster(["n1", "n2", "n3", "n4", "n5"]);
      const n1 = cluster.elect("n1");
      n1.step({ type: "readIndex", from: "n3", to: "n1", term: n1.term, context: "f1" });
      const { heartbeats, released } = nextBatch(n1);
      deepStrictEqual(released, [], "n1 and n3 are not a quorum");
      strictEqual(heartbeats.length, 1, "n3 counts already: one more answer makes three");
      ok(heartbeats[0]!.to !== "n3", "not to the sender, whose answer adds nothing");
      n1.step(heartbeatAnswer(cluster, heartbeats[0]!));
      deepStrictEqual(nextBatch(n1).released, ["n3:f1"]);
    },
  );

  await t.step(
    "a follower's word counts for its own read, never for the reads before it",
    () => {
      const cluster = bootstrapCluster(["n1", "n2", "n3", "n4", "n5"]);
      const n1 = cluster.elect("n1");
      // A round is out for r1, so r2 and n3's f2 queue behind it.
      n1.readIndex("r1");
      const first = nextBatch(n1).heartbeats;
      n1.readIndex("r2");
      n1.step({ type: "readIndex", from: "n3", to: "n1", term: n1.term, context: "f2" });
      deepStrictEqual(nextBatch(n1).released, []);
      for (const heartbeat of first) n1.step(heartbeatAnswer(cluster, heartbeat));
      const { heartbeats: second, released } = nextBatch(n1);
      deepStrictEqual(released, ["r1"]);
      // r2 was not vouched for: the next round needs two answers, and
      // carries f2's context, the latest.
      deepStrictEqual(second.map((m) => m.context), ["f2", "f2"]);
      const [one, two] = second.filter((m) => m.to !== "n3").length === 2
        ? second
        : [second.find((m) => m.to !== "n3")!, second.find((m) => m.to === "n3")!];
      n1.step(heartbeatAnswer(cluster, one!));
      deepStrictEqual(
        nextBatch(n1).released,
        ["n3:f2"],
        "n1, n3 and one answer are a quorum for f2; r2 may have begun after n3 sent",
      );
      n1.step(heartbeatAnswer(cluster, two!));
      deepStrictEqual(nextBatch(n1).released, ["r2"], "three answers: r2 too, and f2 not again");
    },
  );

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
