/**
 * The simulated disk: a deterministic, in-memory {@linkcode FileSystem} with
 * the faults of a real one, so that the file storage's own code and on-disk
 * format run against crashes, torn writes, failed fsyncs, a full disk and
 * bits flipped at rest (after TigerBeetle's simulated storage in the VOPR).
 * One seed decides every fault.
 *
 * ## What is durable when
 *
 * Files: every file has durable bytes and, on top, the writes and truncations
 * made since its last sync (pending, in order); reads see both, as reads of
 * the page cache do. `sync`/`datasync` make the pending operations durable.
 *
 * Directories (the model POSIX promises, no more): a directory has durable
 * entries and the creations, renames and deletions made since its last
 * `syncDir` (pending, in order). Syncing a file does not make its name
 * durable, and syncing a directory does not make its files' bytes durable.
 * Creating a directory is a pending entry of its parent like any other.
 *
 * A crash ({@linkcode SimDisk.crash}) keeps what is durable and, as a real
 * disk's write-back may have gone further, per directory a seeded prefix of
 * its pending operations (a journal commits metadata in order) and per file
 * one of: none of its pending operations, a prefix of them, or a prefix and
 * then the next write torn. A torn write is cut at any byte (the file ends
 * there), or lands sector by sector (512 bytes, each independently), the
 * sectors that did not land reading as zeros or, past the old end of the
 * file, as stale garbage (ext4 `data=writeback`). Nothing else survives:
 * open files and locks are gone, and every operation still in flight never
 * settles (its process is dead).
 *
 * ## Faults
 *
 * - A failed sync rejects with `EIO` and, as Linux does (PostgreSQL's
 *   "fsyncgate"), may have written back only some of what it was to sync;
 *   the rest is no longer pending, so a later successful sync does not save
 *   it, although reads still see it. A failed `syncDir` leaves its operations
 *   pending.
 * - A full disk: a write past `capacityBytes` (the sum of all file sizes)
 *   writes what fits and then rejects with `ENOSPC`.
 * - A bit flipped at rest ({@linkcode SimDisk.flipBit}) in a random file's
 *   durable bytes.
 *
 * Every operation completes asynchronously, when the `schedule` hook runs it
 * (default `queueMicrotask`), so that a simulator decides when each promise
 * settles; its effect happens then, not when it was called.
 *
 * @module
 */

import { type Prng, seededPrng } from "../../src/core/mod.ts";
import type { FileSystem, OpenFile, OpenFlags } from "../../src/storage/file/file_system.ts";

/** Sector size: a torn write lands or not in units of this many bytes. */
export const SECTOR_BYTES = 512;

/** Options of {@linkcode SimDisk}. */
export interface SimDiskOptions {
  /** Decides every crash outcome, failed sync and flipped bit. */
  readonly seed: number;
  /**
   * Runs an operation's completion; the operation's promise settles then.
   * Default `queueMicrotask`.
   */
  readonly schedule?: (complete: () => void) => void;
  /** Bytes the files may hold in all. Default unlimited. */
  readonly capacityBytes?: number;
  /** Probability that any one sync (of a file or a directory) fails. Default 0. */
  readonly syncFailureRate?: number;
  /**
   * Offer `openSynced`, as the real file system does on Node and Bun.
   * Default false: the seeds found before it keep their stories.
   */
  readonly synchronizedWrites?: boolean;
}

/** What one crash did, for tests to count the cases they covered. */
export interface CrashReport {
  /** Files whose pending operations were all lost. */
  dropped: number;
  /** Files that kept some or all of their pending operations, none torn. */
  prefixes: number;
  /** Files whose last surviving write is torn. */
  torn: number;
  /** Pending directory operations that were lost. */
  dirOpsLost: number;
  /** Pending directory operations that survived anyway. */
  dirOpsKept: number;
}

/** Where {@linkcode SimDisk.flipBit} flipped a bit. */
export interface FlippedBit {
  /** The file. */
  readonly path: string;
  /** Byte offset in the file. */
  readonly offset: number;
  /** Bit within the byte, 0 to 7. */
  readonly bit: number;
}

type FileOp =
  | { readonly kind: "write"; readonly position: number; readonly bytes: Uint8Array }
  | { readonly kind: "truncate"; readonly length: number };

