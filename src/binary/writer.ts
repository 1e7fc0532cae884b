/**
 * {@linkcode ByteWriter}: writes the primitives of the binary layout
 * (`mod.ts` describes it) into a buffer that grows as needed, refusing any
 * value that `ByteReader` (`reader.ts`) would not read back.
 *
 * @module
 */

import { HASH_BYTES, parseHashInto } from "./hex.ts";
import { NULL_LENGTH, TWO_TO_32 } from "./layout.ts";

const encoder = new TextEncoder();

/**
 * Writes primitives into a buffer that grows as needed (doubling, so
 * appends are amortised O(1)). Size it in advance when you can: a writer
 * whose initial size is exact never copies. Every method checks its value
 * and throws rather than write something the reader would not read back.
 *
 * @example Sized exactly, so it never grows
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { ByteWriter } from "./writer.ts";
 *
 * const w = new ByteWriter(8);
 * w.u8(1);
 * w.u16(0x0302); // little-endian
 * w.bytes(new Uint8Array([9])); // a u32 length, then the bytes
 * deepStrictEqual(w.finish(), new Uint8Array([1, 2, 3, 1, 0, 0, 0, 9]));
 * ```
 */
export class ByteWriter {
  #bytes: Uint8Array;
  #view: DataView;
  #at = 0;

  /**
   * Creates an empty writer.
   *
   * @param initialBytes Capacity to allocate up front. Default 256.
   * @throws {RangeError} When `initialBytes` is not a non-negative safe integer.
   */
  constructor(initialBytes = 256) {
    if (!Number.isSafeInteger(initialBytes) || initialBytes < 0) {
      throw new RangeError(
        `Cannot create a writer of ${initialBytes} bytes: not a non-negative safe integer`,
      );
    }
    this.#bytes = new Uint8Array(initialBytes);
    this.#view = new DataView(this.#bytes.buffer);
  }

  /** Bytes written so far; also the offset the next write goes to. */
  get length(): number {
    return this.#at;
  }

  /** Makes room for `n` more bytes. */
  #ensure(n: number): void {
    const need = this.#at + n;
    if (need <= this.#bytes.length) return;
    const grown = new Uint8Array(Math.max(need, this.#bytes.length * 2));
    grown.set(this.#bytes.subarray(0, this.#at));
    this.#bytes = grown;
    this.#view = new DataView(grown.buffer);
  }

  /**
   * Writes one byte.
   *
   * @param value An integer in `[0, 255]`.
   * @throws {TypeError} When `value` is not one.
   */
  u8(value: number): void {
    if ((value & 0xff) !== value) throw badInteger("u8", value);
    this.#ensure(1);
    this.#bytes[this.#at++] = value;
  }

  /**
   * Writes a little-endian u16.
   *
   * @param value An integer in `[0, 65535]`.
   * @throws {TypeError} When `value` is not one.
   */
  u16(value: number): void {
    if ((value & 0xffff) !== value) throw badInteger("u16", value);
    this.#ensure(2);
    const b = this.#bytes;
    const at = this.#at;
    b[at] = value;
    b[at + 1] = value >>> 8;
    this.#at = at + 2;
  }

  /**
   * Writes a little-endian u32.
   *
   * @param value An integer in `[0, 2^32 - 1]`.
   * @throws {TypeError} When `value` is not one.
   */
  u32(value: number): void {
    if (value >>> 0 !== value) throw badInteger("u32", value);
    this.#ensure(4);
    this.#put32(this.#at, value);
    this.#at += 4;
  }

  #put32(at: number, value: number): void {
    const b = this.#bytes;
    b[at] = value;
    b[at + 1] = value >>> 8;
    b[at + 2] = value >>> 16;
    b[at + 3] = value >>> 24;
  }

  /**
   * Overwrites a u32 written earlier, e.g. a length known only once what
   * follows it is written.
   *
   * @param at The offset of the u32, below {@linkcode ByteWriter.length}.
   * @param value An integer in `[0, 2^32 - 1]`.
   * @throws {TypeError} When `value` is not one.
   * @throws {RangeError} When `[at, at + 4)` is not already written.
   *
   * @example A length prefix filled in afterwards
   * ```ts
   * import { deepStrictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./writer.ts";
   *
   * const w = new ByteWriter();
   * w.u32(0);
   * w.u8(7);
   * w.setU32(0, w.length - 4);
   * deepStrictEqual(w.finish(), new Uint8Array([1, 0, 0, 0, 7]));
   * ```
   */
  setU32(at: number, value: number): void {
    if (value >>> 0 !== value) throw badInteger("u32", value);
    if (!Number.isSafeInteger(at) || at < 0 || at + 4 > this.#at) {
      throw new RangeError(`Cannot patch a u32 at ${at}: only ${this.#at} bytes are written`);
    }
    this.#put32(at, value);
  }

  /**
   * Writes a non-negative safe integer as 8 bytes: low u32, then high u32.
   *
   * @param value An integer in `[0, 2^53 - 1]`.
   * @param what What the value is, for the error message. Default "integer".
   * @throws {TypeError} When `value` is not a non-negative safe integer.
   *
   * @example
   * ```ts
   * import { deepStrictEqual, throws } from "node:assert/strict";
   * import { ByteWriter } from "./writer.ts";
   *
   * const w = new ByteWriter();
   * w.u53(2 ** 32 + 1);
   * deepStrictEqual(w.finish(), new Uint8Array([1, 0, 0, 0, 1, 0, 0, 0]));
   * throws(() => w.u53(-1, "term"), /Cannot store term -1: not a non-negative safe integer/);
   * ```
   */
  u53(value: number, what = "integer"): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new TypeError(`Cannot store ${what} ${value}: not a non-negative safe integer`);
    }
    this.#ensure(8);
    const low = value >>> 0;
    this.#put32(this.#at, low);
    this.#put32(this.#at + 4, (value - low) / TWO_TO_32);
    this.#at += 8;
  }

