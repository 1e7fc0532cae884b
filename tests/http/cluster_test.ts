/**
 * Clusters over real HTTP on loopback in one process: each node has its own
 * server, the HTTP transport and a cluster secret. Time is real, so every
 * wait polls for its condition with a bounded deadline.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { Hono } from "hono";
import { createApp } from "../../mod.ts";
import { type Member, SECRET, start, stop, waitFor } from "./loopback_cluster.ts";

async function call(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await fetch(url, {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? null : JSON.parse(text) };
}

Deno.test("HTTP cluster: grow 1 → 5 joining through different members, then write, read, fail over", async () => {
  const members: Member[] = [];
  try {
    members.push(await start("n1", null));
    // Each newcomer contacts a different member (followers included, and a
    // dead URL first for n5): any member leads it to the host.
    members.push(await start("n2", [members[0]!.url]));
    members.push(await start("n3", [members[1]!.url]));
    members.push(await start("n4", [members[2]!.url]));
    members.push(await start("n5", ["http://127.0.0.1:9", members[3]!.url]));
    const first = members[0]!.node;
    await waitFor("5 voters", () => first.members().members.filter((m) => m.voter).length === 5);
    strictEqual(first.status().role, "leader", "the original node is the first host");

    // Write through a follower, read linearizably through another.
    const put = await call(`${members[2]!.url}/v1/kv/a`, "PUT", { value: { n: 1 } });
    strictEqual(put.status, 200, JSON.stringify(put.body));
    deepStrictEqual(Object.keys(put.body).sort(), [
      "created",
      "head",
      "id",
      "index",
      "modified",
      "prev",
      "term",
    ]);
    deepStrictEqual([put.body.created, put.body.modified], [put.body.index, put.body.index]);
    const got = await call(`${members[3]!.url}/v1/kv/a`, "GET");
    deepStrictEqual([got.status, got.body.value], [200, { n: 1 }]);

    // Idempotent retries return the first result.
    const key = { "Idempotency-Key": "retry-1" };
    const e1 = await call(`${members[1]!.url}/v1/entries`, "POST", {
      data: { op: "put", key: "b", value: 1 },
    }, key);
    const e2 = await call(`${members[4]!.url}/v1/entries`, "POST", {
      data: { op: "put", key: "b", value: 1 },
    }, key);
    strictEqual(e1.status, 201);
    deepStrictEqual(e2.body, { ...e1.body, head: e2.body.head });

    // Refusals: the validator (422), malformed bodies (400), peers without the secret (401).
    strictEqual(
      (await call(`${members[1]!.url}/v1/entries`, "POST", { data: { op: "bogus" } })).status,
      422,
    );
    const bad = await call(`${members[1]!.url}/v1/kv/a`, "PUT", "{not json");
    deepStrictEqual([bad.status, bad.body.error.code], [400, "invalid_request"]);
    const forged = await call(`${members[1]!.url}/raft/messages`, "POST", { messages: [] }, {
      "X-Raft-From": "n1",
    });
    deepStrictEqual([forged.status, forged.body.error.code], [401, "unauthorized"]);
    const noSecret = await call(`${first.url}/v1/members`, "POST", {
      id: "intruder",
      url: "http://127.0.0.1:9",
    });
    strictEqual(noSecret.status, 401);
    strictEqual((await call(`${members[1]!.url}/healthz`, "GET")).status, 200);

    // Kill the host: a new one is elected and writes go on.
    await stop(members[0]!);
    const rest = members.slice(1);
    await waitFor("a new host", () => rest.some((m) => m.node.status().role === "leader"));
    const after = await call(`${rest[0]!.url}/v1/kv/c`, "PUT", { value: 3 });
    strictEqual(after.status, 200, JSON.stringify(after.body));
    strictEqual((await call(`${rest[3]!.url}/v1/kv/a`, "GET")).body.value.n, 1);
    await waitFor(
      "n1 reported dead",
      () => rest[0]!.node.members().members.find((m) => m.id === "n1")?.alive === false,
    );
  } finally {
    for (const m of members) await stop(m).catch(() => {});
  }
});

Deno.test("HTTP cluster: a read-only member refuses writes with 403 and a leader hint, and serves reads", async () => {
  const members: Member[] = [];
  try {
    members.push(await start("a", null));
    members.push(await start("b", [members[0]!.url]));
    members.push(await start("ro", [members[1]!.url], true));
    const ro = members[2]!;
    await waitFor("ro replicating", () => ro.node.status().leader !== null);
    strictEqual(ro.node.status().role, "learner");
    const refused = await call(`${ro.url}/v1/kv/x`, "PUT", { value: 1 });
    deepStrictEqual([refused.status, refused.body.error.code, refused.body.error.leader.id], [
      403,
      "read_only",
      "a",
    ]);
    strictEqual((await call(`${members[0]!.url}/v1/kv/x`, "PUT", { value: 2 })).status, 200);
    deepStrictEqual((await call(`${ro.url}/v1/kv/x`, "GET")).body.value, 2);
  } finally {
    for (const m of members) await stop(m).catch(() => {});
  }
});

Deno.test("HTTP cluster: membership changes and leader transfers sent to a follower are forwarded to the leader", async () => {
  const members: Member[] = [];
  const secret = { "X-WaterCraft-Secret": SECRET };
  const ids = (body: { members: { id: string }[] }) => body.members.map((m) => m.id).sort();
  try {
    members.push(await start("n1", null));
    members.push(await start("n2", [members[0]!.url]));
    members.push(await start("n3", [members[1]!.url]));
    const [m1, m2, m3] = members as [Member, Member, Member];
    await waitFor("3 voters", () => m1.node.members().members.filter((m) => m.voter).length === 3);
    // Added by nobody yet: it waits to be added through a follower.
    members.push(await start("n4", null, false, { bootstrap: false }));
    const m4 = members[3]!;

    // Without the cluster secret the follower refuses; nothing reaches the leader.
    const denied = await call(`${m2.url}/v1/members`, "POST", { id: "n4", url: m4.url });
    deepStrictEqual([denied.status, denied.body.error.code], [401, "unauthorized"]);
    deepStrictEqual(ids(m1.node.members()), ["n1", "n2", "n3"]);

    const added = await call(`${m2.url}/v1/members`, "POST", { id: "n4", url: m4.url }, secret);
    strictEqual(added.status, 200, JSON.stringify(added.body));
    deepStrictEqual(ids(added.body), ["n1", "n2", "n3", "n4"], "the follower lists the new member");
    deepStrictEqual(ids(m1.node.members()), ["n1", "n2", "n3", "n4"]);
    await waitFor("n4 to replicate", () => m4.node.status().leader?.id === "n1");

    // The leader's refusals cross with their status.
    const conflict = await call(
      `${m3.url}/v1/members`,
      "POST",
      { id: "n4", url: "http://127.0.0.1:9" },
      secret,
    );
    deepStrictEqual([conflict.status, conflict.body.error.code], [409, "conflict"]);
    const missing = await call(`${m3.url}/v1/members/n9`, "DELETE", undefined, secret);
    deepStrictEqual([missing.status, missing.body.error.code], [404, "not_found"]);

    const removed = await call(`${m3.url}/v1/members/n4`, "DELETE", undefined, secret);
    strictEqual(removed.status, 200, JSON.stringify(removed.body));
    deepStrictEqual(ids(removed.body), ["n1", "n2", "n3"]);
    deepStrictEqual(ids(m1.node.members()), ["n1", "n2", "n3"]);

    const toN3 = await call(`${m2.url}/v1/leader/transfer`, "POST", { id: "n3" });
    deepStrictEqual([toN3.status, toN3.body], [200, { leader: { id: "n3", url: m3.url } }]);
    strictEqual(m3.node.status().role, "leader");
    // n1 follows now; asked to move leadership on, it forwards to n3, which picks.
    const onward = await call(`${m1.url}/v1/leader/transfer`, "POST", {});
    strictEqual(onward.status, 200, JSON.stringify(onward.body));
    strictEqual(onward.body.leader.id === "n3", false, JSON.stringify(onward.body));
    strictEqual(m3.node.status().role === "leader", false);

    // With no leader to forward to, the answer is 503 and nothing changes.
    await stop(m4);
    await stop(m2);
    await stop(m3);
    await waitFor("n1 to know no leader", () => m1.node.status().leader === null);
    const alone = await call(`${m1.url}/v1/members`, "POST", { id: "n5", url: m4.url }, secret);
    deepStrictEqual([alone.status, alone.body.error.code], [503, "unavailable"]);
    const stuck = await call(`${m1.url}/v1/leader/transfer`, "POST", { id: "n2" });
    deepStrictEqual([stuck.status, stuck.body.error.code], [503, "unavailable"]);
  } finally {
    for (const m of members) await stop(m).catch(() => {});
  }
});

Deno.test("createApp() mounts under a prefix next to the embedding app's own routes", async () => {
  const { node, server } = await start("solo", null);
  try {
    const outer = new Hono();
    outer.get("/hello", (c) => c.text("hi"));
    outer.route("/raft-cluster", createApp(node));
    strictEqual(await (await outer.request("/hello")).text(), "hi");
    const put = await outer.request("/raft-cluster/v1/kv/k", {
      method: "PUT",
      body: JSON.stringify({ value: 7 }),
    });
    strictEqual(put.status, 200);
    deepStrictEqual(await (await outer.request("/raft-cluster/v1/kv/k")).json(), {
      value: 7,
      index: 3,
      created: 3,
      modified: 3,
    });
    strictEqual((await outer.request("/raft-cluster/v1/status")).status, 200);
  } finally {
    await server.shutdown();
    await node.stop();
  }
});

Deno.test("HTTP cluster: a member joining after compaction receives the snapshot in chunks", async () => {
  const members: Member[] = [];
  try {
    // No entries kept behind a snapshot: a newcomer can only catch up through one.
    members.push(await start("n1", null, false, { snapshotEvery: 20, snapshotKeepEntries: 0 }));
    const big = "z".repeat(30_000);
    for (let i = 0; i < 60; i++) {
      const put = await call(`${members[0]!.url}/v1/kv/k${i}`, "PUT", { value: `${i}:${big}` });
      strictEqual(put.status, 200, JSON.stringify(put.body));
    }
    // 60 values of 30 kB: the snapshot is over the 1 MiB chunk size. It is
    // taken in the background: were n2 to join first, it would get the one
    // before, then need this one too once it compacted the log.
    const leader = members[0]!.node;
    await waitFor("n1's snapshot of all 60", () => leader.raft.snapshot.index >= 60);
    members.push(await start("n2", [members[0]!.url]));
    const [n1, n2] = [members[0]!.node, members[1]!.node];
    await waitFor("n2 to catch up", () => n2.status().appliedIndex >= n1.status().appliedIndex);
    strictEqual(n2.head().head, n1.head().head);
    for (const i of [0, 31, 59]) {
      const got = await call(`${members[1]!.url}/v1/kv/k${i}?consistency=local`, "GET");
      deepStrictEqual([got.status, got.body.value], [200, `${i}:${big}`]);
    }
    const counter = (text: string, name: string) =>
      Number(text.match(new RegExp(`^${name} (\\d+)$`, "m"))?.[1] ?? NaN);
    const m1 = await (await fetch(`${members[0]!.url}/metrics`)).text();
    const m2 = await (await fetch(`${members[1]!.url}/metrics`)).text();
    strictEqual(counter(m1, "watercraft_snapshot_chunks_sent_total") >= 2, true, m1);
    strictEqual(counter(m2, "watercraft_snapshots_installed_total"), 1, m2);
  } finally {
    for (const m of members.reverse()) await stop(m);
  }
});

/**
 * A reverse proxy on loopback that streams each request to `target()` and
 * its answer back, as a plain forwarding proxy does; it counts the peer
 * streams that went through it.
 */
