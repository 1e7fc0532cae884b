/**
 * Tests of reading and following the committed log: `node.watch()`,
 * `node.entries()`, `GET /v1/entries`, `GET /v1/watch` and `GET
 * /v1/watch/kv` (Server-Sent Events), and `verifyChain()` over what they
 * give. One-node clusters on a manual clock, requests through
 * `app.request()`.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import {
  createApp,
  createNode,
  kvStateMachine,
  verifyChain,
  type WatchEvent,
  type WaterCraftNode,
} from "../../mod.ts";
import { manualClock, MemoryNetwork } from "../../src/testing.ts";

/** A one-node cluster that leads and has applied its first entries. */
async function soloNode(
  options: { snapshotEvery?: number; snapshotKeepEntries?: number } = {},
): Promise<WaterCraftNode> {
  const node = await createNode({
    id: "n1",
    url: "http://n1.test:6969",
    stateMachine: kvStateMachine(),
    transport: new MemoryNetwork().transport(),
    insecure: true,
    clock: manualClock(1_000_000),
    seed: 1,
    onError: () => {},
    ...options,
  });
  await node.read({ op: "get", key: "settle" });
  return node;
}

/** Takes the next `count` events of a watch. */
async function take(events: AsyncIterator<WatchEvent>, count: number): Promise<WatchEvent[]> {
  const taken: WatchEvent[] = [];
  for (let i = 0; i < count; i++) {
    const next = await events.next();
    if (next.done) break;
    taken.push(next.value);
  }
  return taken;
}

/** One Server-Sent Event as parsed from the wire. */
interface Sse {
  event: string;
  id?: string;
  data: unknown;
}

/** Reads `count` events of an event stream (comments skipped), then cancels it. */
async function readSse(res: Response, count: number): Promise<Sse[]> {
  strictEqual(res.status, 200);
  ok(res.headers.get("content-type")?.startsWith("text/event-stream"));
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: Sse[] = [];
  let text = "";
  // Bounded: each read brings bytes or ends the stream.
  for (let reads = 0; events.length < count && reads < 10_000; reads++) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    let end;
    while ((end = text.indexOf("\n\n")) !== -1 && events.length < count) {
      const block = text.slice(0, end);
      text = text.slice(end + 2);
      const fields = new Map<string, string>();
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        fields.set(line.slice(0, colon), line.slice(colon + 1).trimStart());
      }
      if (!fields.has("event")) continue;
      events.push({
        event: fields.get("event")!,
        ...(fields.has("id") ? { id: fields.get("id")! } : {}),
        data: JSON.parse(fields.get("data")!),
      });
    }
  }
  await reader.cancel();
  return events;
}

Deno.test("node.watch() gives every applied entry after `after`, with its hash, the one before and its outcome", async () => {
  const node = await soloNode();
  try {
    const start = node.status().appliedIndex;
    const events = node.watch({ after: 0 });
    const history = await take(events, start);
    deepStrictEqual(history.map((e) => e.type === "entry" && e.entry.index), [
      ...Array.from({ length: start }, (_, i) => i + 1),
    ]);
    const a = await node.propose({ op: "put", key: "a", value: 1 });
    await node.propose({ op: "cas", key: "a", expect: 2, value: 3 }).catch(() => {});
    const [put, cas] = await take(events, 2);
    ok(put?.type === "entry" && cas?.type === "entry");
    deepStrictEqual(put.entry.data, { op: "put", key: "a", value: 1 });
    deepStrictEqual(put.entry.result, { prev: null, created: a.index, modified: a.index });
    strictEqual(put.entry.id, a.id);
    const before = history.at(-1);
    ok(before?.type === "entry");
    strictEqual(put.entry.prev, before.entry.id);
    strictEqual(cas.entry.error?.code, "cas_failed");
    strictEqual(cas.entry.prev, put.entry.id);
    await events.return!();
  } finally {
    await node.stop();
  }
});

Deno.test("node.watch() without `after` starts from now, and node.stop() ends it with a dropped event", async () => {
  const node = await soloNode();
  const events = node.watch();
  await node.propose({ op: "put", key: "b", value: true });
  const [entry] = await take(events, 1);
  ok(entry?.type === "entry");
  deepStrictEqual(entry.entry.data, { op: "put", key: "b", value: true });
  await node.stop();
  const rest = await take(events, 2);
  deepStrictEqual(rest, [{ type: "dropped", reason: "stopped", resumeAfter: entry.entry.index }]);
});

