/**
 * Storage in a directory of files: an append-only, segmented, checksummed
 * log plus one snapshot file, written with `node:fs/promises` only so that the
 * same code runs on Deno, Bun and Node.
 *
 * ## On-disk format (version 1)
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
 * Every file is a sequence of records. A record is a 12-byte header then the
 * payload; all integers are little-endian:
 *
 * | bytes | field                                          |
 * | ----- | ---------------------------------------------- |
 * | 0-3   | payload length `n` (u32, 1 to 2^32-1)           |
 * | 4-7   | CRC-32C (Castagnoli) of the payload              |
 * | 8-11  | CRC-32C of bytes 0-7 (so a bad length is caught) |
 * | 12-   | the payload, `n` bytes                           |
 *
 * The payload's first byte is its type. Integers written `u64` are safe
 * integers stored as two u32 (low word first); a `str` is a u32 byte length
 * (0xFFFFFFFF for null) then UTF-8; a hash is its 32 raw bytes.
 *
 * - 1, segment header, first record of every segment: u32 magic
 *   `0x474c4357` ("WCLG"), u8 format version, u64 seq (equal to the file
 *   name's), then the hard state in force when the segment was created
 *   (u64 term, u64 commit, str vote). Because every segment restates the hard
 *   state, dropping older segments never loses it.
 * - 2, batch, one per `save`: u8 flags (bit 0: a hard state follows), the hard
 *   state if flagged, u32 entry count, then per entry: u64 index, u64 term, u8
 *   kind (0 command, 1 noop, 2 config), f64 timeMs, str proposer, hash, u32
 *   data length, data. A batch whose first index is at or below the last index
 *   replaces everything from there on, so a truncation costs one record, and
 *   replaying the records in order rebuilds the log exactly.
 * - 3, snapshot (only in `snapshot.bin`): u32 magic, u8 version, u64 index,
 *   u64 term, hash, str configuration (JSON), then the data up to the end.
 *
 * ## Durability
 *
 * One `save` is one record and one `fdatasync` of the active segment (group
 * commit): when it resolves, the whole batch is on disk; a crash before that
 * leaves at most a torn final record, which load discards, so a batch is all
 * or nothing. When a save starts a new segment (the active one reached
 * `segmentBytes`), the segment's header and the batch go out in one write,
 * followed by an fsync of the file and one of the directory, since a new
 * file's name is only durable once its directory is. `saveSnapshot` fsyncs the
 * snapshot file and the directory, then deletes the oldest segments that hold
 * only entries at or below the snapshot (oldest first, with a directory fsync
 * after each, so that what survives a crash is always a run of consecutive
 * segments); when the entries do not continue the snapshot it starts a fresh
 * segment and deletes all older ones.
 *
 * ## Recovery
 *
 * `load` replays the segments in order. A record that is cut short, or whose
 * checksum fails with no intact record after it, at the tail of the last
 * segment is a torn write: it is reported through `onWarning` and the file is
 * truncated to the last good record (and fsynced). Any other bad record, a
 * missing segment, or a log that does not hash-chain from the snapshot is a
 * {@linkcode CorruptLogError} naming the file and byte offset: the node does
 * not start on a log with a hole.
 *
 * ## The lock
 *
 * `LOCK` is created with the exclusive `wx` flag and removed by `close`. A
 * second open, from this process or another, fails while the owner runs. After
 * a crash the file stays behind: it is stale when its pid is not running
 * (`process.kill(pid, 0)` fails with `ESRCH`) or is this process's own pid
 * while this process does not hold it (a restarted container is often pid 1
 * again); a stale lock is taken over with a warning. If an unrelated process
 * has since reused the pid, the directory looks locked: delete `LOCK` by hand
 * once sure no node runs on it.
 *
 * @module
 */

import {
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  unlink,
} from "node:fs/promises";
import { join, resolve } from "node:path";
import process from "node:process";
import type { Configuration } from "../core/config.ts";
import { chainFault, type Entry, entryHash, type EntryKind, GENESIS_HASH } from "../core/entry.ts";
import type { HardState } from "../core/types.ts";
import type { PersistedState, Snapshot, Storage } from "./storage.ts";

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
}

/** Default segment size: 64 MiB. */
export const SEGMENT_BYTES_DEFAULT: number = 64 * 1024 * 1024;
/** Version of the on-disk format, written in every segment and snapshot. */
export const FILE_FORMAT_VERSION = 1;
/** Bytes of a record header: payload length, payload CRC, header CRC. */
export const RECORD_HEADER_BYTES = 12;
/** Name of the snapshot file inside the directory. */
export const SNAPSHOT_FILE = "snapshot.bin";
/** Name of the lock file inside the directory. */
export const LOCK_FILE = "LOCK";

