/**
 * Keys of the key-value machine: what a valid key is, their order (UTF-8
 * byte order, which is Unicode code point order) and the sorted index that
 * `list` queries scan.
 *
 * @example Keys in byte order
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { SortedKeys } from "./index.ts";
 *
 * const keys = new SortedKeys();
 * for (const key of ["b", "\u{1F600}", "a", "\uFFFD"]) keys.insert(key);
 * assertEquals([...keys.all()], ["a", "b", "\uFFFD", "\u{1F600}"]);
 * ```
 *
 * @module
 */

import { assert } from "../core/assert.ts";

/** Largest key, in UTF-8 bytes (API.md: keys are 1 to 1024 bytes). */
export const KV_KEY_BYTES_MAX = 1024;

/**
 * Says what is wrong with a key, or with a prefix when `minBytes` is 0.
 * Counts UTF-8 bytes without encoding, and refuses lone surrogates, which
 * have no UTF-8 form.
 *
 * @param key The key or prefix.
 * @param minBytes Fewest UTF-8 bytes allowed: 1 for keys, 0 for prefixes.
 * @returns The problem, worded to follow the field's name, or undefined when
 *   `key` is fine.
 *
 * @example A key over the limit
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { keyProblem } from "./index.ts";
 *
 * strictEqual(keyProblem("a", 1), undefined);
 * strictEqual(keyProblem("é".repeat(513), 1), "must be 1 to 1024 UTF-8 bytes, got 1026");
 * ```
 */
export function keyProblem(key: string, minBytes: number): string | undefined {
  let bytes = 0;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdfff) {
      const next = key.charCodeAt(i + 1);
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) {
        return `must be valid Unicode: lone surrogate at index ${i}`;
      }
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  if (bytes < minBytes || bytes > KV_KEY_BYTES_MAX) {
    return `must be ${minBytes} to ${KV_KEY_BYTES_MAX} UTF-8 bytes, got ${bytes}`;
  }
  return undefined;
}

/**
 * Compares keys in UTF-8 byte order, which is code point order. Differs
 * from `<` (UTF-16 code unit order) only where a surrogate meets a code
 * unit from U+E000 up: moving surrogates above them fixes that.
 *
 * @param a A key.
 * @param b Another key.
 * @returns Negative when `a` comes first, positive when `b` does, 0 when equal.
 *
 * @example An astral character sorts after U+FFFD
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { compareKeys } from "./index.ts";
 *
 * ok("\u{1F600}" < "\uFFFD");
 * ok(compareKeys("\u{1F600}", "\uFFFD") > 0);
 * ```
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}

/**
 * Quotes a key for a message, shortened: keys may be 1024 bytes long.
 *
 * @param key The key.
 * @returns The key as a JSON string, cut to at most 80 characters.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { quoteKey } from "./index.ts";
 *
 * strictEqual(quoteKey("a"), '"a"');
 * strictEqual(quoteKey("x".repeat(100)).length, 80);
 * ```
 */
export function quoteKey(key: string): string {
  const quoted = JSON.stringify(key);
  return quoted.length > 80 ? `${quoted.slice(0, 76)}..."` : quoted;
}

/** The first index in sorted `keys` whose key is not below `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(keys[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Most keys in one chunk of a {@linkcode SortedKeys}. */
const CHUNK_MAX = 512;

/**
 * A set of keys in {@linkcode compareKeys} order, kept as a sorted list of
 * sorted chunks of at most {@linkcode CHUNK_MAX} keys. Inserting into one flat
 * array moves O(n) elements (about 30 µs per insert at 100k keys); here an
 * insert or delete moves at most one chunk plus, on a split or merge, the
 * chunk list.
 *
 * Callers keep the contract that `insert` gets absent keys and `delete`
 * present ones; a breach is a bug and fails an assertion.
 *
 * @example Scanning from a key
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { SortedKeys } from "./index.ts";
 *
 * const keys = SortedKeys.fromSorted(["a", "b", "c", "d"]);
 * keys.delete("c");
 * const seen: string[] = [];
 * keys.scan("b", true, (key) => seen.push(key) < 5);
 * assertEquals(seen, ["d"]);
 * ```
 */
