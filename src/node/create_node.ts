/**
 * `createNode`: the one call that makes a node and starts it.
 *
 * @module
 */

import { WaterCraftNode } from "./node.ts";
import type { NodeOptions } from "./options.ts";

/**
 * Creates and starts a node: recovers its storage, bootstraps a new cluster
 * when the storage is empty (unless told to wait to be added), starts ticking
 * and accepts traffic.
 *
 * @param options What the node is made of.
 * @returns The running node.
 * @throws {TypeError} On an invalid id or option.
 *
 * @example A one-node cluster in memory
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { createNode, kvStateMachine } from "../../mod.ts";
 * import { MemoryNetwork } from "../testing.ts";
 *
 * const node = await createNode({
 *   id: "n1",
 *   stateMachine: kvStateMachine(),
 *   transport: new MemoryNetwork().transport(),
 * });
 * const put = await node.propose({ op: "put", key: "a", value: 1 });
 * strictEqual(put.state, "committed");
 * const got = await node.read({ op: "get", key: "a" });
 * strictEqual((got.value as { value: number }).value, 1);
 * await node.stop();
 * ```
 */
export async function createNode<Command, Result, Query, Answer>(
  options: NodeOptions<Command, Result, Query, Answer>,
): Promise<WaterCraftNode<Command, Result, Query, Answer>> {
  const node = new WaterCraftNode(options);
  await node.start();
  return node;
}
