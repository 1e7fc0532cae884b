/**
 * Tests for `fileStorage` (src/storage/file/storage.ts): the conformance suite with
 * default and tiny segments, the crash tests, the lock, segment rotation and
 * compaction, one fsync (or one O_DSYNC write) per save, and the hash-chain check on load.
 *
 * @module
 */

import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { createEntry, type Entry, GENESIS_HASH } from "../../../src/core/entry.ts";
import type { HardState } from "../../../src/core/types.ts";
import { LOCK_FILE } from "../../../src/storage/file/lock.ts";
import { encodeSnapshot } from "../../../src/storage/file/records.ts";
import {
  type FileSystem,
  nodeFileSystem,
  type OpenFile,
} from "../../../src/storage/file/file_system.ts";
import { fileStorage, type FileStorageOptions } from "../../../src/storage/file/storage.ts";
import { openedWithDsync } from "./fd_flags.ts";
import {
  CorruptLogError,
  type PersistedState,
  type Storage,
} from "../../../src/storage/storage.ts";
import { type OpenedStorage, runStorageConformance } from "../conformance.ts";
import { runFileCrashTests } from "../crash.ts";

/** Opens a file storage in a new temporary directory, with a crash that copies the directory. */
async function openFile(segmentBytes?: number): Promise<OpenedStorage> {
  const dirs = [await Deno.makeTempDir({ prefix: "watercraft_file_" })];
  const options: FileStorageOptions = {
    onWarning: () => {},
    ...(segmentBytes === undefined ? {} : { segmentBytes }),
  };
  let current = fileStorage(dirs[0]!, options);
  return {
    storage: current,
    reopen: () => {
      current = fileStorage(dirs.at(-1)!, options);
      return Promise.resolve(current);
    },
    crash: {
      // What a killed process leaves is what its resolved writes put in the
      // files (LOCK included, with this pid): copy that, then let go of the
      // abandoned storage's handles.
      async crashAndReopen(): Promise<Storage> {
        const copy = await Deno.makeTempDir({ prefix: "watercraft_file_crash_" });
        for await (const e of Deno.readDir(dirs.at(-1)!)) {
          await Deno.copyFile(`${dirs.at(-1)}/${e.name}`, `${copy}/${e.name}`);
        }
        await current.close();
        dirs.push(copy);
        current = fileStorage(copy, options);
        return current;
      },
    },
    async cleanup() {
      await current.close();
      for (const dir of dirs) await Deno.remove(dir, { recursive: true });
    },
  };
}

/** What a fresh file storage on `dir` loads (it is closed again). */
async function reload(dir: string, options: FileStorageOptions = {}): Promise<PersistedState> {
  const again = fileStorage(dir, options);
  try {
    return await again.load();
  } finally {
    await again.close();
  }
}

/** A file storage on `dir` holding `count` entries, saved in one batch with `hard`. */
async function savedLog(
  dir: string,
  count: number,
  hard: HardState,
): Promise<{ storage: Storage; log: Entry[] }> {
  const storage = fileStorage(dir);
  await storage.load();
  const log = entries(count);
  await storage.save(hard, log);
  return { storage, log };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "watercraft_file_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Entries following `after`; `tag` changes term and data, to make a conflicting branch. */
function entries(count: number, bytes = 100, after?: Entry, tag = 0): Entry[] {
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

async function segmentFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".wal")) names.push(e.name);
  return names.sort();
}

runStorageConformance("fileStorage", () => openFile());
runStorageConformance("fileStorage with 4 KiB segments", () => openFile(4096));
runFileCrashTests("fileStorage");

Deno.test("fileStorage() refuses a directory another storage has open, until it closes", () =>
  withDir(async (dir) => {
    const first = fileStorage(dir);
    await first.load();
    const second = fileStorage(dir);
    await rejects(second.load(), (error: Error) => {
      ok(error.message.includes(dir), error.message);
      ok(/Cannot open storage/.test(error.message), error.message);
      return true;
    });
    await first.close();
    await second.load();
    await second.close();
  }));