const SNAPSHOT_TMP_FILE = `${SNAPSHOT_FILE}.tmp`;
const MAGIC = 0x474c4357;
const TYPE_SEGMENT = 1;
const TYPE_BATCH = 2;
const TYPE_SNAPSHOT = 3;
const NULL_STRING = 0xffffffff;
const PAYLOAD_BYTES_MAX = 0xffffffff;
const SEGMENT_NAME = /^log-(\d{16})\.wal$/;
const KIND_CODES: Record<EntryKind, number> = { command: 0, noop: 1, config: 2 };
const KINDS: readonly EntryKind[] = ["command", "noop", "config"];

/** Directories this process holds the lock of: a second open here must fail too. */
const heldLocks = new Set<string>();

/**
 * Thrown by `load` when the files are damaged in a way a crash cannot explain
 * (a bad record before the tail, a missing segment, a broken hash chain). The
 * node must not start: repair or restore the directory, or wipe it and let
 * the node catch up from its peers.
 */
export class CorruptLogError extends Error {
  /** The damaged file (or the directory, for a missing segment or broken chain). */
  readonly path: string;
  /** Byte offset of the bad record in `path`, or null when no one record is at fault. */
  readonly offset: number | null;

  /**
   * Creates the error.
   *
   * @param path The file or directory at fault.
   * @param offset The byte offset of the bad record, or null.
   * @param reason What is wrong.
   */
  constructor(path: string, offset: number | null, reason: string) {
    super(
      offset === null
        ? `Cannot load ${path}: ${reason}`
        : `Cannot load ${path}: bad record at offset ${offset}: ${reason}`,
    );
    this.name = "CorruptLogError";
    this.path = path;
    this.offset = offset;
  }
}

// ------------------------------------------------------------------ CRC-32C

/** Slicing-by-8 tables for CRC-32C (reflected polynomial 0x82F63B78). */
const CRC_TABLES: Uint32Array = makeCrcTables();

function makeCrcTables(): Uint32Array {
  const tables = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    tables[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[n]!;
    for (let k = 1; k < 8; k++) {
      c = tables[c & 0xff]! ^ (c >>> 8);
      tables[k * 256 + n] = c;
    }
  }
  return tables;
}

/**
 * Computes the CRC-32C (Castagnoli) of `bytes[start, end)`, the checksum of
 * every record. Slicing-by-8 keeps it near a byte per cycle in JavaScript.
 *
 * @param bytes The input.
 * @param start First byte (default 0).
 * @param end One past the last byte (default `bytes.length`).
 * @returns The checksum as an unsigned 32-bit integer.
 *
 * @example The standard check value
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { crc32c } from "./file.ts";
 *
 * strictEqual(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
 * ```
 */
export function crc32c(bytes: Uint8Array, start = 0, end: number = bytes.length): number {
  const t = CRC_TABLES;
  let crc = 0xffffffff;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const lo = crc ^
      (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    crc = t[1792 + (lo & 0xff)]! ^ t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^ t[1024 + (lo >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^ t[512 + bytes[i + 5]!]! ^ t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!;
  }
  for (; i < end; i++) crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// -------------------------------------------------------------------- codec

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** A payload that passed its checksum yet does not decode: a bug or another format. */
class MalformedError extends Error {}

/** Writes a payload into a buffer sized in advance. */
class Writer {
  readonly bytes: Uint8Array;
  readonly #view: DataView;
  at: number;

  constructor(bytes: Uint8Array, at: number) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.at = at;
  }

  u8(value: number): void {
    this.#view.setUint8(this.at, value);
    this.at += 1;
  }

  u32(value: number): void {
    this.#view.setUint32(this.at, value, true);
    this.at += 4;
  }

  u64(value: number, what: string): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new TypeError(`Cannot store ${what} ${value}: not a non-negative safe integer`);
    }
    this.#view.setUint32(this.at, value >>> 0, true);
    this.#view.setUint32(this.at + 4, Math.floor(value / 0x1_0000_0000), true);
    this.at += 8;
  }

  f64(value: number): void {
    this.#view.setFloat64(this.at, value, true);
    this.at += 8;
  }

  raw(value: Uint8Array): void {
    this.bytes.set(value, this.at);
    this.at += value.length;
  }

  str(value: Uint8Array | null): void {
    if (value === null) {
      this.u32(NULL_STRING);
      return;
    }
    this.u32(value.length);
    this.raw(value);
  }

  hash(hex: string): void {
    if (hex.length !== 64) throw badHash(hex);
    for (let i = 0; i < 32; i++) {
      const hi = nibble(hex.charCodeAt(2 * i));
      const lo = nibble(hex.charCodeAt(2 * i + 1));
      if (hi < 0 || lo < 0) throw badHash(hex);
      this.bytes[this.at + i] = (hi << 4) | lo;
    }
    this.at += 32;
  }
}

/** The value of a lowercase hex digit, or -1. */
function nibble(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  return -1;
}

function badHash(hex: string): TypeError {
  return new TypeError(`Cannot store hash ${JSON.stringify(hex)}: not 64 lowercase hex digits`);
}

