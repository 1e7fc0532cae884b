/**
 * The data of a command entry: the command's bytes as the state machine
 * encoded them, behind the idempotency key they were written with. The
 * bytes are never re-encoded on their way; apply reads the key and hands
 * the rest to the state machine's `decode`.
 *
 * Layout: byte 0 is {@linkcode ENVELOPE_TAG}; bytes 1–2 the key's length in
 * UTF-8 bytes (big-endian u16, 0 without a key); then the key; then the
 * command. Entries written by 0.1 were UTF-8 JSON `{"c": command, "k": key}`
 * and start with `{`, which the tag never is: both are read.
 *
 * @module
 */

/** First byte of an envelope (never `{`, so it tells envelopes from 0.1's JSON). */
export const ENVELOPE_TAG = 0xc1;

/** Longest idempotency key, UTF-8 bytes. */
export const ENVELOPE_KEY_BYTES_MAX = 0xffff;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A command entry's data, opened. */
export interface Opened {
  /** The idempotency key the command was written with, if any. */
  readonly key: string | undefined;
  /** The command's bytes, as the state machine's `encode` made them. */
  readonly command: Uint8Array;
}

/**
 * Wraps a command's bytes and its idempotency key as an entry's data.
 *
 * @param command The encoded command.
 * @param key The idempotency key, if any.
 * @returns The entry's data.
 * @throws {RangeError} When the key is over {@linkcode ENVELOPE_KEY_BYTES_MAX} bytes.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { openEnvelope, sealEnvelope } from "./envelope.ts";
 *
 * const data = sealEnvelope(new Uint8Array([1, 2]), "k1");
 * deepStrictEqual(openEnvelope(data), { key: "k1", command: new Uint8Array([1, 2]) });
 * ```
 */
export function sealEnvelope(command: Uint8Array, key: string | undefined): Uint8Array {
  const keyBytes = key === undefined ? new Uint8Array(0) : encoder.encode(key);
  if (keyBytes.length > ENVELOPE_KEY_BYTES_MAX) {
    throw new RangeError(`Idempotency key is over ${ENVELOPE_KEY_BYTES_MAX} bytes`);
  }
  const out = new Uint8Array(3 + keyBytes.length + command.length);
  out[0] = ENVELOPE_TAG;
  out[1] = keyBytes.length >> 8;
  out[2] = keyBytes.length & 0xff;
  out.set(keyBytes, 3);
  out.set(command, 3 + keyBytes.length);
  return out;
}

/**
 * Opens an entry's data. Views into `data`, no copy.
 *
 * @param data The data of a command entry.
 * @returns The key and the command's bytes.
 * @throws {RangeError} When the data is neither an envelope nor 0.1's JSON:
 *   the entry was not written by a node (the caller refuses it).
 */
export function openEnvelope(data: Uint8Array): Opened {
  if (data[0] === ENVELOPE_TAG && data.length >= 3) {
    const keyLength = (data[1]! << 8) | data[2]!;
    if (3 + keyLength > data.length) throw new RangeError("Envelope key runs past the data");
    return {
      key: keyLength === 0 ? undefined : decoder.decode(data.subarray(3, 3 + keyLength)),
      command: data.subarray(3 + keyLength),
    };
  }
  if (data[0] === 0x7b) {
    // 0.1's entries: {"c": command, "k": key}, the command as JSON.
    const legacy = JSON.parse(decoder.decode(data)) as { c?: unknown; k?: unknown };
    return {
      key: typeof legacy.k === "string" ? legacy.k : undefined,
      command: encoder.encode(JSON.stringify(legacy.c ?? null)),
    };
  }
  throw new RangeError("Entry data is not a command envelope");
}
