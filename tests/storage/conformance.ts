/**
 * The storage conformance suite: one set of cases that every `Storage`
 * adapter runs (`runStorageConformance(name, open)` in its `_test.ts`), in the
 * manner of hono's `router/common.case.test.ts`. The in-memory storage is the
 * reference: where a case compares whole states, it replays the same calls on
 * `memoryStorage()` and expects the adapter, after a restart, to load exactly
 * what the reference holds.
 *
 * The cases are also exported as plain data ({@linkcode conformanceCases}), so
 * that a script can run them without `Deno.test` (e.g. on Node).
 *
 * @module
 */

import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { type Configuration, encodeConfig } from "../../src/core/config.ts";
import { createEntry, type Entry, type EntryKind, GENESIS_HASH } from "../../src/core/entry.ts";
import type { HardState } from "../../src/core/types.ts";
import { memoryStorage } from "../../src/storage/memory.ts";
import type { PersistedState, Snapshot, Storage } from "../../src/storage/storage.ts";

/** How a suite simulates a crash, for adapters that can. */
export interface CrashTools {
  /**
   * Abandons the current storage as a killed process would (no `close`) and
   * opens a new one on what it left on durable media.
   */
  crashAndReopen(): Promise<Storage>;
}

/** A freshly opened, empty store and the means to restart it. */
export interface OpenedStorage {
  /** The storage, not loaded yet. */
  readonly storage: Storage;
  /** Opens the same store again; the suite closes the previous storage first. */
  readonly reopen: () => Promise<Storage>;
  /** Crash simulation, when the adapter supports it. */
  readonly crash?: CrashTools;
  /** Removes what the store left behind (temporary directories, KV handles). */
  readonly cleanup?: () => Promise<void>;
}

/** Opens a new, empty store. */
export type OpenStorage = () => Promise<OpenedStorage>;

/** One conformance case. */
export interface ConformanceCase {
  /** What it checks, e.g. "save() replaces a conflicting suffix". */
  readonly name: string;
  /** Runs the case against a store made by `open`. */
  readonly fn: (open: OpenStorage) => Promise<void>;
}

// ---------------------------------------------------------------- helpers

const EMPTY_HARD: HardState = { term: 0, vote: null, commit: 0 };
const CONFIG: Configuration = {
  members: [
    { id: "n1", voter: true, url: "http://127.0.0.1:7001" },
    { id: "n2", voter: true },
    { id: "n3", voter: false, readOnly: true },
  ],
};

/** Deterministic bytes (xorshift32 seeded by `seed`), so data is not all alike. */
function bytesOf(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Options of {@linkcode extend}. */
interface ExtendOptions {
  readonly term?: number;
  /** Mixed into the data so that two branches with equal terms differ. */
  readonly tag?: number;
  /** Data bytes per entry. */
  readonly bytes?: number;
  readonly kind?: EntryKind;
}

/** Creates `count` valid entries following the entry (or snapshot) `after`. */
function extend(
  after: { readonly index: number; readonly hash: string } | undefined,
  count: number,
  options: ExtendOptions = {},
): Entry[] {
  const out: Entry[] = [];
  let index = after?.index ?? 0;
  let hash = after?.hash ?? GENESIS_HASH;
  for (let i = 0; i < count; i++) {
    index++;
    const kind = options.kind ?? "command";
    const entry = createEntry(index, hash, {
      term: options.term ?? 1,
      kind,
      proposer: `n${1 + (index % 3)}`,
      timeMs: 1_700_000_000_000 + index,
      data: kind === "config"
        ? encodeConfig(CONFIG)
        : bytesOf(index * 7919 + (options.tag ?? 0), options.bytes ?? 16 + (index % 5)),
    });
    out.push(entry);
    hash = entry.hash;
  }
  return out;
}

/** A snapshot at `at` (an entry, or a made-up point) with `data`. */
function snapshotAt(
  at: { readonly index: number; readonly term: number; readonly hash: string },
  data: Uint8Array,
): Snapshot {
  return { meta: { index: at.index, term: at.term, hash: at.hash, config: CONFIG }, data };
}

/**
 * Runs one case's store: tracks the live storage across restarts and closes
 * and cleans up at the end. `model` is the reference every write is mirrored to.
 */
class Harness {
  storage: Storage;
  readonly model: Storage = memoryStorage();
  readonly #opened: OpenedStorage;

  constructor(opened: OpenedStorage) {
    this.#opened = opened;
    this.storage = opened.storage;
  }

  get crash(): CrashTools | undefined {
    return this.#opened.crash;
  }

  /** Saves on both the storage and the reference. */
  async save(hard: HardState | null, entries: readonly Entry[]): Promise<void> {
    await this.storage.save(hard, entries);
    await this.model.save(hard, entries);
  }

  /** Saves a snapshot on both the storage and the reference. */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    await this.storage.saveSnapshot(snapshot);
    await this.model.saveSnapshot(snapshot);
  }

  /** Closes the storage, opens it again and loads it. */
  async restart(): Promise<PersistedState> {
    await this.storage.close();
    this.storage = await this.#opened.reopen();
    return await this.storage.load();
  }

  /** Restarts and checks that the storage recovers exactly what the reference holds. */
  async restartAndCompare(context: string): Promise<PersistedState> {
    const state = await this.restart();
    assertSameState(state, await this.model.load(), context);
    return state;
  }

  async dispose(): Promise<void> {
    try {
      await this.storage.close();
    } finally {
      await this.#opened.cleanup?.();
    }
  }
}

