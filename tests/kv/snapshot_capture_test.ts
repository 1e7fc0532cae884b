/**
 * The key-value machine's background snapshot: the state at the call,
 * whatever is applied while it is written, a slice at a time.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { type KvStateMachine, kvStateMachine } from "../../src/kv/state_machine.ts";
import { at } from "./machine_helpers.ts";

/** Enough keys of 256-byte values for several slices of 256 KiB. */
const KEYS = 4_000;
const VALUE = "v".repeat(256);

/** A machine holding `KEYS` keys `k0000` to `k3999`, at indexes 1 to `KEYS`. */
function largeMachine(): KvStateMachine {
  const kv = kvStateMachine();
  for (let i = 0; i < KEYS; i++) {
    kv.apply({ op: "put", key: `k${String(i).padStart(4, "0")}`, value: VALUE }, at(i + 1));
  }
  return kv;
}

/** Gives the event loop one turn. */
function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("a background snapshot is the state at the call, whatever is applied while it is written", async () => {
  const kv = largeMachine();
  const expected = kv.snapshot();
  let index = KEYS;
  let settled = false;
  const taking = kv.snapshotInBackground().then((data) => {
    settled = true;
    return data;
  });
  // Changed at once (the first slice is written before the call returns),
  // then between slices: late keys changed, deleted, deleted and written
  // again, new keys before and after the captured ones, a compare-and-set.
  kv.apply({ op: "put", key: "k3999", value: "changed" }, at(++index));
  kv.apply({ op: "delete", key: "k3998" }, at(++index));
  kv.apply({ op: "cas", key: "k3997", expect: VALUE, value: "swapped" }, at(++index));
  let turns = 0;
  for (; turns < 1_000 && !settled; turns++) {
    kv.apply({ op: "put", key: `k${3000 + turns}`, value: turns }, at(++index));
    kv.apply({ op: "delete", key: `k${2000 + turns}` }, at(++index));
    kv.apply({ op: "put", key: `k${2000 + turns}`, value: "again" }, at(++index));
    kv.apply({ op: "put", key: `a${turns}`, value: 1 }, at(++index));
    kv.apply({ op: "put", key: `z${turns}`, value: 1 }, at(++index));
    await macrotask();
  }
  ok(turns > 1, "the snapshot was written in one go: nothing applied between its slices");
  deepStrictEqual(await taking, expected);
  // The live state did change.
  strictEqual(kv.query({ op: "get", key: "k3999" }).value, "changed");
  strictEqual(kv.query({ op: "get", key: "k3998" }).found, false);
});

Deno.test("a restore while a background snapshot is written leaves that snapshot as it was", async () => {
  const kv = largeMachine();
  const expected = kv.snapshot();
  const taking = kv.snapshotInBackground();
  const other = kvStateMachine();
  other.apply({ op: "put", key: "k0001", value: "elsewhere" }, at(1));
  kv.restore(other.snapshot());
  kv.apply({ op: "put", key: "k3999", value: "after the restore" }, at(2));
  deepStrictEqual(await taking, expected);
  strictEqual(kv.query({ op: "get", key: "k0000" }).found, false);
});

Deno.test("a background snapshot of an empty or small state equals its snapshot", async () => {
  const kv = kvStateMachine();
  deepStrictEqual(await kv.snapshotInBackground(), kv.snapshot());
  kv.apply({ op: "put", key: "a", value: { x: [1, "é"] } }, at(1));
  deepStrictEqual(await kv.snapshotInBackground(), kv.snapshot());
  const copy = kvStateMachine();
  copy.restore(await kv.snapshotInBackground());
  deepStrictEqual(copy.snapshot(), kv.snapshot());
});
