/**
 * Tests for the hash chain in src/core/entry.ts: `entryHash` follows its
 * documented encoding, is deterministic and covers every hashed field;
 * `chainFault` finds tampered entries, broken links and wrong indexes.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { match, notStrictEqual, strictEqual, throws } from "node:assert/strict";
import { AssertionError } from "../../src/core/assert.ts";
import {
  chainFault,
  createEntry,
  type Entry,
  entryHash,
  GENESIS_HASH,
  type HashedFields,
} from "../../src/core/entry.ts";

const encoder = new TextEncoder();

const BASE: HashedFields = {
  term: 3,
  kind: "command",
  proposer: "n1",
  timeMs: 1_700_000_000_123,
  data: encoder.encode("set x=1"),
};

/** A chain of `n` command entries from index 1. */
function chain(n: number): Entry[] {
  const out: Entry[] = [];
  let prev = GENESIS_HASH;
  for (let index = 1; index <= n; index++) {
    const entry = createEntry(index, prev, { ...BASE, data: encoder.encode(`cmd ${index}`) });
    out.push(entry);
    prev = entry.hash;
  }
  return out;
}

Deno.test("entryHash() is SHA-256 over the documented encoding", () => {
  const prev = "ab".repeat(32);
  const proposer = encoder.encode(BASE.proposer);
  const buf = new Uint8Array(32 + 8 + 1 + 4 + proposer.length + 8 + 4 + BASE.data.length);
  const view = new DataView(buf.buffer);
  buf.fill(0xab, 0, 32);
  view.setBigUint64(32, BigInt(BASE.term));
  view.setUint8(40, 0);
  view.setUint32(41, proposer.length);
  buf.set(proposer, 45);
  view.setBigUint64(45 + proposer.length, BigInt(BASE.timeMs));
  view.setUint32(53 + proposer.length, BASE.data.length);
  buf.set(BASE.data, 57 + proposer.length);
  const want = createHash("sha256").update(buf).digest("hex");
  strictEqual(entryHash(prev, BASE), want);
});

Deno.test("entryHash() is deterministic and lowercase hex", () => {
  const a = entryHash(GENESIS_HASH, BASE);
  const b = entryHash(GENESIS_HASH, { ...BASE, data: encoder.encode("set x=1") });
  strictEqual(a, b);
  match(a, /^[0-9a-f]{64}$/);
  strictEqual(createEntry(1, GENESIS_HASH, BASE).hash, a);
});

Deno.test("entryHash() changes with each hashed field", async (t) => {
  const base = entryHash(GENESIS_HASH, BASE);
  const rows: { name: string; prev?: string; fields: Partial<HashedFields> }[] = [
    { name: "previous hash", prev: "0".repeat(63) + "1", fields: {} },
    { name: "term", fields: { term: 4 } },
    { name: "term above 2^32", fields: { term: 3 + 2 ** 32 } },
    { name: "kind noop", fields: { kind: "noop" } },
    { name: "kind config", fields: { kind: "config" } },
    { name: "proposer", fields: { proposer: "n2" } },
    { name: "empty proposer", fields: { proposer: "" } },
    { name: "time", fields: { timeMs: BASE.timeMs + 1 } },
    { name: "data", fields: { data: encoder.encode("set x=2") } },
    { name: "data length", fields: { data: encoder.encode("set x=1 ") } },
    { name: "empty data", fields: { data: new Uint8Array(0) } },
    // Field boundaries are length-prefixed: moving a byte between proposer
    // and data must not collide.
    {
      name: "byte moved from proposer to data",
      fields: { proposer: "n", data: encoder.encode("1set x=1") },
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      notStrictEqual(entryHash(row.prev ?? GENESIS_HASH, { ...BASE, ...row.fields }), base);
    });
  }
});

Deno.test("entryHash() refuses a previous hash that is not 64 lowercase hex digits", async (t) => {
  for (const prev of ["", "0".repeat(63), "A".repeat(64), "g".repeat(64)]) {
    await t.step(JSON.stringify(prev), () => {
      throws(() => entryHash(prev, BASE), AssertionError);
    });
  }
});