/** Asserts two recovered states are equal, field by field for readable failures. */
export function assertSameState(
  actual: PersistedState,
  expected: PersistedState,
  context: string,
): void {
  deepStrictEqual(actual.hardState, expected.hardState, `${context}: hard state`);
  deepStrictEqual(
    actual.snapshot?.meta ?? null,
    expected.snapshot?.meta ?? null,
    `${context}: snapshot meta`,
  );
  ok(
    bytesEqual(actual.snapshot?.data, expected.snapshot?.data),
    `${context}: snapshot data differs`,
  );
  deepStrictEqual(
    actual.entries.map((e) => e.index),
    expected.entries.map((e) => e.index),
    `${context}: entry indexes`,
  );
  deepStrictEqual(actual.entries, expected.entries, `${context}: entries`);
}

function bytesEqual(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function withHarness(open: OpenStorage, fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = new Harness(await open());
  try {
    await h.storage.load();
    await fn(h);
  } finally {
    await h.dispose();
  }
}

// ------------------------------------------------------------------ cases

/** Every conformance case, in the order they run. */
export const conformanceCases: readonly ConformanceCase[] = [
  {
    name: "load() of an empty store returns no hard state, snapshot or entries",
    fn: (open) =>
      withHarness(open, async (h) => {
        const want: PersistedState = { hardState: EMPTY_HARD, snapshot: null, entries: [] };
        assertSameState(await h.storage.load(), want, "fresh");
        assertSameState(await h.restart(), want, "after a restart");
      }),
  },
  {
    name: "save() round-trips hard states across restarts",
    fn: (open) =>
      withHarness(open, async (h) => {
        const states: HardState[] = [
          { term: 1, vote: null, commit: 0 },
          { term: 2, vote: "n1", commit: 0 },
          { term: 2, vote: "nœud-ü-🚀", commit: 3 },
          { term: 3, vote: "", commit: 3 },
          { term: 2 ** 40, vote: null, commit: 2 ** 33 },
        ];
        for (const [i, hard] of states.entries()) {
          await h.save(hard, []);
          deepStrictEqual((await h.restart()).hardState, hard, `state ${i}`);
        }
      }),
  },
  {
    name: "save() round-trips entries of every kind and data of every byte value",
    fn: (open) =>
      withHarness(open, async (h) => {
        const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i);
        const fields = [
          { term: 1, kind: "config", proposer: "", timeMs: 0, data: encodeConfig(CONFIG) },
          { term: 1, kind: "noop", proposer: "n1", timeMs: 1, data: new Uint8Array(0) },
          { term: 1, kind: "command", proposer: "n2", timeMs: 1_712_345_678_901, data: everyByte },
          {
            term: 2,
            kind: "command",
            proposer: "nœud-🚀",
            timeMs: 12.5,
            data: everyByte.toReversed(),
          },
        ] as const;
        const entries: Entry[] = [];
        for (const f of fields) {
          entries.push(createEntry(entries.length + 1, entries.at(-1)?.hash ?? GENESIS_HASH, f));
        }
        await h.save({ term: 2, vote: "n1", commit: 1 }, entries);
        assertSameState(await h.storage.load(), await h.model.load(), "before a restart");
        await h.restartAndCompare("after a restart");
      }),
  },
  {
    name: "save() round-trips a 1 MiB entry",
    fn: (open) =>
      withHarness(open, async (h) => {
        const [small] = extend(undefined, 1);
        const big = createEntry(2, small!.hash, {
          term: 1,
          kind: "command",
          proposer: "n1",
          timeMs: 5,
          data: bytesOf(42, 1 << 20),
        });
        await h.save({ term: 1, vote: "n1", commit: 0 }, [small!, big]);
        await h.save(null, extend(big, 2));
        await h.restartAndCompare("after a restart");
      }),
  },
  {
    name: "save() makes hard state and entries of one call durable together",
    fn: (open) =>
      withHarness(open, async (h) => {
        const first = extend(undefined, 3);
        await h.save({ term: 1, vote: "n1", commit: 0 }, first);
        await h.restartAndCompare("both");
        await h.save(null, extend(first.at(-1), 2));
        await h.restartAndCompare("entries only");
        await h.save({ term: 1, vote: "n1", commit: 4 }, []);
        await h.restartAndCompare("hard state only");
      }),
  },
  {
    name: "save() with nothing to write changes nothing",
    fn: (open) =>
      withHarness(open, async (h) => {
        await h.save({ term: 4, vote: "n3", commit: 0 }, extend(undefined, 2));
        await h.save(null, []);
        await h.restartAndCompare("after an empty save");
      }),
  },
  {
    name: "save() replaces a conflicting suffix",
    fn: (open) =>
      withHarness(open, async (h) => {
        const old = extend(undefined, 10, { term: 1 });
        await h.save({ term: 1, vote: "n1", commit: 3 }, old);
        const replacement = extend(old[4], 3, { term: 2, tag: 1 });
        await h.save({ term: 2, vote: null, commit: 3 }, replacement);
        const state = await h.restartAndCompare("after the truncation");
        strictEqual(state.entries.length, 8);
        strictEqual(state.entries[5]!.hash, replacement[0]!.hash);
        await h.save(null, extend(replacement.at(-1), 2, { term: 2 }));
        await h.restartAndCompare("after appending past the truncation");
      }),
  },
  {
    name: "save() replaces the last entry",
    fn: (open) =>
      withHarness(open, async (h) => {
        const old = extend(undefined, 5, { term: 1 });
        await h.save({ term: 1, vote: "n1", commit: 0 }, old);
        await h.save({ term: 2, vote: "n2", commit: 0 }, extend(old[3], 1, { term: 2, tag: 9 }));
        const state = await h.restartAndCompare("after replacing the last entry");
        strictEqual(state.entries.at(-1)!.term, 2);
      }),
  },
  {
    name: "save() rejects a batch that would leave a gap and stays usable",
    fn: (open) =>
      withHarness(open, async (h) => {
        const first = extend(undefined, 3);
        await h.save({ term: 1, vote: "n1", commit: 0 }, first);
        const ahead = extend(first.at(-1), 3);
        await rejects(h.storage.save(null, ahead.slice(1)), RangeError);
        await h.save(null, ahead);
        await h.restartAndCompare("after the rejected save");
      }),
  },
  {
    name: "saveSnapshot() drops covered entries and keeps those that continue its chain",
    fn: (open) =>
      withHarness(open, async (h) => {
        const entries = extend(undefined, 20, { bytes: 100 });
        await h.save({ term: 1, vote: "n1", commit: 15 }, entries);
        const data = new Uint8Array(300_000);
        data.set(Uint8Array.from({ length: 256 }, (_, i) => i));
        data.set(bytesOf(7, 100_000), 256);
        await h.saveSnapshot(snapshotAt(entries[11]!, data));
        const state = await h.storage.load();
        deepStrictEqual(state.entries.map((e) => e.index), [...Array(8)].map((_, i) => 13 + i));
        ok(bytesEqual(state.snapshot?.data, data), "snapshot data before a restart");
        const after = await h.restartAndCompare("after the snapshot");
        ok(bytesEqual(after.snapshot?.data, data), "snapshot data after a restart");
        await h.save(null, extend(entries.at(-1), 5));
        await h.restartAndCompare("after appending past the snapshot");
      }),
  },
  {
    name: "saveSnapshot() drops every entry when they do not continue it",
    fn: (open) =>
      withHarness(open, async (h) => {
        const local = extend(undefined, 10, { term: 1 });
        await h.save({ term: 2, vote: null, commit: 4 }, local);
        const leader = extend(local[3], 6, { term: 2, tag: 5 });
        const snapshot = snapshotAt(leader[3]!, bytesOf(3, 1000));
        await h.saveSnapshot(snapshot);
        const state = await h.restartAndCompare("after the snapshot");
        deepStrictEqual(state.entries, []);
        await h.save({ term: 2, vote: null, commit: 8 }, leader.slice(4));
        await h.restartAndCompare("after appending from the snapshot");
      }),
  },
  {
    name: "saveSnapshot() ahead of the log drops every entry",
    fn: (open) =>
      withHarness(open, async (h) => {
        await h.save({ term: 1, vote: "n1", commit: 2 }, extend(undefined, 5));
        const point = { index: 50, term: 3, hash: "ab".repeat(32) };
        await h.saveSnapshot(snapshotAt(point, new Uint8Array([1, 2, 3])));
        await h.restartAndCompare("after the snapshot");
        await h.save({ term: 3, vote: null, commit: 50 }, extend(point, 3, { term: 3 }));
        await h.restartAndCompare("after appending from the snapshot");
      }),
  },
  {
    name: "saveSnapshot() replaces the previous snapshot",
    fn: (open) =>
      withHarness(open, async (h) => {
        const entries = extend(undefined, 12);
        await h.save({ term: 1, vote: "n1", commit: 12 }, entries);
        await h.saveSnapshot(snapshotAt(entries[4]!, bytesOf(1, 70_000)));
        await h.restartAndCompare("after the first snapshot");
        await h.saveSnapshot(snapshotAt(entries[9]!, bytesOf(2, 10)));
        const state = await h.restartAndCompare("after the second snapshot");
        strictEqual(state.snapshot?.meta.index, 10);
        strictEqual(state.snapshot?.data.length, 10);
      }),
  },
  {
    name: "a restart after every kind of write recovers the same state",
    fn: (open) =>
      withHarness(open, async (h) => {
        let log = extend(undefined, 4);
        const last = () => log.at(-1)!;
        const steps: [string, () => Promise<void>][] = [
          ["hard state only", () => h.save({ term: 1, vote: "n1", commit: 0 }, [])],
          ["entries only", () => h.save(null, log)],
          ["hard state and entries", async () => {
            const more = extend(last(), 3);
            log = [...log, ...more];
            await h.save({ term: 1, vote: "n1", commit: 5 }, more);
          }],
          ["truncation", async () => {
            const branch = extend(log[5], 2, { term: 2, tag: 3 });
            log = [...log.slice(0, 6), ...branch];
            await h.save({ term: 2, vote: "n2", commit: 5 }, branch);
          }],
          ["replacing the last entry", async () => {
            const branch = extend(log.at(-2), 1, { term: 3, tag: 4 });
            log = [...log.slice(0, -1), ...branch];
            await h.save({ term: 3, vote: null, commit: 6 }, branch);
          }],
          ["a snapshot the log continues", async () => {
            await h.saveSnapshot(snapshotAt(log[5]!, bytesOf(5, 5000)));
            log = log.slice(6);
          }],
          ["appending after the snapshot", async () => {
            const more = extend(last(), 4, { term: 3 });
            log = [...log, ...more];
            await h.save({ term: 3, vote: null, commit: 9 }, more);
          }],
          ["a snapshot the log does not continue", async () => {
            const other = extend(log[0], 3, { term: 4, tag: 8 });
            await h.saveSnapshot(snapshotAt(other.at(-1)!, bytesOf(6, 64)));
            log = [other.at(-1)!];
          }],
          ["appending after that snapshot", async () => {
            const more = extend(last(), 2, { term: 4 });
            log = [...log, ...more];
            await h.save({ term: 4, vote: "n1", commit: 12 }, more);
          }],
        ];
        for (const [name, step] of steps) {
          await step();
          await h.restartAndCompare(`after ${name}`);
        }
      }),
  },
  {
    name: "many small saves survive a restart",
    fn: (open) =>
      withHarness(open, async (h) => {
        let prev: Entry | undefined;
        for (let i = 1; i <= 300; i++) {
          const [entry] = extend(prev, 1, { bytes: 40 });
          prev = entry;
          await h.save(i % 10 === 0 ? { term: 1, vote: "n1", commit: i - 5 } : null, [entry!]);
          if (i % 7 === 0) await h.save({ term: 1, vote: "n1", commit: i - 3 }, []);
        }
        const state = await h.restartAndCompare("after 300 saves");
        strictEqual(state.entries.length, 300);
      }),
  },
  {
    name: "load() returns the same state on every restart",
    fn: (open) =>
      withHarness(open, async (h) => {
        const entries = extend(undefined, 6);
        await h.save({ term: 1, vote: "n2", commit: 2 }, entries);
        await h.saveSnapshot(snapshotAt(entries[1]!, bytesOf(9, 99)));
        for (let i = 0; i < 3; i++) await h.restartAndCompare(`restart ${i}`);
      }),
  },
  {
    name: "a crash after resolved saves loses none of them",
    fn: (open) =>
      withHarness(open, async (h) => {
        const crash = h.crash;
        if (crash === undefined) return;
        const entries = extend(undefined, 40, { bytes: 200 });
        for (let i = 0; i < entries.length; i += 4) {
          await h.save({ term: 1, vote: "n1", commit: i }, entries.slice(i, i + 4));
        }
        await h.saveSnapshot(snapshotAt(entries[9]!, bytesOf(4, 4000)));
        await h.save(null, extend(entries.at(-1), 1));
        h.storage = await crash.crashAndReopen();
        assertSameState(await h.storage.load(), await h.model.load(), "after the crash");
      }),
  },
];

/**
 * Registers every conformance case as a `Deno.test` named
 * `"<name>: <case>"`.
 *
 * @param name The adapter under test, e.g. "fileStorage".
 * @param open Opens a new, empty store for each case.
 */
export function runStorageConformance(name: string, open: OpenStorage): void {
  for (const c of conformanceCases) {
    Deno.test(`${name}: ${c.name}`, () => c.fn(open));
  }
}
