/**
 * Tests for `StorageGuard` (src/storage/storage.ts), the call protocol every
 * durable adapter shares, on a fake backend that records what it is asked to
 * do: batch and snapshot checks, poisoning after a failed write, one call at a
 * time, lazy open, and close.
 *
 * @module
 */

import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert/strict";
import type { Entry } from "../../src/core/entry.ts";
import type { HardState } from "../../src/core/types.ts";
import {
  type PersistedState,
  type Snapshot,
  type StorageBackend,
  StorageGuard,
  type StorageNames,
} from "../../src/storage/storage.ts";

const HARD: HardState = { term: 1, vote: "n1", commit: 0 };
const EMPTY: PersistedState = {
  hardState: { term: 0, vote: null, commit: 0 },
  snapshot: null,
  entries: [],
};
const NAMES: StorageNames = { store: "/data/n1", target: "to /data/n1", busy: "/data/n1" };

function entry(index: number): Entry {
  return {
    index,
    term: 1,
    kind: "noop",
    proposer: "n1",
    timeMs: 0,
    data: new Uint8Array(),
    hash: "",
  };
}

/** Entries at the given indexes, in that order. */
function batch(...indexes: number[]): Entry[] {
  return indexes.map(entry);
}

function snapshot(index: number): Snapshot {
  return { meta: { index, term: 1, hash: "", config: { members: [] } }, data: new Uint8Array() };
}

/**
 * A backend that logs every call as a line (`open`, `save 3..5`, `write
 * start`, ...) and does what the test arranges: fail, refuse, or hold a write
 * until released.
 */
class FakeBackend implements StorageBackend {
  readonly names: StorageNames;
  readonly log: string[] = [];
  snapshotIndex: number;
  lastIndex: number;
  /** Thrown by the next write (then cleared). */
  failWrite: Error | null = null;
  /** Thrown by the next `prepare*` (then cleared): a refusal. */
  failPrepare: Error | null = null;
  /** Thrown by the next `open` (then cleared). */
  failOpen: Error | null = null;
  /** When set, every write waits for it. */
  gate: Promise<void> | null = null;
  /** Writes running now; never more than one. */
  #inFlight = 0;

  constructor(bounds = { snapshotIndex: 0, lastIndex: 0 }, names = NAMES) {
    this.names = names;
    this.snapshotIndex = bounds.snapshotIndex;
    this.lastIndex = bounds.lastIndex;
  }

  open(): Promise<PersistedState> {
    this.log.push("open");
    const error = this.failOpen;
    this.failOpen = null;
    return error === null ? Promise.resolve(EMPTY) : Promise.reject(error);
  }

  prepareSave(hardState: HardState | null, entries: readonly Entry[]): () => Promise<void> {
    const range = entries.length === 0 ? "none" : `${entries[0]!.index}..${entries.at(-1)!.index}`;
    this.#prepare(`save ${hardState === null ? "-" : hardState.term} ${range}`);
    return () =>
      this.#write(() => {
        if (entries.length > 0) this.lastIndex = entries.at(-1)!.index;
      });
  }

  prepareSnapshot(snap: Snapshot): () => Promise<void> {
    this.#prepare(`snapshot ${snap.meta.index}`);
    return () =>
      this.#write(() => {
        this.snapshotIndex = snap.meta.index;
        this.lastIndex = Math.max(this.lastIndex, snap.meta.index);
      });
  }

  close(): Promise<void> {
    this.log.push("close");
    return Promise.resolve();
  }

  #prepare(line: string): void {
    this.log.push(line);
    const error = this.failPrepare;
    this.failPrepare = null;
    if (error !== null) throw error;
  }

  async #write(apply: () => void): Promise<void> {
    this.#inFlight++;
    ok(this.#inFlight === 1, "two writes in flight");
    this.log.push("write start");
    try {
      await this.gate;
      const error = this.failWrite;
      this.failWrite = null;
      if (error !== null) throw error;
      apply();
    } finally {
      this.log.push("write end");
      this.#inFlight--;
    }
  }
}

