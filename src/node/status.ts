/**
 * The alive list: who is a member, and how long ago each was last heard
 * from, counted in heartbeat intervals (no clocks are compared between
 * nodes: a leader counts its own ticks, a follower relays the leader's).
 *
 * @module
 */

import type { Configuration } from "../core/config.ts";
import type { MemberStatus, NodeSettings } from "./options.ts";

/**
 * Reports every member of a configuration with its liveness.
 *
 * @param config The configuration in force.
 * @param seenTicks Ticks since each member was last heard from (absent: never).
 * @param settings The tick (`heartbeatMs`) and the election timeout that bounds "alive".
 * @returns One status per member, in configuration order.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { memberStatuses } from "./status.ts";
 *
 * const config = { members: [{ id: "a", voter: true }, { id: "b", voter: false }] };
 * const seen = new Map([["a", 0], ["b", 20]]);
 * deepStrictEqual(memberStatuses(config, seen, { heartbeatMs: 50, electionMs: 500 }).map((m) => m.alive), [true, false]);
 * ```
 */
export function memberStatuses(
  config: Configuration,
  seenTicks: ReadonlyMap<string, number>,
  settings: Pick<NodeSettings, "heartbeatMs" | "electionMs">,
): MemberStatus[] {
  return config.members.map((m): MemberStatus => {
    const ticks = seenTicks.get(m.id);
    const lastSeenMs = ticks === undefined ? null : ticks * settings.heartbeatMs;
    return {
      id: m.id,
      url: m.url ?? null,
      voter: m.voter,
      readOnly: m.readOnly ?? false,
      alive: lastSeenMs !== null && lastSeenMs <= settings.electionMs,
      lastSeenMs,
    };
  });
}