/** A file: durable bytes, and what reads see (durable plus pending). */
interface FileNode {
  readonly kind: "file";
  /** The bytes on the medium. */
  durable: Uint8Array;
  /** The bytes reads see; equals `durable` plus `pending` unless a sync failed. */
  cache: Uint8Array;
  /** Operations since the last sync, oldest first. */
  pending: FileOp[];
}

/** One atomic change of a directory: each name set to a node or removed (null). */
type DirOp = readonly (readonly [string, Node | null])[];

/** A directory: durable entries, and what lookups see. */
interface DirNode {
  readonly kind: "dir";
  /** The entries on the medium. */
  durable: Map<string, Node>;
  /** The entries lookups see: `durable` plus `pending`. */
  entries: Map<string, Node>;
  /** Changes since the last `syncDir`, oldest first. */
  pending: DirOp[];
}

type Node = FileNode | DirNode;

/** An error as `node:fs` raises it: a message and a `code`. */
function fsError(code: string, message: string): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

function newDir(): DirNode {
  return { kind: "dir", durable: new Map(), entries: new Map(), pending: [] };
}

/** Applies a write or truncation to `bytes`, returning the new content (a copy when it grows). */
function applyOp(bytes: Uint8Array, op: FileOp): Uint8Array {
  if (op.kind === "truncate") {
    if (op.length <= bytes.length) return bytes.slice(0, op.length);
    const grown = new Uint8Array(op.length);
    grown.set(bytes);
    return grown;
  }
  const end = op.position + op.bytes.length;
  const out = end > bytes.length ? new Uint8Array(end) : bytes.slice();
  if (end > bytes.length) out.set(bytes);
  out.set(op.bytes, op.position);
  return out;
}

/**
 * A deterministic in-memory file system with real fault semantics (see the
 * module doc). Implements the file storage's {@linkcode FileSystem}.
 *
 * @example A write that was never synced does not survive a crash
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { SimDisk } from "./disk.ts";
 *
 * const disk = new SimDisk({ seed: 1 });
 * await disk.mkdir("/d");
 * await disk.syncDir("/");
 * const file = await disk.open("/d/a", "wx");
 * await file.write(new Uint8Array([7]), 0, 1, 0);
 * disk.crash();
 * strictEqual((await disk.readdir("/d")).length, 0);
 * ```
 */
export class SimDisk implements FileSystem {
  readonly #prng: Prng;
  readonly #schedule: (complete: () => void) => void;
  #root: DirNode = newDir();
  /** Bumped by every crash: operations and handles of an older epoch never settle. */
  #epoch = 0;
  #locks = new Set<string>();
  /** Nodes of open files, which hold their space even once unlinked. */
  #open = new Set<FileNode>();
  /** Remaining operations before an armed crash, or null. */
  #crashIn: number | null = null;
  #crashed: ((report: CrashReport) => void) | null = null;
  /** What the armed crash stops: the machine, or only the process. */
  #crashKind: "power" | "process" = "power";
  /** Syncs that must fail next, before the failure rate is drawn. */
  #failSyncs = 0;

  /** Bytes the files may hold in all; may be raised again to free space. */
  capacityBytes: number;
  /** Probability that any one sync fails. */
  syncFailureRate: number;
  /**
   * Opens a file for synchronized writes, when made with
   * `synchronizedWrites`: a write is the write, then a sync of the file (two
   * operations, as the disk counts them, so that a crash may fall between
   * the two), and resolves once both are done.
   */
  readonly openSynced?: (path: string, flags: OpenFlags) => Promise<OpenFile>;
  /** Operations completed so far (crashed ones not counted). */
  operations = 0;
  /** Syncs that failed so far. */
  failedSyncs = 0;

  /**
   * Creates an empty disk; only `/` exists.
   *
   * @param options Seed, scheduling hook and fault settings.
   */
  constructor(options: SimDiskOptions) {
    this.#prng = seededPrng(options.seed);
    this.#schedule = options.schedule ?? queueMicrotask;
    this.capacityBytes = options.capacityBytes ?? Infinity;
    this.syncFailureRate = options.syncFailureRate ?? 0;
    if (options.synchronizedWrites === true) {
      this.openSynced = (path, flags) => this.#openFile(path, flags, true);
    }
  }