/** Reads a payload, throwing {@linkcode MalformedError} past its end. */
class Reader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #end: number;
  at: number;

  constructor(bytes: Uint8Array, start: number, end: number) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.at = start;
    this.#end = end;
  }

  get remaining(): number {
    return this.#end - this.at;
  }

  #take(n: number): number {
    if (n > this.remaining) throw new MalformedError("the payload ends early");
    const at = this.at;
    this.at += n;
    return at;
  }

  u8(): number {
    return this.#view.getUint8(this.#take(1));
  }

  u32(): number {
    return this.#view.getUint32(this.#take(4), true);
  }

  u64(): number {
    const at = this.#take(8);
    const value = this.#view.getUint32(at, true) +
      this.#view.getUint32(at + 4, true) * 0x1_0000_0000;
    if (!Number.isSafeInteger(value)) throw new MalformedError(`${value} is not a safe integer`);
    return value;
  }

  f64(): number {
    return this.#view.getFloat64(this.#take(8), true);
  }

  /** Copies, so that decoded entries do not pin the whole segment in memory. */
  raw(n: number): Uint8Array {
    const at = this.#take(n);
    return this.#bytes.slice(at, at + n);
  }

  str(): string | null {
    const n = this.u32();
    if (n === NULL_STRING) return null;
    const at = this.#take(n);
    try {
      return decoder.decode(this.#bytes.subarray(at, at + n));
    } catch {
      throw new MalformedError("a string is not UTF-8");
    }
  }

  hash(): string {
    const at = this.#take(32);
    let hex = "";
    for (let i = 0; i < 32; i++) hex += HEX[this.#bytes[at + i]!];
    return hex;
  }
}

function hardStateBytes(vote: Uint8Array | null): number {
  return 8 + 8 + 4 + (vote?.length ?? 0);
}

function writeHardState(w: Writer, hard: HardState, vote: Uint8Array | null): void {
  w.u64(hard.term, "term");
  w.u64(hard.commit, "commit index");
  w.str(vote);
}

function readHardState(r: Reader): HardState {
  const term = r.u64();
  const commit = r.u64();
  const vote = r.str();
  return { term, vote, commit };
}

function encodeVote(hard: HardState | null): Uint8Array | null {
  return hard === null || hard.vote === null ? null : encoder.encode(hard.vote);
}

/** Allocates a record of `payloadBytes` and returns a writer at its payload. */
function recordWriter(payloadBytes: number): Writer {
  if (payloadBytes > PAYLOAD_BYTES_MAX) {
    throw new RangeError(`Cannot write a record of ${payloadBytes} bytes: the limit is 4 GiB`);
  }
  return new Writer(new Uint8Array(RECORD_HEADER_BYTES + payloadBytes), RECORD_HEADER_BYTES);
}

/** Fills in the header once the payload is written. */
function sealRecord(w: Writer): Uint8Array {
  const bytes = w.bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(0, bytes.length - RECORD_HEADER_BYTES, true);
  view.setUint32(4, crc32c(bytes, RECORD_HEADER_BYTES), true);
  view.setUint32(8, crc32c(bytes, 0, 8), true);
  return bytes;
}

function encodeSegmentHeader(seq: number, hard: HardState): Uint8Array {
  const vote = encodeVote(hard);
  const w = recordWriter(1 + 4 + 1 + 8 + hardStateBytes(vote));
  w.u8(TYPE_SEGMENT);
  w.u32(MAGIC);
  w.u8(FILE_FORMAT_VERSION);
  w.u64(seq, "segment number");
  writeHardState(w, hard, vote);
  return sealRecord(w);
}

function encodeBatch(hard: HardState | null, entries: readonly Entry[]): Uint8Array {
  const vote = encodeVote(hard);
  const proposers = entries.map((e) => encoder.encode(e.proposer));
  let size = 1 + 1 + (hard === null ? 0 : hardStateBytes(vote)) + 4;
  for (let i = 0; i < entries.length; i++) {
    size += 8 + 8 + 1 + 8 + 4 + proposers[i]!.length + 32 + 4 + entries[i]!.data.length;
  }
  const w = recordWriter(size);
  w.u8(TYPE_BATCH);
  w.u8(hard === null ? 0 : 1);
  if (hard !== null) writeHardState(w, hard, vote);
  w.u32(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    w.u64(e.index, "index");
    w.u64(e.term, "term");
    w.u8(KIND_CODES[e.kind]);
    w.f64(e.timeMs);
    w.str(proposers[i]!);
    w.hash(e.hash);
    w.u32(e.data.length);
    w.raw(e.data);
  }
  return sealRecord(w);
}

function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const { meta, data } = snapshot;
  const config = encoder.encode(JSON.stringify(meta.config));
  const w = recordWriter(1 + 4 + 1 + 8 + 8 + 32 + 4 + config.length + data.length);
  w.u8(TYPE_SNAPSHOT);
  w.u32(MAGIC);
  w.u8(FILE_FORMAT_VERSION);
  w.u64(meta.index, "snapshot index");
  w.u64(meta.term, "snapshot term");
  w.hash(meta.hash);
  w.str(config);
  w.raw(data);
  return sealRecord(w);
}

