/**
 * Tests of the `Raft` class's own contract (src/core/raft.ts): proposals
 * between two `ready()` calls form one batch, and `Raft.log` is a read-only
 * view. The protocol's scenarios live beside the module that implements each
 * rule (`election_test.ts`, `replication_test.ts`, ...).
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { bootstrapCluster, ELECTION_TICKS, ofType } from "./_harness.ts";

const encoder = new TextEncoder();

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
