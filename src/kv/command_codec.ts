/**
 * The key-value machine's commands as log bytes. Values are kept in their
 * canonical JSON text from the edge to the store: encoding copies the text,
 * decoding slices it out, and nothing on the way parses a value again.
 *
 * Layout: byte 0 the op (1 put, 2 delete, 3 cas); bytes 1–2 the key's length
 * in UTF-8 bytes (big-endian u16); the key; then for `put` the value's text
 * to the end, for `cas` a big-endian u32 length and the expected value's
 * text, then the new value's text to the end.
 *
 * @module
 */

import { encodeCanonical } from "./canonical_json.ts";
import { keyProblem } from "./index.ts";
import type { ParsedCommand } from "./schemas.ts";

const OP_PUT = 1;
const OP_DELETE = 2;
const OP_CAS = 3;

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
  const expect = command.op === "cas" ? encoder.encode(command.expect) : null;
  const out = new Uint8Array(
    3 + key.length + (expect === null ? 0 : 4 + expect.length) + value.length,
  );
  const view = new DataView(out.buffer);
  out[0] = command.op === "put" ? OP_PUT : command.op === "delete" ? OP_DELETE : OP_CAS;
  view.setUint16(1, key.length);
  out.set(key, 3);
  let at = 3 + key.length;
  if (expect !== null) {
    view.setUint32(at, expect.length);
    out.set(expect, at + 4);
    at += 4 + expect.length;
  }
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