/** A decoded log record. */
type LogRecord =
  | { readonly type: "segment"; readonly seq: number; readonly hard: HardState }
  | { readonly type: "batch"; readonly hard: HardState | null; readonly entries: Entry[] };

function readMagic(r: Reader): void {
  if (r.u32() !== MAGIC) throw new MalformedError("wrong magic number");
  const version = r.u8();
  if (version !== FILE_FORMAT_VERSION) {
    throw new MalformedError(`format version ${version}, this code reads ${FILE_FORMAT_VERSION}`);
  }
}

function decodeLogRecord(bytes: Uint8Array, start: number, end: number): LogRecord {
  const r = new Reader(bytes, start, end);
  const type = r.u8();
  let record: LogRecord;
  if (type === TYPE_SEGMENT) {
    readMagic(r);
    record = { type: "segment", seq: r.u64(), hard: readHardState(r) };
  } else if (type === TYPE_BATCH) {
    const flags = r.u8();
    const hard = flags & 1 ? readHardState(r) : null;
    const count = r.u32();
    const entries: Entry[] = [];
    for (let i = 0; i < count; i++) entries.push(readEntry(r));
    record = { type: "batch", hard, entries };
  } else {
    throw new MalformedError(`unknown record type ${type}`);
  }
  if (r.remaining !== 0) throw new MalformedError(`${r.remaining} bytes follow the record`);
  return record;
}

function readEntry(r: Reader): Entry {
  const index = r.u64();
  const term = r.u64();
  const kind = KINDS[r.u8()];
  if (kind === undefined) throw new MalformedError("unknown entry kind");
  const timeMs = r.f64();
  const proposer = r.str();
  if (proposer === null) throw new MalformedError("entry without a proposer");
  const hash = r.hash();
  const data = r.raw(r.u32());
  return { index, term, kind, proposer, timeMs, data, hash };
}

function decodeSnapshot(bytes: Uint8Array, start: number, end: number): Snapshot {
  const r = new Reader(bytes, start, end);
  if (r.u8() !== TYPE_SNAPSHOT) throw new MalformedError("not a snapshot record");
  readMagic(r);
  const index = r.u64();
  const term = r.u64();
  const hash = r.hash();
  const json = r.str();
  if (json === null) throw new MalformedError("snapshot without a configuration");
  let config: Configuration;
  try {
    config = JSON.parse(json) as Configuration;
  } catch {
    throw new MalformedError("the configuration is not JSON");
  }
  if (!Array.isArray(config?.members)) throw new MalformedError("configuration without members");
  const data = r.raw(r.remaining);
  return { meta: { index, term, hash, config }, data };
}

// ------------------------------------------------------------------ framing

/** What a scan of one file found: the intact records, then where it stopped. */
interface Scan {
  /** Start offsets of the intact records, each with its payload bounds. */
  readonly records: { offset: number; start: number; end: number }[];
  /** Offset just past the last intact record. */
  readonly goodEnd: number;
  /** Why the scan stopped before the end of the file, or null when it did not. */
  readonly fault: string | null;
  /** Whether the fault can only be a torn final write (nothing intact follows it). */
  readonly torn: boolean;
}

/** Reads a little-endian u32 without allocating: the tail scan calls this at every offset. */
function u32At(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>>
    0;
}

/** Checks the record header at `at`; returns the payload length or null if the header is bad. */
function headerLength(bytes: Uint8Array, at: number): number | null {
  if (at + RECORD_HEADER_BYTES > bytes.length) return null;
  if (crc32c(bytes, at, at + 8) !== u32At(bytes, at + 8)) return null;
  const length = u32At(bytes, at);
  return length === 0 ? null : length;
}

/** Whether an intact record (header and payload checksums) starts at `at`. */
function intactAt(bytes: Uint8Array, at: number): boolean {
  const length = headerLength(bytes, at);
  if (length === null || at + RECORD_HEADER_BYTES + length > bytes.length) return false;
  const start = at + RECORD_HEADER_BYTES;
  return crc32c(bytes, start, start + length) === u32At(bytes, at + 4);
}

/**
 * Whether any intact record starts in `[from, bytes.length)`. This is what
 * tells a torn tail (garbage to the end) from damage in the middle of the log
 * (good records after the bad one). Linear in the rest of the file; only
 * runs when a file is damaged.
 */
function intactAfter(bytes: Uint8Array, from: number): boolean {
  for (let at = from; at + RECORD_HEADER_BYTES < bytes.length; at++) {
    if (intactAt(bytes, at)) return true;
  }
  return false;
}

