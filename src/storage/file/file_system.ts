/**
 * The file operations the file storage performs, as one small interface, so
 * that the very adapter users run can also run on a simulated disk that
 * loses unsynced writes, tears the last one, fails an fsync, fills up or
 * flips a bit at rest (as TigerBeetle's VOPR runs its replica on a simulated
 * storage). {@linkcode nodeFileSystem} is the real one, on
 * `node:fs/promises`: its handles are the runtime's own `FileHandle`s, so the
 * write path costs no wrapper, copy or extra await.
 *
 * @module
 */

import {
  constants,
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  unlink,
} from "node:fs/promises";
import { fdatasyncSync, writeSync } from "node:fs";
import process from "node:process";
import { acquireLock, releaseLock } from "./lock.ts";

/**
 * How a file is opened, as in `node:fs`: `"r+"` reads and writes an existing
 * file, `"w"` creates or empties one, `"wx"` creates one that must not exist.
 */
export type OpenFlags = "r+" | "w" | "wx";

/**
 * An open file. Writes go to the operating system's cache; only `sync` or
 * `datasync` makes them durable, and a failed sync may have lost them.
 */
export interface OpenFile {
  /**
   * Writes `bytes[offset, offset + length)` at file position `position`. May
   * take fewer bytes than asked (a disk filling up): the caller loops.
   */
  write(
    bytes: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ readonly bytesWritten: number }>;
  /** Makes the file's data and metadata durable (`fsync`). */
  sync(): Promise<void>;
  /** Makes the file's data and size durable (`fdatasync`). */
  datasync(): Promise<void>;
  /**
   * Does as `write` on the calling thread, returning the bytes written:
   * for a caller that waits for the disk on its thread next, which an
   * asynchronous write would only delay by a turn of the event loop.
   * Optional: absent, the caller awaits `write`.
   */
  writeOnThread?(bytes: Uint8Array, offset: number, length: number, position: number): number;
  /**
   * Does as `datasync` on the calling thread, which waits for the disk
   * (no wake-up of a pool thread and back). Optional: absent, the caller
   * awaits `datasync`.
   */
  datasyncOnThread?(): void;
  /** Cuts the file to `length` bytes (not durable until synced). */
  truncate(length: number): Promise<void>;
  /** Closes the file; unsynced writes stay as unsynced as they were. */
  close(): Promise<void>;
}

/**
 * The file system under one file storage directory. Paths are absolute.
 *
 * Contract (POSIX's, which a simulation must keep no weaker): a created,
 * renamed or deleted name is durable only once its directory is synced
 * (`syncDir`); a file's bytes only once the file is synced. Errors carry a
 * Node-style `code` (`ENOENT`, `EEXIST`, `ENOSPC`, `EIO`).
 */
export interface FileSystem {
  /**
   * Creates `path` and any missing parent.
   *
   * @returns The first directory it created, or undefined when `path` existed.
   */
  mkdir(path: string): Promise<string | undefined>;
  /** Names the entries of directory `path`. */
  readdir(path: string): Promise<string[]>;
  /** Reads a whole file, as a plain `Uint8Array`. */
  readFile(path: string): Promise<Uint8Array>;
  /** Opens a file. */
  open(path: string, flags: OpenFlags): Promise<OpenFile>;
  /**
   * Opens a file for synchronized writes: each write resolves once its bytes
   * and the file's size are durable, as `write` then `datasync` would, in
   * one system call instead of two (`O_DSYNC`). Absent where the platform
   * has no such flag (Windows), or where the wait would hold up the
   * JavaScript thread (see {@linkcode nodeFileSystem}): the caller writes,
   * then syncs.
   */
  openSynced?(path: string, flags: OpenFlags): Promise<OpenFile>;
  /** Renames a file, replacing `to` atomically. */
  rename(from: string, to: string): Promise<void>;
  /** Deletes a file. */
  unlink(path: string): Promise<void>;
  /** Makes the creations, renames and deletions in directory `path` durable. */
  syncDir(path: string): Promise<void>;
  /**
   * Takes the lock that keeps a second storage off directory `dir`.
   *
   * @param warn Told when a stale lock is taken over.
   * @throws {Error} When another storage holds it.
   */
  lock(dir: string, warn: (message: string) => void): Promise<void>;
  /** Gives the lock of `dir` up, if held. */
  unlock(dir: string): Promise<void>;
}

