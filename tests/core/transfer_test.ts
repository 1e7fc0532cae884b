/**
 * Scenario tests for leadership transfer (src/core/transfer.ts, thesis
 * §3.10). Nodes are stepped by hand through the small driver in
 * `_harness.ts`.
 *
 * @module
 */

import { MembershipError, ProposalDroppedError } from "../../src/core/errors.ts";
import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { bootstrapCluster, ELECTION_TICKS, ofType } from "./_harness.ts";

const encoder = new TextEncoder();

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
