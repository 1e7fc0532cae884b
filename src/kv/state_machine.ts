/**
 * The built-in key-value state machine that the CLI runs (API.md section 3).
 *
 * Keys are strings of 1 to {@linkcode KV_KEY_BYTES_MAX} UTF-8 bytes, kept in
 * UTF-8 byte order (the same as Unicode code point order). Values are JSON
 * values, stored in a canonical encoding (object keys sorted, no
 * whitespace), so that compare-and-set compares them structurally and every
 * node's snapshot of the same log is byte-identical.
 *
 * Every key carries two revisions, both log indexes (like etcd's create and
 * mod revisions): `created`, the entry that made it exist after absence, and
 * `modified`, the last entry that changed it. They are applied state, equal
 * on every node, and a compare-and-set may compare `modified` instead of the
 * value.
 *
 * @example Put, compare-and-set and read back
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { kvStateMachine } from "./state_machine.ts";
 *
 * // What the node passes along with each committed command.
 * const at = (index: number) => ({ index, term: 1, id: "", proposer: "n1", timeMs: 0 });
 * const kv = kvStateMachine();
 * kv.apply(kv.validate({ op: "put", key: "a", value: { n: 1 } }), at(1));
 * kv.apply(kv.validate({ op: "cas", key: "a", expect: { n: 1 }, value: { n: 2 } }), at(2));
 * kv.apply(kv.validate({ op: "cas", key: "a", expectModified: 2, value: { n: 3 } }), at(3));
 * assertEquals(kv.query({ op: "get", key: "a" }), {
 *   found: true,
 *   value: { n: 3 },
 *   created: 1,
 *   modified: 3,
 * });
 * ```
 *
 * @module
 */

import { assert, AssertionError } from "../core/assert.ts";
import type { EntryMeta, StateMachine } from "../state_machine.ts";
import {
  decodeCanonical,
  encodeCanonical,
  isPlainObject,
  type JsonValue,
  NotJsonError,
} from "./canonical_json.ts";
import { CasFailedError } from "./cas_failed_error.ts";
import { compareKeys, keyProblem, quoteKey, SortedKeys } from "./index.ts";
import { formatPath, parseCommand, type ParsedCommand, parseQuery } from "./schemas.ts";
import { decodeKvCommand, encodeKvCommand } from "./command_codec.ts";
import { macrotask } from "../binary/join.ts";
import {
  type KeyRecord,
  SNAPSHOT_END,
  SNAPSHOT_FORMAT,
  SNAPSHOT_START,
  SnapshotCapture,
  snapshotEntry,
} from "./snapshot_capture.ts";

/** Items a `list` query returns when it gives no `limit`. */
export const KV_LIST_LIMIT_DEFAULT = 100;

/** Most items one `list` query returns; larger limits are lowered to it. */
export const KV_LIST_LIMIT_MAX = 1000;

/**
 * A command of the key-value machine, as logged (API.md section 3).
 *
 * - `put` sets `key` to `value`.
 * - `delete` removes `key` (absent keys are fine).
 * - `cas` with `expect` sets `key` to `value` only if its current value
 *   equals `expect` structurally; `expect: null` means "the key must be
 *   absent".
 * - `cas` with `expectModified` sets `key` to `value` only if the key's
 *   `modified` revision equals it; `expectModified: 0` means "the key must
 *   be absent".
 */
export type KvCommand =
  | { readonly op: "put"; readonly key: string; readonly value: JsonValue }
  | { readonly op: "delete"; readonly key: string }
  | {
    readonly op: "cas";
    readonly key: string;
    readonly expect: JsonValue;
    readonly value: JsonValue;
  }
  | {
    readonly op: "cas";
    readonly key: string;
    readonly expectModified: number;
    readonly value: JsonValue;
  };

/**
 * Where a key's life stands in the log. Both are indexes of committed
 * entries, so they are equal on every node that applied the same log; 0
 * means unknown (a key restored from a snapshot of format
 * `watercraft-kv/1`, which kept no revisions, or applied without an entry).
 */
export interface KvRevisions {
  /** Index of the entry that made the key exist after absence (a put or a cas). */
  readonly created: number;
  /** Index of the last entry that changed it; never below `created`. */
  readonly modified: number;
}

