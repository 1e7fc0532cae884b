/**
 * The rules of single-server membership changes (thesis §4.1), as pure
 * functions of a configuration: what a change leads to, which learner to
 * promote, and whom a leader that removed itself hands over to. Adding or
 * removing one voter at a time keeps any majority of the old configuration
 * and any majority of the new one overlapping, so two leaders can never be
 * elected in one term.
 *
 * @module
 */

import type { Configuration, Member } from "./config.ts";
import { MembershipError } from "./errors.ts";
import type { MembershipChange } from "./types.ts";

/**
 * Returns the configuration that `change` leads to from `config`. A member
 * is always added as a learner (a voter that joins empty would hold up
 * commits until it caught up); read-only members stay learners.
 *
 * @param config The configuration in force.
 * @param change The change.
 * @returns The new configuration, or null when the change is already in
 *   force (promoting a voter).
 * @throws {MembershipError} `already_member` when adding an existing id,
 *   `not_member` for an unknown id, `not_allowed` when removing the last
 *   voter or promoting a read-only member.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { applyMembershipChange } from "./membership.ts";
 *
 * const config = { members: [{ id: "a", voter: true }] };
 * deepStrictEqual(
 *   applyMembershipChange(config, { type: "add", member: { id: "b", voter: true } }),
 *   { members: [{ id: "a", voter: true }, { id: "b", voter: false }] },
 * );
 * ```
 */
export function applyMembershipChange(
  config: Configuration,
  change: MembershipChange,
): Configuration | null {
  const members = config.members;
  const id = change.type === "add" ? change.member.id : change.id;
  const current = members.find((m) => m.id === id);
  let next: Member[];
  if (change.type === "add") {
    if (current !== undefined) {
      throw new MembershipError("already_member", `Cannot add ${id}: it is already a member`);
    }
    next = [...members, { ...change.member, voter: false }];
  } else if (current === undefined) {
    throw new MembershipError("not_member", `Cannot change member ${id}: no such member`);
  } else if (change.type === "promote") {
    if (current.voter) return null;
    if (current.readOnly) {
      throw new MembershipError("not_allowed", `Cannot promote read-only member ${id}`);
    }
    next = members.map((m) => m.id === id ? { ...m, voter: true } : m);
  } else {
    next = members.filter((m) => m.id !== id);
    if (!next.some((m) => m.voter)) {
      throw new MembershipError("not_allowed", `Cannot remove ${id}: it is the last voter`);
    }
  }
  return { members: next };
}

/** What {@linkcode promotionCandidate} knows of the leader's log. */
export interface PromotionOptions {
  /** Index of the config entry in force (the one that added the learners). */
  readonly configIndex: number;
  /** The leader's last index. */
  readonly lastIndex: number;
  /** How far behind `lastIndex` a learner may be and still count as caught up. */
  readonly lagEntries: number;
  /** A member's match index, or undefined when the leader tracks none for it. */
  readonly matchOf: (id: string) => number | undefined;
}

/**
 * Picks the learner to promote to voter next: the first in member order that
 * is not read-only and is caught up. Only a learner that has answered and
 * holds the configuration that added it counts: promoting one that never
 * replied (a wrong URL, a dead joiner) could leave the cluster without a
 * majority.
 *
 * @param config The configuration in force.
 * @param options The leader's log and each member's match index.
 * @returns The learner's id, or null when none is ready.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { promotionCandidate } from "./membership.ts";
 *
 * const config = { members: [{ id: "a", voter: true }, { id: "b", voter: false }] };
 * const matches = new Map([["b", 95]]);
 * const options = { configIndex: 90, lastIndex: 100, lagEntries: 16 };
 * strictEqual(promotionCandidate(config, { ...options, matchOf: (id) => matches.get(id) }), "b");
 * strictEqual(promotionCandidate(config, { ...options, matchOf: () => undefined }), null);
 * ```
 */
export function promotionCandidate(
  config: Configuration,
  options: PromotionOptions,
): string | null {
  for (const m of config.members) {
    if (m.voter || m.readOnly) continue;
    const match = options.matchOf(m.id);
    const caughtUp = match !== undefined && match >= options.configIndex &&
      match + options.lagEntries >= options.lastIndex;
    if (caughtUp) return m.id;
  }
  return null;
}

/**
 * Picks the voter a leader that removed itself hands leadership to: the one
 * with the longest log, so it can win at once (thesis §4.2.2). The first
 * wins a tie.
 *
 * @param voters The voters of the new configuration.
 * @param matches Each follower's id and match index, in the leader's order.
 * @returns The voter's id, or null when no follower is a voter.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { handoverTarget } from "./membership.ts";
 *
 * strictEqual(handoverTarget(["b", "c"], [["b", 4], ["c", 7], ["d", 9]]), "c");
 * ```
 */
export function handoverTarget(
  voters: readonly string[],
  matches: Iterable<readonly [string, number]>,
): string | null {
  let best: string | null = null;
  let bestMatch = -1;
  for (const [id, match] of matches) {
    if (voters.includes(id) && match > bestMatch) [best, bestMatch] = [id, match];
  }
  return best;
}
