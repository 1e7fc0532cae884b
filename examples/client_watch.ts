/**
 * An application's view of a cluster: three nodes serve the HTTP API on
 * loopback, and the application talks to them only through
 * `WaterCraftClient` (fetch, nothing else: the same code runs in a browser
 * or an edge function). It watches the keys under `cart/` while it writes,
 * loses a compare-and-set race on purpose, reads linearizably from another
 * member, and checks the hash chain of the whole log.
 *
 * Run: deno run -A examples/client_watch.ts
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import {
  createApp,
  createNode,
  httpTransport,
  kvStateMachine,
  serve,
  type Server,
  WaterCraftClient,
  WaterCraftError,
  type WaterCraftNode,
} from "../mod.ts";

const secret = crypto.randomUUID();
const running: { node: WaterCraftNode; server: Server; url: string }[] = [];
for (const id of ["n1", "n2", "n3"]) {
  let app: ReturnType<typeof createApp> | null = null;
  const server = await serve(
    (request) => app?.fetch(request) ?? new Response("starting", { status: 503 }),
    { port: 0, hostname: "127.0.0.1" },
  );
  const url = `http://127.0.0.1:${server.port}`;
  const node = await createNode({
    id,
    url,
    secret,
    stateMachine: kvStateMachine(),
    transport: httpTransport(),
    bootstrap: running.length === 0,
  });
  app = createApp(node);
  if (running.length > 0) await node.join([running[0]!.url], { timeoutMs: 10_000 });
  running.push({ node, server, url });
}

try {
  // Any members will do: the client finds the leader.
  const client = new WaterCraftClient({ endpoints: running.map((r) => r.url).reverse() });
  const watching = new AbortController();
  // From the index the cluster is at now: a watch "from now" would start
  // wherever the member is when the request reaches it, maybe after a put.
  const { appliedIndex } = await client.status();
  const changes = client.watchKeys("cart/", { after: appliedIndex, signal: watching.signal });

  await client.kv.put("cart/apples", 3);
  await client.kv.put("cart/pears", 1);
  await client.kv.put("elsewhere", true);
  await client.kv.cas("cart/apples", 3, 5);
  const lost = await client.kv.cas("cart/apples", 3, 9).catch((e: WaterCraftError) => e);
  strictEqual(lost instanceof WaterCraftError && lost.code, "cas_failed");
  await client.kv.delete("cart/pears");

  const seen: string[] = [];
  for await (const change of changes) {
    seen.push(`${change.type} ${change.key}${change.type === "put" ? `=${change.value}` : ""}`);
    if (seen.length === 4) break;
  }
  watching.abort();
  deepStrictEqual(seen, [
    "put cart/apples=3",
    "put cart/pears=1",
    "put cart/apples=5",
    "delete cart/pears",
  ]);
  console.log("changes under cart/:", seen.join(", "));

  const other = new WaterCraftClient({ endpoints: [running[2]!.url] });
  const [apples, ...rest] = (await other.kv.list("cart/")).items;
  deepStrictEqual([apples?.key, apples?.value, rest.length], ["cart/apples", 5, 0]);
  const check = await other.verify();
  strictEqual(check.ok, true);
  console.log(
    `hash chain checked: ${check.ok && check.checked} entries, head ${check.ok && check.last}`,
  );
  console.log("ok");
} finally {
  for (const r of running) {
    await r.server.shutdown();
    await r.node.stop();
  }
}