Deno.test("fileStorage() refuses a lock held by another running process", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/${LOCK_FILE}`, `${Deno.ppid}\n`);
    await rejects(fileStorage(dir).load(), (error: Error) => {
      ok(error.message.includes(dir) && error.message.includes(String(Deno.ppid)), error.message);
      return true;
    });
  }));

Deno.test("fileStorage() takes over the lock of a process that no longer runs", () =>
  withDir(async (dir) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", ""],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await child.status;
    for (const pid of [child.pid, Deno.pid]) {
      // Deno.pid: a lock this very pid left in an earlier life (pid 1 in a container).
      await Deno.writeTextFile(`${dir}/${LOCK_FILE}`, `${pid}\n`);
      const warnings: string[] = [];
      const storage = fileStorage(dir, { onWarning: (w) => warnings.push(w) });
      await storage.load();
      strictEqual((await Deno.readTextFile(`${dir}/${LOCK_FILE}`)).trim(), String(Deno.pid));
      ok(warnings.some((w) => w.includes("stale lock")), `pid ${pid}: ${warnings}`);
      await storage.close();
      await rejects(Deno.stat(`${dir}/${LOCK_FILE}`), Deno.errors.NotFound);
    }
  }));

Deno.test("fileStorage() rotates segments and saveSnapshot() deletes the covered ones", () =>
  withDir(async (dir) => {
    const storage = fileStorage(dir, { segmentBytes: 1024 });
    await storage.load();
    const log = entries(60);
    for (const e of log) await storage.save({ term: 1, vote: "n1", commit: e.index - 1 }, [e]);
    const before = await segmentFiles(dir);
    ok(before.length >= 6, `only ${before.length} segments`);
    await storage.saveSnapshot({
      meta: { index: 45, term: 1, hash: log[44]!.hash, config: { members: [] } },
      data: new Uint8Array([1]),
    });
    const after = await segmentFiles(dir);
    ok(after.length < before.length / 2, `${after.length} of ${before.length} segments remain`);
    deepStrictEqual(after, before.slice(before.length - after.length), "the newest remain");
    await storage.close();
    const state = await reload(dir, { segmentBytes: 1024 });
    deepStrictEqual(state.entries, log.slice(45));
    deepStrictEqual(state.hardState, { term: 1, vote: "n1", commit: 59 });
  }));

Deno.test("saveSnapshotBeside() writes the snapshot while saves go on, then deletes the covered segments", () =>
  withDir(async (dir) => {
    const storage = fileStorage(dir, { segmentBytes: 1024 });
    await storage.load();
    const log = entries(80);
    const hard = (e: Entry) => ({ term: 1, vote: "n1", commit: e.index - 1 });
    for (const e of log.slice(0, 60)) await storage.save(hard(e), [e]);
    const before = await segmentFiles(dir);
    const snapshotted = storage.saveSnapshotBeside!({
      meta: { index: 45, term: 1, hash: log[44]!.hash, config: { members: [] } },
      data: new Uint8Array([1]),
    });
    // The log keeps growing, one save at a time, while the snapshot is written.
    const saved = (async () => {
      for (const e of log.slice(60)) await storage.save(hard(e), [e]);
    })();
    await Promise.all([snapshotted, saved]);
    const after = await segmentFiles(dir);
    ok(!after.includes(before[0]!), "the oldest segment is still there");
    await storage.close();
    const state = await reload(dir, { segmentBytes: 1024 });
    strictEqual(state.snapshot?.meta.index, 45);
    deepStrictEqual(state.entries, log.slice(45));
    deepStrictEqual(state.hardState, { term: 1, vote: "n1", commit: 79 });
  }));

Deno.test("a snapshot of several megabytes is written a slice at a time, as the one-record encoding", () =>
  withDir(async (dir) => {
    const { storage, log } = await savedLog(dir, 3, { term: 1, vote: "n1", commit: 3 });
    const data = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 7919) % 251);
    const snapshot = {
      meta: { index: 3, term: 1, hash: log[2]!.hash, config: { members: [] } },
      data,
    };
    await storage.saveSnapshot(snapshot);
    await storage.close();
    deepStrictEqual(await Deno.readFile(`${dir}/snapshot.bin`), encodeSnapshot(snapshot));
    deepStrictEqual((await reload(dir)).snapshot, snapshot);
  }));

Deno.test("saveSnapshot() past every entry starts a new segment that keeps the hard state", () =>
  withDir(async (dir) => {
    const { storage, log } = await savedLog(dir, 5, { term: 3, vote: "n2", commit: 5 });
    const hash = log[4]!.hash;
    await storage.saveSnapshot({
      meta: { index: 5, term: 1, hash, config: { members: [] } },
      data: new Uint8Array(),
    });
    deepStrictEqual(await segmentFiles(dir), ["log-0000000000000002.wal"]);
    await storage.close();
    const state = await reload(dir);
    deepStrictEqual(state.hardState, { term: 3, vote: "n2", commit: 5 });
    deepStrictEqual(state.entries, []);
  }));

Deno.test("save() fsyncs the log once per call", () =>
  withDir(async (dir) => {
    const synced: string[] = [];
    const storage = fileStorage(dir, { segmentBytes: 4096, onSync: (p) => synced.push(p) });
    await storage.load();
    ok(synced.includes(dir), `load() syncs the directory: ${synced}`);
    synced.length = 0;
    const log = entries(20, 300);
    await storage.save({ term: 1, vote: null, commit: 0 }, log.slice(0, 1));
    strictEqual(synced.length, 2, "the first save creates a segment: file and directory");
    let rotations = 0;
    for (const e of log.slice(1)) {
      const segments = (await segmentFiles(dir)).length;
      synced.length = 0;
      await storage.save(null, [e]);
      const rotated = (await segmentFiles(dir)).length > segments;
      if (rotated) rotations++;
      strictEqual(synced.length, rotated ? 2 : 1, `entry ${e.index}: ${synced}`);
      ok(synced[0]!.endsWith(".wal"), synced[0]);
    }
    ok(rotations > 0, "no save rotated");
    synced.length = 0;
    await storage.save(null, []);
    deepStrictEqual(synced, [], "an empty save writes nothing");
    await storage.close();
  }));

/**
 * The real file system, counting the writes and syncs made through the
 * files it opens, and telling whether each file was opened with `O_DSYNC`
 * (read back from `/proc/self/fdinfo`); `synced: false` drops `openSynced`,
 * as on a platform without the flag.
 */
function countingFileSystem(synced: boolean) {
  const { openSynced, ...real } = nodeFileSystem({ synchronizedWrites: true });
  const counts = { writes: 0, syncs: 0, onThread: 0, writesOnThread: 0, dsyncFiles: 0, files: 0 };
  const counted = (open: Promise<OpenFile>): Promise<OpenFile> =>
    open.then((file) => {
      counts.files++;
      if (openedWithDsync("self", (file as unknown as { fd: number }).fd)) counts.dsyncFiles++;
      return {
        write: (...args) => (counts.writes++, file.write(...args)),
        ...(file.writeOnThread === undefined ? {} : {
          writeOnThread: (...args) => (counts.writesOnThread++, file.writeOnThread!(...args)),
        }),
        sync: () => (counts.syncs++, file.sync()),
        datasync: () => (counts.syncs++, file.datasync()),
        datasyncOnThread: () => (counts.onThread++, file.datasyncOnThread!()),
        truncate: (length) => file.truncate(length),
        close: () => file.close(),
      };
    });
  const fs: FileSystem = {
    ...real,
    open: (path, flags) => counted(real.open(path, flags)),
    ...(synced ? { openSynced: (path, flags) => counted(openSynced!(path, flags)) } : {}),
  };
  return { fs, counts };
}

/** A file storage on a counting file system, with one entry of six saved. */
async function countedStorage(dir: string, synced: boolean) {
  const { fs, counts } = countingFileSystem(synced);
  const at = `${dir}/${synced}`;
  const storage = fileStorage(at, { fs });
  await storage.load();
  const log = entries(6);
  await storage.save({ term: 1, vote: null, commit: 0 }, log.slice(0, 1));
  return { at, storage, counts, log };
}

Deno.test({
  name: "save() is one O_DSYNC write where the file system has them, else a write and an fdatasync",
  ignore: Deno.build.os !== "linux",
  fn: () =>
    withDir(async (dir) => {
      ok(
        nodeFileSystem({ synchronizedWrites: true }).openSynced !== undefined,
        "Linux has O_DSYNC",
      );
      strictEqual(nodeFileSystem().openSynced, undefined, "not by default on Deno");
      for (const synced of [true, false]) {
        const { at, storage, counts, log } = await countedStorage(dir, synced);
        deepStrictEqual(
          { files: counts.files, dsyncFiles: counts.dsyncFiles },
          { files: 1, dsyncFiles: synced ? 1 : 0 },
          "the active segment, with O_DSYNC only from openSynced",
        );
        const before = { ...counts };
        for (const e of log.slice(1)) await storage.save(null, [e]);
        deepStrictEqual(
          { writes: counts.writes - before.writes, syncs: counts.syncs - before.syncs },
          { writes: 5, syncs: synced ? 0 : 5 },
        );
        await storage.close();
        deepStrictEqual((await reload(at)).entries, log);
      }
    }),
});

Deno.test({
  name:
    "save() with waitOnThread writes and makes an fdatasync on the calling thread, and is as durable",
  ignore: Deno.build.os !== "linux",
  fn: () =>
    withDir(async (dir) => {
      for (const synced of [true, false]) {
        const { at, storage, counts, log } = await countedStorage(dir, synced);
        const before = { ...counts };
        for (const e of log.slice(1)) await storage.save(null, [e], { waitOnThread: true });
        deepStrictEqual(
          {
            writes: counts.writes - before.writes,
            writesOnThread: counts.writesOnThread - before.writesOnThread,
            syncs: counts.syncs - before.syncs,
            onThread: counts.onThread - before.onThread,
          },
          // An O_DSYNC write is durable as it returns: nothing to wait for,
          // and it stays off the thread.
          synced
            ? { writes: 5, writesOnThread: 0, syncs: 0, onThread: 0 }
            : { writes: 0, writesOnThread: 5, syncs: 0, onThread: 5 },
        );
        await storage.close();
        deepStrictEqual((await reload(at)).entries, log);
      }
    }),
});

Deno.test("load() rejects entries that do not form a hash chain, naming the index", () =>
  withDir(async (dir) => {
    const storage = fileStorage(dir);
    await storage.load();
    const log = entries(5);
    const forged = { ...log[2]!, hash: "0".repeat(63) + "1" };
    await storage.save(null, [...log.slice(0, 2), forged, ...entries(2, 100, forged)]);
    await storage.close();
    await rejects(fileStorage(dir).load(), (error: unknown) => {
      ok(error instanceof CorruptLogError, String(error));
      ok(error.message.includes("entry 3"), error.message);
      return true;
    });
  }));

Deno.test("fileStorage() refuses calls after close() and overlapping calls", () =>
  withDir(async (dir) => {
    const storage = fileStorage(dir);
    await storage.load();
    const a = storage.save({ term: 1, vote: null, commit: 0 }, []);
    await rejects(storage.save({ term: 2, vote: null, commit: 0 }, []), /in progress/);
    await a;
    await storage.close();
    await rejects(storage.load(), /closed/);
    await rejects(storage.save(null, entries(1)), /closed/);
  }));

Deno.test("fileStorage() rejects a segment size that is not a positive integer", () => {
  for (const segmentBytes of [0, -1, 1.5, NaN]) {
    try {
      fileStorage("unused", { segmentBytes });
      ok(false, `accepted ${segmentBytes}`);
    } catch (error) {
      ok(error instanceof RangeError, String(error));
    }
  }
});

Deno.test("load() after a crash between writing a snapshot and deleting segments", async (t) => {
  const local = entries(10, 300);
  const other = entries(4, 300, local[3], 1);
  const rows = [
    { name: "a snapshot the log continues", at: local[4]!, want: local.slice(5) },
    { name: "a snapshot the log does not continue", at: other[3]!, want: [] },
  ];
  for (const row of rows) {
    await t.step(row.name, () =>
      withDir(async (dir) => {
        const storage = fileStorage(`${dir}/live`, { segmentBytes: 1024 });
        await storage.load();
        for (const e of local) await storage.save({ term: 1, vote: "n1", commit: 0 }, [e]);
        // The crashed copy: every segment as before the snapshot...
        await Deno.mkdir(`${dir}/crashed`);
        for (const name of await segmentFiles(`${dir}/live`)) {
          await Deno.copyFile(`${dir}/live/${name}`, `${dir}/crashed/${name}`);
        }
        const meta = {
          index: row.at.index,
          term: row.at.term,
          hash: row.at.hash,
          config: { members: [] },
        };
        await storage.saveSnapshot({ meta, data: new Uint8Array([4, 2]) });
        await storage.close();
        // ...and the snapshot file, renamed into place before the crash.
        await Deno.copyFile(`${dir}/live/snapshot.bin`, `${dir}/crashed/snapshot.bin`);
        for (const sub of ["live", "crashed"]) {
          const state = await reload(`${dir}/${sub}`);
          deepStrictEqual(state.snapshot?.meta, meta, sub);
          deepStrictEqual(state.entries, row.want, sub);
        }
      }));
  }
});
