/**
 * Tests for src/binary/: every primitive round-trips at its edges, the
 * writer refuses what the reader would not read back, and the reader names
 * the field and offset of whatever is cut short or out of range (and throws
 * nothing but `MalformedError`, whatever the input). That the file storage's
 * records keep their layout is tested in tests/storage/file/records_test.ts.
 *
 * @module
 */

import { deepStrictEqual, notStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import {
  ByteReader,
  ByteWriter,
  HASH_BYTES,
  MalformedError,
  NULL_LENGTH,
  utf8Length,
} from "../src/binary/mod.ts";
import { GENESIS_HASH } from "../src/core/entry.ts";
import { randomInt, seededPrng } from "../src/core/prng.ts";

const encoder = new TextEncoder();

/** One primitive: how to write a value and how to read it back. */
interface Primitive {
  name: string;
  write(w: ByteWriter): void;
  read(r: ByteReader): unknown;
  want: unknown;
  bytes: number;
}

const ROUND_TRIPS: Primitive[] = [
  { name: "u8 0", write: (w) => w.u8(0), read: (r) => r.u8("x"), want: 0, bytes: 1 },
  { name: "u8 255", write: (w) => w.u8(255), read: (r) => r.u8("x"), want: 255, bytes: 1 },
  { name: "u16 65535", write: (w) => w.u16(65535), read: (r) => r.u16("x"), want: 65535, bytes: 2 },
  {
    name: "u32 2^32 - 1",
    write: (w) => w.u32(2 ** 32 - 1),
    read: (r) => r.u32("x"),
    want: 2 ** 32 - 1,
    bytes: 4,
  },
  { name: "u53 0", write: (w) => w.u53(0), read: (r) => r.u53("x"), want: 0, bytes: 8 },
  {
    name: "u53 2^32 - 1",
    write: (w) => w.u53(2 ** 32 - 1),
    read: (r) => r.u53("x"),
    want: 2 ** 32 - 1,
    bytes: 8,
  },
  {
    name: "u53 2^32",
    write: (w) => w.u53(2 ** 32),
    read: (r) => r.u53("x"),
    want: 2 ** 32,
    bytes: 8,
  },
  {
    name: "u53 MAX_SAFE_INTEGER",
    write: (w) => w.u53(Number.MAX_SAFE_INTEGER),
    read: (r) => r.u53("x"),
    want: Number.MAX_SAFE_INTEGER,
    bytes: 8,
  },
  { name: "f64 -0", write: (w) => w.f64(-0), read: (r) => r.f64("x"), want: -0, bytes: 8 },
  { name: "f64 NaN", write: (w) => w.f64(NaN), read: (r) => r.f64("x"), want: NaN, bytes: 8 },
  {
    name: "f64 1.7e12 + 0.5",
    write: (w) => w.f64(1.7e12 + 0.5),
    read: (r) => r.f64("x"),
    want: 1.7e12 + 0.5,
    bytes: 8,
  },
  { name: "bool true", write: (w) => w.bool(true), read: (r) => r.bool("x"), want: true, bytes: 1 },
  {
    name: "bool false",
    write: (w) => w.bool(false),
    read: (r) => r.bool("x"),
    want: false,
    bytes: 1,
  },
  {
    name: "empty bytes",
    write: (w) => w.bytes(new Uint8Array(0)),
    read: (r) => r.bytes("x"),
    want: new Uint8Array(0),
    bytes: 4,
  },
  {
    name: "every byte value",
    write: (w) => w.bytes(Uint8Array.from({ length: 256 }, (_, i) => i)),
    read: (r) => r.bytes("x"),
    want: Uint8Array.from({ length: 256 }, (_, i) => i),
    bytes: 260,
  },
  {
    name: "raw",
    write: (w) => w.raw(new Uint8Array([1, 2, 3])),
    read: (r) => r.raw(3, "x"),
    want: new Uint8Array([1, 2, 3]),
    bytes: 3,
  },
  {
    name: "empty string",
    write: (w) => w.string(""),
    read: (r) => r.string("x"),
    want: "",
    bytes: 4,
  },
  {
    name: "ASCII string of 64 bytes (the short path)",
    write: (w) => w.string("a".repeat(64)),
    read: (r) => r.string("x"),
    want: "a".repeat(64),
    bytes: 68,
  },
  {
    name: "ASCII string of 65 bytes (the native path)",
    write: (w) => w.string("b".repeat(65)),
    read: (r) => r.string("x"),
    want: "b".repeat(65),
    bytes: 69,
  },
  {
    name: "non-ASCII string",
    write: (w) => w.string("héllo €😀"),
    read: (r) => r.string("x"),
    want: "héllo €😀",
    bytes: 4 + encoder.encode("héllo €😀").length,
  },
  {
    name: "a string starting with a byte order mark keeps it",
    write: (w) => w.string("\uFEFFx"),
    read: (r) => r.string("x"),
    want: "\uFEFFx",
    bytes: 4 + 3 + 1,
  },
  {
    name: "ASCII then non-ASCII",
    write: (w) => w.string("abc" + "é".repeat(40)),
    read: (r) => r.string("x"),
    want: "abc" + "é".repeat(40),
    bytes: 4 + 3 + 80,
  },
  {
    name: "nullable string null",
    write: (w) => w.nullableString(null),
    read: (r) => r.nullableString("x"),
    want: null,
    bytes: 4,
  },
  {
    name: "nullable string empty",
    write: (w) => w.nullableString(""),
    read: (r) => r.nullableString("x"),
    want: "",
    bytes: 4,
  },
  {
    name: "short string",
    write: (w) => w.shortString("node-1"),
    read: (r) => r.shortString("x"),
    want: "node-1",
    bytes: 7,
  },
  {
    name: "short string of 255 bytes",
    write: (w) => w.shortString("z".repeat(255)),
    read: (r) => r.shortString("x"),
    want: "z".repeat(255),
    bytes: 256,
  },
  {
    name: "genesis hash",
    write: (w) => w.hash(GENESIS_HASH),
    read: (r) => r.hash("x"),
    want: GENESIS_HASH,
    bytes: 32,
  },
  {
    name: "hash of every hex digit",
    write: (w) => w.hash("0123456789abcdef".repeat(4)),
    read: (r) => r.hash("x"),
    want: "0123456789abcdef".repeat(4),
    bytes: 32,
  },
];

Deno.test("ByteWriter and ByteReader round-trip every primitive at its edges", async (t) => {
  for (const row of ROUND_TRIPS) {
    await t.step(row.name, () => {
      const w = new ByteWriter(0);
      row.write(w);
      const bytes = w.finish();
      strictEqual(bytes.length, row.bytes);
      const r = new ByteReader(bytes);
      deepStrictEqual(row.read(r), row.want);
      r.end();
    });
  }
  await t.step("all of them, one after the other", () => {
    const w = new ByteWriter(1);
    for (const row of ROUND_TRIPS) row.write(w);
    const r = new ByteReader(w.finish());
    for (const row of ROUND_TRIPS) deepStrictEqual(row.read(r), row.want, row.name);
    r.end();
  });
});

Deno.test("ByteWriter lays integers out little-endian, u53 as low word then high word", () => {
  const w = new ByteWriter();
  w.u16(0x0102);
  w.u32(0x01020304);
  w.u53(0x0000_0506_0708_090a);
  w.nullableString(null);
  deepStrictEqual(
    w.finish(),
    new Uint8Array([
      2,
      1,
      4,
      3,
      2,
      1,
      0x0a,
      0x09,
      0x08,
      0x07,
      0x06,
      0x05,
      0,
      0,
      255,
      255,
      255,
      255,
    ]),
  );
});

Deno.test("ByteWriter grows from any initial size and never copies when sized exactly", async (t) => {
  await t.step("from 0 to 1 MiB", () => {
    const w = new ByteWriter(0);
    const chunk = Uint8Array.from({ length: 1000 }, (_, i) => i & 255);
    for (let i = 0; i < 1049; i++) w.raw(chunk);
    const bytes = w.finish();
    strictEqual(bytes.length, 1_049_000);
    deepStrictEqual(bytes.subarray(1_048_000), chunk);
  });
  await t.step("exact", () => {
    const w = new ByteWriter(4 + (4 + 2) + 4);
    const first = w.finish().buffer;
    w.u32(1);
    w.string("ab");
    w.string("");
    strictEqual(w.finish().buffer, first, "the buffer was replaced");
    strictEqual(w.finish().byteLength, first.byteLength);
  });
  await t.step("exact with non-ASCII text", () => {
    const w = new ByteWriter(4 + 2 + 1 + 3);
    const first = w.finish().buffer;
    w.string("é");
    w.shortString("€");
    strictEqual(w.finish().buffer, first, "the buffer was replaced");
  });
});

Deno.test("ByteWriter refuses values the reader could not read back", async (t) => {
  const rows: {
    name: string;
    write: (w: ByteWriter) => void;
    want: RegExp;
    type: ErrorConstructor;
  }[] = [
    { name: "u8 256", write: (w) => w.u8(256), want: /as a u8/, type: TypeError },
    { name: "u8 -1", write: (w) => w.u8(-1), want: /as a u8/, type: TypeError },
    { name: "u8 1.5", write: (w) => w.u8(1.5), want: /as a u8/, type: TypeError },
    { name: "u16 65536", write: (w) => w.u16(65536), want: /as a u16/, type: TypeError },
    { name: "u32 2^32", write: (w) => w.u32(2 ** 32), want: /as a u32/, type: TypeError },
    { name: "u32 NaN", write: (w) => w.u32(NaN), want: /as a u32/, type: TypeError },
    {
      name: "u53 negative",
      write: (w) => w.u53(-1, "term"),
      want: /Cannot store term -1: not a non-negative safe integer/,
      type: TypeError,
    },
    {
      name: "u53 2^53",
      write: (w) => w.u53(2 ** 53, "index"),
      want: /Cannot store index 9007199254740992/,
      type: TypeError,
    },
    { name: "u53 fraction", write: (w) => w.u53(0.5), want: /integer 0.5/, type: TypeError },
    {
      name: "uppercase hash",
      write: (w) => w.hash("AB".repeat(32), "prevHash"),
      want: /Cannot store prevHash "ABAB.*": not 64 lowercase hex digits/,
      type: TypeError,
    },
    { name: "short hash", write: (w) => w.hash("ab"), want: /hash "ab"/, type: TypeError },
    {
      name: "hash with a non-hex digit",
      write: (w) => w.hash("g" + "0".repeat(63)),
      want: /not 64 lowercase hex digits/,
      type: TypeError,
    },
    {
      name: "short string of 256 bytes",
      write: (w) => w.shortString("x".repeat(256)),
      want: /Cannot store 256 bytes behind a length prefix: the limit is 255/,
      type: RangeError,
    },
    {
      name: "short string of 86 three-byte characters",
      write: (w) => w.shortString("€".repeat(86)),
      want: /Cannot store 258 bytes/,
      type: RangeError,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      throws(() => row.write(new ByteWriter()), (e: unknown) => {
        ok(e instanceof row.type, `not a ${row.type.name}: ${e}`);
        ok(
          row.want.test((e as Error).message),
          `${(e as Error).message} does not match ${row.want}`,
        );
        return true;
      });
    });
  }
  await t.step("setU32 outside what is written", () => {
    const w = new ByteWriter();
    w.u16(0);
    throws(() => w.setU32(0, 1), RangeError);
  });
  await t.step("a negative initial size", () => {
    throws(() => new ByteWriter(-1), RangeError);
  });
});

