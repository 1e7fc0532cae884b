/**
 * Tests of `WaterCraftClient` against clusters over real HTTP on loopback:
 * it finds the leader from any member (a dead one among them), writes and
 * reads, refuses what the API refuses, keeps writing through a failover,
 * follows the log and key changes, and verifies the hash chain.
 *
 * @module
 */

import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { WaterCraftError } from "../../mod.ts";
import { WaterCraftClient } from "../../src/client/client.ts";
import { type Member, start, stop, waitFor } from "../http/loopback_cluster.ts";

/** A port nothing listens on (the discard port, closed on test machines). */
const DEAD = "http://127.0.0.1:9";

async function threeNodes(): Promise<Member[]> {
  const members = [await start("n1", null)];
  members.push(await start("n2", [members[0]!.url]));
  members.push(await start("n3", [members[0]!.url]));
  const first = members[0]!.node;
  await waitFor("3 voters", () => first.members().members.filter((m) => m.voter).length === 3);
  return members;
}

Deno.test("WaterCraftClient writes, reads and refuses through any member, a dead one first", async () => {
  const members = await threeNodes();
  try {
    const client = new WaterCraftClient({
      endpoints: [DEAD, members[2]!.url, members[1]!.url],
      timeoutMs: 5_000,
    });
    const put = await client.kv.put("a", { n: 1 });
    strictEqual(put.prev, null);
    ok(/^[0-9a-f]{64}$/.test(put.id));
    deepStrictEqual([put.created, put.modified], [put.index, put.index]);
    const got = await client.kv.get("a");
    deepStrictEqual([got.value, got.created, got.modified], [{ n: 1 }, put.index, put.index]);
    const second = await client.kv.put("a", 2);
    deepStrictEqual([second.prev, second.prevModified], [{ n: 1 }, put.index]);
    const swapped = await client.kv.cas("a", 2, 3);
    deepStrictEqual([swapped.created, swapped.modified], [put.index, swapped.index]);
    const failed = await client.kv.cas("a", 2, 4).catch((e) => e);
    ok(failed instanceof WaterCraftError);
    strictEqual(failed.code, "cas_failed");
    deepStrictEqual(failed.details.current, 3);
    strictEqual(failed.details.modified, swapped.index);
    // On the revision: the failed cas above changed nothing, so `modified` still matches.
    const byRevision = await client.kv.casModified("a", swapped.modified, 5);
    deepStrictEqual([byRevision.prev, byRevision.prevModified], [3, swapped.index]);
    const stale = await client.kv.casModified("a", swapped.modified, 6).catch((e) => e);
    ok(stale instanceof WaterCraftError);
    deepStrictEqual([stale.code, stale.details.current, stale.details.modified], [
      "cas_failed",
      5,
      byRevision.index,
    ]);
    await rejects(
      client.kv.get("absent"),
      (e) => e instanceof WaterCraftError && e.code === "not_found",
    );
    deepStrictEqual((await client.kv.list("a")).items, [
      { key: "a", value: 5, created: put.index, modified: byRevision.index },
    ]);
    const deleted = await client.kv.delete("a");
    deepStrictEqual([deleted.prev, deleted.prevCreated, deleted.prevModified], [
      5,
      put.index,
      byRevision.index,
    ]);
    const recreated = await client.kv.casModified("a", 0, 1);
    deepStrictEqual([recreated.prev, recreated.created], [null, recreated.index]);

    // The same idempotency key twice: one entry, the first result.
    const first = await client.propose({ op: "put", key: "k", value: 1 }, {
      idempotencyKey: "once",
    });
    const again = await client.propose({ op: "put", key: "k", value: 1 }, {
      idempotencyKey: "once",
    });
    strictEqual(again.id, first.id);
    strictEqual(again.index, first.index);
    const refused = await client.propose({ op: "bogus" }).catch((e) => e);
    strictEqual(refused.code, "rejected");

    strictEqual((await client.status()).id.startsWith("n"), true);
    strictEqual((await client.members()).members.length, 3);
    const check = await client.verify();
    ok(check.ok, JSON.stringify(check));
    strictEqual(check.last, members[0]!.node.head().head);
  } finally {
    for (const m of members) await stop(m);
  }
});

Deno.test("WaterCraftClient keeps writing when the leader is stopped, and its watch follows across", async () => {
  const members = await threeNodes();
  const stopped = new Set<Member>();
  const abort = new AbortController();
  try {
    const client = new WaterCraftClient({
      endpoints: members.map((m) => m.url),
      timeoutMs: 10_000,
    });
    const from = members[0]!.node.status().appliedIndex;
    const events = client.watch({ after: from, signal: abort.signal });
    const keys = client.watchKeys("w/", { after: from, signal: abort.signal });
    await client.kv.put("w/1", 1);
    const leader = members.find((m) => m.node.status().role === "leader")!;
    stopped.add(leader);
    await stop(leader);
    // Through the election: the client retries until a new leader takes it.
    await client.kv.put("w/2", 2);
    await client.kv.put("other", 0);
    await client.kv.delete("w/1");

    const changes = [];
    for await (const change of keys) {
      changes.push([change.type, change.key]);
      if (changes.length === 3) break;
    }
    deepStrictEqual(changes, [["put", "w/1"], ["put", "w/2"], ["delete", "w/1"]]);
    const seen: number[] = [];
    for await (const event of events) {
      if (event.type !== "entry") continue;
      seen.push(event.entry.index);
      if (
        event.entry.data !== null && (event.entry.data as { key?: string }).key === "w/1" &&
        (event.entry.data as { op?: string }).op === "delete"
      ) break;
    }
    // In order, no gap, no repeat: resumed after the last event it had.
    deepStrictEqual(seen, Array.from({ length: seen.length }, (_, i) => from + 1 + i));
  } finally {
    abort.abort();
    for (const m of members) if (!stopped.has(m)) await stop(m);
  }
});