  /**
   * Writes a little-endian IEEE 754 binary64, any value (NaN, infinities and
   * -0 included).
   *
   * @param value The number.
   */
  f64(value: number): void {
    this.#ensure(8);
    this.#view.setFloat64(this.#at, value, true);
    this.#at += 8;
  }

  /**
   * Writes a boolean as one byte, 0 or 1.
   *
   * @param value The boolean.
   */
  bool(value: boolean): void {
    this.#ensure(1);
    this.#bytes[this.#at++] = value ? 1 : 0;
  }

  /**
   * Writes bytes as they are, with no length.
   *
   * @param value The bytes.
   */
  raw(value: Uint8Array): void {
    this.#ensure(value.length);
    this.#bytes.set(value, this.#at);
    this.#at += value.length;
  }

  /**
   * Writes a u32 length, then the bytes.
   *
   * @param value The bytes, at most 2^32 - 2 of them (2^32 - 1 is
   *   {@linkcode NULL_LENGTH}).
   * @throws {RangeError} When there are more.
   */
  bytes(value: Uint8Array): void {
    if (value.length >= NULL_LENGTH) throw tooLong(value.length, NULL_LENGTH - 1);
    this.#ensure(4 + value.length);
    this.#put32(this.#at, value.length);
    this.#bytes.set(value, this.#at + 4);
    this.#at += 4 + value.length;
  }