Deno.test("ByteReader names the field and offset of what is cut short or out of range", async (t) => {
  const rows: { name: string; bytes: number[]; read: (r: ByteReader) => unknown; want: RegExp }[] =
    [
      {
        name: "u8 at the end",
        bytes: [],
        read: (r) => r.u8("kind"),
        want: /^kind at offset 0: needs 1 bytes, 0 remain$/,
      },
      {
        name: "u16 short",
        bytes: [1],
        read: (r) => r.u16("port"),
        want: /^port at offset 0: needs 2/,
      },
      {
        name: "u32 short",
        bytes: [1, 2, 3],
        read: (r) => r.u32("count"),
        want: /^count at offset 0: needs 4 bytes, 3 remain/,
      },
      {
        name: "u53 short",
        bytes: [0, 0, 0, 0, 0, 0, 0],
        read: (r) => r.u53("term"),
        want: /^term at offset 0: needs 8/,
      },
      {
        name: "u53 2^53",
        bytes: [0, 0, 0, 0, 0, 0, 0x20, 0],
        read: (r) => r.u53("term"),
        want: /^term at offset 0: 9007199254740992 is not a safe integer$/,
      },
      {
        name: "u53 with the top byte set",
        bytes: [0, 0, 0, 0, 0, 0, 0, 0x80],
        read: (r) => r.u53("index"),
        want: /^index at offset 0: .* is not a safe integer$/,
      },
      { name: "f64 short", bytes: [0], read: (r) => r.f64("timeMs"), want: /^timeMs at offset 0/ },
      {
        name: "bool 2",
        bytes: [2],
        read: (r) => r.bool("granted"),
        want: /^granted at offset 0: 2 is not a boolean/,
      },
      {
        name: "raw past the end",
        bytes: [1],
        read: (r) => r.raw(2, "data"),
        want: /^data at offset 0: needs 2 bytes, 1 remain/,
      },
      {
        name: "raw of a negative length",
        bytes: [1],
        read: (r) => r.raw(-1, "data"),
        want: /^data at offset 0: needs -1 bytes/,
      },
      {
        name: "bytes whose length passes the end",
        bytes: [5, 0, 0, 0, 1, 2],
        read: (r) => r.bytes("data"),
        want: /^data at offset 4: needs 5 bytes, 2 remain$/,
      },
      {
        name: "bytes above their bound, refused before the body",
        bytes: [200, 0, 0, 0],
        read: (r) => r.bytes("data", 100),
        want: /^data at offset 0: declares 200 bytes, more than the 100 allowed$/,
      },
      {
        name: "a string that is not UTF-8",
        bytes: [2, 0, 0, 0, 0xc3, 0x28],
        read: (r) => r.string("context"),
        want: /^context at offset 4: is not UTF-8$/,
      },
      {
        name: "a long string that is not UTF-8",
        bytes: [70, 0, 0, 0, ...new Array(69).fill(97), 0xff],
        read: (r) => r.string("message"),
        want: /^message at offset 4: is not UTF-8$/,
      },
      {
        name: "an overlong encoding",
        bytes: [1, 0xc0],
        read: (r) => r.shortString("id"),
        want: /^id at offset 1: is not UTF-8$/,
      },
      {
        name: "a string above its bound",
        bytes: [9, 0, 0, 0],
        read: (r) => r.string("context", 8),
        want: /declares 9 bytes, more than the 8 allowed/,
      },
      {
        name: "null where a string must be",
        bytes: [255, 255, 255, 255],
        read: (r) => r.string("context", 3072),
        want: /^context at offset 0: declares 4294967295 bytes/,
      },
      {
        name: "a nullable string cut short",
        bytes: [3, 0, 0, 0, 97],
        read: (r) => r.nullableString("context"),
        want: /^context at offset 4: needs 3 bytes, 1 remain/,
      },
      {
        name: "a short string above its bound",
        bytes: [65],
        read: (r) => r.shortString("from", 64),
        want: /^from at offset 0: declares 65 bytes, more than the 64 allowed/,
      },
      {
        name: "a hash cut short",
        bytes: new Array(HASH_BYTES - 1).fill(0),
        read: (r) => r.hash("prevHash"),
        want: /^prevHash at offset 0: needs 32 bytes, 31 remain/,
      },
      {
        name: "bytes left over",
        bytes: [1, 2],
        read: (r) => {
          r.u8("x");
          r.end("record");
        },
        want: /^record at offset 1: 1 bytes follow its end$/,
      },
    ];
  for (const row of rows) {
    await t.step(row.name, () => {
      throws(() => row.read(new ByteReader(new Uint8Array(row.bytes))), (e: unknown) => {
        ok(e instanceof MalformedError, `not a MalformedError: ${e}`);
        ok(row.want.test(e.message), `${e.message} does not match ${row.want}`);
        return true;
      });
    });
  }
});

