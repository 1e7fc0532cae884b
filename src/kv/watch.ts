/**
 * Key changes from the committed log: a `put` for every put and successful
 * compare-and-set, a `delete` for every delete. Refused commands (a failed
 * compare-and-set) change nothing and give nothing. A delete of an absent
 * key is reported too, with `prev: null`: its result cannot tell it from a
 * key that held `null`, and a watcher that keeps a copy of the keys must
 * never miss a delete.
 *
 * Revisions come from the command's result: a `put` carries the key's
 * `created` and `modified` (the entry's own index) after it, a `delete` of a
 * key that existed its `prevCreated` and `prevModified`. A field is left out
 * when the result does not hold it (a `cas` applied by a release before
 * revisions, say), rather than guessed.
 *
 * @module
 */

import type { WatchEvent } from "../node/watch.ts";
import type { JsonValue } from "./canonical_json.ts";

/** One change of one key, with the entry that made it. */
export type KeyChange =
  | {
    readonly type: "put";
    /** The key. */
    readonly key: string;
    /** Its new value. */
    readonly value: JsonValue;
    /** Its value before (null: absent, or null). */
    readonly prev: JsonValue;
    /** The entry's index. */
    readonly index: number;
    /** The entry's hash. */
    readonly id: string;
    /** Index of the entry that created the key (0: unknown), when known. */
    readonly created?: number;
    /** Index of the entry that changed it last: this one, when known. */
    readonly modified?: number;
    /** Its `modified` before, when it existed. */
    readonly prevModified?: number;
  }
  | {
    readonly type: "delete";
    /** The key. */
    readonly key: string;
    /** Its value before (null: absent, or null). */
    readonly prev: JsonValue;
    /** The entry's index. */
    readonly index: number;
    /** The entry's hash. */
    readonly id: string;
    /** The removed key's `created`, when it existed. */
    readonly prevCreated?: number;
    /** The removed key's `modified`, when it existed. */
    readonly prevModified?: number;
  };

/**
 * The key change an event of the node's watch stands for.
 *
 * @param event A watch event.
 * @param prefix Only keys that start with this.
 * @returns The change, or null when the event changed no key under `prefix`.
 */
export function keyChangeOf(event: WatchEvent, prefix: string): KeyChange | null {
  if (event.type !== "entry" || event.entry.kind !== "command") return null;
  const { entry } = event;
  if (!("result" in entry)) return null;
  const command = entry.data as
    | { op?: string; key?: unknown; value?: JsonValue; expect?: JsonValue }
    | null;
  if (typeof command?.key !== "string" || !command.key.startsWith(prefix)) return null;
  const result = (entry.result ?? {}) as Record<string, unknown>;
  const where = { key: command.key, index: entry.index, id: entry.id };
  switch (command.op) {
    case "put":
    case "cas": {
      // A cas result of a release before revisions had no prev; it
      // succeeded, so the key held what it expected.
      const prev = "prev" in result ? result.prev as JsonValue : command.expect ?? null;
      return {
        type: "put",
        ...where,
        value: command.value!,
        prev,
        ...revisions(result, ["created", "modified", "prevModified"]),
      };
    }
    case "delete":
      return {
        type: "delete",
        ...where,
        prev: (result.prev ?? null) as JsonValue,
        ...revisions(result, ["prevCreated", "prevModified"]),
      };
    default:
      return null;
  }
}

/** The revision fields of `result` among `fields` that hold numbers. */
function revisions<F extends string>(
  result: Record<string, unknown>,
  fields: readonly F[],
): { [K in F]?: number } {
  const out: { [K in F]?: number } = {};
  for (const field of fields) {
    const value = result[field];
    if (typeof value === "number") out[field] = value;
  }
  return out;
}
