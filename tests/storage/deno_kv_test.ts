/**
 * Tests for `denoKvStorage` (src/storage/deno_kv.ts): the conformance suite on
 * an in-memory KV and on a KV file reopened from disk, then what is specific to
 * KV: prefixes, batches larger than one atomic commit, leftovers beyond the
 * marker, two writers on one prefix, and damage reported as `CorruptLogError`.
 *
 * @module
 */

import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { createEntry, type Entry, GENESIS_HASH } from "../../src/core/entry.ts";
import { denoKvStorage } from "../../src/storage/deno_kv.ts";
import { CorruptLogError, type Storage } from "../../src/storage/storage.ts";
import { runStorageConformance } from "./conformance.ts";

runStorageConformance("denoKvStorage in memory", async () => {
  const kv = await Deno.openKv(":memory:");
  const prefix = ["watercraft", "n1"];
  return {
    storage: denoKvStorage(kv, { prefix }),
    reopen: () => Promise.resolve(denoKvStorage(kv, { prefix })),
    cleanup: () => Promise.resolve(kv.close()),
  };
});

runStorageConformance("denoKvStorage on disk", async () => {
  const dir = await Deno.makeTempDir({ prefix: "watercraft_kv_" });
  const path = `${dir}/kv.sqlite3`;
  let kv = await Deno.openKv(path);
  let current: Storage = denoKvStorage(kv);
  /** Closes the KV handle and opens the file again: what is there came from disk. */
  const reopen = async (): Promise<Storage> => {
    kv.close();
    kv = await Deno.openKv(path);
    current = denoKvStorage(kv);
    return current;
  };
  return {
    storage: current,
    reopen,
    // The storage is not closed: whatever it committed must be in the file.
    crash: { crashAndReopen: reopen },
    async cleanup() {
      await current.close();
      kv.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
});

function entries(count: number, bytes: number, after?: Entry, tag = 0): Entry[] {
  const out: Entry[] = [];
  let index = after?.index ?? 0;
  let hash = after?.hash ?? GENESIS_HASH;
  for (let i = 0; i < count; i++) {
    const entry = createEntry(++index, hash, {
      term: 1 + tag,
      kind: "command",
      proposer: "n1",
      timeMs: index,
      data: new Uint8Array(bytes).fill((index + tag) & 0xff),
    });
    out.push(entry);
    hash = entry.hash;
  }
  return out;
}

async function withKv(fn: (kv: Deno.Kv) => Promise<void>): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  try {
    await fn(kv);
  } finally {
    kv.close();
  }
}

async function countKeys(kv: Deno.Kv, prefix: Deno.KvKey): Promise<number> {
  let n = 0;
  for await (const _ of kv.list({ prefix })) n++;
  return n;
}

Deno.test("denoKvStorage() keeps nodes under different prefixes apart", () =>
  withKv(async (kv) => {
    const a = denoKvStorage(kv, { prefix: ["a"] });
    const b = denoKvStorage(kv, { prefix: ["b"] });
    await a.load();
    await b.load();
    await a.save({ term: 1, vote: "a", commit: 0 }, entries(3, 10));
    await b.save({ term: 7, vote: "b", commit: 0 }, entries(5, 20));
    const [la, lb] = [
      await denoKvStorage(kv, { prefix: ["a"] }).load(),
      await denoKvStorage(kv, { prefix: ["b"] }).load(),
    ];
    strictEqual(la.entries.length, 3);
    strictEqual(lb.entries.length, 5);
    strictEqual(la.hardState.vote, "a");
    strictEqual(lb.hardState.term, 7);
  }));

Deno.test("denoKvStorage() save() splits a batch larger than one atomic commit", () =>
  withKv(async (kv) => {
    const storage = denoKvStorage(kv);
    await storage.load();
    const log = entries(300, 4000);
    await storage.save({ term: 1, vote: "n1", commit: 0 }, log);
    deepStrictEqual((await denoKvStorage(kv).load()).entries, log);
    // A large replacement from index 10: the marker first moves back, then forward.
    const branch = entries(400, 3000, log[8], 1);
    await storage.save({ term: 2, vote: null, commit: 5 }, branch);
    const state = await denoKvStorage(kv).load();
    deepStrictEqual(state.entries, [...log.slice(0, 9), ...branch]);
    deepStrictEqual(state.hardState, { term: 2, vote: null, commit: 5 });
  }));

Deno.test("denoKvStorage() stores an entry at the inline size limit with a long proposer", () =>
  withKv(async (kv) => {
    const storage = denoKvStorage(kv);
    await storage.load();
    const entry = createEntry(1, GENESIS_HASH, {
      term: 1,
      kind: "command",
      proposer: "ü".repeat(1500),
      timeMs: 1,
      data: new Uint8Array(60_000).fill(9),
    });
    await storage.save(null, [entry]);
    deepStrictEqual((await denoKvStorage(kv).load()).entries, [entry]);
  }));

Deno.test("denoKvStorage() load() ignores and removes entries beyond the marker", () =>
  withKv(async (kv) => {
    const storage = denoKvStorage(kv, { prefix: ["p"] });
    await storage.load();
    const log = entries(4, 10);
    await storage.save({ term: 1, vote: null, commit: 0 }, log);
    // What a crash between the entry commits and the marker commit leaves.
    const orphan = entries(1, 10, log[3])[0]!;
    const { index: _, ...fields } = orphan;
    await kv.set(["p", "log", 5], { ...fields, parts: 0 });
    await kv.set(["p", "log", 6, 1], new Uint8Array(3));
    const state = await denoKvStorage(kv, { prefix: ["p"] }).load();
    deepStrictEqual(state.entries, log);
    strictEqual(await countKeys(kv, ["p", "log"]), 4);
  }));

Deno.test("denoKvStorage() saveSnapshot() deletes covered entries and the previous snapshot", () =>
  withKv(async (kv) => {
    const storage = denoKvStorage(kv);
    await storage.load();
    const log = entries(30, 100_000);
    for (let i = 0; i < 30; i += 10) await storage.save(null, log.slice(i, i + 10));
    const config = { members: [] };
    await storage.saveSnapshot({
      meta: { index: 10, term: 1, hash: log[9]!.hash, config },
      data: new Uint8Array(200_000).fill(1),
    });
    await storage.saveSnapshot({
      meta: { index: 20, term: 1, hash: log[19]!.hash, config },
      data: new Uint8Array(70_000).fill(2),
    });
    strictEqual(await countKeys(kv, ["snap"]), 2, "two chunks of the second snapshot");
    // Each 100 kB entry is a head and two chunks.
    strictEqual(await countKeys(kv, ["log"]), 10 * 3);
    const state = await denoKvStorage(kv).load();
    deepStrictEqual(state.entries, log.slice(20));
    ok(state.snapshot?.data.every((b) => b === 2));
  }));

Deno.test("denoKvStorage() saveSnapshotBeside() writes the chunks while saves go on, then switches", () =>
  withKv(async (kv) => {
    const storage = denoKvStorage(kv);
    await storage.load();
    const log = entries(40, 1_000);
    const hard = (e: Entry) => ({ term: 1, vote: "n1", commit: e.index - 1 });
    for (const e of log.slice(0, 20)) await storage.save(hard(e), [e]);
    // Some 2.4 MB: several commits of chunks, between which the saves commit.
    const data = new Uint8Array(2_400_000).map((_, i) => i % 251);
    const snapshotted = storage.saveSnapshotBeside!({
      meta: { index: 10, term: 1, hash: log[9]!.hash, config: { members: [] } },
      data,
    });
    const saved = (async () => {
      for (const e of log.slice(20)) await storage.save(hard(e), [e]);
    })();
    await Promise.all([snapshotted, saved]);
    const state = await denoKvStorage(kv).load();
    strictEqual(state.snapshot?.meta.index, 10);
    deepStrictEqual(state.snapshot?.data, data);
    deepStrictEqual(state.entries, log.slice(10));
    deepStrictEqual(state.hardState, { term: 1, vote: "n1", commit: 39 });
  }));

Deno.test("denoKvStorage() fails the second of two writers on one prefix", () =>
  withKv(async (kv) => {
    const first = denoKvStorage(kv);
    const second = denoKvStorage(kv);
    await first.load();
    await second.load();
    await first.save({ term: 1, vote: "n1", commit: 0 }, []);
    await rejects(second.save({ term: 1, vote: "n2", commit: 0 }, []), /another writer/);
    strictEqual((await denoKvStorage(kv).load()).hardState.vote, "n1");
  }));

/**
 * Wraps `kv` so that every commit after the first `commits` fails, as if the
 * process died there: what the earlier commits wrote stays.
 */
function crashingKv(kv: Deno.Kv, commits: number): Deno.Kv {
  let left = commits;
  return new Proxy(kv, {
    get(target, property) {
      if (property === "atomic") {
        return () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          op.commit = () => left-- > 0 ? commit() : Promise.reject(new Error("Simulated crash"));
          return op;
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

Deno.test("denoKvStorage() save() split over commits is all or nothing after a crash at any commit", async () => {
  const base = entries(50, 2000);
  const branch = entries(400, 3000, base[18], 1);
  const oldHard = { term: 1, vote: "n1", commit: 10 };
  const newHard = { term: 2, vote: null, commit: 10 };
  let completed = false;
  for (let commits = 0; commits < 12 && !completed; commits++) {
    await withKv(async (kv) => {
      await denoKvStorage(kv).save(oldHard, base);
      const crashing = denoKvStorage(crashingKv(kv, commits));
      await crashing.load();
      completed = await crashing.save(newHard, branch).then(() => true, () => false);
      const state = await denoKvStorage(kv).load();
      if (completed) {
        deepStrictEqual(state.entries, [...base.slice(0, 19), ...branch], `${commits} commits`);
        deepStrictEqual(state.hardState, newHard);
        return;
      }
      // The old log, possibly cut where the batch was to replace it; none of the batch.
      deepStrictEqual(state.hardState, oldHard, `${commits} commits`);
      const want = state.entries.length === base.length ? base : base.slice(0, 19);
      deepStrictEqual(state.entries, want, `${commits} commits`);
    });
  }
  ok(completed, "the save never completed");
});

Deno.test("denoKvStorage() saveSnapshot() is all or nothing after a crash at any commit", async () => {
  const log = entries(40, 50_000);
  const old = { index: 10, term: 1, hash: log[9]!.hash, config: { members: [] } };
  const next = { index: 30, term: 1, hash: log[29]!.hash, config: { members: [] } };
  const oldData = new Uint8Array(300_000).fill(1);
  const newData = new Uint8Array(900_000).fill(2);
  let completed = false;
  for (let commits = 0; commits < 12 && !completed; commits++) {
    await withKv(async (kv) => {
      const setup = denoKvStorage(kv);
      await setup.save({ term: 1, vote: null, commit: 40 }, log);
      await setup.saveSnapshot({ meta: old, data: oldData });
      const crashing = denoKvStorage(crashingKv(kv, commits));
      await crashing.load();
      completed = await crashing.saveSnapshot({ meta: next, data: newData }).then(
        () => true,
        () => false,
      );
      const state = await denoKvStorage(kv).load();
      const switched = state.snapshot?.meta.index === 30;
      deepStrictEqual(state.snapshot?.meta, switched ? next : old, `${commits} commits`);
      ok(state.snapshot?.data.every((b) => b === (switched ? 2 : 1)), `${commits} commits`);
      deepStrictEqual(state.entries, log.slice(switched ? 30 : 10), `${commits} commits`);
    });
  }
  ok(completed, "the snapshot never completed");
});

Deno.test("denoKvStorage() load() throws CorruptLogError naming the key on damage", async (t) => {
  const log = entries(5, 10);
  const rows: { name: string; damage: (kv: Deno.Kv) => Promise<unknown>; path: string }[] = [
    {
      name: "an entry whose data changed breaks the hash chain",
      damage: async (kv) => {
        const stored = await kv.get<Record<string, unknown>>(["p", "log", 3]);
        await kv.set(["p", "log", 3], { ...stored.value, data: new Uint8Array([1, 2, 3]) });
      },
      path: '["p"]',
    },
    {
      name: "an entry the marker covers is missing",
      damage: (kv) => kv.delete(["p", "log", 3]),
      path: '["p", "log", 3]',
    },
    {
      name: "the last entry the marker covers is missing",
      damage: (kv) => kv.delete(["p", "log", 5]),
      path: '["p", "log", 5]',
    },
    {
      name: "a chunk of a large entry is missing",
      damage: (kv) => kv.delete(["p", "log", 6, 1]),
      path: '["p", "log", 6, 1]',
    },
    {
      name: "a snapshot chunk is missing",
      damage: (kv) => kv.delete(["p", "snap", 1, 0]),
      path: '["p", "snap", 1, 0]',
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () =>
      withKv(async (kv) => {
        const storage = denoKvStorage(kv, { prefix: ["p"] });
        await storage.load();
        await storage.save({ term: 1, vote: null, commit: 0 }, log);
        await storage.save(null, entries(1, 100_000, log[4]));
        await storage.saveSnapshot({
          meta: { index: 1, term: 1, hash: log[0]!.hash, config: { members: [] } },
          data: new Uint8Array(100_000).fill(3),
        });
        await row.damage(kv);
        await rejects(denoKvStorage(kv, { prefix: ["p"] }).load(), (error: unknown) => {
          ok(error instanceof CorruptLogError, `not a CorruptLogError: ${error}`);
          strictEqual(error.path, row.path);
          ok(error.message.includes(row.path), error.message);
          return true;
        });
      }));
  }
});
