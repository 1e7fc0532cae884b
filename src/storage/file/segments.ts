/**
 * The files of a file storage's directory and the few operations every part
 * of the storage performs on them: naming, writing all of a buffer, and
 * fsyncing a file or the directory.
 *
 * A directory holds:
 *
 * - `log-<seq>.wal`, where `<seq>` is a 16-digit decimal counting up from 1:
 *   the log segments. Sequence numbers of the segments present are
 *   consecutive; the highest is the active segment, the only one appended to.
 * - `snapshot.bin`: the latest snapshot, one record. It is written as
 *   `snapshot.bin.tmp`, fsynced, renamed into place and the directory fsynced,
 *   so it is either the old or the new snapshot, never a mix. A leftover
 *   `.tmp` file is deleted on load.
 * - `LOCK`: the decimal pid of the process that has the directory open.
 *
 * @module
 */

import { dirname } from "node:path";
import { CorruptLogError } from "../storage.ts";
import type { FileSystem, OpenFile } from "./file_system.ts";

/** Name of the snapshot file inside the directory. */
export const SNAPSHOT_FILE = "snapshot.bin";
/** Name under which the next snapshot is written before it is renamed into place. */
export const SNAPSHOT_TMP_FILE = `${SNAPSHOT_FILE}.tmp`;

const SEGMENT_NAME = /^log-(\d{16})\.wal$/;

/** One segment as the storage tracks it. */
export interface Segment {
  /** Its sequence number, as in its file name. */
  readonly seq: number;
  /** Absolute path of its file. */
  readonly path: string;
  /** Bytes of intact records: where the next append goes. */
  bytes: number;
  /** Highest entry index any batch in it wrote (0: none), to know when it may be deleted. */
  maxIndex: number;
  /** Whether it holds a batch yet (a segment never rotates before its first batch). */
  hasBatch: boolean;
}

/** The directory and the storage's resolved options, shared by its parts. */
export interface Settings {
  /** Absolute path of the directory. */
  readonly dir: string;
  /** The file system the directory lives on. */
  readonly fs: FileSystem;
  /** Size past which the next save starts a new segment. */
  readonly segmentBytes: number;
  /** Receives warnings about recoverable surprises. */
  readonly warn: (message: string) => void;
  /** Told the path of every file or directory after it is fsynced. */
  readonly synced: (path: string) => void;
}

/**
 * Names the file of segment `seq`; the zero padding makes names sort as
 * numbers do.
 *
 * @param seq The sequence number, from 1.
 * @returns The file name, without a directory.
 */
export function segmentName(seq: number): string {
  return `log-${String(seq).padStart(16, "0")}.wal`;
}

/**
 * Finds the segment files among a directory's names and checks that they
 * are consecutive: a gap means a segment was lost.
 *
 * @param dir The directory, named in the error.
 * @param names The names of its files.
 * @returns Their sequence numbers, ascending.
 * @throws {CorruptLogError} When a segment is missing.
 */
export function segmentSeqs(dir: string, names: readonly string[]): number[] {
  const seqs = names
    .map((name) => SEGMENT_NAME.exec(name)?.[1])
    .filter((seq) => seq !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  for (let i = 1; i < seqs.length; i++) {
    if (seqs[i] !== seqs[i - 1]! + 1) {
      throw new CorruptLogError(dir, null, `segment ${segmentName(seqs[i - 1]! + 1)} is missing`);
    }
  }
  return seqs;
}

/**
 * Writes all of `bytes` at `position`: one `write` may take fewer bytes.
 *
 * @param handle The open file.
 * @param bytes What to write.
 * @param options `position`, the file offset of the first byte (default 0);
 *   `onThread`, to write on the calling thread where the file can
 *   (`OpenFile.writeOnThread`).
 * @returns When every byte is written (not yet synced).
 * @throws {Error} When the file takes no bytes, or the write fails.
 */
export async function writeAll(
  handle: OpenFile,
  bytes: Uint8Array,
  options: { readonly position?: number; readonly onThread?: boolean } = {},
): Promise<void> {
  const position = options.position ?? 0;
  const onThread = options.onThread === true && handle.writeOnThread !== undefined;
  let done = 0;
  while (done < bytes.length) {
    const length = bytes.length - done;
    const bytesWritten = onThread
      ? handle.writeOnThread!(bytes, done, length, position + done)
      : (await handle.write(bytes, done, length, position + done)).bytesWritten;
    if (bytesWritten <= 0) throw new Error(`Cannot write: the file took ${bytesWritten} bytes`);
    done += bytesWritten;
  }
}

/** A file to fsync. */
export interface SyncTarget {
  /** The open file. */
  readonly handle: OpenFile;
  /** Its path, for `Settings.synced`. */
  readonly path: string;
  /**
   * Whether `fdatasync` is enough: it skips metadata such as timestamps yet
   * still syncs the size an append changed. Default false (`fsync`).
   */
  readonly dataOnly?: boolean;
  /**
   * Whether to wait for the disk on the calling thread, where the file can
   * (`OpenFile.datasyncOnThread`, with `dataOnly`). Default false.
   */
  readonly onThread?: boolean;
}

/**
 * Fsyncs a file and tells `settings.synced`.
 *
 * @param settings Where to report the sync.
 * @param target The file, its path, and whether `fdatasync` is enough.
 * @returns When the file is durable.
 */
export async function syncFile(settings: Settings, target: SyncTarget): Promise<void> {
  const { handle } = target;
  if (target.dataOnly === true && target.onThread === true && handle.datasyncOnThread) {
    handle.datasyncOnThread();
  } else if (target.dataOnly === true) await handle.datasync();
  else await handle.sync();
  settings.synced(target.path);
}

/**
 * Makes the directory's own name, and every name in it, durable: run at every
 * open. A directory's name is an entry of its parent, durable only once the
 * parent is synced; without this, a power loss after the first saves resolved
 * could take the whole directory with it, and the node would come back empty,
 * its votes forgotten. It runs at every open, not only when `mkdir` created
 * the directory, because an earlier process may have created it (or a
 * segment in it) and died, or failed an fsync, before syncing: what this
 * process sees in the directory may be only in the operating system's cache.
 *
 * An ancestor this process may not open (`EACCES`, `EPERM`) is skipped: it
 * existed before the storage, which never creates such a directory.
 *
 * @param settings The directory, and where to report the syncs.
 * @returns When the directory and its name are durable.
 */
export async function syncDirAndAncestors(settings: Settings): Promise<void> {
  await syncDir(settings);
  // Bounded by the path's depth: dirname() of the root is the root.
  for (let at = settings.dir; at !== dirname(at); at = dirname(at)) {
    try {
      await settings.fs.syncDir(dirname(at));
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      if (code === "EACCES" || code === "EPERM") continue;
      throw error;
    }
    settings.synced(dirname(at));
  }
}

/**
 * Makes creations, renames and deletions in the directory durable.
 *
 * @param settings The directory, and where to report the sync.
 * @returns When the directory's entries are durable.
 */
export async function syncDir(settings: Settings): Promise<void> {
  await settings.fs.syncDir(settings.dir);
  settings.synced(settings.dir);
}