Deno.test("ByteReader reads only [start, end) and reports offsets in the whole input", () => {
  const bytes = new Uint8Array([9, 9, 1, 0, 0, 0, 9, 9]);
  const r = new ByteReader(bytes, 2, 6);
  strictEqual(r.offset, 2);
  strictEqual(r.remaining, 4);
  strictEqual(r.u32("n"), 1);
  throws(() => r.u8("next"), /^MalformedError: next at offset 6: needs 1 bytes, 0 remain$/);
  for (const [start, end] of [[-1, 2], [3, 2], [0, 9], [0.5, 2]] as const) {
    throws(() => new ByteReader(bytes, start, end), RangeError);
  }
});

Deno.test("ByteReader copies with raw() and bytes(), and does not with view()", () => {
  const input = new Uint8Array([2, 0, 0, 0, 7, 8, 5]);
  const r = new ByteReader(input);
  const copy = r.bytes("data");
  const view = r.view(1, "tail");
  input[4] = 0;
  input[6] = 0;
  deepStrictEqual(copy, new Uint8Array([7, 8]));
  notStrictEqual(copy.buffer, input.buffer);
  deepStrictEqual(view, new Uint8Array([0]));
});

Deno.test("utf8Length() agrees with TextEncoder, lone surrogates included", async (t) => {
  for (
    const text of [
      "",
      "n1",
      "é",
      "€",
      "😀",
      "a😀b",
      "\ud83d",
      "\ude00",
      "\ude00\ud83d",
      "x\ud83d",
      "\uFEFF",
    ]
  ) {
    await t.step(JSON.stringify(text), () => {
      strictEqual(utf8Length(text), encoder.encode(text).length);
    });
  }
});

