/**
 * Byte-level primitives for WaterCraft's binary formats: a growable
 * {@linkcode ByteWriter} and a {@linkcode ByteReader} that checks every read
 * against the end of its input and throws {@linkcode MalformedError} (naming
 * the field and the offset) instead of reading past it. The peer frames
 * (`src/transport/http/frames.ts`) are written with them; the file storage's
 * records use the same layout.
 *
 * The layout of each primitive, all integers little-endian:
 *
 * | primitive          | bytes                                                         |
 * | ------------------ | ------------------------------------------------------------- |
 * | `u8` `u16` `u32`   | 1, 2, 4                                                        |
 * | `bool`             | u8, 0 or 1 (anything else is malformed)                        |
 * | `u53`              | 8: a non-negative safe integer, low u32 then high u32          |
 * | `f64`              | 8: IEEE 754 binary64                                           |
 * | `bytes`            | u32 length `n`, then `n` bytes                                 |
 * | `string`           | u32 UTF-8 length `n`, then `n` bytes of UTF-8                  |
 * | `nullableString`   | as `string`, with length `0xFFFFFFFF` (and no bytes) for null  |
 * | `shortString`      | u8 UTF-8 length `n` (at most 255), then `n` bytes (node ids)   |
 * | `hash`             | 32 raw bytes, a 64-digit lowercase hex string in memory        |
 *
 * Why `u53` is a fixed 8 bytes and not a varint: the file storage's format
 * (version 1, `src/storage/file/records.ts`) already stores its integers
 * this way, so both formats can share this code without a format change;
 * a fixed width lets encoders size their buffer before writing and lets
 * readers decode without a loop or a branch per byte; there is no
 * overlong or non-canonical encoding to refuse; and in the messages that
 * carry volume (appends, snapshot chunks) the payload bytes dwarf the 8
 * bytes per number.
 *
 * @module
 */

/** The length that stands for null in a {@linkcode ByteWriter.nullableString}. */
export const NULL_LENGTH = 0xffff_ffff;
/** Bytes of a hash on the wire: 32, a SHA-256. */
export const HASH_BYTES = 32;

const TWO_TO_32 = 0x1_0000_0000;
const encoder = new TextEncoder();
// `ignoreBOM` keeps a leading U+FEFF as text: without it a string starting
// with one would lose it on the way back.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Input that does not decode: cut short, out of range, or not what the
 * format allows. Names the field and the offset where it starts.
 */
export class MalformedError extends Error {
  /** The field that is malformed, e.g. `term` or `entries.3.data`. */
  readonly what: string;
  /** Offset of the field in the bytes being read. */
  readonly offset: number;
  /** What is wrong with it, e.g. `needs 8 bytes, 3 remain`. */
  readonly problem: string;

  /**
   * Creates the error.
   *
   * @param what The field that is malformed.
   * @param offset Where it starts in the input.
   * @param problem What is wrong with it.
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { MalformedError } from "./binary.ts";
   *
   * strictEqual(new MalformedError("term", 3, "ends early").message, "term at offset 3: ends early");
   * ```
   */
  constructor(what: string, offset: number, problem: string) {
    super(`${what} at offset ${offset}: ${problem}`);
    this.name = "MalformedError";
    this.what = what;
    this.offset = offset;
    this.problem = problem;
  }
}

/**
 * Returns how many bytes the UTF-8 encoding of a string takes, without
 * encoding it (a lone surrogate counts 3, as `TextEncoder` writes U+FFFD).
 *
 * @param text The string.
 * @returns Its UTF-8 byte length.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { utf8Length } from "./binary.ts";
 *
 * strictEqual(utf8Length("n1"), 2);
 * strictEqual(utf8Length("é€😀"), 2 + 3 + 4);
 * ```
 */
export function utf8Length(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1;
      continue;
    }
    // A surrogate pair is 4 bytes for 2 code units; anything else from
    // U+0800 on (a lone surrogate included) is 3 bytes for 1.
    n += 2;
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
  }
  return n;
}