Deno.test("StorageGuard.save() refuses a batch that does not follow what is stored", async (t) => {
  // The log holds a snapshot at 4 and entries 5..7.
  const bounds = { snapshotIndex: 4, lastIndex: 7 };
  const rows: { name: string; entries: Entry[]; want: RegExp | null }[] = [
    { name: "appending after the last entry", entries: batch(8, 9), want: null },
    { name: "replacing from the first entry", entries: batch(5, 6), want: null },
    { name: "replacing the last entry", entries: batch(7), want: null },
    {
      name: "leaving a gap after the last entry",
      entries: batch(9),
      want: /^Cannot save entry 9: the log holds 5\.\.7$/,
    },
    {
      name: "starting at the snapshot",
      entries: batch(4, 5),
      want: /^Cannot save entry 4: the log holds 5\.\.7$/,
    },
    {
      name: "entries that skip an index",
      entries: batch(8, 10),
      want: /^Cannot save entries that are not consecutive at 9$/,
    },
    {
      name: "entries out of order",
      entries: batch(6, 5),
      want: /^Cannot save entries that are not consecutive at 7$/,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const backend = new FakeBackend(bounds);
      const storage = new StorageGuard(backend);
      await storage.load();
      if (row.want === null) {
        await storage.save(null, row.entries);
        strictEqual(backend.log.filter((l) => l === "write end").length, 1);
        return;
      }
      await rejects(storage.save(HARD, row.entries), (error: Error) => {
        ok(error instanceof RangeError, String(error));
        ok(row.want!.test(error.message), error.message);
        return true;
      });
      deepStrictEqual(backend.log, ["open"], "the backend saw no write");
      // A refusal is not a failure: the storage stays usable.
      await storage.save(HARD, batch(8));
      strictEqual(backend.lastIndex, 8);
    });
  }
});

Deno.test("StorageGuard.saveSnapshot() refuses a snapshot older than the stored one", async (t) => {
  const rows = [
    { name: "a newer snapshot", index: 6, refused: false },
    { name: "the same index again", index: 4, refused: false },
    { name: "a snapshot past the log", index: 50, refused: false },
    { name: "an older snapshot", index: 3, refused: true },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const backend = new FakeBackend({ snapshotIndex: 4, lastIndex: 7 });
      const storage = new StorageGuard(backend);
      await storage.load();
      const call = storage.saveSnapshot(snapshot(row.index));
      if (!row.refused) {
        await call;
        strictEqual(backend.snapshotIndex, row.index);
        return;
      }
      await rejects(call, (error: Error) => {
        ok(error instanceof RangeError, String(error));
        strictEqual(
          error.message,
          `Cannot save a snapshot at index ${row.index}: the storage holds one at 4`,
        );
        return true;
      });
      deepStrictEqual(backend.log, ["open"]);
    });
  }
});

Deno.test("StorageGuard: after a failed write every write fails, citing the first error", async (t) => {
  const rows: { name: string; fail: (s: StorageGuard) => Promise<void> }[] = [
    { name: "a failed save", fail: (s) => s.save(HARD, batch(1)) },
    { name: "a failed snapshot", fail: (s) => s.saveSnapshot(snapshot(1)) },
  ];
  const later: { name: string; call: (s: StorageGuard) => Promise<void> }[] = [
    { name: "save", call: (s) => s.save(HARD, batch(1)) },
    { name: "save of nothing", call: (s) => s.save(null, []) },
    { name: "save of a bad batch", call: (s) => s.save(null, batch(9)) },
    { name: "saveSnapshot", call: (s) => s.saveSnapshot(snapshot(2)) },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const backend = new FakeBackend();
      const storage = new StorageGuard(backend);
      await storage.load();
      const first = new Error("disk full");
      backend.failWrite = first;
      await rejects(row.fail(storage), (error) => error === first);
      const writes = backend.log.length;
      for (const { name, call } of later) {
        await rejects(call(storage), (error: Error) => {
          strictEqual(
            error.message,
            "Cannot write to /data/n1 after an earlier write failed",
            name,
          );
          strictEqual(error.cause, first, name);
          return true;
        });
      }
      strictEqual(backend.log.length, writes, "the backend saw no later write");
      // Reading is not writing: load still serves, and close still releases.
      deepStrictEqual(await storage.load(), EMPTY);
      await rejects(storage.save(HARD, []), /earlier write failed/);
      await storage.close();
    });
  }
});

Deno.test("StorageGuard: a refusal while preparing a write leaves the storage usable", async () => {
  const backend = new FakeBackend();
  const storage = new StorageGuard(backend);
  await storage.load();
  const refusal = new RangeError("Cannot save entry 1: its proposer id is too long");
  backend.failPrepare = refusal;
  await rejects(storage.save(HARD, batch(1)), (error) => error === refusal);
  backend.failPrepare = refusal;
  await rejects(storage.saveSnapshot(snapshot(1)), (error) => error === refusal);
  await storage.save(HARD, batch(1));
  await storage.saveSnapshot(snapshot(1));
  deepStrictEqual(backend.log, [
    "open",
    "save 1 1..1",
    "snapshot 1",
    "save 1 1..1",
    "write start",
    "write end",
    "snapshot 1",
    "write start",
    "write end",
  ]);
});

