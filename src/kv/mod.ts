/**
 * The built-in key-value state machine that the CLI runs (API.md section 3):
 * string keys in UTF-8 byte order, JSON values compared structurally by
 * compare-and-set, and byte-identical snapshots on every node.
 *
 * @example Put, compare-and-set and read back
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { kvStateMachine } from "./mod.ts";
 *
 * const kv = kvStateMachine();
 * kv.apply(kv.validate({ op: "put", key: "a", value: { n: 1 } }));
 * kv.apply(kv.validate({ op: "cas", key: "a", expect: { n: 1 }, value: { n: 2 } }));
 * assertEquals(kv.query({ op: "get", key: "a" }), { found: true, value: { n: 2 } });
 * ```
 *
 * @module
 */

export { type JsonValue, KV_VALUE_DEPTH_MAX } from "./canonical_json.ts";
export { KV_KEY_BYTES_MAX } from "./index.ts";
export { type KeyChange, keyChangeOf } from "./watch.ts";
export {
  CasFailedError,
  KV_LIST_LIMIT_DEFAULT,
  KV_LIST_LIMIT_MAX,
  type KvAnswer,
  type KvCommand,
  type KvGetAnswer,
  type KvGetQuery,
  type KvListAnswer,
  type KvListItem,
  type KvListQuery,
  type KvQuery,
  type KvResult,
  KvStateMachine,
  kvStateMachine,
} from "./state_machine.ts";
