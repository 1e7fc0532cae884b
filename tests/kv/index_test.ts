/**
 * Tests of the keys of the key-value machine: the key rule, UTF-8 byte
 * order, and the sorted index through the splits and merges of its chunks.
 *
 * @module
 */

import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { compareKeys, keyProblem, quoteKey, SortedKeys } from "../../src/kv/index.ts";
import { kvStateMachine } from "../../src/kv/state_machine.ts";

const encoder = new TextEncoder();

/** The order the index must agree with: compare the UTF-8 bytes themselves. */
function byteOrder(a: string, b: string): number {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!;
  }
  return x.length - y.length;
}

Deno.test("keyProblem() counts UTF-8 bytes and refuses lone surrogates", async (t) => {
  const rows: { name: string; key: string; minBytes: number; want: string | undefined }[] = [
    { name: "one ASCII byte", key: "a", minBytes: 1, want: undefined },
    { name: "empty key", key: "", minBytes: 1, want: "must be 1 to 1024 UTF-8 bytes, got 0" },
    { name: "empty prefix", key: "", minBytes: 0, want: undefined },
    {
      name: "1024 bytes of two-byte characters",
      key: "é".repeat(512),
      minBytes: 1,
      want: undefined,
    },
    {
      name: "1025 bytes in 513 characters",
      key: "é".repeat(512) + "a",
      minBytes: 1,
      want: "must be 1 to 1024 UTF-8 bytes, got 1025",
    },
    {
      name: "a surrogate pair is 4 bytes",
      key: "\u{1F600}".repeat(256),
      minBytes: 1,
      want: undefined,
    },
    {
      name: "three-byte characters",
      key: "\uFFFD".repeat(342),
      minBytes: 1,
      want: "must be 1 to 1024 UTF-8 bytes, got 1026",
    },
    {
      name: "lone high surrogate at the end",
      key: "a\ud800",
      minBytes: 1,
      want: "must be valid Unicode: lone surrogate at index 1",
    },
    {
      name: "lone low surrogate",
      key: "\udc00a",
      minBytes: 1,
      want: "must be valid Unicode: lone surrogate at index 0",
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      strictEqual(keyProblem(row.key, row.minBytes), row.want);
    });
  }
});

Deno.test("compareKeys() agrees with UTF-8 byte order where UTF-16 order does not", async (t) => {
  const rows: { name: string; a: string; b: string }[] = [
    { name: "equal", a: "ab", b: "ab" },
    { name: "ASCII", a: "a", b: "b" },
    { name: "prefix first", a: "a", b: "a/" },
    { name: "upper case before lower case", a: "B", b: "a" },
    { name: "astral after U+FFFD", a: "\uFFFD", b: "\u{1F600}" },
    { name: "astral after U+E000", a: "\uE000", b: "\u{10000}" },
    { name: "astral after U+D7FF", a: "\uD7FF", b: "\u{10000}" },
    { name: "two astral characters", a: "\u{1F600}", b: "\u{1F601}" },
    { name: "two-byte before three-byte", a: "é", b: "\u0800" },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const want = Math.sign(byteOrder(row.a, row.b));
      strictEqual(Math.sign(compareKeys(row.a, row.b)), want);
      strictEqual(Math.sign(compareKeys(row.b, row.a)), 0 - want);
    });
  }
});

Deno.test("quoteKey() quotes keys as JSON and shortens long ones to 80 characters", () => {
  strictEqual(quoteKey('a"b'), '"a\\"b"');
  const long = quoteKey("k".repeat(1024));
  strictEqual(long.length, 80);
  strictEqual(long, `"${"k".repeat(75)}..."`);
});