Deno.test("a watcher that falls behind a snapshot is dropped as slow; a new watch from before it is 410 compacted", async () => {
  const node = await soloNode({ snapshotEvery: 5, snapshotKeepEntries: 0 });
  try {
    const from = node.status().appliedIndex;
    const events = node.watch({ after: from });
    for (let i = 0; i < 30; i++) await node.propose({ op: "put", key: `k${i}`, value: i });
    const got = await take(events, 40);
    const last = got.at(-1);
    ok(last?.type === "dropped" && last.reason === "slow", JSON.stringify(last));
    // Everything it was given came in order and checks as a chain.
    const entries = got.flatMap((e) => e.type === "entry" ? [e.entry] : []);
    strictEqual(verifyChain(entries).ok, true);
    strictEqual(last.resumeAfter, entries.at(-1)?.index ?? from);

    const app = createApp(node);
    const res = await app.request(`/v1/watch?after=${from}`);
    strictEqual(res.status, 410);
    const body = await res.json();
    strictEqual(body.error.code, "compacted");
    ok(body.error.snapshotIndex > from);
  } finally {
    await node.stop();
  }
});

Deno.test("GET /v1/entries lists entries page by page, and verifyChain() checks them and catches a change", async () => {
  const node = await soloNode();
  try {
    for (let i = 0; i < 5; i++) await node.propose({ op: "put", key: `k${i}`, value: i });
    const app = createApp(node);
    const first = await (await app.request("/v1/entries?after=0&limit=3")).json();
    strictEqual(first.entries.length, 3);
    strictEqual(first.next, 3);
    const second = await (await app.request(`/v1/entries?after=${first.next}&limit=1000`)).json();
    const all = [...first.entries, ...second.entries];
    strictEqual(all.length, node.status().appliedIndex);
    deepStrictEqual(verifyChain(all, "0".repeat(64)), {
      ok: true,
      checked: all.length,
      last: node.head().head,
    });
    const altered = all.map((e, i) => i === 4 ? { ...e, timeMs: e.timeMs + 1 } : e);
    deepStrictEqual(verifyChain(altered).ok, false);
    strictEqual((verifyChain(altered) as { index: number }).index, 5);
    const bad = await app.request("/v1/entries?limit=0");
    strictEqual(bad.status, 400);
  } finally {
    await node.stop();
  }
});

Deno.test("GET /v1/watch streams entries as Server-Sent Events, resumable with Last-Event-ID", async () => {
  const node = await soloNode();
  try {
    const app = createApp(node);
    const start = node.status().appliedIndex;
    await node.propose({ op: "put", key: "x", value: "one" });
    await node.propose({ op: "put", key: "y", value: "two" });
    const events = await readSse(await app.request(`/v1/watch?after=${start}`), 2);
    deepStrictEqual(events.map((e) => [e.event, e.id]), [
      ["entry", String(start + 1)],
      ["entry", String(start + 2)],
    ]);
    const resumed = await readSse(
      await app.request(`/v1/watch?after=0`, { headers: { "last-event-id": String(start + 1) } }),
      1,
    );
    strictEqual(resumed[0]?.id, String(start + 2));
    deepStrictEqual((resumed[0]?.data as { data: unknown }).data, {
      op: "put",
      key: "y",
      value: "two",
    });
  } finally {
    await node.stop();
  }
});

Deno.test("GET /v1/watch/kv gives the changes of keys under a prefix, and nothing for commands that changed nothing", async () => {
  const node = await soloNode();
  try {
    const app = createApp(node);
    const start = node.status().appliedIndex;
    await node.propose({ op: "put", key: "app/a", value: 1 });
    await node.propose({ op: "put", key: "other", value: 1 });
    await node.propose({ op: "cas", key: "app/a", expect: 9, value: 2 }).catch(() => {});
    await node.propose({ op: "delete", key: "app/absent" });
    await node.propose({ op: "cas", key: "app/a", expect: 1, value: 2 });
    await node.propose({ op: "cas", key: "app/a", expectModified: start + 5, value: 3 });
    await node.propose({ op: "delete", key: "app/a" });
    const events = await readSse(await app.request(`/v1/watch/kv?prefix=app/&after=${start}`), 5);
    deepStrictEqual(
      events.map((e) => [e.event, e.data]),
      [
        ["put", {
          type: "put",
          key: "app/a",
          index: start + 1,
          id: idAt(node, start + 1),
          value: 1,
          prev: null,
          created: start + 1,
          modified: start + 1,
        }],
        ["delete", {
          type: "delete",
          key: "app/absent",
          index: start + 4,
          id: idAt(node, start + 4),
          prev: null,
        }],
        ["put", {
          type: "put",
          key: "app/a",
          index: start + 5,
          id: idAt(node, start + 5),
          value: 2,
          prev: 1,
          created: start + 1,
          modified: start + 5,
          prevModified: start + 1,
        }],
        ["put", {
          type: "put",
          key: "app/a",
          index: start + 6,
          id: idAt(node, start + 6),
          value: 3,
          prev: 2,
          created: start + 1,
          modified: start + 6,
          prevModified: start + 5,
        }],
        ["delete", {
          type: "delete",
          key: "app/a",
          index: start + 7,
          id: idAt(node, start + 7),
          prev: 3,
          prevCreated: start + 1,
          prevModified: start + 6,
        }],
      ],
    );
  } finally {
    await node.stop();
  }
});

/** The hash of the entry at `index`. */
function idAt(node: WaterCraftNode, index: number): string {
  return node.entries(index - 1, 1).entries[0]!.id;
}
