/**
 * A Worker that runs the storage conformance suite on
 * `durableObjectStorage` inside workerd, each case in a Durable Object of
 * its own (so on a store of its own), plus what is specific to the adapter
 * and a crash workload that `durable_object_test.ts` checks across a killed
 * workerd. Bundled by the test with `deno bundle`; it runs with
 * `nodejs_compat` only because the suite asserts with `node:assert/strict`.
 *
 * Routes, all on `?object=<name>`: `POST /case?suite=conformance|adapter&index=N`
 * answers `{ ok, error? }`; `GET /cases` the case names; `POST /crash/write`
 * and `GET /crash/check` the two halves of the crash check.
 *
 * @module
 */

import { deepStrictEqual, match, ok, rejects } from "node:assert/strict";
import { createEntry, type Entry, GENESIS_HASH } from "../../src/core/entry.ts";
import {
  durableObjectStorage,
  type DurableObjectStorageLike,
} from "../../src/storage/durable_object.ts";
import { memoryStorage } from "../../src/storage/memory.ts";
import { CorruptLogError, type Storage } from "../../src/storage/storage.ts";
import {
  assertSameState,
  type ConformanceCase,
  conformanceCases,
  type OpenStorage,
} from "../storage/conformance.ts";

/** The part of a Durable Object's state used here. */
interface ObjectState {
  readonly storage: DurableObjectStorageLike;
}

/** A Durable Object namespace binding. */
interface Namespace {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(request: Request): Promise<Response> };
}

/** The Worker's bindings. */
interface Env {
  readonly CONFORMANCE: Namespace;
}

function entries(count: number, after?: Entry, term = 1, bytes = 32): Entry[] {
  const out: Entry[] = [];
  let index = after?.index ?? 0;
  let hash = after?.hash ?? GENESIS_HASH;
  for (let i = 0; i < count; i++) {
    const entry = createEntry(++index, hash, {
      term,
      kind: "command",
      proposer: "n1",
      timeMs: 1_700_000_000_000 + index,
      data: new Uint8Array(bytes).fill((index * 31 + term) & 0xff),
    });
    out.push(entry);
    hash = entry.hash;
  }
  return out;
}

/** What is specific to the Durable Object adapter; each case gets a fresh object. */
const adapterCases: readonly ConformanceCase[] = [
  {
    name: "a second storage on the same object makes the first one's next write fail",
    fn: async (open) => {
      const { storage: first, reopen } = await open();
      await first.load();
      const log = entries(3);
      await first.save({ term: 1, vote: "n1", commit: 0 }, log);
      // A second instance of the object loads the same tables and writes once.
      const second = await reopen();
      await second.load();
      await second.save({ term: 2, vote: null, commit: 0 }, []);
      await rejects(first.save(null, entries(1, log[2])), /another writer changed/);
      // The refused write left nothing behind: the second instance's state is whole.
      const state = await (await reopen()).load();
      deepStrictEqual(state.hardState, { term: 2, vote: null, commit: 0 });
      deepStrictEqual(state.entries, log);
    },
  },
  {
    name: "a save that interleaves with a load on another storage is refused too",
    fn: async (open) => {
      const { storage: first, reopen } = await open();
      await first.load();
      const second = await reopen();
      await second.load();
      // Both saw version 0; the first writes, then the second must not.
      await first.save({ term: 1, vote: "n1", commit: 0 }, entries(2));
      await rejects(second.save({ term: 5, vote: "n5", commit: 0 }, []), /another writer/);
    },
  },
  {
    name: "load() names the missing row when a covered entry is gone",
    fn: async (open) => {
      const { storage, reopen, sql } = await openWithSql(open);
      await storage.load();
      await storage.save({ term: 1, vote: null, commit: 0 }, entries(5));
      sql.exec("DELETE FROM watercraft_log WHERE idx = 3");
      const error = await (await reopen()).load().catch((e) => e);
      ok(error instanceof CorruptLogError, String(error));
      match(error.message, /watercraft_log.*index 3 is missing/);
    },
  },
  {
    name: "load() refuses a log that does not hash-chain",
    fn: async (open) => {
      const { storage, reopen, sql } = await openWithSql(open);
      await storage.load();
      await storage.save({ term: 1, vote: null, commit: 0 }, entries(4));
      sql.exec("UPDATE watercraft_log SET data = ? WHERE idx = 2", new ArrayBuffer(3));
      await rejects((await reopen()).load(), /does not chain/);
    },
  },
  {
    name: "an entry larger than one row is stored in chunks and read back whole",
    fn: async (open) => {
      const { storage, reopen, sql } = await openWithSql(open);
      await storage.load();
      const big = entries(1, undefined, 1, 2_500_000);
      await storage.save(null, big);
      const parts = sql.exec("SELECT COUNT(*) AS n FROM watercraft_log_part").toArray()[0]!.n;
      deepStrictEqual(parts, 3);
      deepStrictEqual((await (await reopen()).load()).entries, big);
    },
  },
];

