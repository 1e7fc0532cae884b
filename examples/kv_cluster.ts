/**
 * Three nodes in one process over the in-memory transport, running the
 * built-in key-value state machine on the real clock: writes through every
 * node, then the leader stops (a leader failure), the two survivors elect a
 * new leader, a write goes through the new leader's cluster, linearizable
 * reads on both survivors return every acknowledged write, and both print the
 * same head. Every wait has a deadline; the exit status is 0 only if all of
 * that held.
 *
 * Run: deno run examples/kv_cluster.ts
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { createNode, kvStateMachine, type Member, type WaterCraftNode } from "../mod.ts";
import { MemoryNetwork } from "../src/testing.ts";

/** Polls `check` every 10 ms until it returns a value; gives up after `timeoutMs`. */
async function waitFor<T>(what: string, check: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`No ${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function leaderOf(nodes: readonly WaterCraftNode[]): WaterCraftNode | undefined {
  return nodes.find((node) => node.status().role === "leader");
}

const network = new MemoryNetwork();
const ids = ["n1", "n2", "n3"];
const members: Member[] = ids.map((id) => ({ id, voter: true }));
// Each node bootstraps with the same member list; short timeouts keep the
// failover quick (an election takes 200 to 400 ms here).
const nodes = await Promise.all(ids.map((id, i) =>
  createNode({
    id,
    stateMachine: kvStateMachine(),
    transport: network.transport(),
    members,
    heartbeatMs: 20,
    electionMs: 200,
    seed: i + 1,
  })
));

try {
  const first = await waitFor("leader", () => leaderOf(nodes));
  console.log(`leader: ${first.id} in term ${first.status().term}`);

  // Writes may go to any node: followers forward them to the leader.
  const acknowledged = new Map<string, number>();
  await Promise.all(Array.from({ length: 9 }, async (_, i) => {
    const key = `k${i}`;
    await nodes[i % nodes.length]!.propose({ op: "put", key, value: i });
    acknowledged.set(key, i);
  }));
  console.log(`acknowledged ${acknowledged.size} writes through ${nodes.length} nodes`);

  // A leader failure: it stops answering, its followers time out and elect another.
  const leader = await waitFor("leader", () => leaderOf(nodes));
  await leader.stop();
  console.log(`stopped the leader ${leader.id}`);
  const survivors = nodes.filter((node) => node !== leader);
  const next = await waitFor("new leader", () => leaderOf(survivors));
  console.log(`new leader: ${next.id} in term ${next.status().term}`);

  const follower = survivors.find((node) => node !== next)!;
  const put = await follower.propose({ op: "put", key: "after-failover", value: 9 });
  acknowledged.set("after-failover", 9);
  console.log(`acknowledged a write through ${follower.id} at index ${put.index}`);

  // Linearizable reads: each reflects every write acknowledged before it began.
  const want = [...acknowledged].map(([key, value]) => ({ key, value }))
    .sort((a, b) => a.key < b.key ? -1 : 1);
  for (const node of survivors) {
    const { value, index } = await node.read({ op: "list" });
    const items = (value as { items: { key: string; value: unknown }[] }).items;
    // Each item also carries its revisions (created, modified): compare the data.
    deepStrictEqual(items.map(({ key, value }) => ({ key, value })), want);
    const one = await node.read({ op: "get", key: "k0" });
    const { found, value: k0 } = one.value as { found: boolean; value: unknown };
    deepStrictEqual({ found, value: k0 }, { found: true, value: 0 });
    console.log(
      `${node.id} reads ${items.length} of ${acknowledged.size} acknowledged writes at index ${index}`,
    );
  }

  // Once both have applied the same index, they report the same head.
  await waitFor("equal applied indexes", () => {
    const [x, y] = survivors.map((node) => node.head().index);
    return x === y || undefined;
  });
  for (const node of survivors) {
    const { index, head } = node.head();
    console.log(`${node.id}: index ${index} head ${head}`);
  }
  strictEqual(new Set(survivors.map((node) => node.head().head)).size, 1, "heads differ");
  console.log("ok");
} finally {
  for (const node of nodes) await node.stop();
}