  /** Writes a string's UTF-8 after a length of `prefixBytes` (1 or 4), at most `max` bytes. */
  #text(value: string, prefixBytes: 1 | 4, max: number): void {
    const n = value.length;
    // ASCII, the common case (ids, codes, read contexts), is written in place
    // with no allocation; anything else goes through the native encoder.
    this.#ensure(prefixBytes + n);
    const b = this.#bytes;
    const start = this.#at + prefixBytes;
    let i = 0;
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c >= 0x80) break;
      b[start + i] = c;
    }
    if (i === n) {
      if (n > max) throw tooLong(n, max);
      this.#prefix(n, prefixBytes);
      this.#at = start + n;
      return;
    }
    const encoded = encoder.encode(value);
    if (encoded.length > max) throw tooLong(encoded.length, max);
    this.#ensure(prefixBytes + encoded.length);
    this.#prefix(encoded.length, prefixBytes);
    this.#bytes.set(encoded, this.#at + prefixBytes);
    this.#at += prefixBytes + encoded.length;
  }

  #prefix(n: number, prefixBytes: 1 | 4): void {
    if (prefixBytes === 1) this.#bytes[this.#at] = n;
    else this.#put32(this.#at, n);
  }

  /**
   * Writes a u32 UTF-8 byte length, then the UTF-8.
   *
   * @param value The string; lone surrogates become U+FFFD, as `TextEncoder` does.
   * @throws {RangeError} When its UTF-8 takes 2^32 - 1 bytes or more.
   */
  string(value: string): void {
    this.#text(value, 4, NULL_LENGTH - 1);
  }

  /**
   * Writes a string as {@linkcode ByteWriter.string} does, or null as the
   * length {@linkcode NULL_LENGTH} (`0xFFFFFFFF`) alone.
   *
   * @param value The string, or null.
   * @throws {RangeError} When its UTF-8 takes 2^32 - 1 bytes or more.
   *
   * @example
   * ```ts
   * import { deepStrictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./writer.ts";
   *
   * const w = new ByteWriter();
   * w.nullableString(null);
   * w.nullableString("é");
   * deepStrictEqual(w.finish(), new Uint8Array([255, 255, 255, 255, 2, 0, 0, 0, 0xc3, 0xa9]));
   * ```
   */
  nullableString(value: string | null): void {
    if (value !== null) {
      this.#text(value, 4, NULL_LENGTH - 1);
      return;
    }
    this.#ensure(4);
    this.#put32(this.#at, NULL_LENGTH);
    this.#at += 4;
  }

  /**
   * Writes a u8 UTF-8 byte length, then the UTF-8: for short strings such
   * as node ids.
   *
   * @param value The string, at most 255 bytes of UTF-8.
   * @throws {RangeError} When it is longer.
   */
  shortString(value: string): void {
    this.#text(value, 1, 0xff);
  }

  /**
   * Writes a hash given as 64 lowercase hex digits as its 32 raw bytes.
   *
   * @param hex The hash.
   * @param what What it is, for the error message. Default "hash".
   * @throws {TypeError} When `hex` is not 64 lowercase hex digits.
   *
   * @example Uppercase is refused
   * ```ts
   * import { strictEqual, throws } from "node:assert/strict";
   * import { ByteWriter } from "./writer.ts";
   *
   * const w = new ByteWriter();
   * w.hash("0f".repeat(32));
   * strictEqual(w.finish()[0], 15);
   * throws(() => w.hash("0F".repeat(32), "prevHash"), /Cannot store prevHash "0F0F/);
   * ```
   */
  hash(hex: string, what = "hash"): void {
    if (typeof hex !== "string" || hex.length !== 2 * HASH_BYTES) throw badHash(hex, what);
    this.#ensure(HASH_BYTES);
    // A failed parse leaves garbage past `#at` only: nothing is written.
    if (!parseHashInto(hex, this.#bytes, this.#at)) throw badHash(hex, what);
    this.#at += HASH_BYTES;
  }

  /**
   * Returns the bytes written: a view of the writer's buffer, not a copy
   * (when the initial size was exact, it spans the whole buffer). Writing on
   * afterwards may overwrite or reallocate what it returned.
   *
   * @returns The bytes `[0, length)`.
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./writer.ts";
   *
   * const w = new ByteWriter(4);
   * w.u32(1);
   * const bytes = w.finish();
   * strictEqual(bytes.length, 4);
   * strictEqual(bytes.byteLength, bytes.buffer.byteLength); // no copy, no slack
   * ```
   */
  finish(): Uint8Array {
    return this.#bytes.subarray(0, this.#at);
  }
}

function badInteger(type: string, value: number): TypeError {
  return new TypeError(`Cannot store ${value} as a ${type}: out of range or not an integer`);
}

function badHash(hex: unknown, what: string): TypeError {
  return new TypeError(
    `Cannot store ${what} ${JSON.stringify(hex)}: not 64 lowercase hex digits`,
  );
}

function tooLong(n: number, max: number): RangeError {
  return new RangeError(`Cannot store ${n} bytes behind a length prefix: the limit is ${max}`);
}
