/**
 * Tests for the majority arithmetic in src/core/quorum.ts: `quorumIndex`,
 * `tallyVotes` and `hasQuorum`.
 *
 * @module
 */

import { strictEqual, throws } from "node:assert/strict";
import { AssertionError } from "../../src/core/assert.ts";
import { hasQuorum, quorumIndex, tallyVotes, type VoteResult } from "../../src/core/quorum.ts";

Deno.test("quorumIndex() returns the highest index a majority of voters reach", async (t) => {
  const rows = [
    { name: "one voter", input: [7], want: 7 },
    { name: "three voters", input: [5, 3, 9], want: 5 },
    { name: "three voters, order does not matter", input: [9, 5, 3], want: 5 },
    { name: "three voters, two at zero", input: [0, 7, 0], want: 0 },
    { name: "four voters need three", input: [1, 2, 3, 4], want: 2 },
    { name: "four voters, two high", input: [8, 8, 0, 0], want: 0 },
    { name: "five voters need three", input: [9, 8, 7, 2, 1], want: 7 },
    { name: "five voters, two high", input: [7, 7, 0, 0, 0], want: 0 },
    { name: "all equal", input: [4, 4, 4], want: 4 },
  ];
  for (const row of rows) {
    await t.step(row.name, () => strictEqual(quorumIndex(row.input), row.want));
  }
  await t.step("no voters is a bug", () => {
    throws(() => quorumIndex([]), AssertionError);
  });
  await t.step("does not reorder its input", () => {
    const input = [5, 3, 9];
    quorumIndex(input);
    strictEqual(input.join(), "5,3,9");
  });
});

Deno.test("tallyVotes() reports won, lost or pending", async (t) => {
  const three = ["a", "b", "c"];
  const four = ["a", "b", "c", "d"];
  const rows: { name: string; voters: string[]; votes: [string, boolean][]; want: VoteResult }[] = [
    { name: "no answers yet", voters: three, votes: [], want: "pending" },
    { name: "one grant of three", voters: three, votes: [["a", true]], want: "pending" },
    { name: "two grants of three", voters: three, votes: [["a", true], ["b", true]], want: "won" },
    {
      name: "two refusals of three",
      voters: three,
      votes: [["a", false], ["b", false]],
      want: "lost",
    },
    {
      name: "split, one missing",
      voters: three,
      votes: [["a", true], ["b", false]],
      want: "pending",
    },
    {
      name: "split, then a refusal",
      voters: three,
      votes: [["a", true], ["b", false], ["c", false]],
      want: "lost",
    },
    {
      name: "half of four is not a majority",
      voters: four,
      votes: [["a", true], ["b", true]],
      want: "pending",
    },
    {
      name: "three of four win",
      voters: four,
      votes: [["a", true], ["b", true], ["c", true]],
      want: "won",
    },
    {
      name: "two refusals of four lose",
      voters: four,
      votes: [["a", false], ["b", false]],
      want: "lost",
    },
    {
      name: "votes of non-voters are ignored",
      voters: three,
      votes: [["a", true], ["x", true], ["y", true]],
      want: "pending",
    },
    { name: "a single voter wins alone", voters: ["a"], votes: [["a", true]], want: "won" },
    { name: "a single voter refusing loses", voters: ["a"], votes: [["a", false]], want: "lost" },
  ];
  for (const row of rows) {
    await t.step(row.name, () => strictEqual(tallyVotes(row.voters, new Map(row.votes)), row.want));
  }
});

Deno.test("hasQuorum() holds when more than half of the voters are present", async (t) => {
  const rows = [
    { name: "one of three", voters: ["a", "b", "c"], ids: ["a"], want: false },
    { name: "two of three", voters: ["a", "b", "c"], ids: ["a", "c"], want: true },
    { name: "all three", voters: ["a", "b", "c"], ids: ["a", "b", "c"], want: true },
    { name: "two of four", voters: ["a", "b", "c", "d"], ids: ["a", "b"], want: false },
    { name: "three of four", voters: ["a", "b", "c", "d"], ids: ["a", "b", "d"], want: true },
    { name: "non-voters do not count", voters: ["a", "b", "c"], ids: ["a", "x", "y"], want: false },
    { name: "the only voter", voters: ["a"], ids: ["a"], want: true },
    { name: "no voters", voters: [], ids: ["a"], want: false },
  ];
  for (const row of rows) {
    await t.step(row.name, () => strictEqual(hasQuorum(row.voters, new Set(row.ids)), row.want));
  }
});
