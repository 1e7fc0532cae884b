/**
 * The events a CLI node logs about itself: elections, leader changes,
 * membership changes, snapshots, peers that go silent or come back, and
 * its own removal. They are read off the node's status at every tick and
 * compared with the last look, so that the node itself stays free of
 * logging; a change that comes and goes within one tick is not seen.
 *
 * @module
 */

import type { WaterCraftNode } from "../node/node.ts";
import type { Logger } from "./log.ts";

/** What the watcher remembers between looks. */
interface Look {
  readonly role: string;
  readonly term: number;
  readonly leader: string | null;
  readonly configIndex: number;
  readonly members: ReadonlyMap<string, { voter: boolean; alive: boolean }>;
  readonly snapshotIndex: number;
  readonly appliedIndex: number;
  readonly removed: boolean;
}

/**
 * Logs a node's events until the returned function is called. The state
 * when it starts is the baseline: only changes are logged.
 *
 * @param node The node.
 * @param log Where events go.
 * @param everyMs How often to look (the node's heartbeat is a good pace).
 * @returns Stops watching.
 */
export function watchNodeEvents(
  node: WaterCraftNode,
  log: Logger,
  everyMs: number,
): () => void {
  let last = look(node);
  const timer = setInterval(() => {
    let now: Look;
    try {
      now = look(node);
    } catch {
      return; // Stopped or failed: the stop path says so.
    }
    report(log, last, now);
    last = now;
  }, everyMs);
  // Never what keeps the process alive.
  (timer as { unref?: () => void }).unref?.();
  return () => clearInterval(timer);
}

function look(node: WaterCraftNode): Look {
  const status = node.status();
  return {
    role: status.role,
    term: status.term,
    leader: status.leader?.id ?? null,
    configIndex: status.configIndex,
    members: new Map(status.members.map((m) => [m.id, { voter: m.voter, alive: m.alive }])),
    snapshotIndex: node.raft.snapshot.index,
    appliedIndex: status.appliedIndex,
    removed: node.removed,
  };
}

/** Logs what changed between two looks. */
function report(log: Logger, before: Look, after: Look): void {
  if (after.role !== before.role) {
    if (after.role === "candidate") log.info("election.started", { term: after.term });
    log.info("role.changed", { from: before.role, to: after.role, term: after.term });
  }
  if (after.leader !== before.leader) {
    log.info("leader.changed", {
      leader: after.leader ?? "none",
      previous: before.leader ?? "none",
      term: after.term,
    });
  }
  if (after.configIndex !== before.configIndex) {
    const added = [...after.members.keys()].filter((id) => !before.members.has(id));
    const removed = [...before.members.keys()].filter((id) => !after.members.has(id));
    const promoted = [...after.members].filter(([id, m]) =>
      m.voter && before.members.get(id)?.voter === false
    ).map(([id]) => id);
    log.info("members.changed", {
      configIndex: after.configIndex,
      members: [...after.members.keys()].join(","),
      added: added.join(",") || undefined,
      removed: removed.join(",") || undefined,
      promoted: promoted.join(",") || undefined,
    });
  }
  if (after.removed && !before.removed) {
    log.warn("member.removed", {
      msg: "this node was removed from the cluster's configuration: it no longer campaigns " +
        "and answers /readyz with 503; stop it, or add it back",
    });
  }
  if (after.snapshotIndex > before.snapshotIndex) {
    // Installing one from the leader jumps past what this node had applied.
    const installed = after.snapshotIndex > before.appliedIndex;
    log.info(installed ? "snapshot.installed" : "snapshot.taken", { index: after.snapshotIndex });
  }
  // Only a leader hears from every member: on a follower, liveness is relayed and lags.
  if (before.role !== "leader" || after.role !== "leader") return;
  for (const [id, m] of after.members) {
    const was = before.members.get(id);
    if (was === undefined || was.alive === m.alive) continue;
    log.info(m.alive ? "peer.up" : "peer.down", { peer: id });
  }
}