/** The SQL handle of the object a case runs in, for cases that damage it. */
let currentSql: DurableObjectStorageLike["sql"] | null = null;

async function openWithSql(open: OpenStorage) {
  const opened = await open();
  return { ...opened, sql: currentSql! };
}

/** The crash workload: saves, a truncation and a snapshot, each awaited. */
async function crashWorkload(storage: Storage): Promise<void> {
  await storage.load();
  const log = entries(40, undefined, 1, 200);
  for (let i = 0; i < log.length; i += 4) {
    await storage.save({ term: 1, vote: "n1", commit: i }, log.slice(i, i + 4));
  }
  const branch = entries(5, log[34], 2, 100);
  await storage.save({ term: 2, vote: "n2", commit: 30 }, branch);
  const at = log[19]!;
  await storage.saveSnapshot({
    meta: { index: at.index, term: at.term, hash: at.hash, config: { members: [] } },
    data: new Uint8Array(4000).fill(4),
  });
  await storage.save(null, entries(1, branch.at(-1), 2));
}

/** Runs conformance cases in a Durable Object. */
export class ConformanceObject {
  readonly #state: ObjectState;

  /**
   * Created by the runtime.
   *
   * @param state The object's state.
   */
  constructor(state: ObjectState) {
    this.#state = state;
  }

  /**
   * Runs what the request names.
   *
   * @param request The test's request.
   * @returns `{ ok, error? }` as JSON.
   */
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const storage = this.#state.storage;
    try {
      switch (url.pathname) {
        case "/case": {
          const cases = url.searchParams.get("suite") === "adapter"
            ? adapterCases
            : conformanceCases;
          const chosen = cases[Number(url.searchParams.get("index"))];
          if (chosen === undefined) return Response.json({ ok: false, error: "no such case" });
          currentSql = storage.sql;
          const open: OpenStorage = () =>
            Promise.resolve({
              storage: durableObjectStorage(storage),
              reopen: () => Promise.resolve(durableObjectStorage(storage)),
              // Abandoned without close, as an evicted instance leaves it; the
              // real crash (workerd killed) is the /crash routes'.
              crash: { crashAndReopen: () => Promise.resolve(durableObjectStorage(storage)) },
            });
          await chosen.fn(open);
          return Response.json({ ok: true });
        }
        case "/crash/write":
          await crashWorkload(durableObjectStorage(storage));
          return Response.json({ ok: true });
        case "/crash/check": {
          const model = memoryStorage();
          await crashWorkload(model);
          const state = await durableObjectStorage(storage).load();
          assertSameState(state, await model.load(), "after workerd was killed");
          return Response.json({ ok: true, entries: state.entries.length });
        }
      }
      return Response.json({ ok: false, error: `no route ${url.pathname}` }, { status: 404 });
    } catch (error) {
      return Response.json({ ok: false, error: String((error as Error)?.stack ?? error) });
    }
  }
}

export default {
  /**
   * Lists the cases, or hands the request to the object it names.
   *
   * @param request The test's request.
   * @param env The bindings.
   * @returns The answer.
   */
  fetch(request: Request, env: Env): Response | Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/cases") {
      return Response.json({
        conformance: conformanceCases.map((c) => c.name),
        adapter: adapterCases.map((c) => c.name),
      });
    }
    const name = url.searchParams.get("object") ?? "default";
    return env.CONFORMANCE.get(env.CONFORMANCE.idFromName(name)).fetch(request);
  },
};