  // ------------------------------------------------------------ faults

  /**
   * Makes the next `count` syncs fail, whatever the failure rate.
   *
   * @param count How many.
   */
  failNextSyncs(count = 1): void {
    this.#failSyncs += count;
  }

  /**
   * Crashes the machine (or, with `{ process: true }`, kills the process)
   * when the `count`-th operation from now would complete: that operation
   * never takes effect.
   *
   * @param count 1 for the next operation.
   * @param options `process`: kill the process only (see {@linkcode SimDisk.killProcess}).
   * @returns Settles once it happened, with the crash's report (empty for a kill).
   */
  crashAfter(count: number, options: { readonly process?: boolean } = {}): Promise<CrashReport> {
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new RangeError(`count must be a positive integer: ${count}`);
    }
    this.#crashIn = count;
    this.#crashKind = options.process === true ? "process" : "power";
    return new Promise((resolve) => {
      this.#crashed = resolve;
    });
  }

  /** Disarms a crash that {@linkcode SimDisk.crashAfter} armed and that has not happened. */
  cancelCrash(): void {
    this.#crashIn = null;
  }

  /**
   * Crashes the machine now: keeps what is durable plus what a seeded
   * write-back got to (see the module doc); forgets open files and locks;
   * operations in flight never settle.
   *
   * @returns What the crash kept and lost.
   */
  crash(): CrashReport {
    this.#epoch++;
    this.#crashIn = null;
    this.#locks.clear();
    this.#open.clear();
    const report: CrashReport = { dropped: 0, prefixes: 0, torn: 0, dirOpsLost: 0, dirOpsKept: 0 };
    this.#settleDir(this.#root, report);
    const crashed = this.#crashed;
    this.#crashed = null;
    crashed?.(report);
    return report;
  }

  /**
   * Kills the process but not the machine: operations in flight never settle,
   * open files and locks are gone, and what the operating system holds
   * (unsynced writes, unsynced directory entries) stays as it is, to be read
   * by the next process and made durable, or lost, later.
   */
  killProcess(): void {
    this.#epoch++;
    this.#crashIn = null;
    this.#locks.clear();
    this.#open.clear();
    const crashed = this.#crashed;
    this.#crashed = null;
    crashed?.({ dropped: 0, prefixes: 0, torn: 0, dirOpsLost: 0, dirOpsKept: 0 });
  }

  /**
   * Flips one bit at rest in a file's durable bytes (and in what reads see,
   * as if the cached page had been dropped). Meant for a disk after a crash
   * or a clean close, when reads see exactly the durable bytes.
   *
   * @param path The file, or undefined for a random non-empty file.
   * @param where The byte and bit to flip; random when not given.
   * @returns Where it flipped, or null when no such file has a byte.
   */
  flipBit(
    path?: string,
    where?: { readonly offset: number; readonly bit: number },
  ): FlippedBit | null {
    const files = this.#durableFiles("", this.#root).filter(([p, f]) =>
      f.durable.length > 0 && (path === undefined || p === path)
    );
    if (files.length === 0) return null;
    const [at, file] = files[this.#int(files.length)]!;
    const offset = where?.offset ?? this.#int(file.durable.length);
    const bit = where?.bit ?? this.#int(8);
    if (offset >= file.durable.length) return null;
    file.durable[offset]! ^= 1 << bit;
    if (offset < file.cache.length && file.cache !== file.durable) file.cache[offset]! ^= 1 << bit;
    return { path: at, offset, bit };
  }

  /** Bytes the files hold now (what reads see, open unlinked files included): what `capacityBytes` bounds. */
  get usedBytes(): number {
    return this.#usedBytes();
  }

  /**
   * The durable files, path to bytes (copies), for tests to inspect.
   *
   * @returns Every file a crash now would keep at least the bytes of.
   */
  durableFiles(): Map<string, Uint8Array> {
    return new Map(this.#durableFiles("", this.#root).map(([p, f]) => [p, f.durable.slice()]));
  }

  // ------------------------------------------------------- FileSystem

  /** Creates `path` and its missing parents, each a pending entry of its parent. */
  mkdir(path: string): Promise<string | undefined> {
    return this.#op(() => {
      let dir = this.#root;
      let first: string | undefined;
      let at = "";
      for (const name of splitPath(path)) {
        at += `/${name}`;
        let next = dir.entries.get(name);
        if (next === undefined) {
          next = newDir();
          this.#change(dir, [[name, next]]);
          first ??= at;
        }
        if (next.kind !== "dir") throw fsError("ENOTDIR", `${at} is a file`);
        dir = next;
      }
      return first;
    });
  }

  /** Names the entries of a directory. */
  readdir(path: string): Promise<string[]> {
    return this.#op(() => [...this.#dir(path).entries.keys()].sort());
  }

  /** Reads what a file holds now (the cache: durable bytes plus pending writes). */
  readFile(path: string): Promise<Uint8Array> {
    return this.#op(() => this.#file(path).cache.slice());
  }

  /** Opens a file: `r+` an existing one, `w` creates or empties, `wx` creates a new one. */
  open(path: string, flags: OpenFlags): Promise<OpenFile> {
    return this.#openFile(path, flags, false);
  }

  #openFile(path: string, flags: OpenFlags, synced: boolean): Promise<OpenFile> {
    return this.#op(() => {
      const { dir, name } = this.#parent(path);
      let node = dir.entries.get(name);
      if (node?.kind === "dir") throw fsError("EISDIR", `${path} is a directory`);
      if (node === undefined) {
        if (flags === "r+") throw fsError("ENOENT", `no such file ${path}`);
        node = { kind: "file", durable: new Uint8Array(), cache: new Uint8Array(), pending: [] };
        this.#change(dir, [[name, node]]);
      } else if (flags === "wx") {
        throw fsError("EEXIST", `${path} exists`);
      } else if (flags === "w") {
        this.#fileOp(node, { kind: "truncate", length: 0 });
      }
      this.#open.add(node);
      return this.#handle(node, path, synced);
    });
  }

  /** Renames a file within its directory, atomically replacing `to`. */
  rename(from: string, to: string): Promise<void> {
    return this.#op(() => {
      const source = this.#parent(from);
      const target = this.#parent(to);
      if (source.dir !== target.dir) {
        throw fsError("EXDEV", `the simulated disk renames within a directory only: ${from}`);
      }
      const node = source.dir.entries.get(source.name);
      if (node === undefined) throw fsError("ENOENT", `no such file ${from}`);
      if (from === to) return;
      this.#change(source.dir, [[source.name, null], [target.name, node]]);
    });
  }

  /** Deletes a file's name (an open file keeps its bytes until closed). */
  unlink(path: string): Promise<void> {
    return this.#op(() => {
      const { dir, name } = this.#parent(path);
      const node = dir.entries.get(name);
      if (node === undefined) throw fsError("ENOENT", `no such file ${path}`);
      if (node.kind === "dir") throw fsError("EISDIR", `${path} is a directory`);
      this.#change(dir, [[name, null]]);
    });
  }

  /** Makes a directory's pending entries durable, unless the sync fails. */
  syncDir(path: string): Promise<void> {
    return this.#op(() => {
      const dir = this.#dir(path);
      if (this.#syncFails()) throw fsError("EIO", `fsync of directory ${path} failed`);
      dir.durable = new Map(dir.entries);
      dir.pending = [];
    });
  }

  /** Takes an in-memory lock: the simulated machine runs one process per directory. */
  lock(dir: string): Promise<void> {
    return this.#op(() => {
      if (this.#locks.has(dir)) {
        throw new Error(`Cannot open storage in ${dir}: another storage has it open`);
      }
      this.#locks.add(dir);
    });
  }

  /** Gives the lock up. */
  unlock(dir: string): Promise<void> {
    return this.#op(() => {
      this.#locks.delete(dir);
    });
  }

  // ------------------------------------------------------------ plumbing

  #int(n: number): number {
    return Math.floor(this.#prng.next() * n);
  }

  #syncFails(): boolean {
    if (this.#failSyncs > 0) {
      this.#failSyncs--;
    } else if (!(this.syncFailureRate > 0 && this.#prng.next() < this.syncFailureRate)) {
      return false;
    }
    this.failedSyncs++;
    return true;
  }

  /**
   * Runs `effect` when the scheduler completes the operation, unless the disk
   * crashed since it was called (then it never settles) or an armed crash
   * falls on it.
   */
  #op<T>(effect: () => T, epoch = this.#epoch): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#schedule(() => {
        if (epoch !== this.#epoch) return;
        if (this.#crashIn !== null && --this.#crashIn === 0) {
          if (this.#crashKind === "process") this.killProcess();
          else this.crash();
          return;
        }
        this.operations++;
        try {
          resolve(effect());
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  #handle(node: FileNode, path: string, synced: boolean): OpenFile {
    const epoch = this.#epoch;
    let closed = false;
    const live = () => {
      if (closed) throw fsError("EBADF", `${path} is closed`);
    };
    const sync = () =>
      this.#op(() => {
        live();
        this.#syncFile(node, path);
      }, epoch);
    const write = (bytes: Uint8Array, offset: number, length: number, position: number) =>
      this.#op(() => {
        live();
        return {
          bytesWritten: this.#write(node, bytes.slice(offset, offset + length), position),
        };
      }, epoch);
    const writeThenSync = async (
      bytes: Uint8Array,
      offset: number,
      length: number,
      position: number,
    ) => {
      const written = await write(bytes, offset, length, position);
      await sync();
      return written;
    };
    return {
      write: synced ? writeThenSync : write,
      sync,
      datasync: sync,
      truncate: (length) =>
        this.#op(() => {
          live();
          this.#fileOp(node, { kind: "truncate", length });
        }, epoch),
      close: () =>
        this.#op(() => {
          live();
          closed = true;
          this.#open.delete(node);
        }, epoch),
    };
  }

  /** Writes what fits on the disk; throws ENOSPC when nothing does. */
  #write(node: FileNode, bytes: Uint8Array, position: number): number {
    if (bytes.length === 0) return 0;
    const room = this.capacityBytes - this.#usedBytes();
    const fits = Math.min(bytes.length, node.cache.length + room - position);
    if (fits < bytes.length && fits <= 0) {
      throw fsError("ENOSPC", `no space left on the disk (${this.capacityBytes} bytes)`);
    }
    this.#fileOp(node, { kind: "write", position, bytes: bytes.subarray(0, fits) });
    return fits;
  }

  #fileOp(node: FileNode, op: FileOp): void {
    node.cache = applyOp(node.cache, op);
    node.pending.push(op);
  }

  #syncFile(node: FileNode, path: string): void {
    if (this.#syncFails()) {
      // Write-back got through some of it; the rest is no longer dirty, so
      // no later sync saves it (reads still see it, from the cache).
      const kept = this.#int(node.pending.length + 1);
      for (const op of node.pending.slice(0, kept)) node.durable = applyOp(node.durable, op);
      node.pending = [];
      throw fsError("EIO", `fsync of ${path} failed`);
    }
    for (const op of node.pending) node.durable = applyOp(node.durable, op);
    node.pending = [];
  }

  #change(dir: DirNode, op: DirOp): void {
    for (const [name, node] of op) {
      if (node === null) dir.entries.delete(name);
      else dir.entries.set(name, node);
    }
    dir.pending.push(op);
  }

  /** Bytes held by every file reachable now or open. */
  #usedBytes(): number {
    const files = new Set(this.#open);
    const visit = (dir: DirNode) => {
      for (const node of dir.entries.values()) {
        if (node.kind === "dir") visit(node);
        else files.add(node);
      }
    };
    visit(this.#root);
    let used = 0;
    for (const f of files) used += f.cache.length;
    return used;
  }

  #durableFiles(prefix: string, dir: DirNode): [string, FileNode][] {
    const out: [string, FileNode][] = [];
    for (const [name, node] of [...dir.durable].sort(([a], [b]) => a < b ? -1 : 1)) {
      if (node.kind === "dir") out.push(...this.#durableFiles(`${prefix}/${name}`, node));
      else out.push([`${prefix}/${name}`, node]);
    }
    return out;
  }

  /** After a crash: what of `dir` and everything under it survives. */
  #settleDir(dir: DirNode, report: CrashReport): void {
    const kept = this.#int(dir.pending.length + 1);
    report.dirOpsKept += kept;
    report.dirOpsLost += dir.pending.length - kept;
    const entries = new Map(dir.durable);
    for (const op of dir.pending.slice(0, kept)) {
      for (const [name, node] of op) {
        if (node === null) entries.delete(name);
        else entries.set(name, node);
      }
    }
    dir.durable = entries;
    dir.entries = new Map(entries);
    dir.pending = [];
    // Sorted, so that the seed alone decides (not the order entries were made in).
    for (const [, node] of [...entries].sort(([a], [b]) => a < b ? -1 : 1)) {
      if (node.kind === "dir") this.#settleDir(node, report);
      else this.#settleFile(node, report);
    }
  }

  #settleFile(file: FileNode, report: CrashReport): void {
    const ops = file.pending;
    let bytes = file.durable;
    if (ops.length > 0) {
      const mode = this.#int(3);
      if (mode === 0) {
        report.dropped++;
      } else {
        const kept = mode === 1 ? this.#int(ops.length + 1) : this.#int(ops.length);
        for (const op of ops.slice(0, kept)) bytes = applyOp(bytes, op);
        const next = ops[kept];
        if (mode === 2 && next?.kind === "write" && next.bytes.length > 0) {
          bytes = this.#tear(bytes, next);
          report.torn++;
        } else {
          report.prefixes++;
        }
      }
    }
    file.durable = bytes;
    file.cache = bytes.slice();
    file.pending = [];
  }

  /** Applies part of a write, as a crash in the middle of it may leave it. */
  #tear(bytes: Uint8Array, op: FileOp & { kind: "write" }): Uint8Array {
    const { position, bytes: data } = op;
    if (this.#int(2) === 0) {
      // The file ends somewhere in the write.
      const cut = this.#int(data.length);
      return applyOp(bytes, { kind: "write", position, bytes: data.subarray(0, cut) });
    }
    // The size grew to the end of the write, but only some sectors landed.
    const oldLength = bytes.length;
    const garbage = this.#int(2) === 0;
    const out = applyOp(bytes, op);
    const end = position + data.length;
    let lost = 0;
    for (let s = Math.floor(position / SECTOR_BYTES); s * SECTOR_BYTES < end; s++) {
      if (this.#int(2) === 0) continue;
      const from = Math.max(position, s * SECTOR_BYTES);
      const to = Math.min(end, (s + 1) * SECTOR_BYTES);
      for (let i = from; i < to; i++) {
        out[i] = i < oldLength ? bytes[i]! : garbage ? this.#int(256) : 0;
      }
      lost++;
    }
    // A tear that lost nothing is no tear: lose the last sector.
    if (lost === 0) {
      const from = Math.max(position, Math.floor((end - 1) / SECTOR_BYTES) * SECTOR_BYTES);
      for (let i = from; i < end; i++) out[i] = i < oldLength ? bytes[i]! : 0;
    }
    return out;
  }

  #lookup(path: string): Node | undefined {
    let node: Node = this.#root;
    for (const name of splitPath(path)) {
      if (node.kind !== "dir") return undefined;
      const next: Node | undefined = node.entries.get(name);
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }

  #dir(path: string): DirNode {
    const node = this.#lookup(path);
    if (node === undefined) throw fsError("ENOENT", `no such directory ${path}`);
    if (node.kind !== "dir") throw fsError("ENOTDIR", `${path} is a file`);
    return node;
  }

  #file(path: string): FileNode {
    const node = this.#lookup(path);
    if (node === undefined) throw fsError("ENOENT", `no such file ${path}`);
    if (node.kind !== "file") throw fsError("EISDIR", `${path} is a directory`);
    return node;
  }

  #parent(path: string): { dir: DirNode; name: string } {
    const names = splitPath(path);
    const name = names.pop();
    if (name === undefined) throw fsError("EISDIR", `${path} is the root`);
    return { dir: this.#dir(`/${names.join("/")}`), name };
  }
}

/** Splits an absolute path into names. */
function splitPath(path: string): string[] {
  if (!path.startsWith("/")) {
    throw new TypeError(`The simulated disk takes absolute paths: ${path}`);
  }
  return path.split("/").filter((name) => name !== "" && name !== ".");
}