Deno.test("SortedKeys.scan() starts at or after a key; insert() and delete() assert their contract", async (t) => {
  const keys = new SortedKeys();
  for (const key of ["d", "b", "f", "a"]) keys.insert(key);
  const scan = (start: string, exclusive: boolean, max = 10): string[] => {
    const seen: string[] = [];
    keys.scan(start, exclusive, (key) => seen.push(key) < max);
    return seen;
  };
  const rows: { name: string; start: string; exclusive: boolean; max?: number; want: string[] }[] =
    [
      { name: "from a present key", start: "b", exclusive: false, want: ["b", "d", "f"] },
      { name: "after a present key", start: "b", exclusive: true, want: ["d", "f"] },
      { name: "from an absent key", start: "c", exclusive: false, want: ["d", "f"] },
      { name: "after an absent key", start: "c", exclusive: true, want: ["d", "f"] },
      { name: "from before every key", start: "", exclusive: false, want: ["a", "b", "d", "f"] },
      { name: "past every key", start: "g", exclusive: false, want: [] },
      { name: "until visit says stop", start: "a", exclusive: false, max: 2, want: ["a", "b"] },
    ];
  for (const row of rows) {
    await t.step(row.name, () => {
      deepStrictEqual(scan(row.start, row.exclusive, row.max), row.want);
    });
  }

  await t.step("inserting a present key fails an assertion", () => {
    throws(() => keys.insert("b"), { name: "AssertionError" });
    strictEqual(keys.size, 4);
  });
  await t.step("deleting an absent key fails an assertion", () => {
    throws(() => keys.delete("c"), { name: "AssertionError" });
    throws(() => new SortedKeys().delete("a"), { name: "AssertionError" });
    strictEqual(keys.size, 4);
  });
  await t.step("fromSorted() then inserts and deletes keep the order", () => {
    const many = Array.from({ length: 2000 }, (_, i) => `k${String(i * 2).padStart(5, "0")}`);
    const set = SortedKeys.fromSorted(many);
    for (let i = 1; i < 4000; i += 4) set.insert(`k${String(i).padStart(5, "0")}`);
    for (let i = 0; i < 4000; i += 8) set.delete(`k${String(i).padStart(5, "0")}`);
    const all = [...set.all()];
    strictEqual(set.size, all.length);
    strictEqual(all.length, 2000 + 1000 - 500);
    deepStrictEqual(all, all.toSorted(byteOrder));
  });
});

Deno.test("kv.query() list agrees with a byte-ordered model through many inserts and deletes", () => {
  // Enough keys to split and merge the internal chunks many times over.
  let seed = 0x9e3779b9;
  const next = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const alphabet = ["a", "b", "/", "é", "\uFFFD", "\u{1F600}", "\uE000", "Z"];
  const randomKey = (): string => {
    let key = "";
    for (let n = 1 + next(6); n > 0; n--) key += alphabet[next(alphabet.length)];
    return key;
  };
  const kv = kvStateMachine();
  const model = new Map<string, number>();
  const listAll = (prefix: string): string[] => {
    const keys: string[] = [];
    for (;;) {
      const after = keys.at(-1);
      const page = kv.query({
        op: "list",
        prefix,
        limit: 1000,
        ...(after === undefined ? {} : { after }),
      });
      keys.push(...page.items.map((item) => item.key));
      if (page.items.length < 1000) return keys;
    }
  };
  const check = (): void => {
    strictEqual(kv.size, model.size);
    deepStrictEqual(listAll(""), [...model.keys()].sort(byteOrder));
    const prefix = alphabet[next(alphabet.length)]! + alphabet[next(alphabet.length)]!;
    deepStrictEqual(
      listAll(prefix),
      [...model.keys()].filter((k) => k.startsWith(prefix)).sort(byteOrder),
    );
  };
  for (let round = 0; round < 4; round++) {
    // Grow, then shrink to a sparse remainder, so chunks split then merge.
    for (let i = 0; i < 6000; i++) {
      const key = randomKey();
      kv.apply({ op: "put", key, value: i });
      model.set(key, i);
    }
    check();
    for (const key of [...model.keys()]) {
      if (next(10) !== 0) {
        strictEqual(kv.apply({ op: "delete", key }).prev, model.get(key)!);
        model.delete(key);
      }
    }
    check();
  }
  const copy = kvStateMachine();
  copy.restore(kv.snapshot());
  deepStrictEqual(copy.snapshot(), kv.snapshot());
  copy.apply({ op: "put", key: "\u{10FFFF}", value: 0 });
  strictEqual(
    copy.query({ op: "list", after: "\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}" })
      .items.at(-1)?.key,
    "\u{10FFFF}",
  );
});
