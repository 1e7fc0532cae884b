/**
 * Single-server membership changes in the core (thesis §4.1): the rules that
 * keep two configurations from both forming majorities, first as the pure
 * functions of src/core/membership.ts, then as the Raft core applies them.
 *
 * @module
 */

import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import type { Configuration, Member } from "../../src/core/config.ts";
import {
  applyMembershipChange,
  handoverTarget,
  promotionCandidate,
} from "../../src/core/membership.ts";
import {
  type MembershipChange,
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

/** Voters `a` and `b`, learner `l`, read-only learner `r`. */
const CONFIG: Configuration = {
  members: [
    { id: "a", voter: true, url: "http://a" },
    { id: "b", voter: true },
    { id: "l", voter: false },
    { id: "r", voter: false, readOnly: true },
  ],
};

/** The ids of `config`'s members, learners in brackets. */
function shape(config: Configuration | null): string | null {
  return config?.members.map((m: Member) => m.voter ? m.id : `[${m.id}]`).join(",") ?? null;
}

Deno.test("applyMembershipChange() returns the configuration a single-server change leads to", async (t) => {
  const rows: { name: string; change: MembershipChange; want: string | null }[] = [
    {
      name: "add joins as a learner",
      change: { type: "add", member: { id: "n", voter: false } },
      want: "a,b,[l],[r],[n]",
    },
    {
      name: "add of a voter still joins as a learner",
      change: { type: "add", member: { id: "n", voter: true } },
      want: "a,b,[l],[r],[n]",
    },
    {
      name: "promote makes a learner a voter",
      change: { type: "promote", id: "l" },
      want: "a,b,l,[r]",
    },
    {
      name: "promote of a voter changes nothing",
      change: { type: "promote", id: "a" },
      want: null,
    },
    { name: "remove of a voter", change: { type: "remove", id: "a" }, want: "b,[l],[r]" },
    { name: "remove of a learner", change: { type: "remove", id: "r" }, want: "a,b,[l]" },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      strictEqual(shape(applyMembershipChange(CONFIG, row.change)), row.want);
    });
  }
  await t.step("members keep their other fields", () => {
    const next = applyMembershipChange(CONFIG, { type: "promote", id: "l" })!;
    deepStrictEqual(next.members[0], CONFIG.members[0]);
    const added = applyMembershipChange(CONFIG, {
      type: "add",
      member: { id: "n", voter: true, url: "http://n", readOnly: true },
    })!;
    deepStrictEqual(added.members.at(-1), {
      id: "n",
      voter: false,
      url: "http://n",
      readOnly: true,
    });
  });
});

Deno.test("applyMembershipChange() refuses changes that make no sense", async (t) => {
  const lone: Configuration = { members: [{ id: "a", voter: true }, { id: "l", voter: false }] };
  const rows: { name: string; config: Configuration; change: MembershipChange; problem: string }[] =
    [
      {
        name: "adding an existing id",
        config: CONFIG,
        change: { type: "add", member: { id: "l", voter: false } },
        problem: "already_member",
      },
      {
        name: "promoting an unknown id",
        config: CONFIG,
        change: { type: "promote", id: "zz" },
        problem: "not_member",
      },
      {
        name: "removing an unknown id",
        config: CONFIG,
        change: { type: "remove", id: "zz" },
        problem: "not_member",
      },
      {
        name: "promoting a read-only member",
        config: CONFIG,
        change: { type: "promote", id: "r" },
        problem: "not_allowed",
      },
      {
        name: "removing the last voter",
        config: lone,
        change: { type: "remove", id: "a" },
        problem: "not_allowed",
      },
    ];
  for (const row of rows) {
    await t.step(row.name, () => {
      throws(
        () => applyMembershipChange(row.config, row.change),
        (e) => problemOf(e) === row.problem,
      );
    });
  }
});

Deno.test("promotionCandidate() picks the first caught-up learner that answered", async (t) => {
  const config: Configuration = {
    members: [
      { id: "a", voter: true },
      { id: "r", voter: false, readOnly: true },
      { id: "l1", voter: false },
      { id: "l2", voter: false },
    ],
  };
  const rows: { name: string; matches: Record<string, number>; want: string | null }[] = [
    { name: "no learner answered", matches: {}, want: null },
    { name: "the first caught-up learner", matches: { l1: 90, l2: 100 }, want: "l1" },
    { name: "a learner too far behind is skipped", matches: { l1: 83, l2: 84 }, want: "l2" },
    { name: "a learner without the config that added it", matches: { l1: 79 }, want: null },
    { name: "a read-only learner never", matches: { r: 100 }, want: null },
    { name: "voters are not candidates", matches: { a: 100 }, want: null },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const got = promotionCandidate(config, {
        configIndex: 80,
        lastIndex: 100,
        lagEntries: 16,
        matchOf: (id) => row.matches[id],
      });
      strictEqual(got, row.want);
    });
  }
});

Deno.test("handoverTarget() picks the voter with the longest log", async (t) => {
  const rows: {
    name: string;
    voters: string[];
    matches: [string, number][];
    want: string | null;
  }[] = [
    { name: "the highest match", voters: ["b", "c"], matches: [["b", 4], ["c", 7]], want: "c" },
    {
      name: "learners are not candidates",
      voters: ["b"],
      matches: [["b", 4], ["l", 9]],
      want: "b",
    },
    { name: "the first wins a tie", voters: ["b", "c"], matches: [["c", 7], ["b", 7]], want: "c" },
    { name: "a voter that never answered", voters: ["b"], matches: [["b", 0]], want: "b" },
    { name: "no voter among the followers", voters: ["a"], matches: [["l", 9]], want: null },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      strictEqual(handoverTarget(row.voters, row.matches), row.want);
    });
  }
});

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
