/**
 * The backup file of `GET /v1/snapshot` and `watercraft snapshot save|restore`:
 * a node's replicated state at one applied index, checksummed end to end.
 *
 * Layout (big-endian lengths):
 *
 * | bytes     | field                                                              |
 * | --------- | ------------------------------------------------------------------ |
 * | 0-7       | magic `WCBACKUP`                                                   |
 * | 8         | u8 format version `1`                                              |
 * | 9-12      | u32 length `h` of the header                                       |
 * | 13-       | header: UTF-8 JSON {@linkcode BackupHeader}                        |
 * | then      | `dataBytes` bytes: the node snapshot (state machine and keys)      |
 * | last 32   | SHA-256 of every byte before it                                    |
 *
 * The checksum comes last so that the file can be streamed as it is made; a
 * reader checks it before trusting anything else.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { Configuration } from "../core/config.ts";

/** The first bytes of every backup file. */
const MAGIC = new TextEncoder().encode("WCBACKUP");
/** The layout this module writes and reads. */
const FORMAT_VERSION = 1;
/** Bytes before the header: magic, version, header length. */
const PREFIX_BYTES = MAGIC.length + 1 + 4;
/** Bytes of the trailing checksum. */
const CHECKSUM_BYTES = 32;
/** A header longer than this is not one this module wrote. */
const HEADER_BYTES_MAX = 1 << 20;

/** What a backup says about itself. */
export interface BackupHeader {
  /** Always `"watercraft-backup"`. */
  readonly format: "watercraft-backup";
  /** The applied index the state stands at. */
  readonly index: number;
  /** That entry's term. */
  readonly term: number;
  /** The head: hash of the entry at `index` (64 hex digits). */
  readonly head: string;
  /** The configuration of the cluster it was taken from. */
  readonly config: Configuration;
  /** The node that answered. */
  readonly nodeId: string;
  /** When it was taken, ISO 8601 by that node's clock (informative only). */
  readonly takenAt: string;
  /** Length of the node snapshot that follows the header. */
  readonly dataBytes: number;
}

/** A backup read back and checked. */
export interface Backup {
  /** What it says about itself. */
  readonly header: BackupHeader;
  /** The node snapshot (state machine bytes and idempotency keys). */
  readonly data: Uint8Array;
  /** SHA-256 of the file without its checksum, as 64 hex digits. */
  readonly checksum: string;
}

/** A file that is not a whole, intact backup. */
export class BackupError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong, one line.
   */
  constructor(message: string) {
    super(message);
    this.name = "BackupError";
  }
}

/**
 * Streams a backup: the prefix and header, the data in chunks, then the
 * checksum.
 *
 * @param header What the backup says about itself (`dataBytes` must be `data.length`).
 * @param data The node snapshot.
 * @param chunkBytes Largest chunk of data per read. Default 64 KiB.
 * @returns The stream and its total length in bytes.
 *
 * @example A backup round-trips
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { decodeBackup, encodeBackup } from "./backup.ts";
 *
 * const header = { format: "watercraft-backup" as const, index: 3, term: 1, head: "ab".repeat(32),
 *   config: { members: [] }, nodeId: "n1", takenAt: "2025-01-01T00:00:00.000Z", dataBytes: 2 };
 * const { stream } = encodeBackup(header, new Uint8Array([1, 2]));
 * const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
 * strictEqual(decodeBackup(bytes).header.index, 3);
 * ```
 */
export function encodeBackup(
  header: BackupHeader,
  data: Uint8Array,
  chunkBytes = 64 << 10,
): { stream: ReadableStream<Uint8Array>; bytes: number } {
  if (header.dataBytes !== data.length) {
    throw new RangeError(`header.dataBytes is ${header.dataBytes}, the data ${data.length} bytes`);
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const prefix = new Uint8Array(PREFIX_BYTES + json.length);
  prefix.set(MAGIC, 0);
  prefix[MAGIC.length] = FORMAT_VERSION;
  new DataView(prefix.buffer).setUint32(MAGIC.length + 1, json.length);
  prefix.set(json, PREFIX_BYTES);
  const hash = sha256.create();
  let offset = -1;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      // One chunk per pull: a slow reader holds no more than one in flight.
      let chunk: Uint8Array;
      if (offset < 0) {
        chunk = prefix;
        offset = 0;
      } else if (offset < data.length) {
        chunk = data.subarray(offset, Math.min(data.length, offset + chunkBytes));
        offset += chunk.length;
      } else {
        controller.enqueue(hash.digest());
        controller.close();
        return;
      }
      hash.update(chunk);
      controller.enqueue(chunk);
    },
  });
  return { stream, bytes: prefix.length + data.length + CHECKSUM_BYTES };
}

/**
 * Reads a backup and checks it: magic, version, lengths and checksum first,
 * then the header's fields.
 *
 * @param bytes The whole file.
 * @returns The header, the data and the checksum.
 * @throws {BackupError} When the file is not an intact backup.
 */
export function decodeBackup(bytes: Uint8Array): Backup {
  if (bytes.length < PREFIX_BYTES + CHECKSUM_BYTES) {
    throw new BackupError(`Not a WaterCraft backup: ${bytes.length} bytes is too short`);
  }
  if (!MAGIC.every((b, i) => bytes[i] === b)) {
    throw new BackupError("Not a WaterCraft backup: the file does not start with WCBACKUP");
  }
  const version = bytes[MAGIC.length];
  if (version !== FORMAT_VERSION) {
    throw new BackupError(`Cannot read backup format ${version}: this release reads format 1`);
  }
  const body = bytes.subarray(0, bytes.length - CHECKSUM_BYTES);
  const checksum = bytesToHex(sha256(body));
  if (checksum !== bytesToHex(bytes.subarray(bytes.length - CHECKSUM_BYTES))) {
    throw new BackupError("The backup's checksum does not match: the file is truncated or damaged");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = view.getUint32(MAGIC.length + 1);
  if (headerBytes > HEADER_BYTES_MAX || PREFIX_BYTES + headerBytes > body.length) {
    throw new BackupError(`The backup's header length ${headerBytes} is out of bounds`);
  }
  let header: unknown;
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(
        body.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes),
      ),
    );
  } catch (error) {
    throw new BackupError(`The backup's header is not JSON: ${(error as Error).message}`);
  }
  const checked = checkHeader(header);
  const data = body.subarray(PREFIX_BYTES + headerBytes);
  if (data.length !== checked.dataBytes) {
    throw new BackupError(
      `The backup holds ${data.length} bytes of data, its header says ${checked.dataBytes}`,
    );
  }
  return { header: checked, data, checksum };
}

function checkHeader(value: unknown): BackupHeader {
  const h = value as Partial<Record<keyof BackupHeader, unknown>> | null;
  const whole = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  if (
    h === null || typeof h !== "object" || h.format !== "watercraft-backup" ||
    !whole(h.index) || !whole(h.term) || !whole(h.dataBytes) ||
    typeof h.head !== "string" || !/^[0-9a-f]{64}$/.test(h.head) ||
    typeof h.nodeId !== "string" || typeof h.takenAt !== "string" ||
    typeof h.config !== "object" || h.config === null ||
    !Array.isArray((h.config as { members?: unknown }).members)
  ) {
    throw new BackupError("The backup's header lacks a field or has one of the wrong type");
  }
  return h as BackupHeader;
}
