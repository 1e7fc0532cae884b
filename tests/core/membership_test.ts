/**
 * Single-server membership changes in the core (thesis §4.1): the rules that
 * keep two configurations from both forming majorities.
 *
 * @module
 */

import { strictEqual, throws } from "node:assert/strict";
import {
  MembershipError,
  ProposalDroppedError,
  Raft,
  type RaftOptions,
  seededPrng,
  voterIds,
} from "../../src/core/mod.ts";
import { buildLog, Cluster } from "./_harness.ts";

/** `founders` bootstrap a cluster; `others` start empty, waiting to be added. */
function cluster(
  founders: string[],
  others: string[] = [],
  options: Partial<RaftOptions> = {},
): Cluster {
  const members = founders.map((id) => ({ id, voter: true }));
  return new Cluster([
    ...founders.map((id, i) =>
      new Raft({ ...options, id, prng: seededPrng(i + 1), bootstrap: { members } })
    ),
    ...others.map((id, i) => new Raft({ ...options, id, prng: seededPrng(100 + i) })),
  ]);
}

const problemOf = (e: unknown) => e instanceof MembershipError ? e.problem : "?";

Deno.test("changeMembers() waits until the new leader commits an entry of its term", () => {
  const c = cluster(["a", "b", "c"], ["d"], { preVote: false });
  const a = c.node("a");
  a.campaign();
  c.settle((m) => m.type === "append"); // votes arrive, the no-op is held back
  strictEqual(a.role, "leader");
  throws(
    () => a.changeMembers({ type: "add", member: { id: "d", voter: false } }),
    ProposalDroppedError,
  );
  for (let i = 0; i < 5 && a.log.term(a.log.committed) !== a.term; i++) c.tick(["a"]);
  strictEqual(a.changeMembers({ type: "add", member: { id: "d", voter: false } })?.kind, "config");
});

Deno.test("changeMembers() refuses a second change while one is uncommitted", () => {
  const c = cluster(["a", "b", "c"], ["d"]);
  const a = c.elect("a");
  a.changeMembers({ type: "add", member: { id: "d", voter: false } });
  throws(() => a.changeMembers({ type: "remove", id: "c" }), ProposalDroppedError);
  c.settle();
  a.changeMembers({ type: "remove", id: "c" });
  c.settle();
  strictEqual(voterIds(a.status().config).join(","), "a,b");
});

Deno.test("changeMembers() adds as learner, refuses duplicates, unknown ids and removing the last voter", () => {
  const c = cluster(["a"], ["r"]);
  const a = c.elect("a");
  a.changeMembers({ type: "add", member: { id: "r", voter: true, readOnly: true } });
  c.settle();
  strictEqual(a.status().config.members.find((m) => m.id === "r")?.voter, false);
  throws(
    () => a.changeMembers({ type: "add", member: { id: "r", voter: false } }),
    (e) => problemOf(e) === "already_member",
  );
  throws(() => a.changeMembers({ type: "remove", id: "zz" }), (e) => problemOf(e) === "not_member");
  throws(
    () => a.changeMembers({ type: "promote", id: "r" }),
    (e) => problemOf(e) === "not_allowed",
  );
  throws(
    () => a.changeMembers({ type: "remove", id: "a" }),
    (e) => problemOf(e) === "not_allowed",
  );
});

Deno.test("a caught-up learner is promoted to voter by the leader's tick", () => {
  const c = cluster(["a", "b", "c"], ["d"]);
  const a = c.elect("a");
  a.changeMembers({ type: "add", member: { id: "d", voter: false } });
  c.settle();
  strictEqual(voterIds(a.status().config).includes("d"), false);
  c.tick(["a"]);
  c.settle();
  strictEqual(voterIds(a.status().config).includes("d"), true);
  strictEqual(voterIds(c.node("d").status().config).includes("d"), true);
});

Deno.test("a leader that removed itself and lost leadership before the removal committed still finishes it", () => {
  const c = cluster(["a", "b"], [], { preVote: false, checkQuorum: false });
  const a = c.elect("a");
  a.changeMembers({ type: "remove", id: "a" });
  c.drain(); // b never hears of the removal
  const b = c.node("b");
  b.campaign(); // a higher term deposes a, but a's longer log refuses b
  c.settle((m) => m.type === "append" || m.type === "heartbeat");
  strictEqual(a.role, "follower");
  strictEqual(b.role === "leader", false);
  // a votes in no configuration it holds now, yet may campaign counting b
  // only: otherwise nobody could ever win.
  for (
    let i = 0;
    i < 300 && !(b.role === "leader" && voterIds(b.status().config).join() === "b");
    i++
  ) {
    c.tick();
  }
  strictEqual(voterIds(b.status().config).join(","), "b");
  strictEqual(b.role, "leader");
  strictEqual(b.status().commitIndex >= b.status().configIndex, true);
});

Deno.test("a learner that never answered is not promoted, so a dead joiner cannot take the majority away", () => {
  const c = cluster(["a"], ["x"]);
  c.isolated.add("x");
  const a = c.elect("a");
  a.changeMembers({ type: "add", member: { id: "x", voter: false } });
  c.settle();
  for (let i = 0; i < 40; i++) c.tick(["a"]);
  strictEqual(voterIds(a.status().config).join(","), "a");
  strictEqual(a.role, "leader");
  a.changeMembers({ type: "remove", id: "x" });
  c.settle();
  strictEqual(a.status().config.members.length, 1);
});

Deno.test("forceConfig appends the forced configuration in a fresh term, so no stale log can win over it", () => {
  const voters = ["a", "b", "c"];
  const a = new Raft({
    id: "a",
    prng: seededPrng(1),
    hardState: { term: 2, vote: null, commit: 3 },
    entries: buildLog(voters, [1, 2, 2]),
    forceConfig: { members: [{ id: "a", voter: true }, { id: "b", voter: true }] },
  });
  // b holds another entry at index 4 in term 2.
  const b = new Raft({
    id: "b",
    prng: seededPrng(2),
    hardState: { term: 2, vote: null, commit: 3 },
    entries: buildLog(voters, [1, 2, 2, 2]),
  });
  strictEqual(a.log.lastTerm(), 3);
  strictEqual(a.log.committed, 4);
  const c = new Cluster([a, b]);
  c.isolated.add("c"); // gone for good
  b.campaign();
  c.settle();
  strictEqual(b.role === "leader", false);
  for (let i = 0; i < 100 && a.role !== "leader"; i++) c.tick();
  strictEqual(a.role, "leader");
  strictEqual(b.log.hash(4), a.log.hash(4));
});
