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
 * import { kvStateMachine } from "./state_machine.ts";
 *
 * const kv = kvStateMachine();
 * kv.apply(kv.validate({ op: "put", key: "a", value: { n: 1 } }));
 * kv.apply(kv.validate({ op: "cas", key: "a", expect: { n: 1 }, value: { n: 2 } }));
 * assertEquals(kv.query({ op: "get", key: "a" }), { found: true, value: { n: 2 } });
 * ```
 *
 * @module
 */

import { assert, AssertionError } from "../core/assert.ts";
import { WaterCraftError } from "../errors.ts";
import type { EntryMeta, StateMachine } from "../state_machine.ts";
import {
  decodeCanonical,
  encodeCanonical,
  isPlainObject,
  type JsonValue,
  NotJsonError,
} from "./canonical_json.ts";
import { compareKeys, keyProblem, quoteKey, SortedKeys } from "./index.ts";
import { formatPath, parseCommand, type ParsedCommand, parseQuery } from "./schemas.ts";
import { decodeKvCommand, encodeKvCommand } from "./command_codec.ts";

/** Items a `list` query returns when it gives no `limit`. */
export const KV_LIST_LIMIT_DEFAULT = 100;

/** Most items one `list` query returns; larger limits are lowered to it. */
export const KV_LIST_LIMIT_MAX = 1000;

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
 * import { CasFailedError, kvStateMachine } from "./state_machine.ts";
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
 * import { KvStateMachine } from "./state_machine.ts";
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
   * import { kvStateMachine } from "./state_machine.ts";
   * import { RejectedError } from "../errors.ts";
   *
   * throws(() => kvStateMachine().validate({ op: "incr", key: "a" }), RejectedError);
   * ```
   */
  validate(command: unknown): KvCommand {
    return checkedCommand(parseCommand(command));
  }

  /**
   * Encodes a command as log bytes (see `command_codec.ts`), its values in
   * canonical text. A command from {@linkcode KvStateMachine.validate} is
   * not checked again.
   *
   * @param command The command.
   * @returns Its log bytes.
   * @throws {RejectedError} When `command` is malformed.
   */
  encode(command: KvCommand): Uint8Array {
    return encodeKvCommand(parsedOf(command));
  }

  /**
   * Decodes log bytes into the command `apply` takes, without parsing its
   * values: they stay canonical text until a client reads them.
   *
   * @param data Bytes made by {@linkcode KvStateMachine.encode}.
   * @returns The command.
   * @throws {RangeError} When the bytes are not a key-value command.
   */
  decode(data: Uint8Array): KvCommand {
    return checkedCommand(decodeKvCommand(data));
  }

  /**
   * Applies a committed command. Deterministic: it depends on nothing but
   * the state and `command`. A command that `validate` or `decode` made is
   * applied as is; any other is checked as in
   * {@linkcode KvStateMachine.validate} first.
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
   * import { kvStateMachine } from "./state_machine.ts";
   *
   * const kv = kvStateMachine();
   * assertEquals(kv.apply({ op: "put", key: "a", value: 1 }), { prev: null });
   * assertEquals(kv.apply({ op: "put", key: "a", value: 2 }), { prev: 1 });
   * ```
   */
  apply(command: KvCommand, _entry?: EntryMeta): KvResult {
    const parsed = parsedOf(command);
    const current = this.#values.get(parsed.key);
    switch (parsed.op) {
      case "put":
        this.#set(parsed.key, parsed.value, current === undefined);
        return { prev: current === undefined ? null : decodeCanonical(current) };
      case "delete":
        if (current !== undefined) this.#delete(parsed.key);
        return { prev: current === undefined ? null : decodeCanonical(current) };
      case "cas": {
        const matches = parsed.expect === "null"
          ? current === undefined
          : current === parsed.expect;
        if (!matches) {
          throw new CasFailedError(
            parsed.key,
            current === undefined ? null : decodeCanonical(current),
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
   * import { kvStateMachine } from "./state_machine.ts";
   *
   * assertEquals(kvStateMachine().query({ op: "get", key: "a" }), { found: false, value: null });
   * ```
   */
  query(query: KvGetQuery): KvGetAnswer;
  query(query: KvListQuery): KvListAnswer;
  query(query: KvQuery): KvAnswer;
  query(query: KvQuery): KvAnswer {
    const parsed = parseQuery(query);
    if (parsed.op === "get") {
      const value = this.#values.get(parsed.key);
      return value === undefined
        ? { found: false, value: null }
        : { found: true, value: decodeCanonical(value) };
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
      items.push({ key, value: decodeCanonical(this.#values.get(key)!) });
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
   * import { kvStateMachine } from "./state_machine.ts";
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
    const { values, keys } = parseSnapshot(data);
    this.#values = values;
    this.#keys = SortedKeys.fromSorted(keys);
  }

  /**
   * Tells whether {@linkcode KvStateMachine.restore} would take `data`.
   *
   * @param data Snapshot bytes.
   * @returns True when they are a snapshot of this state machine.
   */
  checkSnapshot(data: Uint8Array): boolean {
    try {
      parseSnapshot(data);
      return true;
    } catch (error) {
      if (error instanceof AssertionError) return false;
      throw error;
    }
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
 * import { kvStateMachine } from "./state_machine.ts";
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

/** The checked form of a command made by `validate` or `decode`. */
const PARSED: unique symbol = Symbol("parsed key-value command");

/** A command whose values are known canonical: `apply` and `encode` skip the checks. */
type Checked = KvCommand & { readonly [PARSED]: ParsedCommand };

/**
 * Wraps a checked command as a {@linkcode KvCommand}. Its values are parsed
 * from their canonical text only if someone reads them.
 */
function checkedCommand(parsed: ParsedCommand): KvCommand {
  const command = { op: parsed.op, key: parsed.key };
  // Hidden, so the command looks like any other KvCommand to its readers.
  Object.defineProperty(command, PARSED, { value: parsed });
  // In the order of KvCommand's fields, as JSON of the command shows them.
  if (parsed.op === "cas") {
    Object.defineProperty(command, "expect", {
      enumerable: true,
      get: () => decodeCanonical(parsed.expect),
    });
  }
  if (parsed.op !== "delete") {
    Object.defineProperty(command, "value", {
      enumerable: true,
      get: () => decodeCanonical(parsed.value),
    });
  }
  return command as unknown as Checked;
}

/** The checked form of `command`: kept from `validate`/`decode`, or checked now. */
function parsedOf(command: KvCommand): ParsedCommand {
  return (command as Partial<Checked>)[PARSED] ?? parseCommand(command);
}

/**
 * Parses a key-value snapshot.
 *
 * @throws {AssertionError} When `data` is not a snapshot of this format.
 */
function parseSnapshot(data: Uint8Array): { values: Map<string, string>; keys: string[] } {
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
      value = encodeCanonical(pair[1]);
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
  return { values, keys };
}