/** Options of {@linkcode nodeFileSystem}. */
export interface NodeFileSystemOptions {
  /**
   * Offer {@linkcode FileSystem.openSynced} (`O_DSYNC`), where the platform
   * has the flag. Default: on Node and Bun, whose file writes run off the
   * JavaScript thread, so that a write waiting for the disk holds up
   * nothing else; off on Deno, whose `node:fs` writes a file on the
   * JavaScript thread: there the whole node would wait for every save's
   * disk flush (measured in `bench/README.md`).
   */
  readonly synchronizedWrites?: boolean;
}

/**
 * The real file system, through `node:fs/promises` (Deno, Bun and Node), with
 * the pid lock of `lock.ts`.
 *
 * @param options Whether to offer synchronized writes.
 * @returns The file system.
 *
 * @example Write, sync and read back a file
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { nodeFileSystem } from "./file_system.ts";
 *
 * const fs = nodeFileSystem();
 * const dir = await Deno.makeTempDir();
 * const file = await fs.open(`${dir}/a`, "wx");
 * await file.write(new Uint8Array([1, 2, 3]), 0, 3, 0);
 * await file.sync();
 * await file.close();
 * await fs.syncDir(dir);
 * strictEqual((await fs.readFile(`${dir}/a`)).length, 3);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function nodeFileSystem(options: NodeFileSystemOptions = {}): FileSystem {
  const synced = (options.synchronizedWrites ?? !("Deno" in globalThis)) &&
    typeof constants.O_DSYNC === "number";
  return synced ? NODE_FILE_SYSTEM_SYNCED : NODE_FILE_SYSTEM;
}

/** `open`'s flags as numbers, to which `O_DSYNC` is added. */
const NUMERIC_FLAGS: Readonly<Record<OpenFlags, number>> = {
  "r+": constants.O_RDWR,
  "w": constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC,
  "wx": constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
};

const NODE_FILE_SYSTEM: FileSystem = {
  mkdir: (path) => mkdir(path, { recursive: true }),
  readdir: (path) => readdir(path),
  async readFile(path) {
    const buffer = await readFile(path);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  },
  // The runtime's FileHandle is an OpenFile as it is (two methods added): no
  // wrapper on the write path.
  open: async (path, flags) => onThread(await open(path, flags)),
  rename: (from, to) => rename(from, to),
  unlink: (path) => unlink(path),
  async syncDir(path) {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (error) {
      // Windows cannot open a directory; its file system orders metadata itself.
      if (process.platform === "win32") return;
      throw error;
    }
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  lock: (dir, warn) => acquireLock(dir, warn),
  unlock: (dir) => releaseLock(dir),
};

const NODE_FILE_SYSTEM_SYNCED: FileSystem = {
  ...NODE_FILE_SYSTEM,
  // A synchronized write is durable as it returns: no flush to wait for.
  openSynced: (path, flags) => open(path, NUMERIC_FLAGS[flags] | constants.O_DSYNC),
};

/**
 * Gives a runtime's file handle its {@linkcode OpenFile.writeOnThread} and
 * {@linkcode OpenFile.datasyncOnThread}, on its descriptor.
 */
function onThread(handle: FileHandle): OpenFile {
  const fd = handle.fd;
  return Object.assign(handle, {
    writeOnThread: (bytes: Uint8Array, offset: number, length: number, position: number) =>
      writeSync(fd, bytes, offset, length, position),
    datasyncOnThread: () => fdatasyncSync(fd),
  });
}
