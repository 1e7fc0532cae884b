/**
 * The file storage's on-disk record format, version 1: how segment headers,
 * batches and snapshots are encoded and decoded, and how a file is split
 * into intact records, telling a torn tail from damage: damage in the middle
 * (an intact record follows), or a final record that is whole but for one
 * flipped bit (a bit flipped at rest, which may hit an acknowledged record;
 * a torn write changes whole sectors or cuts the file short).
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
 * The payload's first byte is its type. Fields are written with the
 * primitives of `src/binary/` (their names there in brackets): a `u64`
 * [`u53`] is a non-negative safe integer stored as two u32, low word first;
 * a `str` [`string`, `nullableString`] is a u32 byte length (0xFFFFFFFF for
 * null) then UTF-8; a hash is its 32 raw bytes.
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

import {
  ByteReader,
  ByteWriter,
  ENTRY_KIND_CODES,
  MalformedError,
  readEntryKind,
  utf8Length,
} from "../../binary/mod.ts";
import { concatBytes } from "@noble/hashes/utils.js";
import type { Configuration } from "../../core/config.ts";
import type { Entry } from "../../core/entry.ts";
import type { HardState } from "../../core/types.ts";
import type { Snapshot } from "../storage.ts";
import { crc32c, crc32cFlippedBit } from "./crc.ts";

/**
 * A payload that passed its checksum yet does not decode: a bug or another
 * format. Names the field and its offset in the file; the storage turns it
 * into a `CorruptLogError` naming the file.
 */
export { MalformedError };

/** Version of the on-disk format, written in every segment and snapshot. */
export const FILE_FORMAT_VERSION = 1;
/** Bytes of a record header: payload length, payload CRC, header CRC. */
export const RECORD_HEADER_BYTES = 12;

const MAGIC = 0x474c4357;
const TYPE_SEGMENT = 1;
const TYPE_BATCH = 2;
const TYPE_SNAPSHOT = 3;
const PAYLOAD_BYTES_MAX = 0xffffffff;

function hardStateBytes(hard: HardState): number {
  return 8 + 8 + 4 + (hard.vote === null ? 0 : utf8Length(hard.vote));
}

function writeHardState(w: ByteWriter, hard: HardState): void {
  w.u53(hard.term, "term");
  w.u53(hard.commit, "commit index");
  w.nullableString(hard.vote);
}

function readHardState(r: ByteReader): HardState {
  const term = r.u53("term");
  const commit = r.u53("commit");
  const vote = r.nullableString("vote");
  return { term, vote, commit };
}

/**
 * Starts a record of exactly `payloadBytes`: its header, zero until
 * {@linkcode sealRecord} fills it in. Sized exactly, the writer never grows
 * and its bytes are returned without a copy.
 */
function recordWriter(payloadBytes: number): ByteWriter {
  if (payloadBytes > PAYLOAD_BYTES_MAX) {
    throw new RangeError(`Cannot write a record of ${payloadBytes} bytes: the limit is 4 GiB`);
  }
  const w = new ByteWriter(RECORD_HEADER_BYTES + payloadBytes);
  w.u32(0);
  w.u32(0);
  w.u32(0);
  return w;
}

/** Fills in the header once the payload is written. */
function sealRecord(bytes: Uint8Array): Uint8Array {
  sealHeader(bytes, bytes.length - RECORD_HEADER_BYTES, crc32c(bytes, RECORD_HEADER_BYTES));
  return bytes;
}

/**
 * Fills in a record's header (its first 12 bytes) for a payload of
 * `payloadBytes` whose checksum is `payloadCrc`.
 *
 * @param head The record's first bytes, header first.
 * @param payloadBytes The payload's length.
 * @param payloadCrc The payload's CRC-32C.
 */