/**
 * What a `put` or a successful `cas` returns: the key's revisions after it
 * (`modified` is the entry's own index), and what it replaced.
 */
export interface KvPutResult extends KvRevisions {
  /** The value before, or null when the key was absent. */
  readonly prev: JsonValue;
  /** The key's `modified` before; only when the key existed. */
  readonly prevModified?: number;
}

/** What a `delete` returns: what it removed. */
export interface KvDeleteResult {
  /** The value before, or null when the key was absent. */
  readonly prev: JsonValue;
  /** The removed key's `created`; only when the key existed. */
  readonly prevCreated?: number;
  /** The removed key's `modified`; only when the key existed. */
  readonly prevModified?: number;
}

/**
 * What applying a command returns: a {@linkcode KvPutResult} for `put` and
 * `cas`, a {@linkcode KvDeleteResult} for `delete`.
 */
export type KvResult = KvPutResult | KvDeleteResult;

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

/**
 * The answer to a {@linkcode KvGetQuery}: the value and revisions when
 * found; `value` is null when not found.
 */
export type KvGetAnswer =
  | ({ readonly found: true; readonly value: JsonValue } & KvRevisions)
  | { readonly found: false; readonly value: null };

/** One key, its value and its revisions in a {@linkcode KvListAnswer}. */
export interface KvListItem extends KvRevisions {
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
 * const at = (index: number) => ({ index, term: 1, id: "", proposer: "n1", timeMs: 0 });
 * for (const [i, key] of ["b/2", "a", "b/1"].entries()) kv.apply({ op: "put", key, value: key }, at(i + 1));
 * assertEquals(kv.query({ op: "list", prefix: "b/" }), {
 *   items: [
 *     { key: "b/1", value: "b/1", created: 3, modified: 3 },
 *     { key: "b/2", value: "b/2", created: 1, modified: 1 },
 *   ],
 * });
 * ```
 */
export class KvStateMachine implements StateMachine<KvCommand, KvResult, KvQuery, KvAnswer> {
  /** Key to its value (canonical JSON text) and revisions. */
  #records = new Map<string, KeyRecord>();
  /** Every key of `#records`, in ascending {@linkcode compareKeys} order. */
  #keys = new SortedKeys();
  /** Snapshots being written in the background, told of each change first. */
  readonly #captures = new Set<SnapshotCapture>();

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
   * the state, `command` and `entry.index`. A command that `validate` or
   * `decode` made is applied as is; any other is checked as in
   * {@linkcode KvStateMachine.validate} first.
   *
   * @param command The command.
   * @param entry The entry that carried it: its index becomes the revision
   *   of the key it changes. Without it (a machine used on its own, outside
   *   a node) revisions are recorded as 0, unknown.
   * @returns A {@linkcode KvPutResult} for `put` and `cas`, a
   *   {@linkcode KvDeleteResult} for `delete`.
   * @throws {CasFailedError} When a `cas` does not match; nothing changes,
   *   revisions included.
   * @throws {RejectedError} When `command` is malformed; nothing changes.
   *
   * @example Put returns the previous value and the revisions
   * ```ts
   * import { deepStrictEqual as assertEquals } from "node:assert/strict";
   * import { kvStateMachine } from "./state_machine.ts";
   *
   * const at = (index: number) => ({ index, term: 1, id: "", proposer: "n1", timeMs: 0 });
   * const kv = kvStateMachine();
   * assertEquals(kv.apply({ op: "put", key: "a", value: 1 }, at(5)), {
   *   prev: null,
   *   created: 5,
   *   modified: 5,
   * });
   * assertEquals(kv.apply({ op: "put", key: "a", value: 2 }, at(6)), {
   *   prev: 1,
   *   created: 5,
   *   modified: 6,
   *   prevModified: 5,
   * });
   * ```
   */
  apply(command: KvCommand, entry?: EntryMeta): KvResult {
    const parsed = parsedOf(command);
    const index = entry?.index ?? 0;
    const current = this.#records.get(parsed.key);
    switch (parsed.op) {
      case "put":
        return this.#put(parsed.key, parsed.value, current, index);
      case "delete":
        if (current === undefined) return { prev: null };
        this.#delete(parsed.key, current);
        return {
          prev: decodeCanonical(current.text),
          prevCreated: current.created,
          prevModified: current.modified,
        };
      case "cas": {
        const matches = "expectModified" in parsed
          ? (parsed.expectModified === 0
            ? current === undefined
            : current?.modified === parsed.expectModified)
          : (parsed.expect === "null" ? current === undefined : current?.text === parsed.expect);
        if (!matches) {
          throw new CasFailedError(
            parsed.key,
            current === undefined ? null : decodeCanonical(current.text),
            {
              exists: current !== undefined,
              modified: current?.modified ?? 0,
              ...("expectModified" in parsed ? { expectModified: parsed.expectModified } : {}),
            },
          );
        }
        return this.#put(parsed.key, parsed.value, current, index);
      }
    }
  }

