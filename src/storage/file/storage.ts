/**
 * Storage in a directory of files: an append-only, segmented, checksummed
 * log plus one snapshot file, written through a {@linkcode FileSystem}:
 * `node:fs/promises` by default, so that the same code runs on Deno, Bun and
 * Node, or a simulated disk in tests.
 *
 * This file holds the adapter and its write path. The directory's files are
 * described in `segments.ts`, the record format in `records.ts`, recovery in
 * `replay.ts`, the file operations in `file_system.ts` and the pid lock in
 * `lock.ts`.
 *
 * ## Durability
 *
 * One `save` is one record and one `fdatasync` of the active segment (group
 * commit), or one write alone where the file system opens segments for
 * synchronized writes (`O_DSYNC`: Node and Bun): when it resolves, the whole
 * batch is on disk; a crash before that leaves at most a torn final record,
 * which load discards, so a batch is all or nothing. When a save starts a
 * new segment (the active one reached `segmentBytes`), the segment's header
 * and the batch go out in one write, followed by an fsync of the file and one
 * of the directory, since a new file's name is only durable once its
 * directory is. `saveSnapshot` fsyncs the snapshot file and the directory,
 * then deletes the oldest segments that hold only entries at or below the
 * snapshot (oldest first, with a directory fsync after each, so that what
 * survives a crash is always a run of consecutive segments); when the
 * entries do not continue the snapshot it starts a fresh segment and deletes
 * all older ones.
 *
 * Every load makes durable what it returns before it returns it: it cuts the
 * active segment again where its last intact record ends, writes that
 * segment's last write again and fsyncs every file it read, the directory
 * and the directory's parents (so that the directory's own name survives a
 * power loss). An earlier process may have died before its fsync,
 * or seen its fsync fail, leaving those bytes in the operating system's cache
 * only, and the node acts on what load returns as if it were durable.
 *
 * A failed write is fail-stop: the {@linkcode StorageGuard} refuses every
 * later write, because after a failed fsync Linux may already have dropped
 * the unsynced data while reads still show it (PostgreSQL's "fsyncgate"), so
 * no retry in this process can know what is on the disk. A restart re-reads
 * the files and, as above, writes the uncertain tail again.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { type Entry, GENESIS_HASH } from "../../core/entry.ts";
import type { HardState } from "../../core/types.ts";
import {
  type PersistedState,
  type SaveOptions,
  type Snapshot,
  type SnapshotSteps,
  type Storage,
  type StorageBackend,
  StorageGuard,
  type StorageNames,
} from "../storage.ts";
import { type FileSystem, nodeFileSystem, type OpenFile, type OpenFlags } from "./file_system.ts";
import {
  encodeBatch,
  encodeSegmentHeader,
  encodeSnapshotHead,
  RECORD_HEADER_BYTES,
  sealHeader,
} from "./records.ts";
import { crc32c } from "./crc.ts";
import { replayDir, type Replayed } from "./replay.ts";
import {
  type Segment,
  segmentName,
  type Settings,
  SNAPSHOT_FILE,
  SNAPSHOT_TMP_FILE,
  syncDir,
  syncDirAndAncestors,
  syncFile,
  writeAll,
} from "./segments.ts";

/** Options of {@linkcode fileStorage}. */
export interface FileStorageOptions {
  /**
   * A segment is closed, and the next save starts a new one, once appending
   * would take it past this many bytes. A single batch larger than this gets a
   * segment of its own. Default {@linkcode SEGMENT_BYTES_DEFAULT}.
   */
  readonly segmentBytes?: number;
  /**
   * Told about recoverable surprises: a torn tail discarded, a stale lock
   * taken over. Default `console.warn`.
   */
  readonly onWarning?: (message: string) => void;
  /**
   * Called after every fsync with the path of the file or directory synced;
   * for tests and metrics.
   */
  readonly onSync?: (path: string) => void;
  /**
   * The file system the directory lives on. Default {@linkcode nodeFileSystem}
   * (`node:fs/promises`); tests pass a simulated disk.
   */
  readonly fs?: FileSystem;
}

/** A snapshot's record: its first bytes (header to fill in) and its data. */
type SnapshotRecord = ReturnType<typeof encodeSnapshotHead>;

