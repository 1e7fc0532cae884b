/**
 * Majority arithmetic over the voters of one configuration.
 *
 * @module
 */

import { assert } from "./assert.ts";

/**
 * Returns the highest index stored on a majority of voters.
 *
 * @param matchIndexes The match index of every voter, leader included.
 * @returns The largest `i` that more than half of `matchIndexes` reach.
 * @throws {AssertionError} When there are no voters.
 *
 * @example Three voters
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { quorumIndex } from "./quorum.ts";
 *
 * strictEqual(quorumIndex([5, 3, 9]), 5);
 * ```
 */
export function quorumIndex(matchIndexes: readonly number[]): number {
  const sorted = matchIndexes.toSorted((a, b) => b - a);
  const index = sorted[Math.floor(sorted.length / 2)];
  assert(index !== undefined, "Cannot compute a quorum of no voters");
  return index;
}

/** The outcome of a vote so far. */
export type VoteResult = "won" | "lost" | "pending";

/**
 * Tallies votes among `voters`; votes from non-voters are ignored.
 *
 * @param voters The voting members.
 * @param votes Each responder's answer.
 * @returns "won" once a majority granted, "lost" once a majority can no
 *   longer be reached, else "pending".
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { tallyVotes } from "./quorum.ts";
 *
 * strictEqual(tallyVotes(["a", "b", "c"], new Map([["a", true], ["b", true]])), "won");
 * strictEqual(tallyVotes(["a", "b", "c"], new Map([["a", false], ["b", false]])), "lost");
 * ```
 */
export function tallyVotes(
  voters: readonly string[],
  votes: ReadonlyMap<string, boolean>,
): VoteResult {
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === undefined) missing++;
  }
  const majority = majoritySize(voters.length);
  if (granted >= majority) return "won";
  if (granted + missing >= majority) return "pending";
  return "lost";
}

/**
 * Whether `ids` include a majority of `voters`.
 *
 * @param voters The voting members.
 * @param ids The members heard from.
 * @returns True when more than half of `voters` are in `ids`.
 */
export function hasQuorum(
  voters: readonly string[],
  ids: ReadonlySet<string>,
): boolean {
  let n = 0;
  for (const id of voters) if (ids.has(id)) n++;
  return n > voters.length / 2;
}

/**
 * How many of `voters` voters make a majority.
 *
 * @param voters The number of voters.
 * @returns More than half of them.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { majoritySize } from "./quorum.ts";
 *
 * strictEqual(majoritySize(3), 2);
 * strictEqual(majoritySize(4), 3);
 * ```
 */
export function majoritySize(voters: number): number {
  return Math.floor(voters / 2) + 1;
}
