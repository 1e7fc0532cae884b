/**
 * The built-in key-value state machine that the CLI runs (API.md section 3).
 *
 * Keys are strings of 1 to {@linkcode KV_KEY_BYTES_MAX} UTF-8 bytes, kept in
 * UTF-8 byte order (the same as Unicode code point order). Values are JSON
 * values, stored in a canonical encoding (object keys sorted, no
 * whitespace), so that compare-and-set compares them structurally and every
 * node's snapshot of the same log is byte-identical.
 *
 * @example Put, compare-and-set and read back
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { kvStateMachine } from "./kv.ts";
 *
 * const kv = kvStateMachine();
 * kv.apply(kv.validate({ op: "put", key: "a", value: { n: 1 } }));
 * kv.apply(kv.validate({ op: "cas", key: "a", expect: { n: 1 }, value: { n: 2 } }));
 * assertEquals(kv.query({ op: "get", key: "a" }), { found: true, value: { n: 2 } });
 * ```
 *
 * @module
 */

import { RejectedError, WaterCraftError } from "./errors.ts";
import { z } from "zod";
import { assert } from "./core/assert.ts";
import type { EntryMeta, StateMachine } from "./state_machine.ts";

/** Largest key, in UTF-8 bytes (API.md: keys are 1 to 1024 bytes). */
export const KV_KEY_BYTES_MAX = 1024;

/** Deepest nesting of arrays and objects accepted in a value. */
export const KV_VALUE_DEPTH_MAX = 64;

/** Items a `list` query returns when it gives no `limit`. */
export const KV_LIST_LIMIT_DEFAULT = 100;

/** Most items one `list` query returns; larger limits are lowered to it. */
export const KV_LIST_LIMIT_MAX = 1000;

/** Any JSON value: what keys map to. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * A command of the key-value machine, as logged (API.md section 3).
 *
 * - `put` sets `key` to `value`.
 * - `delete` removes `key` (absent keys are fine).
 * - `cas` sets `key` to `value` only if its current value equals `expect`
 *   structurally; `expect: null` means "the key must be absent".
 */
export type KvCommand =
  | { readonly op: "put"; readonly key: string; readonly value: JsonValue }
  | { readonly op: "delete"; readonly key: string }
  | {
    readonly op: "cas";
    readonly key: string;
    readonly expect: JsonValue;
    readonly value: JsonValue;
  };

/**
 * What applying a command returns: `{ prev }` (the old value, or null when
 * the key was absent) for `put` and `delete`, `{}` for a successful `cas`.
 */
export type KvResult = { readonly prev: JsonValue } | Record<string, never>;

/** Reads one key. */
export interface KvGetQuery {
  /** The query kind. */
  readonly op: "get";
  /** The key to read. */
  readonly key: string;
}

/** Lists keys in ascending UTF-8 byte order. */
export interface KvListQuery {
  /** The query kind. */
  readonly op: "list";
  /** Only keys that start with it (default `""`: every key). */
  readonly prefix?: string;
  /**
   * Most items to return: default {@linkcode KV_LIST_LIMIT_DEFAULT}, lowered
   * to {@linkcode KV_LIST_LIMIT_MAX}.
   */
  readonly limit?: number;
  /** Only keys after this one (exclusive), to page through a long list. */
  readonly after?: string;
}

/** A read of the key-value machine. */
export type KvQuery = KvGetQuery | KvListQuery;

/** The answer to a {@linkcode KvGetQuery}; `value` is null when not found. */
export type KvGetAnswer =
  | { readonly found: true; readonly value: JsonValue }
  | { readonly found: false; readonly value: null };

/** One key and its value in a {@linkcode KvListAnswer}. */
export interface KvListItem {
  /** The key. */
  readonly key: string;
  /** Its value. */
  readonly value: JsonValue;
}

/** The answer to a {@linkcode KvListQuery}, in ascending key order. */
export interface KvListAnswer {
  /** The matching keys, at most `limit` of them. */
  readonly items: KvListItem[];
}

/** The answer to a {@linkcode KvQuery}. */
export type KvAnswer = KvGetAnswer | KvListAnswer;

/**
 * A compare-and-set did not match (HTTP 409 `cas_failed`). `current` holds
 * the key's current value, or null when the key is absent; it is also in
 * `details`, so that the HTTP error body carries it.
 *
 * Thrown from `apply`, it is a deterministic refusal like
 * {@linkcode RejectedError}: the entry stays in the log without effect.
 *
 * @example Catching a failed compare-and-set
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { CasFailedError, kvStateMachine } from "./kv.ts";
 *
 * const kv = kvStateMachine();
 * kv.apply({ op: "put", key: "a", value: 1 });
 * throws(
 *   () => kv.apply({ op: "cas", key: "a", expect: null, value: 2 }),
 *   (error) => error instanceof CasFailedError && error.code === "cas_failed" && error.current === 1,
 * );
 * ```
 */
