/**
 * The file storage's on-disk record format, version 1: how segment headers,
 * batches and snapshots are encoded and decoded, and how a file is split
 * into intact records, telling a torn tail from damage in the middle.
 *
 * ## Records
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
 * @module
 */

import { bytesToHex } from "@noble/hashes/utils.js";
import type { Configuration } from "../../core/config.ts";
import type { Entry, EntryKind } from "../../core/entry.ts";
import type { HardState } from "../../core/types.ts";
import type { Snapshot } from "../storage.ts";
import { crc32c } from "./crc.ts";

/** Version of the on-disk format, written in every segment and snapshot. */
export const FILE_FORMAT_VERSION = 1;
/** Bytes of a record header: payload length, payload CRC, header CRC. */
export const RECORD_HEADER_BYTES = 12;

const MAGIC = 0x474c4357;
const TYPE_SEGMENT = 1;
const TYPE_BATCH = 2;
const TYPE_SNAPSHOT = 3;
const NULL_STRING = 0xffffffff;
const PAYLOAD_BYTES_MAX = 0xffffffff;
const KIND_CODES: Record<EntryKind, number> = { command: 0, noop: 1, config: 2 };
const KINDS: readonly EntryKind[] = ["command", "noop", "config"];

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * A payload that passed its checksum yet does not decode: a bug or another
 * format. The storage turns it into a `CorruptLogError` naming the file.
 */
export class MalformedError extends Error {}

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

  /**
   * Hand-written rather than `hexToBytes` from `@noble/hashes/utils.js`: it
   * runs for every entry of every save, and `hexToBytes` allocates an array
   * per hash that then needs a copy. Measured on Deno 2.9, `encodeBatch` of
   * 256 entries took about 150 µs this way and 175 µs with `hexToBytes`
   * (the fsyncs in `bench/storage_bench.ts` drown the difference). Parsing
   * by hand also keeps refusing uppercase hashes, which `hexToBytes` accepts.
   */
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
    return bytesToHex(this.#bytes.subarray(at, at + 32));
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

/**
 * Encodes the record that opens a segment.
 *
 * @param seq The segment's sequence number, as in its file name.
 * @param hard The hard state in force, restated so older segments may go.
 * @returns The record, header included.
 * @throws {TypeError} When a number is not a non-negative safe integer.
 */
export function encodeSegmentHeader(seq: number, hard: HardState): Uint8Array {
  const vote = encodeVote(hard);
  const w = recordWriter(1 + 4 + 1 + 8 + hardStateBytes(vote));
  w.u8(TYPE_SEGMENT);
  w.u32(MAGIC);
  w.u8(FILE_FORMAT_VERSION);
  w.u64(seq, "segment number");
  writeHardState(w, hard, vote);
  return sealRecord(w);
}

/**
 * Encodes the record of one `save`.
 *
 * @param hard The hard state to save, or null to keep the last one.
 * @param entries Consecutive entries (may be empty).
 * @returns The record, header included.
 * @throws {TypeError} When a number is not a non-negative safe integer or a
 *   hash is not 64 lowercase hex digits.
 * @throws {RangeError} When the record would exceed 4 GiB.
 */
export function encodeBatch(hard: HardState | null, entries: readonly Entry[]): Uint8Array {
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

/**
 * Encodes the record of `snapshot.bin`.
 *
 * @param snapshot The snapshot.
 * @returns The record, header included.
 * @throws {TypeError} When a number or the hash is malformed.
 * @throws {RangeError} When the record would exceed 4 GiB.
 */
export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
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

/** A decoded record of a segment: its header, or one batch. */
export type LogRecord =
  | { readonly type: "segment"; readonly seq: number; readonly hard: HardState }
  | { readonly type: "batch"; readonly hard: HardState | null; readonly entries: Entry[] };

function readMagic(r: Reader): void {
  if (r.u32() !== MAGIC) throw new MalformedError("wrong magic number");
  const version = r.u8();
  if (version !== FILE_FORMAT_VERSION) {
    throw new MalformedError(`format version ${version}, this code reads ${FILE_FORMAT_VERSION}`);
  }
}

/**
 * Decodes the payload of a segment's record.
 *
 * @param bytes The file.
 * @param payload Where the payload lies in `bytes`, as {@linkcode scanRecords} found it.
 * @returns The record; entries own their data, not a view of `bytes`.
 * @throws {MalformedError} When the payload does not decode.
 */
export function decodeLogRecord(bytes: Uint8Array, payload: RecordSpan): LogRecord {
  const r = new Reader(bytes, payload.start, payload.end);
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

/**
 * Decodes the payload of the snapshot record.
 *
 * @param bytes The file.
 * @param payload Where the payload lies in `bytes`, as {@linkcode scanRecords} found it.
 * @returns The snapshot.
 * @throws {MalformedError} When the payload does not decode.
 */
export function decodeSnapshot(bytes: Uint8Array, payload: RecordSpan): Snapshot {
  const r = new Reader(bytes, payload.start, payload.end);
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

/** Where one intact record lies in its file. */
export interface RecordSpan {
  /** Offset of the record's header. */
  readonly offset: number;
  /** Offset of the first payload byte. */
  readonly start: number;
  /** Offset just past the payload (and the record). */
  readonly end: number;
}

/** What a scan of one file found: the intact records, then where it stopped. */
export interface Scan {
  /** The intact records, in file order. */
  readonly records: RecordSpan[];
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

/**
 * Splits a file into records, stopping at the first bad one. Checksums are
 * checked here; payloads are not decoded.
 *
 * @param bytes The whole file.
 * @returns The intact records and, when it stopped early, why and whether
 *   the damage can only be a torn final write.
 */
export function scanRecords(bytes: Uint8Array): Scan {
  const records: RecordSpan[] = [];
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
