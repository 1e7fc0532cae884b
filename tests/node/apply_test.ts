/**
 * The state machine's side of the node: commands are encoded once at the
 * edge and decoded once at apply; bytes that no edge made are refused alike
 * on every node instead of stopping it; a repeated idempotency key gets the
 * first entry's result.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { createEntry, type Entry, GENESIS_HASH } from "../../src/core/entry.ts";
import { RejectedError } from "../../src/errors.ts";
import { kvStateMachine } from "../../src/kv/mod.ts";
import { Applier } from "../../src/node/apply.ts";
import { sealEnvelope } from "../../src/node/envelope.ts";
import type { StateMachine } from "../../src/state_machine.ts";

const encoder = new TextEncoder();

function entry(index: number, data: Uint8Array): Entry {
  return createEntry(index, GENESIS_HASH, {
    term: 1,
    kind: "command",
    proposer: "n1",
    timeMs: 0,
    data,
  });
}

Deno.test("Applier.encode() validates where the request enters and encodes once", () => {
  const applier = new Applier(kvStateMachine());
  const bytes = applier.encode({ op: "put", key: "a", value: { b: 1, a: 2 } });
  const applied = applier.apply(entry(1, sealEnvelope(bytes, undefined)));
  deepStrictEqual(applied.outcome, { ok: true, value: { prev: null, created: 1, modified: 1 } });
  throws(() => applier.encode({ op: "incr", key: "a" }), RejectedError);
});

Deno.test("Applier.apply() refuses bytes no edge made, and keeps applying", async (t) => {
  const rows: { name: string; data: Uint8Array }[] = [
    { name: "not an envelope", data: Uint8Array.of(0, 1, 2) },
    {
      name: "an envelope around bytes the machine cannot decode",
      data: sealEnvelope(Uint8Array.of(9), undefined),
    },
    {
      name: "a put whose value is not JSON (a later put of the key must still apply)",
      data: sealEnvelope(Uint8Array.of(1, 0, 1, 97, 123), undefined),
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const applier = new Applier(kvStateMachine());
      const applied = applier.apply(entry(1, row.data));
      ok(!applied.outcome.ok && applied.outcome.error instanceof RejectedError);
      strictEqual(applied.ran, false);
      const next = applier.encode({ op: "put", key: "a", value: 1 });
      ok(applier.apply(entry(2, sealEnvelope(next, undefined))).outcome.ok);
    });
  }
});

Deno.test("Applier.apply() reads 0.1's JSON entries with the default codec", () => {
  const seen: unknown[] = [];
  const sm: StateMachine = {
    apply: (command) => seen.push(command),
    snapshot: () => new Uint8Array(0),
    restore: () => {},
  };
  const applier = new Applier(sm);
  applier.apply(entry(1, encoder.encode('{"c":{"add":2},"k":"r1"}')));
  applier.apply(entry(2, encoder.encode('{"c":{"add":2},"k":"r1"}')));
  deepStrictEqual(seen, [{ add: 2 }], "the repeated key applies once");
});

Deno.test("Applier.apply() answers a repeated idempotency key with the first entry's result", () => {
  const applier = new Applier(kvStateMachine());
  const put = (value: number) =>
    sealEnvelope(applier.encode({ op: "put", key: "a", value }), "retry-1");
  const first = applier.apply(entry(1, put(1)));
  const again = applier.apply(entry(2, put(2)));
  deepStrictEqual(again.outcome, first.outcome);
  strictEqual(again.as?.index, 1);
  strictEqual(again.ran, false);
});

Deno.test("Applier.apply() lets a state machine's bug through, to stop the node", () => {
  const applier = new Applier({
    apply: () => {
      throw new TypeError("bug");
    },
    snapshot: () => new Uint8Array(0),
    restore: () => {},
  });
  throws(() => applier.apply(entry(1, sealEnvelope(encoder.encode("1"), undefined))), TypeError);
});
