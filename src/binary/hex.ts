/**
 * Hashes between their two forms: 64 lowercase hex digits in memory, 32 raw
 * bytes on the wire and on disk. Both directions run for every entry
 * written or read, so neither allocates more than the string it returns.
 *
 * @module
 */

/** Bytes of a hash on the wire: 32, a SHA-256. */
export const HASH_BYTES = 32;

/**
 * Parses a hash into `into[at, at + 32)`. Parsed by hand: a parse into the
 * buffer allocates nothing (and refuses uppercase, which
 * `Uint8Array.fromHex` would take).
 *
 * @param hex The hash, already known to be a string of 64 characters.
 * @param into Where to write; room for 32 bytes at `at` is the caller's to make.
 * @param at Offset of the first byte.
 * @returns Whether every character was a lowercase hex digit; when not,
 *   `into[at, at + 32)` holds garbage.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { parseHashInto } from "./hex.ts";
 *
 * const bytes = new Uint8Array(32);
 * strictEqual(parseHashInto("0f".repeat(32), bytes, 0), true);
 * strictEqual(bytes[31], 15);
 * strictEqual(parseHashInto("0F".repeat(32), bytes, 0), false);
 * ```
 */
export function parseHashInto(hex: string, into: Uint8Array, at: number): boolean {
  for (let i = 0; i < HASH_BYTES; i++) {
    const hi = nibble(hex.charCodeAt(2 * i));
    const lo = nibble(hex.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) return false;
    into[at + i] = (hi << 4) | lo;
  }
  return true;
}

/** The value of a lowercase hex digit, or -1. */
function nibble(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  return -1;
}

// `Uint8Array.prototype.toHex` (ES2026) is native where it exists: several
// times faster than building the string in JavaScript. Looked up once, as
// the module loads.
const nativeToHex = (Uint8Array.prototype as { toHex?: (this: Uint8Array) => string }).toHex;
const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");
const hexCodes: number[] = new Array(2 * HASH_BYTES).fill(0);

/**
 * Formats `bytes[at, at + 32)` as 64 lowercase hex digits.
 *
 * @param bytes The input, holding 32 bytes at `at` (the caller checks).
 * @param at Offset of the first byte.
 * @returns The hash.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { formatHash } from "./hex.ts";
 *
 * strictEqual(formatHash(new Uint8Array(33).fill(0xab), 1), "ab".repeat(32));
 * ```
 */
export function formatHash(bytes: Uint8Array, at: number): string {
  if (nativeToHex !== undefined) return nativeToHex.call(bytes.subarray(at, at + HASH_BYTES));
  for (let i = 0; i < HASH_BYTES; i++) {
    const b = bytes[at + i]!;
    hexCodes[2 * i] = HEX_DIGITS[b >>> 4]!;
    hexCodes[2 * i + 1] = HEX_DIGITS[b & 15]!;
  }
  return String.fromCharCode.apply(null, hexCodes);
}
