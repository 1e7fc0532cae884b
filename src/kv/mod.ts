/**
 * The built-in key-value state machine that the CLI runs (API.md section 3):
 * string keys in UTF-8 byte order, JSON values compared structurally by
 * compare-and-set, revisions (the indexes that created and last changed
 * each key) that compare-and-set may compare instead, and byte-identical
 * snapshots on every node.
 *
 * @example Put, compare-and-set and read back
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { kvStateMachine } from "./mod.ts";
 *
 * const kv = kvStateMachine();
 * // What the node passes along with each committed command: its index is the key's revision.
 * const at = (index: number) => ({ index, term: 1, id: "", proposer: "n1", timeMs: 0 });
 * kv.apply(kv.validate({ op: "put", key: "a", value: { n: 1 } }), at(1));
 * kv.apply(kv.validate({ op: "cas", key: "a", expectModified: 1, value: { n: 2 } }), at(2));
 * assertEquals(kv.query({ op: "get", key: "a" }), {
 *   found: true,
 *   value: { n: 2 },
 *   created: 1,
 *   modified: 2,
 * });
 * ```
 *
 * @module
 */

export { type JsonValue, KV_VALUE_DEPTH_MAX } from "./canonical_json.ts";
export { KV_KEY_BYTES_MAX } from "./index.ts";
export { type KeyChange, keyChangeOf } from "./watch.ts";
export { CasFailedError, type CasFailure } from "./cas_failed_error.ts";
export {
  KV_LIST_LIMIT_DEFAULT,
  KV_LIST_LIMIT_MAX,
  type KvAnswer,
  type KvCommand,
  type KvDeleteResult,
  type KvGetAnswer,
  type KvGetQuery,
  type KvListAnswer,
  type KvListItem,
  type KvListQuery,
  type KvPutResult,
  type KvQuery,
  type KvResult,
  type KvRevisions,
  KvStateMachine,
  kvStateMachine,
} from "./state_machine.ts";
