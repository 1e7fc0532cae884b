/**
 * Tests of the built-in key-value state machine: validation, apply
 * semantics, structural compare-and-set, listing, snapshots, determinism and
 * ownership of returned values. Revisions and compare-and-set on a revision
 * are in `revisions_test.ts`.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { RejectedError, WaterCraftError } from "../../src/errors.ts";
import {
  type KvCommand,
  type KvResult,
  type KvStateMachine,
  kvStateMachine,
} from "../../src/kv/state_machine.ts";
import { CasFailedError } from "../../src/kv/cas_failed_error.ts";
import { at, caught, machineWith } from "./machine_helpers.ts";

const decoder = new TextDecoder();

// "é" is 2 UTF-8 bytes: 512 of them plus one ASCII byte make 1025 bytes in
// only 513 characters, well under 1024 characters.
const KEY_1024_BYTES = "é".repeat(512);
const KEY_1025_BYTES = "é".repeat(512) + "a";

Deno.test("kv.validate() accepts each command kind and returns it normalised", async (t) => {
  const rows: { name: string; input: unknown; want: KvCommand }[] = [
    {
      name: "put of an object",
      input: { op: "put", key: "a", value: { x: [1, "2", true, null] } },
      want: { op: "put", key: "a", value: { x: [1, "2", true, null] } },
    },
    {
      name: "put of null",
      input: { op: "put", key: "a", value: null },
      want: { op: "put", key: "a", value: null },
    },
    {
      name: "put with a 1024-byte key",
      input: { op: "put", key: KEY_1024_BYTES, value: 1 },
      want: { op: "put", key: KEY_1024_BYTES, value: 1 },
    },
    {
      name: "delete",
      input: { op: "delete", key: "a" },
      want: { op: "delete", key: "a" },
    },
    {
      name: "cas with a value",
      input: { op: "cas", key: "a", expect: 1, value: 2 },
      want: { op: "cas", key: "a", expect: 1, value: 2 },
    },
    {
      name: "cas with expect null",
      input: { op: "cas", key: "a", expect: null, value: "x" },
      want: { op: "cas", key: "a", expect: null, value: "x" },
    },
    {
      name: "cas on a revision",
      input: { op: "cas", key: "a", expectModified: 7, value: { b: 1, a: 2 } },
      want: { op: "cas", key: "a", expectModified: 7, value: { a: 2, b: 1 } },
    },
    {
      name: "cas on revision 0 (absent)",
      input: { op: "cas", key: "a", value: 1, expectModified: 0 },
      want: { op: "cas", key: "a", expectModified: 0, value: 1 },
    },
    {
      name: "values with object keys sorted",
      input: { op: "put", key: "a", value: { b: 1, a: { d: 2, c: 3 } } },
      want: { op: "put", key: "a", value: { a: { c: 3, d: 2 }, b: 1 } },
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const got = kvStateMachine().validate(row.input);
      deepStrictEqual(got, row.want);
      strictEqual(JSON.stringify(got), JSON.stringify(row.want));
    });
  }
});

Deno.test("kv.validate() refuses malformed commands with RejectedError naming the problem", async (t) => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const rows: { name: string; input: unknown; message: RegExp }[] = [
    { name: "not an object", input: 5, message: /command must be a JSON object/ },
    { name: "null", input: null, message: /command must be a JSON object/ },
    { name: "array", input: [], message: /command must be a JSON object/ },
    { name: "no op", input: { key: "a" }, message: /op must be one of "put", "delete", "cas"/ },
    { name: "unknown op", input: { op: "incr", key: "a" }, message: /op must be one of/ },
    { name: "missing key", input: { op: "delete" }, message: /key is required/ },
    { name: "key not a string", input: { op: "delete", key: 5 }, message: /key must be a string/ },
    {
      name: "empty key",
      input: { op: "put", key: "", value: 1 },
      message: /key must be 1 to 1024 UTF-8 bytes, got 0/,
    },
    {
      name: "key of 1025 bytes in 513 characters",
      input: { op: "put", key: KEY_1025_BYTES, value: 1 },
      message: /key must be 1 to 1024 UTF-8 bytes, got 1025/,
    },
    {
      name: "key with a lone surrogate",
      input: { op: "delete", key: "a\ud800" },
      message: /key must be valid Unicode/,
    },
    { name: "put without value", input: { op: "put", key: "a" }, message: /value is required/ },
    {
      name: "cas without expect or expectModified",
      input: { op: "cas", key: "a", value: 1 },
      message: /command must have exactly one of "expect" and "expectModified"/,
    },
    {
      name: "cas with both expect and expectModified",
      input: { op: "cas", key: "a", expect: null, expectModified: 0, value: 1 },
      message: /command must have exactly one of "expect" and "expectModified"/,
    },
    {
      name: "cas on a negative revision",
      input: { op: "cas", key: "a", expectModified: -1, value: 1 },
      message: /expectModified must be at least 0/,
    },
    {
      name: "cas on a fractional revision",
      input: { op: "cas", key: "a", expectModified: 1.5, value: 1 },
      message: /expectModified must be a whole number/,
    },
    {
      name: "cas on a revision past the safe integers",
      input: { op: "cas", key: "a", expectModified: 2 ** 53, value: 1 },
      message: /expectModified must be a whole number/,
    },
    {
      name: "cas on a revision that is a string",
      input: { op: "cas", key: "a", expectModified: "3", value: 1 },
      message: /expectModified must be a whole number/,
    },
    {
      name: "cas without value",
      input: { op: "cas", key: "a", expect: 1 },
      message: /value is required/,
    },
    {
      name: "unknown field",
      input: { op: "put", key: "a", value: 1, ttl: 5 },
      message: /command has unknown field "ttl"/,
    },
    {
      name: "non-finite number",
      input: { op: "put", key: "a", value: { n: Infinity } },
      message: /value\.n must be a finite number/,
    },
    {
      name: "undefined inside an array",
      input: { op: "put", key: "a", value: [1, undefined] },
      message: /value\[1\] must be a JSON value/,
    },
    {
      name: "non-plain object",
      input: { op: "put", key: "a", value: { "a b": new Date(0) } },
      message: /value\["a b"\] must be a plain JSON object, got Date/,
    },
    {
      name: "bigint",
      input: { op: "put", key: "a", value: 1n },
      message: /value must be a JSON value, got bigint/,
    },
    {
      name: "cycle",
      input: { op: "put", key: "a", value: cyclic },
      message: /nests deeper than 64/,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const error = caught(() => kvStateMachine().validate(row.input));
      ok(error instanceof RejectedError, String(error));
      strictEqual(error.code, "rejected");
      ok(row.message.test(error.message), error.message);
    });
  }
});

Deno.test("kv.apply() refuses a malformed command without changing the state", () => {
  const kv = machineWith([{ op: "put", key: "a", value: 1 }]);
  const before = kv.snapshot();
  throws(() => kv.apply({ op: "put", key: "" } as unknown as KvCommand), RejectedError);
  deepStrictEqual(kv.snapshot(), before);
});

Deno.test("kv.apply() returns the previous value of put and delete", async (t) => {
  const rows: { name: string; setup: KvCommand[]; command: KvCommand; want: KvResult }[] = [
    {
      name: "put of an absent key",
      setup: [],
      command: { op: "put", key: "a", value: 1 },
      want: { prev: null, created: 1, modified: 1 },
    },
    {
      name: "put over a value",
      setup: [{ op: "put", key: "a", value: { x: 1 } }],
      command: { op: "put", key: "a", value: 2 },
      want: { prev: { x: 1 }, created: 1, modified: 2, prevModified: 1 },
    },
    {
      name: "delete of an absent key",
      setup: [],
      command: { op: "delete", key: "a" },
      want: { prev: null },
    },
    {
      name: "delete of a present key",
      setup: [{ op: "put", key: "a", value: [1] }],
      command: { op: "delete", key: "a" },
      want: { prev: [1], prevCreated: 1, prevModified: 1 },
    },
    {
      name: "delete of a key twice",
      setup: [{ op: "put", key: "a", value: 1 }, { op: "delete", key: "a" }],
      command: { op: "delete", key: "a" },
      want: { prev: null },
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const kv = machineWith(row.setup);
      deepStrictEqual(kv.apply(row.command, at(row.setup.length + 1)), row.want);
    });
  }

  await t.step("a deleted key is gone", () => {
    const kv = machineWith([{ op: "put", key: "a", value: 1 }, { op: "delete", key: "a" }]);
    deepStrictEqual(kv.query({ op: "get", key: "a" }), { found: false, value: null });
    deepStrictEqual(kv.query({ op: "list" }), { items: [] });
    strictEqual(kv.size, 0);
  });
});

Deno.test("kv.apply() compare-and-set sets on a match and throws CasFailedError otherwise", async (t) => {
  const rows: {
    name: string;
    setup: KvCommand[];
    expect: unknown;
    want:
      | { ok: true; result: KvResult }
      | { ok: false; current: unknown; modified: number; message: RegExp };
  }[] = [
    {
      name: "matching scalar",
      setup: [{ op: "put", key: "k", value: 1 }],
      expect: 1,
      want: { ok: true, result: { prev: 1, created: 1, modified: 2, prevModified: 1 } },
    },
    {
      name: "object equal with keys in another order",
      setup: [{ op: "put", key: "k", value: { a: 1, b: 2 } }],
      expect: { b: 2, a: 1 },
      want: {
        ok: true,
        result: { prev: { a: 1, b: 2 }, created: 1, modified: 2, prevModified: 1 },
      },
    },
    {
      name: "nested objects equal with keys in another order",
      setup: [{ op: "put", key: "k", value: [{ x: { p: 1, q: [2] }, y: null }] }],
      expect: [{ y: null, x: { q: [2], p: 1 } }],
      want: {
        ok: true,
        result: {
          prev: [{ x: { p: 1, q: [2] }, y: null }],
          created: 1,
          modified: 2,
          prevModified: 1,
        },
      },
    },
    {
      name: "expect null on an absent key",
      setup: [],
      expect: null,
      want: { ok: true, result: { prev: null, created: 1, modified: 1 } },
    },
    {
      name: "expect null on a deleted key",
      setup: [{ op: "put", key: "k", value: 1 }, { op: "delete", key: "k" }],
      expect: null,
      want: { ok: true, result: { prev: null, created: 3, modified: 3 } },
    },
    {
      name: "different scalar",
      setup: [{ op: "put", key: "k", value: 1 }],
      expect: 2,
      want: { ok: false, current: 1, modified: 1, message: /differs/ },
    },
    {
      name: "number against its string",
      setup: [{ op: "put", key: "k", value: 1 }],
      expect: "1",
      want: { ok: false, current: 1, modified: 1, message: /differs/ },
    },
    {
      name: "array order matters",
      setup: [{ op: "put", key: "k", value: [1, 2] }],
      expect: [2, 1],
      want: { ok: false, current: [1, 2], modified: 1, message: /differs/ },
    },
    {
      name: "extra object field",
      setup: [{ op: "put", key: "k", value: { a: 1 } }],
      expect: { a: 1, b: 2 },
      want: { ok: false, current: { a: 1 }, modified: 1, message: /differs/ },
    },
    {
      name: "expect null on a present key",
      setup: [{ op: "put", key: "k", value: "v" }],
      expect: null,
      want: { ok: false, current: "v", modified: 1, message: /differs/ },
    },
    {
      name: "expect null on a key holding null",
      setup: [{ op: "put", key: "k", value: null }],
      expect: null,
      want: { ok: false, current: null, modified: 1, message: /holds null/ },
    },
    {
      name: "expect a value on an absent key",
      setup: [],
      expect: 1,
      want: { ok: false, current: null, modified: 0, message: /absent/ },
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const kv = machineWith(row.setup);
      const command = kv.validate({ op: "cas", key: "k", expect: row.expect, value: "new" });
      const index = row.setup.length + 1;
      if (row.want.ok) {
        deepStrictEqual(kv.apply(command, at(index)), row.want.result);
        const { created } = row.want.result as { created: number };
        deepStrictEqual(kv.query({ op: "get", key: "k" }), {
          found: true,
          value: "new",
          created,
          modified: index,
        });
        return;
      }
      const before = kv.snapshot();
      const error = caught(() => kv.apply(command, at(index)));
      ok(error instanceof CasFailedError, String(error));
      ok(error instanceof WaterCraftError);
      strictEqual(error.code, "cas_failed");
      deepStrictEqual(error.current, row.want.current);
      strictEqual(error.modified, row.want.modified);
      deepStrictEqual(error.details, { current: row.want.current, modified: row.want.modified });
      ok(row.want.message.test(error.message), error.message);
      deepStrictEqual(kv.snapshot(), before);
    });
  }
});

Deno.test("kv.query() lists keys in byte order, by prefix, up to a limit", async (t) => {
  // "\u{1F600}" (U+1F600, a surrogate pair in UTF-16) comes after "\uFFFD" in
  // UTF-8 byte order though its first code unit (0xD83D) sorts before it.
  const keys = ["b", "a/2", "a/10", "a/1", "ab", "a", "\uFFFD", "\u{1F600}", "é", "B"];
  const kv = machineWith(keys.map((key) => ({ op: "put", key, value: key.length })));
  const rows: { name: string; prefix?: string; limit?: number; after?: string; want: string[] }[] =
    [
      {
        name: "everything",
        want: ["B", "a", "a/1", "a/10", "a/2", "ab", "b", "é", "\uFFFD", "\u{1F600}"],
      },
      { name: "prefix a/", prefix: "a/", want: ["a/1", "a/10", "a/2"] },
      { name: "prefix a", prefix: "a", want: ["a", "a/1", "a/10", "a/2", "ab"] },
      { name: "prefix equal to a whole key", prefix: "ab", want: ["ab"] },
      { name: "prefix matching nothing", prefix: "c", want: [] },
      { name: "prefix past every key", prefix: "\u{10FFFF}", want: [] },
      { name: "limit", prefix: "a", limit: 2, want: ["a", "a/1"] },
      { name: "limit 0", limit: 0, want: [] },
      { name: "after, to page", prefix: "a", limit: 2, after: "a/1", want: ["a/10", "a/2"] },
      { name: "after a key that is absent", prefix: "a", after: "a/11", want: ["a/2", "ab"] },
      { name: "after before the prefix", prefix: "a/", after: "B", want: ["a/1", "a/10", "a/2"] },
      { name: "after the last key", after: "\u{1F600}", want: [] },
    ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const answer = kv.query({
        op: "list",
        ...(row.prefix === undefined ? {} : { prefix: row.prefix }),
        ...(row.limit === undefined ? {} : { limit: row.limit }),
        ...(row.after === undefined ? {} : { after: row.after }),
      });
      deepStrictEqual(answer.items.map((item) => item.key), row.want);
      for (const item of answer.items) strictEqual(item.value, item.key.length);
    });
  }

  await t.step("limit defaults to 100 and is capped at 1000", () => {
    const big = kvStateMachine();
    for (let i = 0; i < 1500; i++) {
      big.apply({ op: "put", key: `k${String(i).padStart(4, "0")}`, value: i }, at(i + 1));
    }
    strictEqual(big.query({ op: "list" }).items.length, 100);
    strictEqual(big.query({ op: "list", limit: 5000 }).items.length, 1000);
    deepStrictEqual(big.query({ op: "list", prefix: "k149", limit: 2 }).items, [
      { key: "k1490", value: 1490, created: 1491, modified: 1491 },
      { key: "k1491", value: 1491, created: 1492, modified: 1492 },
    ]);
  });
});

Deno.test("kv.query() answers get and refuses malformed queries with invalid_request", async (t) => {
  const kv = machineWith([{ op: "put", key: "a", value: { x: 1 } }, {
    op: "put",
    key: "n",
    value: null,
  }]);

  await t.step("get of a present key", () => {
    deepStrictEqual(kv.query({ op: "get", key: "a" }), {
      found: true,
      value: { x: 1 },
      created: 1,
      modified: 1,
    });
  });
  await t.step("get of a key holding null", () => {
    deepStrictEqual(kv.query({ op: "get", key: "n" }), {
      found: true,
      value: null,
      created: 2,
      modified: 2,
    });
  });
  await t.step("get of an absent key", () => {
    deepStrictEqual(kv.query({ op: "get", key: "b" }), { found: false, value: null });
  });

  const rows: { name: string; query: unknown; message: RegExp }[] = [
    { name: "unknown op", query: { op: "scan" }, message: /op must be one of "get", "list"/ },
    { name: "get without key", query: { op: "get" }, message: /key is required/ },
    {
      name: "get of an empty key",
      query: { op: "get", key: "" },
      message: /key must be 1 to 1024/,
    },
    {
      name: "get of a 1025-byte key",
      query: { op: "get", key: KEY_1025_BYTES },
      message: /got 1025/,
    },
    {
      name: "negative limit",
      query: { op: "list", limit: -1 },
      message: /limit must be at least 0/,
    },
    {
      name: "fractional limit",
      query: { op: "list", limit: 1.5 },
      message: /limit must be a whole number/,
    },
    {
      name: "prefix not a string",
      query: { op: "list", prefix: 1 },
      message: /prefix must be a string/,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const error = caught(() => kv.query(row.query as never));
      ok(error instanceof WaterCraftError, String(error));
      strictEqual(error.code, "invalid_request");
      ok(row.message.test(error.message), error.message);
    });
  }
});

Deno.test("kv.snapshot() and kv.restore() round-trip the state exactly", async (t) => {
  const commands: KvCommand[] = [
    { op: "put", key: "z", value: { nested: [1, { b: true, a: null }], s: "x\ny" } },
    { op: "put", key: "a", value: -0.5 },
    { op: "put", key: "\u{1F600}", value: "emoji" },
    { op: "put", key: "\uFFFD", value: [] },
    { op: "put", key: "gone", value: 1 },
    { op: "delete", key: "gone" },
    { op: "put", key: "n", value: null },
  ];
  const kv = machineWith(commands);
  const bytes = kv.snapshot();

  await t.step("a restored machine answers and snapshots the same", () => {
    const copy = kvStateMachine();
    copy.apply({ op: "put", key: "stale", value: 1 });
    copy.restore(bytes);
    deepStrictEqual(copy.snapshot(), bytes);
    deepStrictEqual(copy.query({ op: "list" }), kv.query({ op: "list" }));
    deepStrictEqual(copy.query({ op: "get", key: "stale" }), { found: false, value: null });
    strictEqual(copy.size, 5);
  });

  await t.step("a restored machine keeps applying correctly", () => {
    const copy = kvStateMachine();
    copy.restore(bytes);
    deepStrictEqual(copy.apply({ op: "put", key: "b", value: 2 }, at(8)), {
      prev: null,
      created: 8,
      modified: 8,
    });
    deepStrictEqual(copy.apply({ op: "put", key: "z", value: 0 }, at(9)), {
      prev: { nested: [1, { a: null, b: true }], s: "x\ny" },
      created: 1,
      modified: 9,
      prevModified: 1,
    });
    deepStrictEqual(copy.query({ op: "list", limit: 2 }).items.map((i) => i.key), ["a", "b"]);
  });

  await t.step("the snapshot is UTF-8 JSON with keys in byte order", () => {
    const parsed = JSON.parse(decoder.decode(bytes));
    deepStrictEqual(parsed.entries.map((e: [string, unknown]) => e[0]), [
      "a",
      "n",
      "z",
      "\uFFFD",
      "\u{1F600}",
    ]);
  });

  await t.step("an empty machine round-trips", () => {
    const copy = machineWith([{ op: "put", key: "x", value: 1 }]);
    copy.restore(kvStateMachine().snapshot());
    strictEqual(copy.size, 0);
    deepStrictEqual(copy.snapshot(), kvStateMachine().snapshot());
  });

  const encoder = new TextEncoder();
  const corrupt: { name: string; data: Uint8Array }[] = [
    { name: "not JSON", data: encoder.encode("{") },
    { name: "invalid UTF-8", data: new Uint8Array([0xff]) },
    { name: "another format", data: encoder.encode('{"format":"other","entries":[]}') },
    {
      name: "keys out of order",
      data: encoder.encode('{"format":"watercraft-kv/1","entries":[["b",1],["a",2]]}'),
    },
    {
      name: "duplicate keys",
      data: encoder.encode('{"format":"watercraft-kv/1","entries":[["a",1],["a",2]]}'),
    },
    { name: "empty key", data: encoder.encode('{"format":"watercraft-kv/1","entries":[["",1]]}') },
    {
      name: "entry not a pair",
      data: encoder.encode('{"format":"watercraft-kv/1","entries":[["a"]]}'),
    },
    {
      name: "format 1 with revisions",
      data: encoder.encode('{"format":"watercraft-kv/1","entries":[["a",1,2,2]]}'),
    },
    {
      name: "format 2 without revisions",
      data: encoder.encode('{"format":"watercraft-kv/2","entries":[["a",1]]}'),
    },
    {
      name: "format 2 with keys out of order",
      data: encoder.encode('{"format":"watercraft-kv/2","entries":[["b",1,1,1],["a",2,2,2]]}'),
    },
    {
      name: "a negative revision",
      data: encoder.encode('{"format":"watercraft-kv/2","entries":[["a",1,-1,2]]}'),
    },
    {
      name: "a fractional revision",
      data: encoder.encode('{"format":"watercraft-kv/2","entries":[["a",1,1,2.5]]}'),
    },
    {
      name: "a revision past the safe integers",
      data: encoder.encode('{"format":"watercraft-kv/2","entries":[["a",1,1,9007199254740992]]}'),
    },
    {
      name: "a revision that is a string",
      data: encoder.encode('{"format":"watercraft-kv/2","entries":[["a",1,"1",2]]}'),
    },
    {
      name: "created after modified",
      data: encoder.encode('{"format":"watercraft-kv/2","entries":[["a",1,3,2]]}'),
    },
  ];
  for (const row of corrupt) {
    await t.step(`a corrupt snapshot (${row.name}) throws and leaves the state as it was`, () => {
      const copy = machineWith(commands);
      throws(() => copy.restore(row.data), { name: "AssertionError" });
      deepStrictEqual(copy.snapshot(), bytes);
    });
  }
});

Deno.test("kv.apply() is deterministic: two machines fed the same commands give identical snapshots", () => {
  // A seeded generator: the same sequence on every run and every runtime.
  let seed = 0x2545f491;
  const next = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const keys = ["a", "b", "a/b", "é", "\u{1F600}", "zz", "0"];
  const values = [null, 0, -1.5, "s", true, [1, { b: 2, a: 1 }], { y: [], x: {} }];
  const commands: unknown[] = [];
  for (let i = 0; i < 2000; i++) {
    const key = keys[next(keys.length)]!;
    switch (next(4)) {
      case 0:
        commands.push({ op: "put", key, value: values[next(values.length)] });
        break;
      case 1:
        commands.push({ op: "delete", key });
        break;
      case 2:
        commands.push({
          op: "cas",
          key,
          expect: values[next(values.length)],
          value: values[next(values.length)],
        });
        break;
      default:
        // Revisions of recent entries, so that some match; 0 for absence.
        commands.push({
          op: "cas",
          key,
          expectModified: next(2) === 0 ? 0 : Math.max(0, i - next(20)),
          value: values[next(values.length)],
        });
    }
  }
  const run = (): { kv: KvStateMachine; results: string[] } => {
    const kv = kvStateMachine();
    const results: string[] = [];
    for (const [i, raw] of commands.entries()) {
      const command = kv.validate(raw);
      try {
        results.push(`${command.op} ${JSON.stringify(kv.apply(command, at(i + 1)))}`);
      } catch (error) {
        ok(error instanceof CasFailedError, String(error));
        results.push(`cas_failed ${JSON.stringify(error.details)}`);
      }
    }
    return { kv, results };
  };
  const first = run();
  const second = run();
  deepStrictEqual(second.results, first.results);
  deepStrictEqual(second.kv.snapshot(), first.kv.snapshot());
  ok(first.results.some((r) => r.startsWith("cas ")), "some cas succeeded");
  ok(first.results.some((r) => r.startsWith("cas_failed")), "some cas failed");
  ok(
    commands.some((raw, i) =>
      "expectModified" in (raw as object) && first.results[i]!.startsWith("cas ") &&
      (raw as { expectModified: number }).expectModified > 0
    ),
    "some cas on a revision other than absence succeeded",
  );

  // Equal values written with object keys in other orders give the same bytes.
  const a = machineWith([{ op: "put", key: "k", value: { a: 1, b: { c: 2, d: 3 } } }]);
  const b = machineWith([{ op: "put", key: "k", value: { b: { d: 3, c: 2 }, a: 1 } }]);
  deepStrictEqual(a.snapshot(), b.snapshot());

  // The same keys and revisions, inserted in another order, give the same bytes.
  const revisions = { x: 3, a: 1, m: 2 };
  const inOrder = (keys: (keyof typeof revisions)[]): KvStateMachine => {
    const kv = kvStateMachine();
    for (const key of keys) kv.apply({ op: "put", key, value: 1 }, at(revisions[key]));
    return kv;
  };
  deepStrictEqual(inOrder(["x", "a", "m"]).snapshot(), inOrder(["m", "x", "a"]).snapshot());
});

Deno.test("kv values handed in or out cannot change the state", async (t) => {
  await t.step("mutating a put value after apply", () => {
    const value = { list: [1, 2], nested: { x: 1 } };
    const kv = kvStateMachine();
    kv.apply({ op: "put", key: "a", value });
    value.list.push(3);
    value.nested.x = 99;
    deepStrictEqual(kv.query({ op: "get", key: "a" }).value, { list: [1, 2], nested: { x: 1 } });
  });

  await t.step("mutating the validated command", () => {
    const kv = kvStateMachine();
    const input = { op: "put", key: "a", value: { x: [1] } };
    const command = kv.validate(input);
    input.value.x.push(2);
    deepStrictEqual(command, { op: "put", key: "a", value: { x: [1] } });
  });

  const kv = machineWith([
    { op: "put", key: "a", value: { list: [1, 2], nested: { x: 1 } } },
    { op: "put", key: "b", value: [{ y: 1 }] },
  ]);
  let before = kv.snapshot();
  const mutate = (value: unknown): void => {
    if (Array.isArray(value)) {
      value.push("junk");
      for (const item of value) mutate(item);
    } else if (typeof value === "object" && value !== null) {
      const record = value as Record<string, unknown>;
      for (const key of Object.keys(record)) mutate(record[key]);
      record.junk = true;
    }
  };

  await t.step("mutating a get answer", () => {
    mutate(kv.query({ op: "get", key: "a" }).value);
    deepStrictEqual(kv.snapshot(), before);
  });
  await t.step("mutating a list answer", () => {
    const answer = kv.query({ op: "list" });
    for (const item of answer.items) mutate(item.value);
    answer.items.length = 0;
    deepStrictEqual(kv.snapshot(), before);
  });
  await t.step("mutating a prev value", () => {
    const result = kv.apply(
      { op: "put", key: "a", value: { list: [1, 2], nested: { x: 1 } } },
      at(3),
    );
    before = kv.snapshot();
    mutate(result.prev);
    deepStrictEqual(kv.snapshot(), before);
  });
  await t.step("mutating a CasFailedError's current", () => {
    const error = caught(() => kv.apply({ op: "cas", key: "b", expect: null, value: 1 }));
    ok(error instanceof CasFailedError);
    mutate(error.current);
    deepStrictEqual(kv.snapshot(), before);
  });
  await t.step("mutating restored snapshot bytes", () => {
    const bytes = kv.snapshot();
    const copy = kvStateMachine();
    copy.restore(bytes);
    bytes.fill(0);
    deepStrictEqual(copy.snapshot(), before);
  });
});
