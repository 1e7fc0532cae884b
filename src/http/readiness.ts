/**
 * Readiness (`GET /readyz`): whether a node should get client traffic,
 * which is more than serving (`/healthz`). A load balancer takes a node
 * out of rotation while it is not a member, knows no leader, or has not
 * applied what is committed.
 *
 * @module
 */

import type { WaterCraftNode } from "../node/node.ts";

/** Default bound on committed entries not yet applied for a ready node. */
export const READY_APPLY_LAG_MAX = 1_000;

/** A node's readiness and, when not ready, why. */
export type Readiness =
  | { readonly ready: true }
  | { readonly ready: false; readonly reason: string };

/**
 * Tells whether a node is ready for client traffic: it is a member of the
 * committed configuration, it knows a leader, and its applied index is
 * within `applyLagMax` of its commit index.
 *
 * @param node The node.
 * @param applyLagMax Largest `commitIndex - appliedIndex` of a ready node.
 * @returns Ready, or not with the first reason found.
 *
 * @example A one-node cluster leads itself and is ready
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { createNode, kvStateMachine } from "../../mod.ts";
 * import { MemoryNetwork } from "../testing.ts";
 * import { readiness } from "./readiness.ts";
 *
 * const node = await createNode({ id: "n1", stateMachine: kvStateMachine(), transport: new MemoryNetwork().transport() });
 * await node.propose({ op: "put", key: "a", value: 1 });
 * deepStrictEqual(readiness(node), { ready: true });
 * await node.stop();
 * ```
 */
export function readiness(node: WaterCraftNode, applyLagMax = READY_APPLY_LAG_MAX): Readiness {
  const status = node.status();
  if (node.removed) {
    return { ready: false, reason: "This node was removed from the cluster's configuration" };
  }
  if (!status.members.some((m) => m.id === node.id)) {
    return { ready: false, reason: "This node is not a member of a configuration yet (joining)" };
  }
  if (status.leader === null) return { ready: false, reason: "No leader is known" };
  const lag = status.commitIndex - status.appliedIndex;
  if (lag > applyLagMax) {
    return {
      ready: false,
      reason: `Catching up: ${lag} committed entries not applied yet (at most ${applyLagMax})`,
    };
  }
  return { ready: true };
}
