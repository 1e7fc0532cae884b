/**
 * Storage throughput: one `save` of 1, 16 or 256 entries (128 data bytes
 * each) per iteration, on the memory, file and Deno KV (on disk) adapters,
 * next to this machine's raw fsync rate (append 4 KiB, fdatasync) measured in the
 * same run. Each batch size is a group whose baseline is the raw fsync, so
 * Deno's summary reads as "x times the cost of one fsync". When the run ends,
 * a table of appends per second and MB/s follows.
 *
 * Run: `deno bench -A --unstable-kv bench/storage_bench.ts`.
 *
 * @module
 */

import { open } from "node:fs/promises";
import type { Entry } from "../src/core/entry.ts";
import { denoKvStorage } from "../src/storage/deno_kv.ts";
import { fileStorage } from "../src/storage/file/storage.ts";
import { memoryStorage } from "../src/storage/memory.ts";
import type { Storage } from "../src/storage/storage.ts";

const BATCH_SIZES = [1, 16, 256] as const;
const DATA = new Uint8Array(128).fill(7);
/** Saves do not check hashes (load does), so one well-formed hash serves every entry. */
const HASH = "ab".repeat(32);
/** Iterations per bench: bounded, so a fast disk does not make the run long or large. */
const ITERATIONS = 100;

const root = await Deno.makeTempDir({ prefix: "watercraft_bench_" });
const kv = await Deno.openKv(`${root}/kv.sqlite3`);
const fsyncFile = await open(`${root}/fsync.bin`, "w");
const page = new Uint8Array(4096).fill(1);

/** What one bench measured itself: its time, and the entries and bytes it saved. */
interface Tally {
  ms: number;
  saves: number;
  entries: number;
  bytes: number;
}
const tallies = new Map<string, Tally>();

function tally(name: string): Tally {
  let t = tallies.get(name);
  if (t === undefined) {
    t = { ms: 0, saves: 0, entries: 0, bytes: 0 };
    tallies.set(name, t);
  }
  return t;
}

function batchAt(first: number, size: number): Entry[] {
  return Array.from({ length: size }, (_, i) => ({
    index: first + i,
    term: 1,
    kind: "command" as const,
    proposer: "n1",
    timeMs: 0,
    data: DATA,
    hash: HASH,
  }));
}

/** A storage that appends batch after batch; the memory one rewrites one batch so it stays small. */
function appender(storage: Storage, rewrite: boolean): (size: number) => Promise<void> {
  let last = 0;
  let loaded = false;
  return async (size) => {
    if (!loaded) {
      await storage.load();
      loaded = true;
    }
    const first = rewrite ? 1 : last + 1;
    await storage.save(null, batchAt(first, size));
    last = first + size - 1;
  };
}

const adapters: { name: string; save: (size: number) => Promise<void> }[] = [
  { name: "memory", save: appender(memoryStorage(), true) },
  { name: "file", save: appender(fileStorage(`${root}/file`), false) },
  { name: "deno kv (disk)", save: appender(denoKvStorage(kv), false) },
];

let fsyncAt = 0;

/** Appends, as a log does: growing the file costs more than overwriting a page. */
async function rawFsync(): Promise<void> {
  await fsyncFile.write(page, 0, page.length, fsyncAt);
  fsyncAt += page.length;
  await fsyncFile.datasync();
}

for (const size of BATCH_SIZES) {
  const group = `batch of ${size}`;
  Deno.bench({
    name: `raw fsync (append 4 KiB + fdatasync) [${group}]`,
    group,
    baseline: true,
    n: ITERATIONS,
    warmup: 5,
    async fn() {
      const t = tally("raw fsync");
      const started = performance.now();
      await rawFsync();
      t.ms += performance.now() - started;
      t.saves++;
      t.bytes += page.length;
    },
  });
  for (const adapter of adapters) {
    Deno.bench({
      name: `${adapter.name}: save ${size}`,
      group,
      n: ITERATIONS,
      warmup: 5,
      async fn() {
        const t = tally(`${adapter.name}: save ${size}`);
        const started = performance.now();
        await adapter.save(size);
        t.ms += performance.now() - started;
        t.saves++;
        t.entries += size;
        t.bytes += size * DATA.length;
      },
    });
  }
}

globalThis.addEventListener("unload", () => {
  const fsync = tallies.get("raw fsync");
  const fsyncPerS = fsync === undefined ? NaN : (fsync.saves * 1000) / fsync.ms;
  const rows = [...tallies].map(([name, t]) => {
    const perS = (n: number) => (n * 1000) / t.ms;
    return {
      bench: name,
      "saves/s": Math.round(perS(t.saves)),
      "appends/s": Math.round(perS(t.entries)),
      "data MB/s": Number((perS(t.bytes) / 1e6).toFixed(2)),
      "saves per fsync time": Number((perS(t.saves) / fsyncPerS).toFixed(2)),
    };
  });
  console.log(`\nraw fsync: ${Math.round(fsyncPerS)}/s on ${root}`);
  console.table(rows);
  kv.close();
  Deno.removeSync(root, { recursive: true });
});
