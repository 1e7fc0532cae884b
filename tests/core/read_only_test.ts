/**
 * Tests for `ReadIndexQueue` (src/core/read_only.ts): reads are released by
 * a quorum of voters, oldest first, never twice; one confirmation round is
 * out at a time; reads that arrive before the leader knows its commit index
 * wait; a reset forgets everything.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { ReadIndexQueue, type ReadRequest } from "../../src/core/read_only.ts";

const VOTERS = ["a", "b", "c", "d", "e"];

/** A read from `from` at `index`, its context the same as its name. */
function read(context: string, index = 1, from = "a"): ReadRequest {
  return { context, from, index };
}

Deno.test("ReadIndexQueue.recvAck() releases a read once a quorum of voters confirmed it", async (t) => {
  const rows: {
    name: string;
    queued: string[];
    acks: [context: string, from: string][];
    want: string[][];
  }[] = [
    {
      name: "the leader alone is not a quorum of five",
      queued: ["r1"],
      acks: [["r1", "b"]],
      want: [[]],
    },
    {
      name: "the third voter releases it",
      queued: ["r1"],
      acks: [["r1", "b"], ["r1", "c"]],
      want: [[], ["r1"]],
    },
    {
      name: "a repeated answer counts once",
      queued: ["r1"],
      acks: [["r1", "b"], ["r1", "b"]],
      want: [[], []],
    },
    {
      name: "learners do not count",
      queued: ["r1"],
      acks: [["r1", "x"], ["r1", "y"], ["r1", "b"]],
      want: [[], [], []],
    },
    {
      name: "a quorum for a later read releases every earlier one too, oldest first",
      queued: ["r1", "r2", "r3"],
      acks: [["r2", "b"], ["r2", "c"]],
      want: [[], ["r1", "r2"]],
    },
    {
      name: "an answer for an earlier read leaves later ones pending",
      queued: ["r1", "r2"],
      acks: [["r1", "b"], ["r1", "c"], ["r2", "b"], ["r2", "c"]],
      want: [[], ["r1"], [], ["r2"]],
    },
    {
      name: "a released read is not released again",
      queued: ["r1"],
      acks: [["r1", "b"], ["r1", "c"], ["r1", "d"]],
      want: [[], ["r1"], []],
    },
    {
      name: "an unknown context releases nothing",
      queued: ["r1"],
      acks: [["zz", "b"], ["zz", "c"]],
      want: [[], []],
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const reads = new ReadIndexQueue();
      for (const context of row.queued) reads.add(read(context), "a");
      const got = row.acks.map(([context, from]) =>
        reads.recvAck(context, from, VOTERS).map((r) => r.context)
      );
      deepStrictEqual(got, row.want);
    });
  }
});

Deno.test("ReadIndexQueue.add() keeps one pending read per context", () => {
  const reads = new ReadIndexQueue();
  strictEqual(reads.add(read("r1", 4), "a"), true);
  strictEqual(reads.add(read("r1", 9), "a"), false);
  strictEqual(reads.pending, 1);
  reads.recvAck("r1", "b", ["a", "b", "c"]);
  strictEqual(reads.pending, 0);
  strictEqual(reads.add(read("r1", 9), "a"), true, "the context is free again once released");
});

Deno.test("ReadIndexQueue.recvAck() hands back each read as it was queued", () => {
  const reads = new ReadIndexQueue();
  reads.add(read("r1", 4, "f1"), "a");
  deepStrictEqual(reads.recvAck("r1", "b", ["a", "b", "c"]), [read("r1", 4, "f1")]);
});

Deno.test("ReadIndexQueue.lastContext() names the latest pending read, which heartbeats carry", () => {
  const reads = new ReadIndexQueue();
  strictEqual(reads.lastContext(), null);
  reads.add(read("r1"), "a");
  reads.add(read("r2"), "a");
  strictEqual(reads.lastContext(), "r2");
  reads.recvAck("r2", "b", ["a", "b", "c"]);
  strictEqual(reads.lastContext(), null);
});

Deno.test("ReadIndexQueue.startRound() sends one round at a time; its answer lets the next go", () => {
  const reads = new ReadIndexQueue();
  strictEqual(reads.startRound(), null, "no read waits");
  reads.add(read("r1"), "a");
  strictEqual(reads.startRound(), "r1");
  reads.add(read("r2"), "a");
  reads.add(read("r3"), "a");
  strictEqual(reads.startRound(), null, "r1's round is out: r2 and r3 wait for its answer");
  reads.recvAck("r1", "b", VOTERS);
  strictEqual(reads.startRound(), null, "two of five is no answer yet");
  deepStrictEqual(reads.recvAck("r1", "c", VOTERS).map((r) => r.context), ["r1"]);
  strictEqual(reads.startRound(), "r3", "one round for both reads that waited");
  strictEqual(reads.startRound(), null);
});

Deno.test("ReadIndexQueue.heartbeatContext() makes the periodic heartbeat the round out", () => {
  const reads = new ReadIndexQueue();
  reads.add(read("r1"), "a");
  strictEqual(reads.startRound(), "r1");
  reads.add(read("r2"), "a");
  // r1's heartbeats were lost: the periodic one carries r2 and covers both.
  strictEqual(reads.heartbeatContext(), "r2");
  reads.recvAck("r2", "b", VOTERS);
  deepStrictEqual(reads.recvAck("r2", "c", VOTERS).map((r) => r.context), ["r1", "r2"]);
  reads.add(read("r3"), "a");
  strictEqual(reads.startRound(), "r3", "no round is out once r2's was answered");
});

