/**
 * Key changes from the committed log: a `put` for every put and successful
 * compare-and-set, a `delete` for every delete. Refused commands (a failed
 * compare-and-set) change nothing and give nothing. A delete of an absent
 * key is reported too, with `prev: null`: its result cannot tell it from a
 * key that held `null`, and a watcher that keeps a copy of the keys must
 * never miss a delete.
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
  const prev = (entry.result as { prev?: JsonValue } | null)?.prev ?? null;
  const where = { key: command.key, index: entry.index, id: entry.id };
  switch (command.op) {
    case "put":
      return { type: "put", ...where, value: command.value!, prev };
    case "cas":
      // It succeeded, so the key held what was expected.
      return { type: "put", ...where, value: command.value!, prev: command.expect ?? null };
    case "delete":
      return { type: "delete", ...where, prev };
    default:
      return null;
  }
}