/** How much of a snapshot's data is checksummed and written at a time. */
const SNAPSHOT_SLICE_BYTES = 1024 * 1024;

/** Default segment size: 64 MiB. */
export const SEGMENT_BYTES_DEFAULT: number = 64 * 1024 * 1024;

/**
 * Creates a storage in directory `dir` (created if missing): see the module
 * doc for what is durable when, and `records.ts` for the format. Nothing is
 * touched until the first call; `load` (or the first write) takes the lock
 * and replays the log.
 *
 * @param dir The directory; one node per directory.
 * @param options Segment size, warning and fsync hooks.
 * @returns The storage.
 * @throws {RangeError} When `segmentBytes` is not a positive integer.
 *
 * @example Save, close, reopen
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { fileStorage } from "./storage.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const storage = fileStorage(dir);
 * await storage.load();
 * await storage.save({ term: 3, vote: "n2", commit: 0 }, []);
 * await storage.close();
 *
 * const again = fileStorage(dir);
 * strictEqual((await again.load()).hardState.vote, "n2");
 * await again.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function fileStorage(dir: string, options: FileStorageOptions = {}): Storage {
  const segmentBytes = options.segmentBytes ?? SEGMENT_BYTES_DEFAULT;
  if (!Number.isSafeInteger(segmentBytes) || segmentBytes < 1) {
    throw new RangeError(`segmentBytes must be a positive integer: ${segmentBytes}`);
  }
  return new StorageGuard(
    new FileBackend({
      dir: resolve(dir),
      fs: options.fs ?? nodeFileSystem(),
      segmentBytes,
      warn: options.onWarning ?? ((message) => console.warn(message)),
      synced: options.onSync ?? (() => {}),
    }),
  );
}

/** How the files are read and written; the {@linkcode StorageGuard} keeps the call protocol. */
class FileBackend implements StorageBackend {
  readonly names: StorageNames;
  readonly #dir: string;
  readonly #settings: Settings;
  /** Whether this instance holds the directory's lock. */
  #locked = false;

  #segments: Segment[] = [];
  #active: OpenFile | null = null;
  /** Whether the active segment's writes are durable as they resolve (`openSynced`). */
  readonly #activeSynced: boolean;
  #hard: HardState = { term: 0, vote: null, commit: 0 };
  #snapIndex = 0;
  #snapHash = GENESIS_HASH;
  /** Hashes of the entries `first..last`, to decide what a snapshot keeps. */
  #hashes: string[] = [];

  constructor(settings: Settings) {
    this.#dir = settings.dir;
    this.#settings = settings;
    this.#activeSynced = settings.fs.openSynced !== undefined;
    this.names = { store: settings.dir, target: `to ${settings.dir}`, busy: settings.dir };
  }

  get snapshotIndex(): number {
    return this.#snapIndex;
  }

  get lastIndex(): number {
    return this.#snapIndex + this.#hashes.length;
  }

  /** Takes the lock (if not yet held) and replays the files. */
  async open(): Promise<PersistedState> {
    const fresh = !this.#locked;
    await this.#lock();
    try {
      return await this.#replay();
    } catch (error) {
      // A node that fails to start may be retried in this process: do not keep the lock.
      if (fresh) await this.close();
      throw error;
    }
  }

  prepareSave(
    hardState: HardState | null,
    entries: readonly Entry[],
    options?: SaveOptions,
  ): () => Promise<void> {
    const record = encodeBatch(hardState, entries);
    return () => this.#append(record, hardState, entries, options?.waitOnThread === true);
  }

  prepareSnapshotBeside(snapshot: Snapshot): SnapshotSteps {
    const record = encodeSnapshotHead(snapshot);
    // The snapshot file is no file a save touches: it is written while the
    // log grows. Until the old segments go, a restart finds the new snapshot
    // and entries it covers, which the replay skips, as after a crash
    // between the two steps.
    return {
      write: () => this.#writeSnapshotFile(record),
      install: () => this.#dropCovered(snapshot),
    };
  }

  /** Closes the active segment and gives up the lock. */
  async close(): Promise<void> {
    this.#locked = false;
    const active = this.#active;
    this.#active = null;
    await active?.close();
    await this.#settings.fs.unlock(this.#dir);
  }