/** Splits a file into records, stopping at the first bad one. */
function scanRecords(bytes: Uint8Array): Scan {
  const records: { offset: number; start: number; end: number }[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + RECORD_HEADER_BYTES > bytes.length) {
      return { records, goodEnd: at, fault: "the record header is cut short", torn: true };
    }
    const length = headerLength(bytes, at);
    if (length === null) {
      const torn = !intactAfter(bytes, at + 1);
      return { records, goodEnd: at, fault: "the record header checksum fails", torn };
    }
    const end = at + RECORD_HEADER_BYTES + length;
    if (end > bytes.length) {
      return {
        records,
        goodEnd: at,
        fault: `the record needs ${length} payload bytes, the file ends after ${
          bytes.length - at - RECORD_HEADER_BYTES
        }`,
        torn: true,
      };
    }
    if (!intactAt(bytes, at)) {
      // The header is intact, so the length is right: look for records after it.
      const torn = !intactAfter(bytes, end);
      return { records, goodEnd: at, fault: "the payload checksum fails", torn };
    }
    records.push({ offset: at, start: at + RECORD_HEADER_BYTES, end });
    at = end;
  }
  return { records, goodEnd: at, fault: null, torn: false };
}

// -------------------------------------------------------------------- files

function segmentName(seq: number): string {
  return `log-${String(seq).padStart(16, "0")}.wal`;
}

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

/** Whether process `pid` runs (EPERM: it exists but belongs to someone else). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === "EPERM";
  }
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`Cannot write: the file took ${bytesWritten} bytes`);
    done += bytesWritten;
  }
}

async function readBytes(path: string): Promise<Uint8Array> {
  const buffer = await readFile(path);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** One segment as the storage tracks it. */
interface Segment {
  readonly seq: number;
  readonly path: string;
  /** Bytes of intact records: where the next append goes. */
  bytes: number;
  /** Highest entry index any batch in it wrote (0: none), to know when it may be deleted. */
  maxIndex: number;
  /** Whether it holds a batch yet (a segment never rotates before its first batch). */
  hasBatch: boolean;
}

/**
 * Creates a storage in directory `dir` (created if missing): see the module
 * doc for the format and what is durable when. Nothing is touched until the
 * first call; `load` (or the first write) takes the lock and replays the log.
 *
 * @param dir The directory; one node per directory.
 * @param options Segment size, warning and fsync hooks.
 * @returns The storage.
 * @throws {RangeError} When `segmentBytes` is not a positive integer.
 *
 * @example Save, close, reopen
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { fileStorage } from "./file.ts";
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
  return new FileStorage(resolve(dir), {
    segmentBytes,
    warn: options.onWarning ?? ((message) => console.warn(message)),
    synced: options.onSync ?? (() => {}),
  });
}

interface Settings {
  readonly segmentBytes: number;
  readonly warn: (message: string) => void;
  readonly synced: (path: string) => void;
}

/** The replayed log before the snapshot rule is applied. */
interface Replay {
  hard: HardState;
  /** A contiguous run of entries (a suffix of the log as written). */
  entries: Entry[];
}

class FileStorage implements Storage {
  readonly #dir: string;
  readonly #settings: Settings;
  #state: "new" | "locked" | "ready" | "closed" = "new";
  #failure: unknown = null;
  #busy = false;

  #segments: Segment[] = [];
  #active: FileHandle | null = null;
  #hard: HardState = { term: 0, vote: null, commit: 0 };
  #snapIndex = 0;
  #snapHash = GENESIS_HASH;
  /** Hashes of the entries `first..last`, to decide what a snapshot keeps. */
  #hashes: string[] = [];

  constructor(dir: string, settings: Settings) {
    this.#dir = dir;
    this.#settings = settings;
  }

  load(): Promise<PersistedState> {
    return this.#exclusive("load", () => this.#open());
  }

