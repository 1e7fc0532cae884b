/**
 * Test doubles for programs that embed WaterCraft: an in-memory network
 * that connects nodes inside one process (and can drop, delay and
 * partition), and a clock that moves only when told to, so that tests never
 * sleep. Published as `@watercraft/raft/testing`.
 *
 * @example Two nodes on one in-memory network
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { createNode, kvStateMachine } from "../mod.ts";
 * import { MemoryNetwork } from "./testing.ts";
 *
 * const network = new MemoryNetwork();
 * const node = await createNode({ id: "n1", stateMachine: kvStateMachine(), transport: network.transport() });
 * const put = await node.propose({ op: "put", key: "a", value: 1 });
 * strictEqual(put.index > 0, true);
 * await node.stop();
 * ```
 *
 * @module
 */

export { type ManualClock, manualClock } from "./clock.ts";
export { MemoryNetwork, type MemoryNetworkOptions } from "./transport/memory.ts";