export class CasFailedError extends WaterCraftError {
  /** The key's current value, or null when it is absent. */
  readonly current: JsonValue;

  /**
   * Creates the error.
   *
   * @param key The key the compare-and-set was for.
   * @param current Its current value, or null when it is absent.
   * @param exists Whether the key exists (tells a null value from absence).
   */
  constructor(key: string, current: JsonValue, exists: boolean = current !== null) {
    super(
      "cas_failed",
      `Cannot compare-and-set key ${quoteKey(key)}: ` +
        (!exists
          ? "the key is absent"
          : current === null
          ? "the key holds null, which is not absence, so expect null does not match"
          : "its current value differs from the expected one"),
      { current },
    );
    this.name = "CasFailedError";
    this.current = current;
  }
}

/**
 * The key-value state machine. Create one with {@linkcode kvStateMachine}.
 *
 * Ownership: values passed in are copied, and values handed out are fresh
 * copies, so callers can never change the state except through `apply` and
 * `restore`.
 *
 * @example Listing by prefix
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { KvStateMachine } from "./kv.ts";
 *
 * const kv = new KvStateMachine();
 * for (const key of ["b/2", "a", "b/1"]) kv.apply({ op: "put", key, value: key });
 * assertEquals(kv.query({ op: "list", prefix: "b/" }), {
 *   items: [{ key: "b/1", value: "b/1" }, { key: "b/2", value: "b/2" }],
 * });
 * ```
 */
export class KvStateMachine implements StateMachine<KvCommand, KvResult, KvQuery, KvAnswer> {
  /** Key to the canonical JSON encoding of its value. */
  #values = new Map<string, string>();
  /** Every key of `#values`, in ascending {@linkcode compareKeys} order. */
  #keys = new SortedKeys();

  /** The number of keys. */
  get size(): number {
    return this.#keys.size;
  }

  /**
   * Checks a client's command and returns it normalised: unknown fields are
   * refused, and values are copied with their object keys sorted.
   *
   * @param command The client's command, any JSON value.
   * @returns The command to log.
   * @throws {RejectedError} When `command` is not one of {@linkcode KvCommand}.
   *
   * @example Refusing an unknown op
   * ```ts
   * import { throws } from "node:assert/strict";
   * import { kvStateMachine } from "./kv.ts";
   * import { RejectedError } from "./errors.ts";
   *
   * throws(() => kvStateMachine().validate({ op: "incr", key: "a" }), RejectedError);
   * ```
   */
  validate(command: unknown): KvCommand {
    const parsed = parseCommand(command);
    switch (parsed.op) {
      case "put":
        return { op: "put", key: parsed.key, value: decode(parsed.value) };
      case "delete":
        return { op: "delete", key: parsed.key };
      case "cas":
        return {
          op: "cas",
          key: parsed.key,
          expect: decode(parsed.expect),
          value: decode(parsed.value),
        };
    }
  }

  /**
   * Applies a committed command. Deterministic: it depends on nothing but
   * the state and `command`. The command is checked again as in
   * {@linkcode KvStateMachine.validate}, so an entry that bypassed the
   * validator is refused alike on every node rather than crashing them.
   *
   * @param command The command.
   * @param _entry The entry that carried it (unused).
   * @returns `{ prev }` for `put` and `delete`, `{}` for `cas`.
   * @throws {CasFailedError} When a `cas` does not match; nothing changes.
   * @throws {RejectedError} When `command` is malformed; nothing changes.
   *
   * @example Put returns the previous value
   * ```ts
   * import { deepStrictEqual as assertEquals } from "node:assert/strict";
   * import { kvStateMachine } from "./kv.ts";
   *
   * const kv = kvStateMachine();
   * assertEquals(kv.apply({ op: "put", key: "a", value: 1 }), { prev: null });
   * assertEquals(kv.apply({ op: "put", key: "a", value: 2 }), { prev: 1 });
   * ```
   */
  apply(command: KvCommand, _entry?: EntryMeta): KvResult {
    const parsed = parseCommand(command);
    const current = this.#values.get(parsed.key);
    switch (parsed.op) {
      case "put":
        this.#set(parsed.key, parsed.value, current === undefined);
        return { prev: current === undefined ? null : decode(current) };
      case "delete":
        if (current !== undefined) this.#delete(parsed.key);
        return { prev: current === undefined ? null : decode(current) };
      case "cas": {
        const matches = parsed.expect === "null"
          ? current === undefined
          : current === parsed.expect;
        if (!matches) {
          throw new CasFailedError(
            parsed.key,
            current === undefined ? null : decode(current),
            current !== undefined,
          );
        }
        this.#set(parsed.key, parsed.value, current === undefined);
        return {};
      }
    }
  }