  save(hardState: HardState | null, entries: readonly Entry[]): Promise<void> {
    return this.#exclusive("save", async () => {
      await this.#ready();
      this.#checkWritable();
      if (hardState === null && entries.length === 0) return;
      this.#checkBatch(entries);
      const record = encodeBatch(hardState, entries);
      await this.#guard(() => this.#append(record, hardState, entries));
    });
  }

  saveSnapshot(snapshot: Snapshot): Promise<void> {
    return this.#exclusive("save a snapshot", async () => {
      await this.#ready();
      this.#checkWritable();
      const { index } = snapshot.meta;
      if (index < this.#snapIndex) {
        throw new RangeError(
          `Cannot save a snapshot at index ${index}: the storage holds one at ${this.#snapIndex}`,
        );
      }
      const record = encodeSnapshot(snapshot);
      await this.#guard(() => this.#installSnapshot(record, snapshot));
    });
  }

  async close(): Promise<void> {
    if (this.#state === "closed") return;
    await this.#release("closed");
  }

  /** Closes the active segment and gives up the lock. */
  async #release(next: "new" | "closed"): Promise<void> {
    this.#state = next;
    const active = this.#active;
    this.#active = null;
    await active?.close();
    if (heldLocks.delete(this.#dir)) await rm(join(this.#dir, LOCK_FILE), { force: true });
  }

  // ------------------------------------------------------------- plumbing

  /** Runs one call at a time: the contract says calls never overlap, so overlap is a bug. */
  async #exclusive<T>(action: string, fn: () => Promise<T>): Promise<T> {
    if (this.#state === "closed") throw new Error(`Cannot ${action}: ${this.#dir} is closed`);
    if (this.#busy) {
      throw new Error(`Cannot ${action} while another call on ${this.#dir} is in progress`);
    }
    this.#busy = true;
    try {
      return await fn();
    } finally {
      this.#busy = false;
    }
  }

  /** Takes the lock (if not yet held) and replays the files. */
  async #open(): Promise<PersistedState> {
    const fresh = this.#state === "new";
    await this.#lock();
    try {
      const state = await this.#replay();
      this.#state = "ready";
      return state;
    } catch (error) {
      // A node that fails to start may be retried in this process: do not keep the lock.
      if (fresh) await this.#release("new");
      throw error;
    }
  }

  /** Lets a write come before `load`, which the contract does not promise. */
  async #ready(): Promise<void> {
    if (this.#state !== "ready") await this.#open();
  }

  #checkWritable(): void {
    if (this.#failure !== null) {
      throw new Error(`Cannot write to ${this.#dir} after an earlier write failed`, {
        cause: this.#failure,
      });
    }
  }

  /** A failed write leaves the files in an unknown state: refuse every later write. */
  async #guard(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.#failure = error;
      throw error;
    }
  }

  async #sync(handle: FileHandle, path: string, data: boolean): Promise<void> {
    if (data) await handle.datasync();
    else await handle.sync();
    this.#settings.synced(path);
  }

  /** Makes creations, renames and deletions in the directory durable. */
  async #syncDir(): Promise<void> {
    let handle: FileHandle;
    try {
      handle = await open(this.#dir, "r");
    } catch (error) {
      // Windows cannot open a directory; its file system orders metadata itself.
      if (process.platform === "win32") return;
      throw error;
    }
    try {
      await this.#sync(handle, this.#dir, false);
    } finally {
      await handle.close();
    }
  }

  // ----------------------------------------------------------------- lock

  async #lock(): Promise<void> {
    if (this.#state !== "new") return;
    await mkdir(this.#dir, { recursive: true });
    const path = join(this.#dir, LOCK_FILE);
    if (heldLocks.has(this.#dir)) {
      throw new Error(`Cannot open storage in ${this.#dir}: this process already has it open`);
    }
    // Two attempts: the second follows the removal of a stale lock.
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await this.#tryCreateLock(path)) {
        heldLocks.add(this.#dir);
        this.#state = "locked";
        return;
      }
      const owner = await this.#lockOwner(path);
      if (owner !== null && owner !== process.pid && pidAlive(owner)) {
        throw new Error(
          `Cannot open storage in ${this.#dir}: it is locked by running process ${owner} (${path})`,
        );
      }
      this.#settings.warn(
        `Taking over the stale lock ${path} of process ${owner ?? "unknown"}, which is not running`,
      );
      await rm(path, { force: true });
    }
    throw new Error(`Cannot open storage in ${this.#dir}: another process keeps taking ${path}`);
  }

  async #tryCreateLock(path: string): Promise<boolean> {
    let handle: FileHandle;
    try {
      handle = await open(path, "wx");
    } catch (error) {
      if (errorCode(error) === "EEXIST") return false;
      throw error;
    }
    try {
      await handle.writeFile(`${process.pid}\n`);
    } finally {
      await handle.close();
    }
    return true;
  }

  /** The pid in a lock file; null if unreadable (a crash between create and write). */
  async #lockOwner(path: string): Promise<number | null> {
    try {
      const pid = Number.parseInt(await readFile(path, "utf8"), 10);
      return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
    } catch (error) {
      if (errorCode(error) === "ENOENT") return null;
      throw error;
    }
  }

  // --------------------------------------------------------------- replay

  async #replay(): Promise<PersistedState> {
    const active = this.#active;
    this.#active = null;
    await active?.close();
    const names = await readdir(this.#dir);
    if (names.includes(SNAPSHOT_TMP_FILE)) await rm(join(this.#dir, SNAPSHOT_TMP_FILE));
    const snapshot = names.includes(SNAPSHOT_FILE) ? await this.#readSnapshot() : null;
    const snapIndex = snapshot?.meta.index ?? 0;
    const snapHash = snapshot?.meta.hash ?? GENESIS_HASH;
    const seqs = this.#segmentSeqs(names);
    const replay: Replay = { hard: { term: 0, vote: null, commit: 0 }, entries: [] };
    const segments: Segment[] = [];
    for (let i = 0; i < seqs.length; i++) {
      const segment = await this.#replaySegment(seqs[i]!, i === seqs.length - 1, snapIndex, replay);
      if (segment !== null) segments.push(segment);
    }
    const entries = this.#afterSnapshot(replay.entries, snapIndex, snapHash);
    this.#segments = segments;
    this.#hard = replay.hard;
    this.#snapIndex = snapIndex;
    this.#snapHash = snapHash;
    this.#hashes = entries.map((e) => e.hash);
    const last = segments.at(-1);
    if (last !== undefined) this.#active = await open(last.path, "r+");
    return { hardState: replay.hard, snapshot, entries };
  }

  async #readSnapshot(): Promise<Snapshot> {
    const path = join(this.#dir, SNAPSHOT_FILE);
    const bytes = await readBytes(path);
    const scan = scanRecords(bytes);
    const first = scan.records[0];
    // The file was fsynced before it was renamed into place: any damage is corruption.
    if (scan.fault !== null) throw new CorruptLogError(path, scan.goodEnd, scan.fault);
    if (first === undefined || scan.records.length !== 1) {
      throw new CorruptLogError(path, null, `it holds ${scan.records.length} records, not 1`);
    }
    try {
      return decodeSnapshot(bytes, first.start, first.end);
    } catch (error) {
      if (error instanceof MalformedError) throw new CorruptLogError(path, 0, error.message);
      throw error;
    }
  }

  /** Sequence numbers of the segment files, checked to be consecutive. */
  #segmentSeqs(names: readonly string[]): number[] {
    const seqs = names
      .map((name) => SEGMENT_NAME.exec(name)?.[1])
      .filter((seq) => seq !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    for (let i = 1; i < seqs.length; i++) {
      if (seqs[i] !== seqs[i - 1]! + 1) {
        throw new CorruptLogError(
          this.#dir,
          null,
          `segment ${segmentName(seqs[i - 1]! + 1)} is missing`,
        );
      }
    }
    return seqs;
  }

  /**
   * Replays one segment into `replay`. Returns the segment, or null when it
   * was the last one and held nothing intact (a crash as it was created): its
   * file is deleted.
   */
  async #replaySegment(
    seq: number,
    isLast: boolean,
    snapIndex: number,
    replay: Replay,
  ): Promise<Segment | null> {
    const path = join(this.#dir, segmentName(seq));
    const bytes = await readBytes(path);
    let scan = scanRecords(bytes);
    if (bytes.length === 0) {
      // Created, but the crash came before its first write reached the disk.
      scan = { ...scan, fault: "the segment is empty", torn: true };
    }
    if (scan.fault !== null && !(isLast && scan.torn)) {
      throw new CorruptLogError(path, scan.goodEnd, scan.fault);
    }
    const segment: Segment = { seq, path, bytes: scan.goodEnd, maxIndex: 0, hasBatch: false };
    for (const [i, { offset, start, end }] of scan.records.entries()) {
      let record: LogRecord;
      try {
        record = decodeLogRecord(bytes, start, end);
      } catch (error) {
        if (error instanceof MalformedError) throw new CorruptLogError(path, offset, error.message);
        throw error;
      }
      const fault = applyRecord(record, i === 0, seq, snapIndex, replay, segment);
      if (fault !== null) throw new CorruptLogError(path, offset, fault);
    }
    pruneAtOrBelow(replay.entries, snapIndex);
    if (scan.fault !== null) return await this.#cutTornTail(segment, scan.fault);
    return segment;
  }

  /** Discards a torn tail: truncates (and fsyncs) the file, or deletes it when nothing is left. */
  async #cutTornTail(segment: Segment, fault: string): Promise<Segment | null> {
    this.#settings.warn(
      `Discarding a torn write at the tail of ${segment.path} from offset ${segment.bytes}: ${fault}`,
    );
    if (segment.bytes === 0) {
      await unlink(segment.path);
      await this.#syncDir();
      return null;
    }
    const handle = await open(segment.path, "r+");
    try {
      await handle.truncate(segment.bytes);
      await this.#sync(handle, segment.path, false);
    } finally {
      await handle.close();
    }
    return segment;
  }

  /**
   * Applies the snapshot rule to the replayed entries: keep those after the
   * snapshot when they continue its chain, drop them all when they do not (a
   * crash came between writing a snapshot that superseded them and deleting
   * their segments). Whatever is kept must chain from the snapshot.
   */
  #afterSnapshot(replayed: readonly Entry[], snapIndex: number, snapHash: string): Entry[] {
    const from = replayed.findIndex((e) => e.index > snapIndex);
    let entries = from < 0 ? [] : replayed.slice(from);
    const head = entries[0];
    if (
      snapIndex > 0 && head !== undefined && head.index === snapIndex + 1 &&
      entryHash(snapHash, head) !== head.hash
    ) {
      entries = [];
    }
    const fault = chainFault(snapIndex, snapHash, entries);
    if (fault !== null) {
      throw new CorruptLogError(
        this.#dir,
        null,
        `the log does not chain from ${
          snapIndex === 0 ? "the start" : `the snapshot at index ${snapIndex}`
        }: ${fault}`,
      );
    }
    return entries;
  }

  // ---------------------------------------------------------------- write

  #first(): number {
    return this.#snapIndex + 1;
  }

  #last(): number {
    return this.#snapIndex + this.#hashes.length;
  }

  #checkBatch(entries: readonly Entry[]): void {
    const head = entries[0];
    if (head === undefined) return;
    if (head.index < this.#first() || head.index > this.#last() + 1) {
      throw new RangeError(
        `Cannot save entry ${head.index}: the log holds ${this.#first()}..${this.#last()}`,
      );
    }
    for (let i = 1; i < entries.length; i++) {
      if (entries[i]!.index !== head.index + i) {
        throw new RangeError(`Cannot save entries that are not consecutive at ${head.index + i}`);
      }
    }
  }

  async #append(
    record: Uint8Array,
    hard: HardState | null,
    entries: readonly Entry[],
  ): Promise<void> {
    let segment = this.#segments.at(-1);
    if (
      segment === undefined || this.#active === null ||
      (segment.hasBatch && segment.bytes + record.length > this.#settings.segmentBytes)
    ) {
      segment = await this.#rotate(record);
    } else {
      await writeAll(this.#active, record, segment.bytes);
      await this.#sync(this.#active, segment.path, true);
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
    const handle = await open(path, "wx");
    try {
      await writeAll(handle, bytes, 0);
      await this.#sync(handle, path, false);
      await this.#syncDir();
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

  async #installSnapshot(record: Uint8Array, snapshot: Snapshot): Promise<void> {
    const { index, hash } = snapshot.meta;
    const hashAt = index === this.#snapIndex ? this.#snapHash : this.#hashes[index - this.#first()];
    const continues = hashAt === hash;
    await this.#writeSnapshotFile(record);
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
      await unlink(segment.path);
      await this.#syncDir();
    }
    this.#segments = this.#segments.slice(drop);
  }

  /** Writes the snapshot to a temporary file, fsyncs it, renames it into place, fsyncs the directory. */
  async #writeSnapshotFile(record: Uint8Array): Promise<void> {
    const tmp = join(this.#dir, SNAPSHOT_TMP_FILE);
    const handle = await open(tmp, "w");
    try {
      await writeAll(handle, record, 0);
      await this.#sync(handle, tmp, false);
    } finally {
      await handle.close();
    }
    await rename(tmp, join(this.#dir, SNAPSHOT_FILE));
    await this.#syncDir();
  }
}

/**
 * Applies one record to the replay. Returns a description of what is wrong
 * with it, or null.
 */
function applyRecord(
  record: LogRecord,
  first: boolean,
  seq: number,
  snapIndex: number,
  replay: Replay,
  segment: Segment,
): string | null {
  if (record.type === "segment") {
    if (!first) return "a segment header in the middle of a segment";
    if (record.seq !== seq) return `the header says segment ${record.seq}`;
    replay.hard = record.hard;
    return null;
  }
  if (first) return "the segment does not start with a segment header";
  segment.hasBatch = true;
  if (record.hard !== null) replay.hard = record.hard;
  const head = record.entries[0];
  if (head === undefined) return null;
  for (let i = 1; i < record.entries.length; i++) {
    if (record.entries[i]!.index !== head.index + i) return "the batch is not consecutive";
  }
  segment.maxIndex = Math.max(segment.maxIndex, record.entries.at(-1)!.index);
  return appendReplayed(replay.entries, record.entries, snapIndex);
}

/**
 * Appends a batch to the replayed run, truncating what it replaces. The run
 * is a suffix of the log as written (older segments may be gone), so a batch
 * that starts before the run replaces all of it, and one that starts past its
 * end is fine only below the snapshot (the entries in between were compacted)
 * or when nothing was replayed yet.
 */
function appendReplayed(run: Entry[], batch: readonly Entry[], snapIndex: number): string | null {
  const f = batch[0]!.index;
  const base = run[0]?.index;
  const last = run.at(-1)?.index;
  if (base === undefined || last === undefined || f < base) {
    run.length = 0;
  } else if (f <= last + 1) {
    run.length = f - base;
  } else if (f <= snapIndex + 1) {
    run.length = 0;
  } else {
    return `the batch starts at index ${f} but the log ends at ${last}`;
  }
  for (const e of batch) run.push(e);
  return null;
}

/** Drops replayed entries the snapshot covers, so replay memory stays near the live log. */
function pruneAtOrBelow(run: Entry[], snapIndex: number): void {
  const base = run[0]?.index;
  if (base === undefined || base > snapIndex) return;
  run.splice(0, Math.min(run.length, snapIndex - base + 1));
}
