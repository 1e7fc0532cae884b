/**
 * The key-value machine's commands as log bytes. Values are kept in their
 * canonical JSON text from the edge to the store: encoding copies the text,
 * decoding slices it out, and nothing on the way parses a value again.
 *
 * Layout: byte 0 the op (1 put, 2 delete, 3 cas on a value, 4 cas on a
 * revision); bytes 1–2 the key's length in UTF-8 bytes (big-endian u16); the
 * key; then for `put` the value's text to the end, for `cas` on a value a
 * big-endian u32 length and the expected value's text, then the new value's
 * text to the end, for `cas` on a revision the expected revision as a
 * big-endian u64, then the new value's text to the end.
 *
 * Op codes are never reused or renumbered: logs and snapshots written by an
 * older release must decode the same forever, so a new command form takes a
 * new code.
 *
 * @module
 */

import { encodeCanonical } from "./canonical_json.ts";
import { keyProblem } from "./index.ts";
import type { ParsedCommand } from "./schemas.ts";

const OP_PUT = 1;
const OP_DELETE = 2;
const OP_CAS = 3;
const OP_CAS_MODIFIED = 4;

/** Bytes of the expected revision of a `cas` on a revision. */
const REVISION_BYTES = 8;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes a checked command.
 *
 * @param command A command as `parseCommand` returns it.
 * @returns Its log bytes.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeKvCommand, encodeKvCommand } from "./command_codec.ts";
 *
 * const put = { op: "put", key: "a", value: '{"n":1}' } as const;
 * deepStrictEqual(decodeKvCommand(encodeKvCommand(put)), put);
 * ```
 */
export function encodeKvCommand(command: ParsedCommand): Uint8Array {
  const key = encoder.encode(command.key);
  const value = command.op === "delete" ? new Uint8Array(0) : encoder.encode(command.value);
  const expect = command.op === "cas" && "expect" in command
    ? encoder.encode(command.expect)
    : null;
  const expectModified = command.op === "cas" && "expectModified" in command
    ? command.expectModified
    : null;
  const comparison = expect !== null
    ? 4 + expect.length
    : expectModified !== null
    ? REVISION_BYTES
    : 0;
  const out = new Uint8Array(3 + key.length + comparison + value.length);
  const view = new DataView(out.buffer);
  out[0] = command.op === "put"
    ? OP_PUT
    : command.op === "delete"
    ? OP_DELETE
    : expect !== null
    ? OP_CAS
    : OP_CAS_MODIFIED;
  view.setUint16(1, key.length);
  out.set(key, 3);
  let at = 3 + key.length;
  if (expect !== null) {
    view.setUint32(at, expect.length);
    out.set(expect, at + 4);
  }
  if (expectModified !== null) view.setBigUint64(at, BigInt(expectModified));
  at += comparison;
  out.set(value, at);
  return out;
}

/**
 * Decodes a command's log bytes. Values stay canonical text.
 *
 * @param data Bytes made by {@linkcode encodeKvCommand}.
 * @returns The command.
 * @throws {RangeError} When the bytes are not such a command (they did not
 *   come from a node's edge): the entry is refused alike on every node.
 */
export function decodeKvCommand(data: Uint8Array): ParsedCommand {
  if (data.length < 3) throw new RangeError("Key-value command is truncated");
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const keyEnd = 3 + view.getUint16(1);
  if (keyEnd > data.length) throw new RangeError("Key-value command key runs past the data");
  const key = text(data, 3, keyEnd);
  const problem = keyProblem(key, 1);
  if (problem !== undefined) throw new RangeError(`Key-value command key ${problem}`);
  switch (data[0]) {
    case OP_PUT:
      return { op: "put", key, value: json(data, keyEnd, data.length) };
    case OP_DELETE:
      if (keyEnd !== data.length) throw new RangeError("Key-value delete has trailing bytes");
      return { op: "delete", key };
    case OP_CAS: {
      if (keyEnd + 4 > data.length) throw new RangeError("Key-value cas is truncated");
      const expectEnd = keyEnd + 4 + view.getUint32(keyEnd);
      if (expectEnd > data.length) throw new RangeError("Key-value cas expect runs past the data");
      return {
        op: "cas",
        key,
        expect: json(data, keyEnd + 4, expectEnd),
        value: json(data, expectEnd, data.length),
      };
    }
    case OP_CAS_MODIFIED: {
      const revisionEnd = keyEnd + REVISION_BYTES;
      if (revisionEnd > data.length) throw new RangeError("Key-value cas is truncated");
      const revision = view.getBigUint64(keyEnd);
      // Indexes are safe integers: a larger revision is no index at all.
      if (revision > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new RangeError("Key-value cas expectModified is not a safe integer");
      }
      return {
        op: "cas",
        key,
        expectModified: Number(revision),
        value: json(data, revisionEnd, data.length),
      };
    }
    default:
      throw new RangeError(`Unknown key-value op ${data[0]}`);
  }
}

function text(data: Uint8Array, start: number, end: number): string {
  return decoder.decode(data.subarray(start, end));
}

/**
 * A value's canonical JSON text, checked: bytes that no edge made (a peer's
 * bug or forgery) must be refused here, alike on every node, not stored to
 * break a later read, apply or snapshot. One parse per value, at apply.
 */
function json(data: Uint8Array, start: number, end: number): string {
  if (start === end) throw new RangeError("Key-value command value is empty");
  const value = text(data, start, end);
  let canonical: string;
  try {
    canonical = encodeCanonical(JSON.parse(value));
  } catch {
    throw new RangeError("Key-value command value is not JSON");
  }
  if (canonical !== value) throw new RangeError("Key-value command value is not canonical JSON");
  return value;
}