  /**
   * Answers a read against the current state. Never changes it; each
   * answer holds fresh copies of the values.
   *
   * @param query A `get` or a `list`.
   * @returns `{ found, value }` for `get`; `{ items }` for `list`, in
   *   ascending UTF-8 byte order of keys.
   * @throws {WaterCraftError} With code `invalid_request` when `query` is
   *   malformed (e.g. a key over {@linkcode KV_KEY_BYTES_MAX} bytes or a
   *   negative limit).
   *
   * @example Get of an absent key
   * ```ts
   * import { deepStrictEqual as assertEquals } from "node:assert/strict";
   * import { kvStateMachine } from "./kv.ts";
   *
   * assertEquals(kvStateMachine().query({ op: "get", key: "a" }), { found: false, value: null });
   * ```
   */
  query(query: KvGetQuery): KvGetAnswer;
  query(query: KvListQuery): KvListAnswer;
  query(query: KvQuery): KvAnswer;
  query(query: KvQuery): KvAnswer {
    const result = QUERY_SCHEMA.safeParse(query);
    if (!result.success) {
      throw new WaterCraftError(
        "invalid_request",
        `Cannot answer the key-value query: ${formatIssues(result.error.issues, "query")}`,
      );
    }
    const parsed = result.data;
    if (parsed.op === "get") {
      const value = this.#values.get(parsed.key);
      return value === undefined
        ? { found: false, value: null }
        : { found: true, value: decode(value) };
    }
    const prefix = parsed.prefix ?? "";
    const limit = Math.min(parsed.limit ?? KV_LIST_LIMIT_DEFAULT, KV_LIST_LIMIT_MAX);
    const after = parsed.after !== undefined && compareKeys(parsed.after, prefix) >= 0;
    // Keys that start with `prefix` form one run from the first key not
    // below it: byte order is lexicographic, so stop at the first without it.
    const items: KvListItem[] = [];
    if (limit === 0) return { items };
    this.#keys.scan(after ? parsed.after! : prefix, after, (key) => {
      if (!key.startsWith(prefix)) return false;
      items.push({ key, value: decode(this.#values.get(key)!) });
      return items.length < limit;
    });
    return { items };
  }

  /**
   * Serialises the whole state: UTF-8 JSON
   * `{"format":"watercraft-kv/1","entries":[[key,value],...]}` with entries in
   * ascending key order and values in canonical encoding, so equal states
   * give equal bytes.
   *
   * @returns The snapshot.
   *
   * @example Round trip
   * ```ts
   * import { deepStrictEqual as assertEquals } from "node:assert/strict";
   * import { kvStateMachine } from "./kv.ts";
   *
   * const kv = kvStateMachine();
   * kv.apply({ op: "put", key: "a", value: [1, 2] });
   * const copy = kvStateMachine();
   * copy.restore(kv.snapshot());
   * assertEquals(copy.snapshot(), kv.snapshot());
   * ```
   */
  snapshot(): Uint8Array {
    const parts: string[] = [];
    for (const key of this.#keys.all()) {
      parts.push(`[${JSON.stringify(key)},${this.#values.get(key)!}]`);
    }
    return ENCODER.encode(`{"format":"${SNAPSHOT_FORMAT}","entries":[${parts.join(",")}]}`);
  }

  /**
   * Replaces the whole state with a snapshot's. On failure the state is
   * left as it was.
   *
   * @param data Bytes from {@linkcode KvStateMachine.snapshot}.
   * @throws {AssertionError} When `data` is not such a snapshot: corrupt
   *   durable state is a bug, not an expected failure.
   */
  restore(data: Uint8Array): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
    } catch (error) {
      assert(false, `Cannot restore the key-value snapshot: it is not UTF-8 JSON: ${error}`);
    }
    assert(
      isPlainObject(parsed) && parsed.format === SNAPSHOT_FORMAT &&
        Array.isArray(parsed.entries),
      `Cannot restore the key-value snapshot: it is not in format ${SNAPSHOT_FORMAT}`,
    );
    const values = new Map<string, string>();
    const keys: string[] = [];
    for (const [i, pair] of (parsed.entries as unknown[]).entries()) {
      assert(
        Array.isArray(pair) && pair.length === 2 && typeof pair[0] === "string" &&
          keyProblem(pair[0], 1) === undefined,
        `Cannot restore the key-value snapshot: entry ${i} is not a [key, value] pair`,
      );
      const key = pair[0] as string;
      const previous = keys.at(-1);
      assert(
        previous === undefined || compareKeys(previous, key) < 0,
        `Cannot restore the key-value snapshot: key ${quoteKey(key)} is out of order`,
      );
      let value: string;
      try {
        value = encode(pair[1]);
      } catch (error) {
        if (!(error instanceof NotJsonError)) throw error;
        assert(
          false,
          `Cannot restore the key-value snapshot: key ${quoteKey(key)}: ${
            formatPath("value", ["value", ...error.path])
          } ${error.reason}`,
        );
      }
      keys.push(key);
      values.set(key, value);
    }
    this.#values = values;
    this.#keys = SortedKeys.fromSorted(keys);
  }

  /** Sets `key` to an encoded value; `isNew` says it was absent. */
  #set(key: string, value: string, isNew: boolean): void {
    if (isNew) this.#keys.insert(key);
    this.#values.set(key, value);
  }

  /** Removes a present key. */
  #delete(key: string): void {
    this.#keys.delete(key);
    this.#values.delete(key);
  }
}