  // ------------------------------------------------------------- plumbing

  /** Takes the lock unless this instance already holds it (a second `load`). */
  async #lock(): Promise<void> {
    if (this.#locked) return;
    await this.#settings.fs.mkdir(this.#dir);
    await this.#settings.fs.lock(this.#dir, this.#settings.warn);
    this.#locked = true;
  }

  /** Replays the directory into this instance's view of the log; reopens the active segment. */
  async #replay(): Promise<PersistedState> {
    const active = this.#active;
    this.#active = null;
    await active?.close();
    const { state, segments, lastWrite } = await replayDir(this.#settings);
    this.#segments = segments;
    this.#hard = state.hardState;
    this.#snapIndex = state.snapshot?.meta.index ?? 0;
    this.#snapHash = state.snapshot?.meta.hash ?? GENESIS_HASH;
    this.#hashes = state.entries.map((e) => e.hash);
    const last = segments.at(-1);
    if (last !== undefined) this.#active = await this.#openActive(last.path, "r+");
    await this.#syncReplayed(state.snapshot !== null, lastWrite);
    return state;
  }

  /**
   * Makes durable what the replay read. What a load returns, the node treats
   * as durable (it may tell a leader it holds those entries, or act on that
   * vote), but an earlier process may have written it and died before its
   * fsync, or seen its fsync fail: the bytes may sit only in the operating
   * system's cache, and a power loss after this start would take them. After
   * a failed fsync, Linux marks the cached pages clean although the disk may
   * not hold them (PostgreSQL's "fsyncgate"), so a second fsync would not
   * write them: the active segment's last write, the only one a fail-stop
   * storage can have left unsynced, is written again before its fsync. The
   * same goes for the cut of a torn tail that an earlier load made and whose
   * fsync failed: the file reads as cut, but the disk may still hold the torn
   * record, which a power loss would bring back once a later segment follows
   * this one (where a torn record is corruption, not a tail): so the active
   * segment is cut again, to the length replayed. One fsync per file at
   * start-up, next to reading every byte of every file, costs little.
   */
  async #syncReplayed(hasSnapshot: boolean, lastWrite: Replayed["lastWrite"]): Promise<void> {
    const settings = this.#settings;
    const activeSegment = this.#segments.at(-1);
    if (this.#active !== null && activeSegment !== undefined) {
      await this.#active.truncate(activeSegment.bytes);
    }
    if (this.#active !== null && lastWrite !== null && lastWrite.bytes.length > 0) {
      await writeAll(this.#active, lastWrite.bytes, { position: lastWrite.position });
    }
    const paths = this.#segments.map((s) => s.path);
    if (hasSnapshot) paths.push(join(this.#dir, SNAPSHOT_FILE));
    for (const path of paths) {
      const active = path === this.#segments.at(-1)?.path ? this.#active : null;
      const handle = active ?? await settings.fs.open(path, "r+");
      try {
        await syncFile(settings, { handle, path });
      } finally {
        if (handle !== active) await handle.close();
      }
    }
    await syncDirAndAncestors(settings);
  }

  // ---------------------------------------------------------------- write

  /** Opens a segment to append to: for synchronized writes where the file system can. */
  #openActive(path: string, flags: OpenFlags): Promise<OpenFile> {
    const fs = this.#settings.fs;
    return this.#activeSynced ? fs.openSynced!(path, flags) : fs.open(path, flags);
  }

  #first(): number {
    return this.#snapIndex + 1;
  }