Deno.test("StorageGuard: calls run one at a time, an overlapping one is refused", async (t) => {
  const calls: { name: string; call: (s: StorageGuard) => Promise<unknown>; action: string }[] = [
    { name: "load", call: (s) => s.load(), action: "load" },
    { name: "save", call: (s) => s.save(HARD, batch(2)), action: "save" },
    { name: "saveSnapshot", call: (s) => s.saveSnapshot(snapshot(1)), action: "save a snapshot" },
  ];
  const names: { name: string; names: StorageNames; on: string }[] = [
    { name: "named", names: NAMES, on: " on /data/n1" },
    { name: "unnamed", names: { ...NAMES, busy: null }, on: "" },
  ];
  for (const { name, call, action } of calls) {
    for (const n of names) {
      await t.step(`${name} during a save (${n.name} store)`, async () => {
        const backend = new FakeBackend({ snapshotIndex: 0, lastIndex: 0 }, n.names);
        const storage = new StorageGuard(backend);
        await storage.load();
        let release = () => {};
        backend.gate = new Promise((resolve) => release = resolve);
        const running = storage.save(HARD, batch(1));
        await rejects(
          call(storage),
          new Error(`Cannot ${action} while another call${n.on} is in progress`),
        );
        release();
        await running;
        backend.gate = null;
        await call(storage);
        const log = backend.log.filter((l) => l.startsWith("write") || l === "open");
        // The refused call left no trace; the later one ran after the first ended.
        deepStrictEqual(log.slice(0, 3), ["open", "write start", "write end"]);
      });
    }
  }

  await t.step("calls in sequence run in the order made", async () => {
    const backend = new FakeBackend();
    const storage = new StorageGuard(backend);
    await storage.save({ term: 1, vote: null, commit: 0 }, batch(1, 2));
    await storage.save({ term: 2, vote: null, commit: 0 }, batch(3));
    await storage.saveSnapshot(snapshot(2));
    await storage.save(null, batch(4));
    deepStrictEqual(backend.log.filter((l) => !l.startsWith("write")), [
      "open",
      "save 1 1..2",
      "save 2 3..3",
      "snapshot 2",
      "save - 4..4",
    ]);
  });
});

Deno.test("StorageGuard opens the store on the first call, again on load, and retries a failed open", async () => {
  const backend = new FakeBackend();
  const storage = new StorageGuard(backend);
  backend.failOpen = new Error("locked by pid 42");
  await rejects(storage.save(HARD, []), /locked by pid 42/);
  await storage.save(HARD, []);
  await storage.save(null, []);
  await storage.load();
  await storage.save(null, batch(1));
  deepStrictEqual(backend.log.filter((l) => !l.startsWith("write")), [
    "open",
    "open",
    "save 1 none",
    "open",
    "save - 1..1",
  ]);
});

Deno.test("StorageGuard.save() of nothing writes nothing", async () => {
  const backend = new FakeBackend();
  const storage = new StorageGuard(backend);
  await storage.load();
  await storage.save(null, []);
  deepStrictEqual(backend.log, ["open"]);
});

Deno.test("StorageGuard.close() refuses every later call and releases the backend once", async () => {
  const backend = new FakeBackend();
  const storage = new StorageGuard(backend);
  await storage.load();
  await storage.close();
  await storage.close();
  const calls: [string, () => Promise<unknown>][] = [
    ["load", () => storage.load()],
    ["save", () => storage.save(HARD, batch(1))],
    ["save a snapshot", () => storage.saveSnapshot(snapshot(1))],
  ];
  for (const [action, call] of calls) {
    await rejects(call(), new Error(`Cannot ${action}: /data/n1 is closed`));
  }
  deepStrictEqual(backend.log, ["open", "close"]);
});

/** A backend that also writes snapshots beside the log, each step held until released. */
class BesideBackend extends FakeBackend {
  /** Releases the snapshot's `write` step. */
  releaseWrite!: () => void;
  /** Rejects the snapshot's `write` step. */
  failSnapshotWrite!: (error: Error) => void;
  /** When set, the `install` step waits for it. */
  installGate: Promise<void> | null = null;