export class SortedKeys {
  /** Non-empty chunks; every key of a chunk is below every key of the next. */
  #chunks: string[][] = [];
  /** The number of keys in all of `#chunks`. */
  #size = 0;

  /**
   * Builds the set from keys already in strictly ascending order.
   *
   * @param keys The keys, in strictly ascending {@linkcode compareKeys} order
   *   (not checked: the caller has checked them).
   * @returns The set.
   */
  static fromSorted(keys: readonly string[]): SortedKeys {
    const set = new SortedKeys();
    for (let i = 0; i < keys.length; i += CHUNK_MAX / 2) {
      set.#chunks.push(keys.slice(i, i + CHUNK_MAX / 2));
    }
    set.#size = keys.length;
    return set;
  }

  /** The number of keys. */
  get size(): number {
    return this.#size;
  }

  /**
   * Inserts a key that is absent.
   *
   * @param key The key.
   * @throws {AssertionError} When `key` is already present.
   */
  insert(key: string): void {
    if (this.#chunks.length === 0) {
      this.#chunks.push([key]);
      this.#size = 1;
      return;
    }
    const c = this.#chunkFor(key);
    const chunk = this.#chunks[c]!;
    const i = lowerBound(chunk, key);
    assert(chunk[i] !== key, `Key ${quoteKey(key)} is already in the sorted keys`);
    chunk.splice(i, 0, key);
    this.#size++;
    if (chunk.length > CHUNK_MAX) this.#chunks.splice(c + 1, 0, chunk.splice(CHUNK_MAX / 2));
  }

  /**
   * Deletes a key that is present.
   *
   * @param key The key.
   * @throws {AssertionError} When `key` is absent.
   */
  delete(key: string): void {
    const c = this.#chunkFor(key);
    const chunk = this.#chunks[c];
    const i = chunk === undefined ? -1 : lowerBound(chunk, key);
    assert(chunk?.[i] === key, `Key ${quoteKey(key)} is missing from the sorted keys`);
    chunk.splice(i, 1);
    this.#size--;
    if (chunk.length === 0) {
      this.#chunks.splice(c, 1);
      return;
    }
    // Merges sparse neighbours, so that deletes cannot leave n tiny chunks.
    const next = this.#chunks[c + 1];
    if (
      chunk.length < CHUNK_MAX / 4 && next !== undefined && chunk.length + next.length <= CHUNK_MAX
    ) {
      chunk.push(...next);
      this.#chunks.splice(c + 1, 1);
    }
  }

  /**
   * Calls `visit` on each key from `start` (or after it, when `exclusive`)
   * in ascending order, until `visit` returns false or the keys run out.
   *
   * @param start Where to begin; need not be present.
   * @param exclusive Whether to skip `start` itself.
   * @param visit Called with each key; returns whether to go on.
   */
  scan(start: string, exclusive: boolean, visit: (key: string) => boolean): void {
    if (this.#chunks.length === 0) return;
    let c = this.#chunkFor(start);
    let i = lowerBound(this.#chunks[c]!, start);
    if (exclusive && this.#chunks[c]![i] === start) i++;
    for (; c < this.#chunks.length; c++, i = 0) {
      const chunk = this.#chunks[c]!;
      for (; i < chunk.length; i++) {
        if (!visit(chunk[i]!)) return;
      }
    }
  }

  /**
   * Lists every key.
   *
   * @returns The keys, in ascending order.
   */
  *all(): Generator<string> {
    for (const chunk of this.#chunks) yield* chunk;
  }

  /**
   * Copies every key into one array, faster than spreading
   * {@linkcode SortedKeys.all}.
   *
   * @returns The keys, in ascending order.
   */
  toArray(): string[] {
    return this.#chunks.flat();
  }

  /**
   * The chunk where `key` is or belongs: the first whose last key is not
   * below it, or the last chunk when every key is below it.
   */
  #chunkFor(key: string): number {
    let lo = 0;
    let hi = this.#chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(this.#chunks[mid]!.at(-1)!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