  /**
   * Answers a read against the current state. Never changes it; each
   * answer holds fresh copies of the values.
   *
   * @param query A `get` or a `list`.
   * @returns `{ found, value, created, modified }` for `get` (`{ found:
   *   false, value: null }` when absent); `{ items }` for `list`, each
   *   `{ key, value, created, modified }`, in ascending UTF-8 byte order of
   *   keys.
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
      const record = this.#records.get(parsed.key);
      return record === undefined ? { found: false, value: null } : {
        found: true,
        value: decodeCanonical(record.text),
        created: record.created,
        modified: record.modified,
      };
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
      const { text, created, modified } = this.#records.get(key)!;
      items.push({ key, value: decodeCanonical(text), created, modified });
      return items.length < limit;
    });
    return { items };
  }

  /**
   * Serialises the whole state: UTF-8 JSON
   * `{"format":"watercraft-kv/2","entries":[[key,value,created,modified],...]}`
   * with entries in ascending key order and values in canonical encoding,
   * so equal states give equal bytes.
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
    for (const key of this.#keys.all()) parts.push(snapshotEntry(key, this.#records.get(key)!));
    return ENCODER.encode(SNAPSHOT_START + parts.join(",") + SNAPSHOT_END);
  }

  /**
   * Captures the state now and serialises it a slice at a time, giving the
   * event loop a turn between slices; the node goes on applying meanwhile.
   * The bytes equal what {@linkcode KvStateMachine.snapshot} returns now.
   *
   * @returns The snapshot.
   */
  async snapshotInBackground(): Promise<Uint8Array> {
    const capture = new SnapshotCapture(this.#keys.toArray(), this.#records);
    this.#captures.add(capture);
    try {
      return await capture.write(macrotask);
    } finally {
      this.#captures.delete(capture);
    }
  }

  /**
   * Replaces the whole state with a snapshot's. On failure the state is
   * left as it was. Takes the current format and `watercraft-kv/1` (from
   * releases before revisions: `[key,value]` pairs), whose keys get
   * revisions 0, unknown, until they are next written.
   *
   * @param data Bytes from {@linkcode KvStateMachine.snapshot}.
   * @throws {AssertionError} When `data` is not such a snapshot: corrupt
   *   durable state is a bug, not an expected failure.
   */
  restore(data: Uint8Array): void {
    const { records, keys } = parseSnapshot(data);
    // Snapshots being written keep the old records, which no longer change.
    this.#captures.clear();
    this.#records = records;
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

  /**
   * Sets `key` to an encoded value at entry `index`. A key that was absent
   * is created there; one that existed keeps its `created`, unless `index`
   * is 0 (no entry): then both revisions become unknown, since a known
   * `created` above an unknown `modified` would break `created <= modified`.
   */
  #put(key: string, text: string, current: KeyRecord | undefined, index: number): KvPutResult {
    this.#changing(key, current);
    if (current === undefined) {
      this.#keys.insert(key);
      this.#records.set(key, { text, created: index, modified: index });
      return { prev: null, created: index, modified: index };
    }
    const created = index === 0 ? 0 : current.created;
    this.#records.set(key, { text, created, modified: index });
    return {
      prev: decodeCanonical(current.text),
      created,
      modified: index,
      prevModified: current.modified,
    };
  }

  /** Removes a present key, whose record is `current`. */
  #delete(key: string, current: KeyRecord): void {
    this.#changing(key, current);
    this.#keys.delete(key);
    this.#records.delete(key);
  }