  async #append(
    record: Uint8Array,
    hard: HardState | null,
    entries: readonly Entry[],
    onThread: boolean,
  ): Promise<void> {
    let segment = this.#segments.at(-1);
    if (
      segment === undefined || this.#active === null ||
      (segment.hasBatch && segment.bytes + record.length > this.#settings.segmentBytes)
    ) {
      segment = await this.#rotate(record);
    } else {
      // A save that waits for the disk on this thread writes on it too.
      await writeAll(this.#active, record, { position: segment.bytes, onThread });
      const { path } = segment;
      // A synchronized write is durable already: only the report is left.
      if (this.#activeSynced) this.#settings.synced(path);
      else {
        await syncFile(this.#settings, { handle: this.#active, path, dataOnly: true, onThread });
      }
      segment.bytes += record.length;
    }
    segment.hasBatch = true;
    const head = entries[0];
    if (head !== undefined) {
      this.#hashes.length = head.index - this.#first();
      for (const e of entries) this.#hashes.push(e.hash);
      segment.maxIndex = Math.max(segment.maxIndex, entries.at(-1)!.index);
    }
    if (hard !== null) this.#hard = hard;
  }

  /**
   * Starts the next segment with its header (restating the hard state) and
   * `record` in one write, then fsyncs it and the directory.
   */
  async #rotate(record: Uint8Array | null): Promise<Segment> {
    const seq = (this.#segments.at(-1)?.seq ?? 0) + 1;
    const path = join(this.#dir, segmentName(seq));
    const header = encodeSegmentHeader(seq, this.#hard);
    const bytes = new Uint8Array(header.length + (record?.length ?? 0));
    bytes.set(header);
    if (record !== null) bytes.set(record, header.length);
    const handle = await this.#openActive(path, "wx");
    try {
      await writeAll(handle, bytes);
      await syncFile(this.#settings, { handle, path });
      await syncDir(this.#settings);
    } catch (error) {
      await handle.close();
      throw error;
    }
    const previous = this.#active;
    this.#active = handle;
    await previous?.close();
    const segment: Segment = { seq, path, bytes: bytes.length, maxIndex: 0, hasBatch: false };
    this.#segments.push(segment);
    return segment;
  }

  /**
   * Moves this view of the log past a snapshot whose file is durable, and
   * deletes the segments it makes useless: those holding only entries it
   * covers, or every one when the entries do not continue it.
   */
  async #dropCovered(snapshot: Snapshot): Promise<void> {
    const { index, hash } = snapshot.meta;
    const hashAt = index === this.#snapIndex ? this.#snapHash : this.#hashes[index - this.#first()];
    const continues = hashAt === hash;
    this.#hashes = continues ? this.#hashes.slice(index - this.#snapIndex) : [];
    this.#snapIndex = index;
    this.#snapHash = hash;
    // Only a prefix of segments may go: a later segment's truncation may
    // depend on an earlier one's entries being there to cut.
    let drop = 0;
    if (continues) {
      while (drop < this.#segments.length && this.#segments[drop]!.maxIndex <= index) drop++;
    } else {
      drop = this.#segments.length;
    }
    if (drop === 0) return;
    // The active segment is among them: start a new one to carry the hard state.
    if (drop === this.#segments.length) await this.#rotate(null);
    for (const segment of this.#segments.slice(0, drop)) {
      await this.#settings.fs.unlink(segment.path);
      await syncDir(this.#settings);
    }
    this.#segments = this.#segments.slice(drop);
  }

  /**
   * Writes the snapshot to a temporary file, fsyncs it, renames it into place
   * and fsyncs the directory, so that a crash leaves the old or the new one.
   */
  async #writeSnapshotFile(record: SnapshotRecord): Promise<void> {
    const tmp = join(this.#dir, SNAPSHOT_TMP_FILE);
    const handle = await this.#settings.fs.open(tmp, "w");
    try {
      // The data goes out a slice at a time, each checksummed just before
      // its write, and the header last: a snapshot of many megabytes never
      // holds the event loop for longer than one slice's checksum.
      const { head, data } = record;
      await writeAll(handle, head);
      let crc = crc32c(head, RECORD_HEADER_BYTES);
      for (let from = 0; from < data.length; from += SNAPSHOT_SLICE_BYTES) {
        const slice = data.subarray(from, Math.min(from + SNAPSHOT_SLICE_BYTES, data.length));
        crc = crc32c(slice, 0, slice.length, crc);
        await writeAll(handle, slice, { position: head.length + from });
      }
      sealHeader(head, head.length - RECORD_HEADER_BYTES + data.length, crc);
      await writeAll(handle, head.subarray(0, RECORD_HEADER_BYTES));
      await syncFile(this.#settings, { handle, path: tmp });
    } finally {
      await handle.close();
    }
    await this.#settings.fs.rename(tmp, join(this.#dir, SNAPSHOT_FILE));
    await syncDir(this.#settings);
  }
}
