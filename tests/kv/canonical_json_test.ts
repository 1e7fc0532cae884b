/**
 * Tests of the canonical JSON encoding of key-value values: equal values
 * give equal strings, and anything that is not JSON is refused with where
 * and why.
 *
 * @module
 */

import { deepStrictEqual, notStrictEqual, ok, strictEqual } from "node:assert/strict";
import {
  decodeCanonical,
  encodeCanonical,
  isPlainObject,
  KV_VALUE_DEPTH_MAX,
  NotJsonError,
} from "../../src/kv/canonical_json.ts";

/** `depth` arrays, one inside the other, around 0. */
function nested(depth: number): unknown {
  let value: unknown = 0;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

Deno.test("encodeCanonical() sorts object keys in byte order and writes no whitespace", async (t) => {
  const rows: { name: string; input: unknown; want: string }[] = [
    { name: "null", input: null, want: "null" },
    { name: "booleans", input: [true, false], want: "[true,false]" },
    {
      name: "numbers as JSON.stringify writes them",
      input: [-0, 1e21, 0.1, -1.5],
      want: "[0,1e+21,0.1,-1.5]",
    },
    { name: "strings escaped", input: 'a"\n\u0001', want: '"a\\"\\n\\u0001"' },
    { name: "empty array and object", input: [[], {}], want: "[[],{}]" },
    { name: "object keys sorted", input: { b: 1, a: 2, B: 3 }, want: '{"B":3,"a":2,"b":1}' },
    {
      name: "object keys in UTF-8 byte order, not UTF-16 order",
      input: { "\u{1F600}": 1, "\uFFFD": 2 },
      want: '{"\uFFFD":2,"\u{1F600}":1}',
    },
    {
      name: "nested objects sorted at every level",
      input: { z: [{ y: 1, x: { q: 2, p: 3 } }], a: null },
      want: '{"a":null,"z":[{"x":{"p":3,"q":2},"y":1}]}',
    },
    {
      name: "an object without a prototype",
      input: Object.assign(Object.create(null), { b: 1, a: 2 }),
      want: '{"a":2,"b":1}',
    },
    {
      name: `${KV_VALUE_DEPTH_MAX} nested arrays`,
      input: nested(KV_VALUE_DEPTH_MAX),
      want: `${"[".repeat(KV_VALUE_DEPTH_MAX)}0${"]".repeat(KV_VALUE_DEPTH_MAX)}`,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const got = encodeCanonical(row.input);
      strictEqual(got, row.want);
      strictEqual(encodeCanonical(decodeCanonical(got)), got);
    });
  }
});

Deno.test("encodeCanonical() refuses what is not JSON with NotJsonError naming path and reason", async (t) => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const rows: { name: string; input: unknown; path: (string | number)[]; reason: string }[] = [
    { name: "undefined at the top", input: undefined, path: [], reason: "is required" },
    {
      name: "undefined inside an array",
      input: [1, undefined],
      path: [1],
      reason: "must be a JSON value, got undefined",
    },
    { name: "NaN", input: { n: NaN }, path: ["n"], reason: "must be a finite number" },
    {
      name: "Infinity deep inside",
      input: { a: [{ "b c": Infinity }] },
      path: ["a", 0, "b c"],
      reason: "must be a finite number",
    },
    { name: "bigint", input: 1n, path: [], reason: "must be a JSON value, got bigint" },
    {
      name: "function",
      input: { f() {} },
      path: ["f"],
      reason: "must be a JSON value, got function",
    },
    {
      name: "Date",
      input: [new Date(0)],
      path: [0],
      reason: "must be a plain JSON object, got Date",
    },
    { name: "Map", input: new Map(), path: [], reason: "must be a plain JSON object, got Map" },
    {
      name: `${KV_VALUE_DEPTH_MAX + 1} nested arrays`,
      input: nested(KV_VALUE_DEPTH_MAX + 1),
      path: Array(KV_VALUE_DEPTH_MAX).fill(0),
      reason: `nests deeper than ${KV_VALUE_DEPTH_MAX} levels`,
    },
    {
      name: "a cycle",
      input: cyclic,
      path: Array(KV_VALUE_DEPTH_MAX).fill("self"),
      reason: `nests deeper than ${KV_VALUE_DEPTH_MAX} levels`,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      let error: unknown;
      try {
        encodeCanonical(row.input);
      } catch (e) {
        error = e;
      }
      ok(error instanceof NotJsonError, String(error));
      deepStrictEqual(error.path, row.path);
      strictEqual(error.reason, row.reason);
    });
  }
});

Deno.test("decodeCanonical() returns a fresh value each time", () => {
  const encoded = encodeCanonical({ a: [1, { b: 2 }] });
  const first = decodeCanonical(encoded);
  const second = decodeCanonical(encoded);
  deepStrictEqual(first, second);
  notStrictEqual(first, second);
  (first as { a: unknown[] }).a.push(3);
  deepStrictEqual(decodeCanonical(encoded), { a: [1, { b: 2 }] });
});

Deno.test("isPlainObject() accepts only plain objects", async (t) => {
  const rows: { name: string; input: unknown; want: boolean }[] = [
    { name: "object literal", input: { a: 1 }, want: true },
    { name: "null prototype", input: Object.create(null), want: true },
    { name: "null", input: null, want: false },
    { name: "array", input: [], want: false },
    { name: "Date", input: new Date(0), want: false },
    { name: "class instance", input: new (class Point {})(), want: false },
    { name: "string", input: "a", want: false },
  ];
  for (const row of rows) {
    await t.step(row.name, () => strictEqual(isPlainObject(row.input), row.want));
  }
});
