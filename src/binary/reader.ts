/**
 * {@linkcode ByteReader}: reads the primitives of the binary layout
 * (`mod.ts` describes it), checking every read against the end of its input
 * and throwing {@linkcode MalformedError}, which names the field and its
 * offset, instead of reading past it.
 *
 * @module
 */

import { formatHash, HASH_BYTES } from "./hex.ts";
import { NULL_LENGTH, TWO_TO_32 } from "./layout.ts";

// `ignoreBOM` keeps a leading U+FEFF as text: without it a string starting
// with one would lose it on the way back.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Input that does not decode: cut short, out of range, or not what the
 * format allows. Names the field and the offset where it starts.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { MalformedError } from "./reader.ts";
 *
 * const error = new MalformedError("term", 3, "ends early");
 * strictEqual(error.message, "term at offset 3: ends early");
 * ```
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
 * Reads primitives from `bytes[start, end)`. Every read checks that its
 * bytes lie before `end` and throws {@linkcode MalformedError}, naming the
 * field and its offset, instead of reading past it; nothing else is ever
 * thrown for bad input. Variable-length reads take a bound that is checked
 * before anything is copied or decoded.
 *
 * @example Offsets count from the start of the whole input
 * ```ts
 * import { strictEqual, throws } from "node:assert/strict";
 * import { ByteReader, MalformedError } from "./reader.ts";
 *
 * const r = new ByteReader(new Uint8Array([0, 7, 0, 2, 110, 49]), 1);
 * strictEqual(r.u16("port"), 7);
 * strictEqual(r.shortString("id"), "n1");
 * strictEqual(r.remaining, 0);
 * throws(() => r.u8("next"), MalformedError);
 * throws(() => r.u8("next"), /next at offset 6: needs 1 bytes, 0 remain/);
 * ```
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
   */
  u32(what: string): number {
    return this.#get32(this.#take(4, what));
  }

  /**
   * Reads a non-negative safe integer written by `ByteWriter.u53`.
   *
   * @param what The field, for the error.
   * @returns The integer.
   * @throws {MalformedError} When the input ends first or the value is
   *   2^53 or more.
   *
   * @example
   * ```ts
   * import { throws } from "node:assert/strict";
   * import { ByteReader } from "./reader.ts";
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
   * import { ByteReader } from "./reader.ts";
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
   * @example A view shares the input's memory; raw() copies
   * ```ts
   * import { notStrictEqual, strictEqual } from "node:assert/strict";
   * import { ByteReader } from "./reader.ts";
   *
   * const input = new Uint8Array([1, 2, 3]);
   * const r = new ByteReader(input);
   * strictEqual(r.view(1, "x").buffer, input.buffer);
   * notStrictEqual(r.raw(2, "y").buffer, input.buffer);
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
   * Reads what `ByteWriter.bytes` wrote, into a fresh copy.
   *
   * @param what The field, for the error.
   * @param maxBytes The most bytes the field may hold. Default: no bound but the input's end.
   * @returns The copy.
   * @throws {MalformedError} When the length exceeds `maxBytes` or the input.
   *
   * @example A length above the bound is refused before anything is copied
   * ```ts
   * import { throws } from "node:assert/strict";
   * import { ByteReader } from "./reader.ts";
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
   * Reads what `ByteWriter.string` wrote.
   *
   * @param what The field, for the error.
   * @param maxBytes The most UTF-8 bytes the string may take. Default: no bound but the input's end.
   * @returns The string.
   * @throws {MalformedError} When the length exceeds `maxBytes` or the
   *   input, or the bytes are not UTF-8.
   */
  string(what: string, maxBytes: number = NULL_LENGTH - 1): string {
    const n = this.#length(what, maxBytes);
    return this.#decode(this.#take(n, what), n, what);
  }

  /**
   * Reads what `ByteWriter.nullableString` wrote.
   *
   * @param what The field, for the error.
   * @param maxBytes The most UTF-8 bytes the string may take. Default: no bound but the input's end.
   * @returns The string, or null.
   * @throws {MalformedError} As {@linkcode ByteReader.string}.
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { ByteReader } from "./reader.ts";
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
   * Reads what `ByteWriter.shortString` wrote.
   *
   * @param what The field, for the error.
   * @param maxBytes The most UTF-8 bytes the string may take. Default 255.
   * @returns The string.
   * @throws {MalformedError} As {@linkcode ByteReader.string}.
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
   */
  hash(what: string): string {
    return formatHash(this.#bytes, this.#take(HASH_BYTES, what));
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
   * import { ByteReader } from "./reader.ts";
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
