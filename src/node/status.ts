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

/**
 * The peers a leader has not heard from for an election timeout, each named
 * once per election timeout of silence: their connections may be dead while
 * looking open, and the transport may drop them.
 *
 * @param self This node's id.
 * @param seenTicks Ticks since each member was last heard from.
 * @param settings The tick and the election timeout.
 * @returns The ids to report now.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { silentPeers } from "./status.ts";
 *
 * const seen = new Map([["a", 0], ["b", 10], ["c", 15], ["d", 20]]);
 * deepStrictEqual(silentPeers("a", seen, { heartbeatMs: 50, electionMs: 500 }), ["b", "d"]);
 * ```
 */
export function silentPeers(
  self: string,
  seenTicks: ReadonlyMap<string, number>,
  settings: Pick<NodeSettings, "heartbeatMs" | "electionMs">,
): string[] {
  const limit = Math.ceil(settings.electionMs / settings.heartbeatMs);
  return [...seenTicks].filter(([id, ticks]) =>
    id !== self && ticks >= limit && ticks % limit === 0
  )
    .map(([id]) => id);
}