function streamingProxy(target: () => string) {
  const counts = { streams: 0 };
  const hopByHop = ["connection", "content-length", "host", "keep-alive", "transfer-encoding"];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/raft/stream") counts.streams++;
    const headers = new Headers(req.headers);
    for (const name of hopByHop) headers.delete(name);
    try {
      const res = await fetch(target() + url.pathname + url.search, {
        method: req.method,
        headers,
        body: req.body,
        signal: req.signal,
        duplex: "half",
      } as RequestInit);
      return new Response(res.body, { status: res.status, headers: res.headers });
    } catch {
      return new Response("upstream unreachable", { status: 502 });
    }
  });
  return { server, counts, url: `http://127.0.0.1:${server.addr.port}` };
}

Deno.test("HTTP cluster: a member advertised by a streaming reverse proxy's URL replicates through it", async () => {
  const members: Member[] = [];
  let behind = "";
  const proxy = streamingProxy(() => behind);
  try {
    members.push(await start("n1", null));
    // n2 tells the cluster to reach it through the proxy: the leader's peer
    // stream to it, and n1's answers, go through the proxy.
    const n2 = await start("n2", [members[0]!.url], false, { url: proxy.url });
    behind = n2.url;
    members.push(n2);
    const n1 = members[0]!.node;
    for (let i = 0; i < 20; i++) {
      const put = await call(`${members[0]!.url}/v1/kv/p${i}`, "PUT", { value: i });
      strictEqual(put.status, 200, JSON.stringify(put.body));
    }
    await waitFor(
      "n2 to apply the writes",
      () => n2.node.status().appliedIndex >= n1.status().appliedIndex,
    );
    const got = await call(`${n2.url}/v1/kv/p19?consistency=local`, "GET");
    deepStrictEqual([got.status, got.body.value], [200, 19]);
    // A write at n2 is forwarded to the leader, and its linearizable read confirms with it.
    const put = await call(`${n2.url}/v1/kv/from-n2`, "PUT", { value: "x" });
    strictEqual(put.status, 200, JSON.stringify(put.body));
    const read = await call(`${n2.url}/v1/kv/from-n2`, "GET");
    deepStrictEqual([read.status, read.body.value], [200, "x"]);
    strictEqual(proxy.counts.streams > 0, true, "the leader's stream to n2 went through the proxy");
  } finally {
    for (const m of members.reverse()) await stop(m);
    await proxy.server.shutdown();
  }
});