Deno.test("ReadIndexQueue.takeDeferred() hands back deferred reads once, in arrival order", () => {
  const reads = new ReadIndexQueue();
  reads.defer({ context: "r1", from: "a" });
  reads.defer({ context: "r2", from: "f1" });
  deepStrictEqual(reads.takeDeferred(), [{ context: "r1", from: "a" }, {
    context: "r2",
    from: "f1",
  }]);
  deepStrictEqual(reads.takeDeferred(), []);
});

Deno.test("ReadIndexQueue.reset() forgets pending and deferred reads", () => {
  const reads = new ReadIndexQueue();
  reads.add(read("r1"), "a");
  reads.defer({ context: "r2", from: "a" });
  strictEqual(reads.startRound(), "r1");
  reads.reset();
  strictEqual(reads.pending, 0);
  strictEqual(reads.lastContext(), null);
  reads.add(read("r3"), "a");
  strictEqual(reads.startRound(), "r3", "the round of the past term is not out any more");
  deepStrictEqual(reads.recvAck("r1", "b", ["a", "b", "c"]), []);
  deepStrictEqual(reads.takeDeferred(), []);
});

Deno.test("ReadIndexQueue.fastest() picks the peers that confirmed reads most recently", () => {
  const reads = new ReadIndexQueue();
  const peers = ["b", "c", "d", "e"];
  deepStrictEqual(reads.fastest(peers, 2), ["b", "c"], "none known: the order given");
  reads.add(read("r1"), "a");
  deepStrictEqual(reads.recvAck("r1", "d", VOTERS), []);
  deepStrictEqual(reads.recvAck("r1", "e", VOTERS).map((r) => r.context), ["r1"]);
  deepStrictEqual(reads.fastest(peers, 2), ["e", "d"]);
  deepStrictEqual(reads.fastest(["b", "c", "d"], 2), ["d", "b"], "only candidates count");
  deepStrictEqual(reads.fastest(peers, 5), ["e", "d", "b", "c"], "never more than there are");
  reads.add(read("r2"), "a");
  reads.recvAck("r2", "c", VOTERS);
  reads.recvAck("r2", "c", VOTERS);
  deepStrictEqual(reads.fastest(peers, 3), ["c", "e", "d"]);
  reads.recvAck("r1", "b", VOTERS);
  deepStrictEqual(
    reads.fastest(peers, 1),
    ["c"],
    "an answer for a released read counts for nothing",
  );
});

Deno.test("ReadIndexQueue: a narrow round is out until it is released, widened or heartbeated", () => {
  const reads = new ReadIndexQueue();
  reads.add(read("r1"), "a");
  strictEqual(reads.startRound(), "r1");
  strictEqual(reads.narrowRound(), null, "sent to all until said otherwise");
  reads.narrowed(["b", "c"]);
  deepStrictEqual(reads.narrowRound(), { context: "r1", targets: ["b", "c"] });
  reads.widened();
  strictEqual(reads.narrowRound(), null);
  reads.narrowed(["b", "c"]);
  reads.add(read("r2"), "a");
  strictEqual(reads.heartbeatContext(), "r2");
  strictEqual(reads.narrowRound(), null, "the periodic heartbeat goes to all");
  reads.narrowed(["b"]);
  reads.recvAck("r2", "b", VOTERS);
  reads.recvAck("r2", "c", VOTERS);
  strictEqual(reads.narrowRound(), null, "released");
  reads.narrowed(["b"]);
  strictEqual(reads.narrowRound(), null, "no round out to narrow");
});

Deno.test("ReadIndexQueue: a read vouched for by its sender counts the sender, for itself alone", () => {
  const voters = ["a", "b", "c", "d", "e"];
  const reads = new ReadIndexQueue();
  const r1: ReadRequest = { context: "r1", from: "a", index: 3 };
  const f1: ReadRequest = { context: "f1", from: "c", index: 3 };
  reads.add(r1, "a");
  strictEqual(reads.vouchers(), null, "r1 was not vouched for");
  reads.add(f1, "a", "c");
  strictEqual(reads.pending, 2);
  strictEqual(reads.startRound(), "f1");
  deepStrictEqual(reads.recvAck("f1", "b", voters), [f1], "a, b and c are three of five");
  strictEqual(reads.pending, 1, "r1 still waits");
  strictEqual(reads.lastContext(), "f1", "f1's entry stays: answers to its round count for r1");
  deepStrictEqual(reads.recvAck("f1", "d", voters), [r1], "and f1 is not released again");
  strictEqual(reads.pending, 0);
  strictEqual(reads.lastContext(), null);
  strictEqual(reads.startRound(), null, "the round is over");
  // Only vouched-for reads waiting: their senders are named.
  reads.add({ context: "f2", from: "c", index: 4 }, "a", "c");
  reads.add({ context: "f3", from: "e", index: 4 }, "a", "e");
  deepStrictEqual([...reads.vouchers()!], ["c", "e"]);
});