export function sealHeader(head: Uint8Array, payloadBytes: number, payloadCrc: number): void {
  const view = new DataView(head.buffer, head.byteOffset, RECORD_HEADER_BYTES);
  view.setUint32(0, payloadBytes, true);
  view.setUint32(4, payloadCrc, true);
  view.setUint32(8, crc32c(head, 0, 8), true);
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
  const w = recordWriter(1 + 4 + 1 + 8 + hardStateBytes(hard));
  w.u8(TYPE_SEGMENT);
  w.u32(MAGIC);
  w.u8(FILE_FORMAT_VERSION);
  w.u53(seq, "segment number");
  writeHardState(w, hard);
  return sealRecord(w.finish());
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
  let size = 1 + 1 + (hard === null ? 0 : hardStateBytes(hard)) + 4;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    size += 8 + 8 + 1 + 8 + 4 + utf8Length(e.proposer) + 32 + 4 + e.data.length;
  }
  const w = recordWriter(size);
  w.u8(TYPE_BATCH);
  w.u8(hard === null ? 0 : 1);
  if (hard !== null) writeHardState(w, hard);
  w.u32(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    w.u53(e.index, "index");
    w.u53(e.term, "term");
    w.u8(ENTRY_KIND_CODES[e.kind]);
    w.f64(e.timeMs);
    w.string(e.proposer);
    w.hash(e.hash);
    w.bytes(e.data);
  }
  return sealRecord(w.finish());
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
  const { head, data } = encodeSnapshotHead(snapshot);
  return sealRecord(concatBytes(head, data));
}

/**
 * Encodes the record of `snapshot.bin` up to its data, which follows as
 * is: so that a large snapshot's data is neither copied nor checksummed in
 * one go. The header stays zero until {@linkcode sealHeader}.
 *
 * @param snapshot The snapshot.
 * @returns The record's first bytes, header included, and its data.
 * @throws {TypeError} When a number or the hash is malformed.
 * @throws {RangeError} When the record would exceed 4 GiB.
 */
export function encodeSnapshotHead(
  snapshot: Snapshot,
): { readonly head: Uint8Array; readonly data: Uint8Array } {
  const { meta, data } = snapshot;
  const config = JSON.stringify(meta.config);
  const fields = 1 + 4 + 1 + 8 + 8 + 32 + 4 + utf8Length(config);
  if (fields + data.length > PAYLOAD_BYTES_MAX) {
    throw new RangeError(
      `Cannot write a record of ${fields + data.length} bytes: the limit is 4 GiB`,
    );
  }
  const w = recordWriter(fields);
  w.u8(TYPE_SNAPSHOT);
  w.u32(MAGIC);
  w.u8(FILE_FORMAT_VERSION);
  w.u53(meta.index, "snapshot index");
  w.u53(meta.term, "snapshot term");
  w.hash(meta.hash);
  w.string(config);
  return { head: w.finish(), data };
}

/** A decoded record of a segment: its header, or one batch. */
export type LogRecord =
  | { readonly type: "segment"; readonly seq: number; readonly hard: HardState }
  | { readonly type: "batch"; readonly hard: HardState | null; readonly entries: Entry[] };