/**
 * Creates an empty key-value state machine, the one the CLI runs.
 *
 * @returns A new machine with no keys.
 *
 * @example Applying commands and reading
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { kvStateMachine } from "./kv.ts";
 *
 * const kv = kvStateMachine();
 * assertEquals(kv.apply({ op: "put", key: "a", value: "x" }), { prev: null });
 * assertEquals(kv.apply({ op: "delete", key: "a" }), { prev: "x" });
 * assertEquals(kv.query({ op: "list" }), { items: [] });
 * ```
 */
export function kvStateMachine(): KvStateMachine {
  return new KvStateMachine();
}

const SNAPSHOT_FORMAT = "watercraft-kv/1";
const ENCODER = new TextEncoder();

/** A value is not JSON: `path` says where in it, `reason` why. */
class NotJsonError extends Error {
  readonly path: (string | number)[] = [];
  constructor(readonly reason: string) {
    super(reason);
  }
}

/**
 * Returns what is wrong with a key (or prefix, from `minBytes` 0), or
 * undefined when it is fine. Counts UTF-8 bytes without encoding, and
 * refuses lone surrogates, which have no UTF-8 form.
 */
function keyProblem(key: string, minBytes: number): string | undefined {
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
 */
function compareKeys(a: string, b: string): number {
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
 */
class SortedKeys {
  /** Non-empty chunks; every key of a chunk is below every key of the next. */
  #chunks: string[][] = [];
  #size = 0;

  /** Builds the set from keys already in strictly ascending order. */
  static fromSorted(keys: readonly string[]): SortedKeys {
    const set = new SortedKeys();
    for (let i = 0; i < keys.length; i += CHUNK_MAX / 2) {
      set.#chunks.push(keys.slice(i, i + CHUNK_MAX / 2));
    }
    set.#size = keys.length;
    return set;
  }

  get size(): number {
    return this.#size;
  }

  /** Inserts a key that is absent. */
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

  /** Deletes a key that is present. */
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

  /** Every key, in ascending order. */
  *all(): Generator<string> {
    for (const chunk of this.#chunks) yield* chunk;
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

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function pathOf(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

/**
 * Encodes a JSON value canonically: object keys in {@linkcode compareKeys}
 * order, no whitespace, numbers as `JSON.stringify` writes them (exactly
 * specified by ECMAScript, so equal on every runtime).
 *
 * @throws {NotJsonError} When `value` is not JSON, or nests deeper than
 *   {@linkcode KV_VALUE_DEPTH_MAX} (which also stops cycles).
 */
function encode(value: unknown, depth = 0): string {
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new NotJsonError("must be a finite number");
      return JSON.stringify(value);
    case "undefined":
      throw new NotJsonError(depth === 0 ? "is required" : "must be a JSON value, got undefined");
    case "object":
      break;
    default:
      throw new NotJsonError(`must be a JSON value, got ${typeof value}`);
  }
  if (value === null) return "null";
  if (depth >= KV_VALUE_DEPTH_MAX) {
    throw new NotJsonError(`nests deeper than ${KV_VALUE_DEPTH_MAX} levels`);
  }
  const isArray = Array.isArray(value);
  if (!isArray && !isPlainObject(value)) {
    const name = (value as object).constructor?.name ?? "unknown";
    throw new NotJsonError(`must be a plain JSON object, got ${name}`);
  }
  const parts: string[] = [];
  let at: string | number = 0;
  try {
    if (isArray) {
      for (; at < value.length; at++) parts.push(encode(value[at], depth + 1));
      return `[${parts.join(",")}]`;
    }
    for (at of Object.keys(value).sort(compareKeys)) {
      parts.push(`${JSON.stringify(at)}:${encode(value[at], depth + 1)}`);
    }
    return `{${parts.join(",")}}`;
  } catch (error) {
    // Builds the path on the way out, so that success costs nothing for it.
    if (error instanceof NotJsonError) error.path.unshift(at);
    throw error;
  }
}

/** Decodes a stored canonical encoding into a fresh value. */
function decode(encoded: string): JsonValue {
  return JSON.parse(encoded) as JsonValue;
}

/** Shortens a key for messages; keys may be 1024 bytes long. */
function quoteKey(key: string): string {
  const quoted = JSON.stringify(key);
  return quoted.length > 80 ? `${quoted.slice(0, 76)}..."` : quoted;
}

function keySchema(minBytes: number) {
  return z.string({
    error: (issue) => issue.input === undefined ? "is required" : "must be a string",
  })
    .check((ctx) => {
      const problem = keyProblem(ctx.value, minBytes);
      if (problem !== undefined) {
        ctx.issues.push({ code: "custom", message: problem, input: ctx.value });
      }
    });
}

/** A JSON value, parsed to its canonical encoding. */
const VALUE_SCHEMA = z.custom<unknown>().transform((value, ctx): string => {
  try {
    return encode(value);
  } catch (error) {
    if (!(error instanceof NotJsonError)) throw error;
    ctx.issues.push({ code: "custom", message: error.reason, path: error.path, input: value });
    return z.NEVER;
  }
});

function objectError(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === "unrecognized_keys") {
    return `has unknown field${issue.keys.length === 1 ? "" : "s"} ${
      issue.keys.map((key) => JSON.stringify(key)).join(", ")
    }`;
  }
  return issue.code === "invalid_type" ? "must be a JSON object" : undefined;
}

function opError(ops: readonly string[]) {
  return (issue: z.core.$ZodRawIssue): string | undefined => {
    if (issue.code === "invalid_union") {
      return `must be one of ${ops.map((op) => JSON.stringify(op)).join(", ")}`;
    }
    return issue.code === "invalid_type" ? "must be a JSON object" : undefined;
  };
}

const COMMAND_SCHEMA = z.discriminatedUnion("op", [
  z.strictObject({ op: z.literal("put"), key: keySchema(1), value: VALUE_SCHEMA }, {
    error: objectError,
  }),
  z.strictObject({ op: z.literal("delete"), key: keySchema(1) }, { error: objectError }),
  z.strictObject(
    { op: z.literal("cas"), key: keySchema(1), expect: VALUE_SCHEMA, value: VALUE_SCHEMA },
    { error: objectError },
  ),
], { error: opError(["put", "delete", "cas"]) });

const QUERY_SCHEMA = z.discriminatedUnion("op", [
  z.strictObject({ op: z.literal("get"), key: keySchema(1) }, { error: objectError }),
  z.strictObject({
    op: z.literal("list"),
    prefix: keySchema(0).optional(),
    limit: z.int({ error: "must be a whole number" }).min(0, { error: "must be at least 0" })
      .optional(),
    after: keySchema(1).optional(),
  }, { error: objectError }),
], { error: opError(["get", "list"]) });

/** A command with its values in canonical encoding. */
type ParsedCommand = z.output<typeof COMMAND_SCHEMA>;

/** Writes a path as JavaScript would, e.g. `value.a[0]`. */
function formatPath(root: string, path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key !== "symbol") out = pathOf(out, key);
  }
  out = out.replace(/^\./, "");
  if (out === "") return root;
  return out.length > 100 ? `${out.slice(0, 97)}...` : out;
}

function formatIssues(issues: readonly z.core.$ZodIssue[], root: string): string {
  return issues.map((issue) => `${formatPath(root, issue.path)} ${issue.message}`).join("; ");
}

/** Parses a command, refusing it with a message naming every problem. */
function parseCommand(command: unknown): ParsedCommand {
  const result = COMMAND_SCHEMA.safeParse(command);
  if (!result.success) {
    throw new RejectedError(
      `Cannot accept the key-value command: ${formatIssues(result.error.issues, "command")}`,
    );
  }
  return result.data;
}