  /** Keeps what `key` holds for the snapshots being written, before it changes. */
  #changing(key: string, current: KeyRecord | undefined): void {
    for (const capture of this.#captures) capture.changing(key, current);
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
 * const at = (index: number) => ({ index, term: 1, id: "", proposer: "n1", timeMs: 0 });
 * const kv = kvStateMachine();
 * assertEquals(kv.apply({ op: "put", key: "a", value: "x" }, at(1)), {
 *   prev: null,
 *   created: 1,
 *   modified: 1,
 * });
 * assertEquals(kv.apply({ op: "delete", key: "a" }, at(2)), {
 *   prev: "x",
 *   prevCreated: 1,
 *   prevModified: 1,
 * });
 * assertEquals(kv.query({ op: "list" }), { items: [] });
 * ```
 */
export function kvStateMachine(): KvStateMachine {
  return new KvStateMachine();
}

/** The format before revisions, still restored: entries `[key,value]`. */
const SNAPSHOT_FORMAT_V1 = "watercraft-kv/1";
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
  if (parsed.op === "cas" && "expect" in parsed) {
    Object.defineProperty(command, "expect", {
      enumerable: true,
      get: () => decodeCanonical(parsed.expect),
    });
  }
  if (parsed.op === "cas" && "expectModified" in parsed) {
    Object.defineProperty(command, "expectModified", {
      enumerable: true,
      value: parsed.expectModified,
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
 * Parses a key-value snapshot of the current format, or of format
 * `watercraft-kv/1`, whose keys get revisions 0 (unknown).
 *
 * @throws {AssertionError} When `data` is not a snapshot of either format.
 */
function parseSnapshot(data: Uint8Array): { records: Map<string, KeyRecord>; keys: string[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch (error) {
    assert(false, `Cannot restore the key-value snapshot: it is not UTF-8 JSON: ${error}`);
  }
  assert(
    isPlainObject(parsed) &&
      (parsed.format === SNAPSHOT_FORMAT || parsed.format === SNAPSHOT_FORMAT_V1) &&
      Array.isArray(parsed.entries),
    `Cannot restore the key-value snapshot: it is not in format ${SNAPSHOT_FORMAT} ` +
      `or ${SNAPSHOT_FORMAT_V1}`,
  );
  const withRevisions = parsed.format === SNAPSHOT_FORMAT;
  const records = new Map<string, KeyRecord>();
  const keys: string[] = [];
  for (const [i, entry] of (parsed.entries as unknown[]).entries()) {
    assert(
      Array.isArray(entry) && entry.length === (withRevisions ? 4 : 2) &&
        typeof entry[0] === "string" && keyProblem(entry[0], 1) === undefined,
      `Cannot restore the key-value snapshot: entry ${i} is not a ` +
        (withRevisions ? "[key, value, created, modified] tuple" : "[key, value] pair"),
    );
    const key = entry[0] as string;
    const previous = keys.at(-1);
    assert(
      previous === undefined || compareKeys(previous, key) < 0,
      `Cannot restore the key-value snapshot: key ${quoteKey(key)} is out of order`,
    );
    let text: string;
    try {
      text = encodeCanonical(entry[1]);
    } catch (error) {
      if (!(error instanceof NotJsonError)) throw error;
      assert(
        false,
        `Cannot restore the key-value snapshot: key ${quoteKey(key)}: ${
          formatPath("value", ["value", ...error.path])
        } ${error.reason}`,
      );
    }
    const created = withRevisions ? entry[2] : 0;
    const modified = withRevisions ? entry[3] : 0;
    assert(
      isRevision(created) && isRevision(modified) && created <= modified,
      `Cannot restore the key-value snapshot: key ${quoteKey(key)} has revisions ` +
        `${JSON.stringify(created)} and ${JSON.stringify(modified)}, not 0 <= created <= modified`,
    );
    keys.push(key);
    records.set(key, { text, created, modified });
  }
  return { records, keys };
}

/** Whether `value` can be a revision: a log index, or 0 for unknown. */
function isRevision(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