/**
 * Writes primitives into a buffer that grows as needed (doubling, so
 * appends are amortised O(1)). Size it in advance when you can: a writer
 * whose initial size is exact never copies. Every method checks its value
 * and throws rather than write something the reader would not read back.
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
   *
   * @example Sized exactly, so it never grows
   * ```ts
   * import { deepStrictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./binary.ts";
   *
   * const w = new ByteWriter(3);
   * w.u8(1);
   * w.u16(0x0302);
   * deepStrictEqual(w.finish(), new Uint8Array([1, 2, 3]));
   * ```
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
   *
   * @example
   * ```ts
   * import { deepStrictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./binary.ts";
   *
   * const w = new ByteWriter();
   * w.u8(255);
   * deepStrictEqual(w.finish(), new Uint8Array([255]));
   * ```
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
   *
   * @example
   * ```ts
   * import { deepStrictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./binary.ts";
   *
   * const w = new ByteWriter();
   * w.u16(0x0102);
   * deepStrictEqual(w.finish(), new Uint8Array([2, 1]));
   * ```
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
   *
   * @example
   * ```ts
   * import { deepStrictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./binary.ts";
   *
   * const w = new ByteWriter();
   * w.u32(0x01020304);
   * deepStrictEqual(w.finish(), new Uint8Array([4, 3, 2, 1]));
   * ```
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
   * import { ByteWriter } from "./binary.ts";
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
   * import { deepStrictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./binary.ts";
   *
   * const w = new ByteWriter();
   * w.u53(2 ** 32 + 1);
   * deepStrictEqual(w.finish(), new Uint8Array([1, 0, 0, 0, 1, 0, 0, 0]));
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
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { ByteReader, ByteWriter } from "./binary.ts";
   *
   * const w = new ByteWriter();
   * w.f64(0.1);
   * strictEqual(new ByteReader(w.finish()).f64("x"), 0.1);
   * ```
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
   *
   * @example
   * ```ts
   * import { deepStrictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./binary.ts";
   *
   * const w = new ByteWriter();
   * w.bool(true);
   * w.bool(false);
   * deepStrictEqual(w.finish(), new Uint8Array([1, 0]));
   * ```
   */
  bool(value: boolean): void {
    this.#ensure(1);
    this.#bytes[this.#at++] = value ? 1 : 0;
  }

  /**
   * Writes bytes as they are, with no length.
   *
   * @param value The bytes.
   *
   * @example
   * ```ts
   * import { deepStrictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./binary.ts";
   *
   * const w = new ByteWriter();
   * w.raw(new Uint8Array([9, 8]));
   * deepStrictEqual(w.finish(), new Uint8Array([9, 8]));
   * ```
   */
  raw(value: Uint8Array): void {
    this.#ensure(value.length);
    this.#bytes.set(value, this.#at);
    this.#at += value.length;
  }

  /**
   * Writes a u32 length, then the bytes.
   *
   * @param value The bytes, at most 2^32 - 1 of them.
   * @throws {RangeError} When there are more.
   *
   * @example
   * ```ts
   * import { deepStrictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./binary.ts";
   *
   * const w = new ByteWriter();
   * w.bytes(new Uint8Array([9]));
   * deepStrictEqual(w.finish(), new Uint8Array([1, 0, 0, 0, 9]));
   * ```
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
   *
   * @example
   * ```ts
   * import { deepStrictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./binary.ts";
   *
   * const w = new ByteWriter();
   * w.string("é");
   * deepStrictEqual(w.finish(), new Uint8Array([2, 0, 0, 0, 0xc3, 0xa9]));
   * ```
   */
  string(value: string): void {
    this.#text(value, 4, NULL_LENGTH - 1);
  }

  /**
   * Writes a string as {@linkcode ByteWriter.string} does, or null as the
   * length `0xFFFFFFFF` alone.
   *
   * @param value The string, or null.
   * @throws {RangeError} When its UTF-8 takes 2^32 - 1 bytes or more.
   *
   * @example
   * ```ts
   * import { deepStrictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./binary.ts";
   *
   * const w = new ByteWriter();
   * w.nullableString(null);
   * deepStrictEqual(w.finish(), new Uint8Array([255, 255, 255, 255]));
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
   *
   * @example
   * ```ts
   * import { deepStrictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./binary.ts";
   *
   * const w = new ByteWriter();
   * w.shortString("n1");
   * deepStrictEqual(w.finish(), new Uint8Array([2, 110, 49]));
   * ```
   */
  shortString(value: string): void {
    this.#text(value, 1, 0xff);
  }

  /**
   * Writes a hash given as 64 lowercase hex digits as its 32 raw bytes.
   * Parsed by hand: it runs for every entry, and a parse into the buffer
   * allocates nothing (and refuses uppercase, which `Uint8Array.fromHex`
   * would take).
   *
   * @param hex The hash.
   * @param what What it is, for the error message. Default "hash".
   * @throws {TypeError} When `hex` is not 64 lowercase hex digits.
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { ByteWriter } from "./binary.ts";
   *
   * const w = new ByteWriter();
   * w.hash("0f".repeat(32));
   * strictEqual(w.finish()[0], 15);
   * ```
   */
  hash(hex: string, what = "hash"): void {
    if (typeof hex !== "string" || hex.length !== 64) throw badHash(hex, what);
    this.#ensure(HASH_BYTES);
    const b = this.#bytes;
    const at = this.#at;
    for (let i = 0; i < HASH_BYTES; i++) {
      const hi = nibble(hex.charCodeAt(2 * i));
      const lo = nibble(hex.charCodeAt(2 * i + 1));
      if (hi < 0 || lo < 0) throw badHash(hex, what);
      b[at + i] = (hi << 4) | lo;
    }
    this.#at = at + HASH_BYTES;
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
   * import { ByteWriter } from "./binary.ts";
   *
   * const w = new ByteWriter(8);
   * w.u32(1);
   * strictEqual(w.finish().length, 4);
   * ```
   */
  finish(): Uint8Array {
    return this.#bytes.subarray(0, this.#at);
  }
}

/** The value of a lowercase hex digit, or -1. */
function nibble(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  return -1;
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

// `Uint8Array.prototype.toHex` (ES2026) is native where it exists: several
// times faster than building the string in JavaScript.
const nativeToHex = (Uint8Array.prototype as { toHex?: (this: Uint8Array) => string }).toHex;
const HEX_DIGITS = new Uint8Array([
  48,
  49,
  50,
  51,
  52,
  53,
  54,
  55,
  56,
  57,
  97,
  98,
  99,
  100,
  101,
  102,
]);
const hexCodes: number[] = new Array(64).fill(0);

function toHex(bytes: Uint8Array, at: number): string {
  if (nativeToHex !== undefined) return nativeToHex.call(bytes.subarray(at, at + HASH_BYTES));
  for (let i = 0; i < HASH_BYTES; i++) {
    const b = bytes[at + i]!;
    hexCodes[2 * i] = HEX_DIGITS[b >>> 4]!;
    hexCodes[2 * i + 1] = HEX_DIGITS[b & 15]!;
  }
  return String.fromCharCode.apply(null, hexCodes);
}

/**
 * Reads primitives from `bytes[start, end)`. Every read checks that its
 * bytes lie before `end` and throws {@linkcode MalformedError}, naming the
 * field and its offset, instead of reading past it; nothing else is ever
 * thrown for bad input. Variable-length reads take a bound that is checked
 * before anything is copied or decoded.
 */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #end: number;
  #at: number;

  /**
   * Creates a reader.
   *
   * @param bytes The input; read, never written or kept beyond the reader.
   * @param start Offset of the first byte to read. Default 0.
   * @param end Offset just past the last byte to read. Default `bytes.length`.
   * @throws {RangeError} When not `0 <= start <= end <= bytes.length`.
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { ByteReader } from "./binary.ts";
   *
   * const r = new ByteReader(new Uint8Array([0, 7, 0]), 1);
   * strictEqual(r.u16("port"), 7);
   * strictEqual(r.remaining, 0);
   * ```
   */
  constructor(bytes: Uint8Array, start = 0, end: number = bytes.length) {
    if (
      !Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end ||
      end > bytes.length
    ) {
      throw new RangeError(`Cannot read [${start}, ${end}) of ${bytes.length} bytes`);
    }
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#at = start;
    this.#end = end;
  }

  /** Offset of the next byte to read. */
  get offset(): number {
    return this.#at;
  }

  /** Bytes left before the end. */
  get remaining(): number {
    return this.#end - this.#at;
  }

  /** Claims `n` bytes for `what` and returns their offset. */
  #take(n: number, what: string): number {
    const at = this.#at;
    if (!(n >= 0 && n <= this.#end - at)) {
      throw new MalformedError(what, at, `needs ${n} bytes, ${this.#end - at} remain`);
    }
    this.#at = at + n;
    return at;
  }

  #get32(at: number): number {
    const b = this.#bytes;
    return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
  }

  /**
   * Reads one byte.
   *
   * @param what The field, for the error.
   * @returns The byte.
   * @throws {MalformedError} When the input ends first.
   *
   * @example
   * ```ts
   * import { strictEqual, throws } from "node:assert/strict";
   * import { ByteReader, MalformedError } from "./binary.ts";
   *
   * const r = new ByteReader(new Uint8Array([5]));
   * strictEqual(r.u8("kind"), 5);
   * throws(() => r.u8("kind"), MalformedError);
   * ```
   */
  u8(what: string): number {
    return this.#bytes[this.#take(1, what)]!;
  }

  /**
   * Reads a little-endian u16.
   *
   * @param what The field, for the error.
   * @returns The integer.
   * @throws {MalformedError} When the input ends first.
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { ByteReader } from "./binary.ts";
   *
   * strictEqual(new ByteReader(new Uint8Array([2, 1])).u16("n"), 0x0102);
   * ```
   */
  u16(what: string): number {
    const at = this.#take(2, what);
    return this.#bytes[at]! | (this.#bytes[at + 1]! << 8);
  }

  /**
   * Reads a little-endian u32.
   *
   * @param what The field, for the error.
   * @returns The integer.
   * @throws {MalformedError} When the input ends first.
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { ByteReader } from "./binary.ts";
   *
   * strictEqual(new ByteReader(new Uint8Array([255, 255, 255, 255])).u32("n"), 2 ** 32 - 1);
   * ```
   */
  u32(what: string): number {
    return this.#get32(this.#take(4, what));
  }

  /**
   * Reads a non-negative safe integer written by {@linkcode ByteWriter.u53}.
   *
   * @param what The field, for the error.
   * @returns The integer.
   * @throws {MalformedError} When the input ends first or the value is
   *   2^53 or more.
   *
   * @example
   * ```ts
   * import { throws } from "node:assert/strict";
   * import { ByteReader } from "./binary.ts";
   *
   * const unsafe = new Uint8Array([0, 0, 0, 0, 0, 0, 32, 0]); // 2^53
   * throws(() => new ByteReader(unsafe).u53("term"), /term at offset 0: 9007199254740992 is not a safe integer/);
   * ```
   */
  u53(what: string): number {
    const at = this.#take(8, what);
    const high = this.#get32(at + 4);
    if (high > 0x1f_ffff) {
      const value = this.#get32(at) + high * TWO_TO_32;
      throw new MalformedError(what, at, `${value} is not a safe integer`);
    }
    return this.#get32(at) + high * TWO_TO_32;
  }

  /**
   * Reads a little-endian IEEE 754 binary64.
   *
   * @param what The field, for the error.
   * @returns The number, possibly NaN or infinite: check what the field allows.
   * @throws {MalformedError} When the input ends first.
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { ByteReader } from "./binary.ts";
   *
   * const bytes = new Uint8Array(new Float64Array([1.5]).buffer);
   * strictEqual(new ByteReader(bytes).f64("timeMs"), 1.5);
   * ```
   */
  f64(what: string): number {
    return this.#view.getFloat64(this.#take(8, what), true);
  }

  /**
   * Reads a boolean byte.
   *
   * @param what The field, for the error.
   * @returns Whether the byte is 1.
   * @throws {MalformedError} When the input ends first or the byte is
   *   neither 0 nor 1.
   *
   * @example
   * ```ts
   * import { strictEqual, throws } from "node:assert/strict";
   * import { ByteReader } from "./binary.ts";
   *
   * strictEqual(new ByteReader(new Uint8Array([1])).bool("granted"), true);
   * throws(() => new ByteReader(new Uint8Array([2])).bool("granted"), /granted at offset 0: 2 is not a boolean/);
   * ```
   */
  bool(what: string): boolean {
    const at = this.#take(1, what);
    const value = this.#bytes[at]!;
    if (value > 1) throw new MalformedError(what, at, `${value} is not a boolean (0 or 1)`);
    return value === 1;
  }

  /**
   * Reads `n` bytes into a fresh copy, so that what is kept does not pin
   * the whole input in memory.
   *
   * @param n How many bytes.
   * @param what The field, for the error.
   * @returns The copy.
   * @throws {MalformedError} When fewer than `n` bytes remain.
   *
   * @example
   * ```ts
   * import { deepStrictEqual } from "node:assert/strict";
   * import { ByteReader } from "./binary.ts";
   *
   * deepStrictEqual(new ByteReader(new Uint8Array([1, 2, 3])).raw(2, "x"), new Uint8Array([1, 2]));
   * ```
   */
  raw(n: number, what: string): Uint8Array {
    const at = this.#take(n, what);
    return this.#bytes.slice(at, at + n);
  }

  /**
   * Reads `n` bytes as a view of the input, without copying.
   *
   * @param n How many bytes.
   * @param what The field, for the error.
   * @returns A view; it changes if the input does.
   * @throws {MalformedError} When fewer than `n` bytes remain.
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { ByteReader } from "./binary.ts";
   *
   * const input = new Uint8Array([1, 2, 3]);
   * strictEqual(new ByteReader(input).view(2, "x").buffer, input.buffer);
   * ```
   */
  view(n: number, what: string): Uint8Array {
    const at = this.#take(n, what);
    return this.#bytes.subarray(at, at + n);
  }

  /** Reads a u32 length and checks it against `maxBytes` before anything is taken. */
  #length(what: string, maxBytes: number): number {
    const at = this.#at;
    const n = this.u32(what);
    if (n > maxBytes) {
      throw new MalformedError(what, at, `declares ${n} bytes, more than the ${maxBytes} allowed`);
    }
    return n;
  }

  /**
   * Reads what {@linkcode ByteWriter.bytes} wrote, into a fresh copy.
   *
   * @param what The field, for the error.
   * @param maxBytes The most bytes the field may hold. Default: no bound but the input's end.
   * @returns The copy.
   * @throws {MalformedError} When the length exceeds `maxBytes` or the input.
   *
   * @example
   * ```ts
   * import { throws } from "node:assert/strict";
   * import { ByteReader } from "./binary.ts";
   *
   * const r = new ByteReader(new Uint8Array([9, 0, 0, 0]));
   * throws(() => r.bytes("data", 8), /data at offset 0: declares 9 bytes, more than the 8 allowed/);
   * ```
   */
  bytes(what: string, maxBytes: number = NULL_LENGTH): Uint8Array {
    return this.raw(this.#length(what, maxBytes), what);
  }

  #decode(at: number, n: number, what: string): string {
    const b = this.#bytes;
    if (n <= 64) {
      // Short ASCII (ids, codes) is built here: a native decode costs more
      // than the loop for a handful of bytes.
      let text = "";
      let i = 0;
      for (; i < n; i++) {
        const c = b[at + i]!;
        if (c >= 0x80) break;
        text += String.fromCharCode(c);
      }
      if (i === n) return text;
    }
    try {
      return utf8.decode(b.subarray(at, at + n));
    } catch {
      throw new MalformedError(what, at, "is not UTF-8");
    }
  }

  /**
   * Reads what {@linkcode ByteWriter.string} wrote.
   *
   * @param what The field, for the error.
   * @param maxBytes The most UTF-8 bytes the string may take. Default: no bound but the input's end.
   * @returns The string.
   * @throws {MalformedError} When the length exceeds `maxBytes` or the
   *   input, or the bytes are not UTF-8.
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { ByteReader } from "./binary.ts";
   *
   * strictEqual(new ByteReader(new Uint8Array([2, 0, 0, 0, 0xc3, 0xa9])).string("s"), "é");
   * ```
   */
  string(what: string, maxBytes: number = NULL_LENGTH - 1): string {
    const n = this.#length(what, maxBytes);
    return this.#decode(this.#take(n, what), n, what);
  }

  /**
   * Reads what {@linkcode ByteWriter.nullableString} wrote.
   *
   * @param what The field, for the error.
   * @param maxBytes The most UTF-8 bytes the string may take. Default: no bound but the input's end.
   * @returns The string, or null.
   * @throws {MalformedError} As {@linkcode ByteReader.string}.
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { ByteReader } from "./binary.ts";
   *
   * strictEqual(new ByteReader(new Uint8Array([255, 255, 255, 255])).nullableString("s"), null);
   * ```
   */
  nullableString(what: string, maxBytes: number = NULL_LENGTH - 1): string | null {
    const at = this.#at;
    const n = this.u32(what);
    if (n === NULL_LENGTH) return null;
    if (n > maxBytes) {
      throw new MalformedError(what, at, `declares ${n} bytes, more than the ${maxBytes} allowed`);
    }
    return this.#decode(this.#take(n, what), n, what);
  }

  /**
   * Reads what {@linkcode ByteWriter.shortString} wrote.
   *
   * @param what The field, for the error.
   * @param maxBytes The most UTF-8 bytes the string may take. Default 255.
   * @returns The string.
   * @throws {MalformedError} As {@linkcode ByteReader.string}.
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { ByteReader } from "./binary.ts";
   *
   * strictEqual(new ByteReader(new Uint8Array([2, 110, 49])).shortString("id"), "n1");
   * ```
   */
  shortString(what: string, maxBytes = 0xff): string {
    const at = this.#at;
    const n = this.u8(what);
    if (n > maxBytes) {
      throw new MalformedError(what, at, `declares ${n} bytes, more than the ${maxBytes} allowed`);
    }
    return this.#decode(this.#take(n, what), n, what);
  }

  /**
   * Reads 32 raw bytes as 64 lowercase hex digits.
   *
   * @param what The field, for the error.
   * @returns The hash.
   * @throws {MalformedError} When fewer than 32 bytes remain.
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { ByteReader } from "./binary.ts";
   *
   * strictEqual(new ByteReader(new Uint8Array(32).fill(0xab)).hash("hash"), "ab".repeat(32));
   * ```
   */
  hash(what: string): string {
    return toHex(this.#bytes, this.#take(HASH_BYTES, what));
  }

  /**
   * Checks that everything was read.
   *
   * @param what What is being read, for the error. Default "input".
   * @throws {MalformedError} When bytes remain.
   *
   * @example
   * ```ts
   * import { throws } from "node:assert/strict";
   * import { ByteReader } from "./binary.ts";
   *
   * throws(() => new ByteReader(new Uint8Array(3)).end("record"), /record at offset 0: 3 bytes follow its end/);
   * ```
   */
  end(what = "input"): void {
    if (this.#at !== this.#end) {
      throw new MalformedError(what, this.#at, `${this.#end - this.#at} bytes follow its end`);
    }
  }
}
