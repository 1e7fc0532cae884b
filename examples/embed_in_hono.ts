/**
 * Embedding nodes in Hono apps you already have: each of two services keeps
 * its own routes (`/hello`) and mounts a node's routes under a prefix of its
 * own (`app.route("/raft", createApp(node))`), served on a free loopback port
 * with `serve()`. The node's URL carries the prefix
 * (`http://127.0.0.1:PORT/raft`), so peers reach its peer routes there
 * (`/raft/raft/messages`), signed with the cluster secret. The second service
 * joins the first's cluster; a PUT through one prefix and GETs through both
 * show the write replicated, and both report the same head.
 *
 * Run: deno run -A examples/embed_in_hono.ts
 *
 * @module
 */

import { strictEqual } from "node:assert/strict";
import { Hono } from "hono";
import {
  createApp,
  createNode,
  httpTransport,
  kvStateMachine,
  serve,
  type Server,
  type WaterCraftNode,
} from "../mod.ts";

const SECRET = "change me";

interface Service {
  readonly origin: string;
  readonly prefix: string;
  readonly node: WaterCraftNode;
  readonly server: Server;
}

/** Starts a service: its own Hono app, with a node mounted under `prefix`. */
async function startService(id: string, prefix: string, join?: string): Promise<Service> {
  // The node's URL needs the port, known once the server listens: serve
  // first, and hand requests to the app once it exists.
  let handler = (_request: Request): Response | Promise<Response> =>
    new Response("starting", { status: 503 });
  const server = await serve((request) => handler(request), { port: 0, hostname: "127.0.0.1" });
  const origin = `http://127.0.0.1:${server.port}`;
  const node = await createNode({
    id,
    url: origin + prefix,
    stateMachine: kvStateMachine(),
    secret: SECRET, // given once: the transport and the app take it from the node
    transport: httpTransport(),
    bootstrap: join === undefined, // the first service starts the cluster
  });
  const app = new Hono();
  app.get("/hello", (c) => c.text(`hello from ${id}'s own route`));
  app.route(prefix, createApp(node));
  handler = app.fetch;
  if (join !== undefined) await node.join([join], { timeoutMs: 10_000 });
  return { origin, prefix, node, server };
}

/** One request with a deadline; returns the status and the parsed body. */
async function call(method: string, url: string, body?: unknown): Promise<[number, unknown]> {
  const res = await fetch(url, {
    method,
    signal: AbortSignal.timeout(5000),
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  const text = await res.text();
  console.log(`${method} ${url} -> ${res.status} ${text}`);
  return [res.status, res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text];
}

/** Calls `check` every 20 ms until it returns a value; gives up after `timeoutMs`. */
async function poll<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Gave up after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const services: Service[] = [];
try {
  const a = await startService("a", "/raft");
  services.push(a);
  const b = await startService("b", "/cluster", a.node.url!);
  services.push(b);

  strictEqual((await call("GET", `${a.origin}/hello`))[0], 200);
  strictEqual((await call("GET", `${b.origin}/hello`))[0], 200);

  // b joined as a learner; the leader promotes it to voter once it caught up.
  const members = await poll("b to become a voter", async () => {
    const res = await fetch(`${a.origin}/raft/v1/members`, { signal: AbortSignal.timeout(5000) });
    const body = await res.json() as { members: { id: string; url: string; voter: boolean }[] };
    return body.members.every((m) => m.voter) ? body.members : undefined;
  });
  for (const m of members) console.log(`member ${m.id} at ${m.url}, voter: ${m.voter}`);
  strictEqual(members.map((m) => m.url).join(" "), `${a.origin}/raft ${b.origin}/cluster`);

  // Peers reach each other's peer routes under the prefix; unsigned calls get 401.
  const forged = await fetch(`${a.origin}/raft/raft/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-raft-from": "b" },
    body: JSON.stringify({ messages: [] }),
    signal: AbortSignal.timeout(5000),
  });
  await forged.body?.cancel();
  console.log(`unsigned POST ${a.origin}/raft/raft/messages -> ${forged.status}`);
  strictEqual(forged.status, 401);

  // A write through b's prefix: b forwards it to the leader a, at a's prefix.
  const [putStatus] = await call("PUT", `${b.origin}/cluster/v1/kv/greeting`, { value: "hi" });
  strictEqual(putStatus, 200);
  for (const s of services) {
    const [status, got] = await call("GET", `${s.origin}${s.prefix}/v1/kv/greeting`);
    strictEqual(status, 200);
    strictEqual((got as { value: string }).value, "hi");
  }

  // Once both have applied the same index, they report the same head.
  const heads = await poll("equal heads", async () => {
    const all = await Promise.all(services.map(async (s) => {
      const res = await fetch(`${s.origin}${s.prefix}/v1/head`, {
        signal: AbortSignal.timeout(5000),
      });
      return await res.json() as { head: string; index: number };
    }));
    return all.every((h) => h.index === all[0]!.index) ? all : undefined;
  });
  for (const [i, s] of services.entries()) {
    console.log(`${s.node.id}: index ${heads[i]!.index} head ${heads[i]!.head}`);
  }
  strictEqual(new Set(heads.map((h) => h.head)).size, 1, "heads differ");
  console.log("ok");
} finally {
  for (const s of services.reverse()) {
    await s.node.stop();
    await s.server.shutdown();
  }
}