function readMagic(r: ByteReader): void {
  const magicAt = r.offset;
  const magic = r.u32("magic");
  if (magic !== MAGIC) {
    throw new MalformedError(
      "magic",
      magicAt,
      `0x${magic.toString(16)} is not 0x${MAGIC.toString(16)}`,
    );
  }
  const versionAt = r.offset;
  const version = r.u8("format version");
  if (version !== FILE_FORMAT_VERSION) {
    throw new MalformedError(
      "format version",
      versionAt,
      `${version} is unknown, this code reads ${FILE_FORMAT_VERSION}`,
    );
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
  const r = new ByteReader(bytes, payload.start, payload.end);
  const typeAt = r.offset;
  const type = r.u8("record type");
  let record: LogRecord;
  if (type === TYPE_SEGMENT) {
    readMagic(r);
    record = { type: "segment", seq: r.u53("segment number"), hard: readHardState(r) };
  } else if (type === TYPE_BATCH) {
    const flags = r.u8("flags");
    const hard = flags & 1 ? readHardState(r) : null;
    const count = r.u32("entry count");
    const entries: Entry[] = [];
    for (let i = 0; i < count; i++) entries.push(readEntry(r));
    record = { type: "batch", hard, entries };
  } else {
    throw new MalformedError("record type", typeAt, `${type} is unknown`);
  }
  r.end("record");
  return record;
}

function readEntry(r: ByteReader): Entry {
  const index = r.u53("index");
  const term = r.u53("term");
  const kind = readEntryKind(r);
  const timeMs = r.f64("timeMs");
  const proposer = r.string("proposer");
  const hash = r.hash("hash");
  const data = r.bytes("data");
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
  const r = new ByteReader(bytes, payload.start, payload.end);
  const type = r.u8("record type");
  if (type !== TYPE_SNAPSHOT) {
    throw new MalformedError("record type", payload.start, `${type} is not a snapshot (3)`);
  }
  readMagic(r);
  const index = r.u53("snapshot index");
  const term = r.u53("snapshot term");
  const hash = r.hash("snapshot hash");
  const configAt = r.offset;
  const json = r.string("configuration");
  let config: Configuration;
  try {
    config = JSON.parse(json) as Configuration;
  } catch {
    throw new MalformedError("configuration", configAt, "is not JSON");
  }
  if (!Array.isArray(config?.members)) {
    throw new MalformedError("configuration", configAt, "has no members");
  }
  const data = r.raw(r.remaining, "data");
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
 * Where one flipped bit would make the record at `at` intact: the offset of
 * the byte holding it, or null when no single bit does. A torn write leaves
 * a record cut short, or with whole sectors missing, zeroed or stale; a bit
 * flipped at rest leaves every byte in place but one bit. Only the second
 * can hit a record that was written whole, and so perhaps acknowledged,
 * which load must then report, never drop as a torn tail.
 */
function flippedRecordBit(bytes: Uint8Array, at: number): number | null {
  if (at + RECORD_HEADER_BYTES > bytes.length) return null;
  let header = bytes.subarray(at, at + 8);
  const fixHeader = crc32cFlippedBit(bytes, at, at + 8, u32At(bytes, at + 8));
  if (fixHeader === null) return null;
  let flipped: number | null = fixHeader === "intact" ? null : at + 8;
  if (typeof fixHeader === "object") {
    // Read the header with the bit put back, without touching the file's bytes.
    header = header.slice();
    header[fixHeader.offset - at]! ^= 1 << fixHeader.bit;
    flipped = fixHeader.offset;
  }
  const length = u32At(header, 0);
  const start = at + RECORD_HEADER_BYTES;
  if (length === 0 || start + length > bytes.length) return null;
  const fixPayload = crc32cFlippedBit(bytes, start, start + length, u32At(header, 4));
  if (fixPayload === "intact") return flipped;
  if (fixPayload === null || flipped !== null) return null;
  return fixPayload === "checksum" ? at + 4 : fixPayload.offset;
}

/**
 * Tells a torn final write from damage, for a bad record at `at`: damage when
 * an intact record starts at or after `after`, or when one flipped bit would
 * make the record intact; a torn write otherwise.
 */
function tailFault(
  bytes: Uint8Array,
  at: number,
  after: number,
  fault: string,
): { fault: string; torn: boolean } {
  if (intactAfter(bytes, after)) return { fault, torn: false };
  const flipped = flippedRecordBit(bytes, at);
  if (flipped === null) return { fault, torn: true };
  return {
    fault: `${fault}, yet the record is whole but for one bit at offset ${flipped}: ` +
      "damage at rest, not a torn write",
    torn: false,
  };
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
      const fault = "the record header checksum fails";
      return { records, goodEnd: at, ...tailFault(bytes, at, at + 1, fault) };
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
      return { records, goodEnd: at, ...tailFault(bytes, at, end, "the payload checksum fails") };
    }
    records.push({ offset: at, start: at + RECORD_HEADER_BYTES, end });
    at = end;
  }
  return { records, goodEnd: at, fault: null, torn: false };
}