  prepareSnapshotBeside(snap: Snapshot) {
    this.log.push(`beside ${snap.meta.index}`);
    const written = new Promise<void>((resolve, reject) => {
      this.releaseWrite = resolve;
      this.failSnapshotWrite = reject;
    });
    return {
      write: async () => {
        this.log.push("snapshot write start");
        await written;
        this.log.push("snapshot write end");
      },
      install: async () => {
        this.log.push("install");
        await this.installGate;
        this.snapshotIndex = snap.meta.index;
        this.log.push("installed");
      },
    };
  }
}

/** A loaded guard over a {@linkcode BesideBackend} whose log ends at `lastIndex`. */
async function loadedBeside(lastIndex: number) {
  const backend = new BesideBackend({ snapshotIndex: 0, lastIndex });
  const storage = new StorageGuard(backend);
  await storage.load();
  return { backend, storage };
}

/** Lets every pending callback run (no time passes). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

Deno.test("StorageGuard.saveSnapshotBeside() lets saves run while the snapshot is written, then installs it alone", async () => {
  const { backend, storage } = await loadedBeside(4);
  const snapshotted = storage.saveSnapshotBeside!(snapshot(4));
  await settle();
  // The snapshot is being written: a save goes through meanwhile.
  await storage.save(HARD, batch(5));
  await storage.save(HARD, batch(6));
  ok(!backend.log.includes("install"));
  // A save in progress when the write ends: the install waits for it, and
  // a save that comes during the install waits for the install.
  let release!: () => void;
  backend.gate = new Promise((resolve) => release = resolve);
  const during = storage.save(HARD, batch(7));
  await settle();
  backend.releaseWrite();
  await settle();
  ok(!backend.log.includes("install"), "installed while a save ran");
  backend.gate = null;
  release();
  await during;
  await snapshotted;
  await storage.save(HARD, batch(8));
  deepStrictEqual(backend.log.slice(1), [
    "beside 4",
    "snapshot write start",
    "save 1 5..5",
    "write start",
    "write end",
    "save 1 6..6",
    "write start",
    "write end",
    "save 1 7..7",
    "write start",
    "snapshot write end",
    "write end",
    "install",
    "installed",
    "save 1 8..8",
    "write start",
    "write end",
  ]);
  strictEqual(backend.snapshotIndex, 4);
});

Deno.test("StorageGuard.saveSnapshotBeside(): a save that comes while the snapshot is installed waits, it is not refused", async () => {
  const { backend, storage } = await loadedBeside(4);
  let release!: () => void;
  backend.installGate = new Promise((resolve) => release = resolve);
  const snapshotted = storage.saveSnapshotBeside!(snapshot(4));
  await settle();
  backend.releaseWrite();
  await settle();
  strictEqual(backend.log.at(-1), "install");
  const save = storage.save(HARD, batch(5));
  await settle();
  strictEqual(backend.log.at(-1), "install", "the save ran during the install");
  release();
  await Promise.all([snapshotted, save]);
  deepStrictEqual(backend.log.slice(-4), ["installed", "save 1 5..5", "write start", "write end"]);
});

Deno.test("StorageGuard.saveSnapshotBeside(): one at a time, no saveSnapshot meanwhile, and a failed write is fail-stop", async () => {
  const { backend, storage } = await loadedBeside(6);
  const first = storage.saveSnapshotBeside!(snapshot(4));
  await settle();
  await rejects(storage.saveSnapshotBeside!(snapshot(5)), /another is written beside the log/);
  await rejects(storage.saveSnapshot(snapshot(5)), /another is written beside the log/);
  backend.failSnapshotWrite(new Error("disk full"));
  await rejects(first, /disk full/);
  await rejects(storage.save(HARD, batch(7)), /after an earlier write failed/);
  ok(!backend.log.includes("install"));
});

Deno.test("StorageGuard offers saveSnapshotBeside() only where the backend can write beside the log", () => {
  strictEqual(new StorageGuard(new FakeBackend()).saveSnapshotBeside, undefined);
  strictEqual(typeof new StorageGuard(new BesideBackend()).saveSnapshotBeside, "function");
});

Deno.test("StorageGuard saves a snapshot in one call as a beside backend's two steps; a backend with neither way is refused", async () => {
  const { backend, storage } = await loadedBeside(4);
  const saved = storage.saveSnapshot(snapshot(4));
  await settle();
  backend.releaseWrite();
  await saved;
  deepStrictEqual(backend.log.slice(1), [
    "beside 4",
    "snapshot write start",
    "snapshot write end",
    "install",
    "installed",
  ]);
  const neither = Object.assign(new FakeBackend(), { prepareSnapshot: undefined });
  throws(() => new StorageGuard(neither), TypeError);
});
