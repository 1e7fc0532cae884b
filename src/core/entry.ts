/**
 * Log entries and the hash chain that links them.
 *
 * Every entry's `hash` is SHA-256 over a fixed binary encoding of the previous
 * entry's hash and the entry's own term, kind, proposer, proposal time and
 * command bytes (see {@linkcode entryHash}). The hash is the entry's
 * cluster-wide id: equal hashes at an index mean equal logs up to that index.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { assert, AssertionError } from "./assert.ts";
import { bytesToHex } from "@noble/hashes/utils.js";

/**
 * What an entry carries: a client command for the state machine, the no-op a
 * new leader appends, or a membership configuration.
 */
export type EntryKind = "command" | "noop" | "config";

/** One replicated log entry. Entries are immutable once created. */
export interface Entry {
  /** Position in the log, from 1. */
  readonly index: number;
  /** Term of the leader that created the entry. */
  readonly term: number;
  /** What the entry carries. */
  readonly kind: EntryKind;
  /** Id of the node that created the entry ("" for the bootstrap entry). */
  readonly proposer: string;
  /** Proposal time in ms, as given by the proposer's driver; informational. */
  readonly timeMs: number;
  /** The command (or configuration) bytes. */
  readonly data: Uint8Array;
  /** Lowercase hex SHA-256 linking this entry to the previous one. */
  readonly hash: string;
}

/** The hash that stands before the first entry: 64 zeros. */
export const GENESIS_HASH: string = "0".repeat(64);

const KIND_CODES: Record<EntryKind, number> = {
  command: 0,
  noop: 1,
  config: 2,
};

const encoder = new TextEncoder();

/** The fields of an entry that its hash covers. */
export type HashedFields = Pick<
  Entry,
  "term" | "kind" | "proposer" | "timeMs" | "data"
>;

/**
 * Computes an entry's hash.
 *
 * The input is, in order: the previous hash (32 bytes), the term (u64 big
 * endian), the kind (u8: 0 command, 1 noop, 2 config), the proposer's id
 * length (u32) and UTF-8 bytes, the time in ms (u64), the data length (u32)
 * and the data.
 *
 * @param prevHash The previous entry's hash ({@linkcode GENESIS_HASH} for
 *   index 1).
 * @param fields The entry's own fields.
 * @returns Lowercase hex SHA-256.
 *
 * @example The chain is order-sensitive
 * ```ts
 * import { notStrictEqual } from "node:assert/strict";
 * import { entryHash, GENESIS_HASH } from "./entry.ts";
 *
 * const fields = { term: 1, kind: "command" as const, proposer: "n1", timeMs: 5, data: new Uint8Array([1]) };
 * const first = entryHash(GENESIS_HASH, fields);
 * notStrictEqual(entryHash(first, fields), first);
 * ```
 */
export function entryHash(prevHash: string, fields: HashedFields): string {
  const proposer = encoder.encode(fields.proposer);
  // Everything but the data, which is hashed where it is rather than copied.
  const buf = new Uint8Array(32 + 8 + 1 + 4 + proposer.length + 8 + 4);
  const view = new DataView(buf.buffer);
  writeHex(buf, prevHash);
  let at = 32;
  writeUint64(view, at, fields.term);
  at += 8;
  view.setUint8(at, KIND_CODES[fields.kind]);
  at += 1;
  view.setUint32(at, proposer.length);
  at += 4;
  buf.set(proposer, at);
  at += proposer.length;
  writeUint64(view, at, Math.max(0, Math.trunc(fields.timeMs)));
  at += 8;
  view.setUint32(at, fields.data.length);
  return bytesToHex(sha256.create().update(buf).update(fields.data).digest());
}

/** Writes a safe integer as a big-endian u64 (without BigInt, which is slow here). */
function writeUint64(view: DataView, at: number, value: number): void {
  view.setUint32(at, Math.floor(value / 0x1_0000_0000));
  view.setUint32(at + 4, value >>> 0);
}

/** Decodes 64 lowercase hex digits into the first 32 bytes of `out`. */
function writeHex(out: Uint8Array, hex: string): void {
  assert(hex.length === 64, `A hash has 64 hex digits, not ${hex.length}`);
  for (let i = 0; i < 32; i++) {
    const hi = nibble(hex.charCodeAt(2 * i));
    const lo = nibble(hex.charCodeAt(2 * i + 1));
    out[i] = (hi << 4) | lo;
  }
}

function nibble(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  throw new AssertionError(`Not a lowercase hex digit: ${String.fromCharCode(code)}`);
}

/**
 * Creates an entry whose hash links it to `prevHash`.
 *
 * @param index The entry's index.
 * @param prevHash The hash of the entry at `index - 1`.
 * @param fields The entry's own fields.
 * @returns The entry.
 */
export function createEntry(
  index: number,
  prevHash: string,
  fields: HashedFields,
): Entry {
  return { index, ...fields, hash: entryHash(prevHash, fields) };
}

/**
 * Returns how many bytes an entry weighs for flow control and size bounds.
 *
 * @param entry The entry.
 * @returns Its approximate encoded size.
 */
export function entryBytes(entry: Entry): number {
  return entry.data.length + entry.proposer.length + 64;
}

/**
 * Checks that `entries` are consecutive and each hash is the one its fields
 * and its predecessor give.
 *
 * @param prevIndex Index of the entry before `entries[0]`.
 * @param prevHash Hash of that entry.
 * @param entries The entries to check.
 * @returns A description of the first fault, or null when the chain holds.
 */
export function chainFault(
  prevIndex: number,
  prevHash: string,
  entries: readonly Entry[],
): string | null {
  let index = prevIndex;
  let hash = prevHash;
  for (const entry of entries) {
    index++;
    if (entry.index !== index) {
      return `entry at position ${index} claims index ${entry.index}`;
    }
    if (entryHash(hash, entry) !== entry.hash) {
      return `entry ${index} has hash ${entry.hash}, not the one its contents give`;
    }
    hash = entry.hash;
  }
  return null;
}