Deno.test("ByteWriter writes lone surrogates as U+FFFD, as TextEncoder does", () => {
  const w = new ByteWriter();
  w.string("a\ud83d");
  strictEqual(new ByteReader(w.finish()).string("x"), "a\uFFFD");
});

Deno.test("ByteReader throws nothing but MalformedError on random input (seeded)", () => {
  const seed = 0x5eed_b175;
  const prng = seededPrng(seed);
  const reads: ((r: ByteReader) => unknown)[] = [
    (r) => r.u8("a"),
    (r) => r.u16("b"),
    (r) => r.u32("c"),
    (r) => r.u53("d"),
    (r) => r.f64("e"),
    (r) => r.bool("f"),
    (r) => r.raw(randomInt(prng, 8), "g"),
    (r) => r.view(randomInt(prng, 8), "h"),
    (r) => r.bytes("i", randomInt(prng, 16)),
    (r) => r.string("j"),
    (r) => r.nullableString("k", 32),
    (r) => r.shortString("l"),
    (r) => r.hash("m"),
    (r) => r.end("n"),
  ];
  for (let round = 0; round < 3000; round++) {
    const bytes = Uint8Array.from({ length: randomInt(prng, 48) }, () => randomInt(prng, 256));
    // Small lengths are common so that variable-length reads sometimes succeed.
    for (let i = 0; i < bytes.length; i += 5) if (prng.next() < 0.5) bytes[i] = randomInt(prng, 8);
    const r = new ByteReader(bytes);
    try {
      while (true) reads[randomInt(prng, reads.length)]!(r);
    } catch (e) {
      ok(e instanceof MalformedError, `seed ${seed} round ${round}: ${e}`);
      ok(e.offset >= 0 && e.offset <= bytes.length, `seed ${seed} round ${round}: ${e.message}`);
    }
  }
});

Deno.test("NULL_LENGTH is the u32 that stands for null, and no string may take it", () => {
  strictEqual(NULL_LENGTH, 2 ** 32 - 1);
});

Deno.test("formatHash(), behind ByteReader.hash(), formats the same without the native toHex", async () => {
  const proto = Uint8Array.prototype as { toHex?: unknown };
  const native = Object.getOwnPropertyDescriptor(Uint8Array.prototype, "toHex");
  delete proto.toHex;
  try {
    // A query string makes a fresh instance of hex.ts, which looks for toHex as it loads.
    const fresh = await import("../src/binary/hex.ts?no-native-hex");
    for (const hex of [GENESIS_HASH, "0123456789abcdef".repeat(4), "f".repeat(64)]) {
      const w = new ByteWriter();
      w.u8(0);
      w.hash(hex);
      strictEqual(fresh.formatHash(w.finish(), 1), hex);
    }
  } finally {
    if (native !== undefined) Object.defineProperty(Uint8Array.prototype, "toHex", native);
  }
});