Deno.test("chainFault() finds the first broken link", async (t) => {
  const entries = chain(4);
  const tamperedData = { ...entries[2]!, data: encoder.encode("cmd 3 but evil") };
  const tamperedTerm = { ...entries[1]!, term: 9 };
  const rows: {
    name: string;
    prevIndex: number;
    prevHash: string;
    entries: Entry[];
    want: RegExp | null;
  }[] = [
    { name: "a sound chain", prevIndex: 0, prevHash: GENESIS_HASH, entries, want: null },
    {
      name: "a sound suffix",
      prevIndex: 2,
      prevHash: entries[1]!.hash,
      entries: entries.slice(2),
      want: null,
    },
    { name: "no entries", prevIndex: 7, prevHash: GENESIS_HASH, entries: [], want: null },
    {
      name: "tampered data",
      prevIndex: 0,
      prevHash: GENESIS_HASH,
      entries: [entries[0]!, entries[1]!, tamperedData, entries[3]!],
      want: /^entry 3 has hash/,
    },
    {
      name: "tampered term",
      prevIndex: 0,
      prevHash: GENESIS_HASH,
      entries: [entries[0]!, tamperedTerm],
      want: /^entry 2 has hash/,
    },
    {
      name: "wrong previous hash",
      prevIndex: 1,
      prevHash: entries[1]!.hash,
      entries: entries.slice(1),
      want: /^entry 2 has hash/,
    },
    {
      name: "an entry missing from the middle",
      prevIndex: 0,
      prevHash: GENESIS_HASH,
      entries: [entries[0]!, entries[2]!],
      want: /^entry at position 2 claims index 3$/,
    },
    {
      name: "wrong starting index",
      prevIndex: 1,
      prevHash: GENESIS_HASH,
      entries: entries.slice(0, 1),
      want: /^entry at position 2 claims index 1$/,
    },
    {
      name: "a relabelled index",
      prevIndex: 0,
      prevHash: GENESIS_HASH,
      entries: [entries[0]!, { ...entries[1]!, index: 5 }],
      want: /^entry at position 2 claims index 5$/,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const fault = chainFault(row.prevIndex, row.prevHash, row.entries);
      if (row.want === null) strictEqual(fault, null);
      else match(fault ?? "(no fault)", row.want);
    });
  }
});

Deno.test("chainFault() finds an entry tampered with after an earlier check", async (t) => {
  // Entries are plain objects and their data a mutable Uint8Array: a buffer
  // reused by a transport, or a bit flip in memory, changes an entry that
  // was already checked once. The check must still see it.
  await t.step("data changed in place", () => {
    const entries = chain(3);
    strictEqual(chainFault(0, GENESIS_HASH, entries), null);
    entries[1]!.data[0] = entries[1]!.data[0]! ^ 0xff;
    match(chainFault(0, GENESIS_HASH, entries) ?? "(no fault)", /^entry 2 has hash/);
  });
  await t.step("hash field rewritten in place", () => {
    const entries = chain(3);
    strictEqual(chainFault(0, GENESIS_HASH, entries), null);
    (entries[2] as { hash: string }).hash = "f".repeat(64);
    match(chainFault(0, GENESIS_HASH, entries) ?? "(no fault)", /^entry 3 has hash/);
  });
});

Deno.test("entryHash() never gives two different entries one hash, even with a long proposer", () => {
  // Were the proposer's length a u16, a proposer of 65537 bytes would be
  // announced as 1 byte long, and its remaining bytes could be read as
  // another entry's time, data length and data.
  const tail = "x".repeat(65524);
  const long: HashedFields = {
    term: 1,
    kind: "command",
    proposer: "n" + "\0".repeat(8) + "\0\u0001\0\0" + tail,
    timeMs: 0,
    data: new Uint8Array(0),
  };
  const data = new Uint8Array(65536);
  data.set(encoder.encode(tail));
  const short: HashedFields = { term: 1, kind: "command", proposer: "n", timeMs: 0, data };
  let collide: boolean;
  try {
    collide = entryHash(GENESIS_HASH, long) === entryHash(GENESIS_HASH, short);
  } catch (e) {
    if (!(e instanceof AssertionError || e instanceof RangeError)) throw e;
    collide = false;
  }
  strictEqual(collide, false, "distinct entries share a hash");
});
