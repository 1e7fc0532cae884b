/**
 * Tests for src/storage/file/records.ts: the format stays version 1 byte for
 * byte. A log that the first code of the format wrote (the fixture of
 * `tests/storage/fixtures/file_v1.ts`) still loads, and the same writes
 * produce the same files; every record of it decodes and re-encodes to
 * itself; a batch is laid out with the primitives of `src/binary/`; and a
 * payload that does not decode is refused with a `MalformedError` naming
 * the field and its offset in the file.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { join } from "node:path";
import {
  ByteReader,
  ByteWriter,
  MalformedError as BinaryMalformedError,
} from "../../../src/binary/mod.ts";
import { createEntry, type Entry, GENESIS_HASH } from "../../../src/core/entry.ts";
import {
  decodeLogRecord,
  decodeSnapshot,
  encodeBatch,
  encodeSegmentHeader,
  encodeSnapshot,
  MalformedError,
  RECORD_HEADER_BYTES,
  type RecordSpan,
  scanRecords,
} from "../../../src/storage/file/records.ts";
import { fileStorage } from "../../../src/storage/file/storage.ts";
import { memoryStorage } from "../../../src/storage/memory.ts";
import { FILE_V1_DIR, FILE_V1_SEGMENT_BYTES, writeFileV1Scenario } from "../fixtures/file_v1.ts";

/** The fixture's file names, sorted. */
async function fixtureFiles(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(FILE_V1_DIR)) names.push(e.name);
  return names.sort();
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "watercraft_records_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("fileStorage() loads the version 1 log written by the format's first code", () =>
  withDir(async (dir) => {
    const names = await fixtureFiles();
    ok(names.includes("snapshot.bin") && names.filter((n) => n.endsWith(".wal")).length > 1);
    // A copy: loading takes the lock, which writes into the directory.
    for (const name of names) await Deno.copyFile(join(FILE_V1_DIR, name), join(dir, name));
    const expected = memoryStorage();
    await writeFileV1Scenario(expected);
    const storage = fileStorage(dir, { onWarning: () => {} });
    try {
      const loaded = await storage.load();
      deepStrictEqual(loaded, await expected.load());
      strictEqual(loaded.entries.at(-1)?.index, 14);
    } finally {
      await storage.close();
    }
  }));

Deno.test("fileStorage() writes the version 1 log byte for byte as the format's first code did", () =>
  withDir(async (dir) => {
    await writeFileV1Scenario(
      fileStorage(dir, { segmentBytes: FILE_V1_SEGMENT_BYTES, onWarning: () => {} }),
    );
    const names = await fixtureFiles();
    const written: string[] = [];
    for await (const e of Deno.readDir(dir)) if (e.name !== "LOCK") written.push(e.name);
    deepStrictEqual(written.sort(), names);
    for (const name of names) {
      deepStrictEqual(
        await Deno.readFile(join(dir, name)),
        await Deno.readFile(join(FILE_V1_DIR, name)),
        name,
      );
    }
  }));

Deno.test("decodeLogRecord() and decodeSnapshot() results re-encode to the fixture's records", async (t) => {
  for (const name of await fixtureFiles()) {
    await t.step(name, async () => {
      const bytes = await Deno.readFile(join(FILE_V1_DIR, name));
      const scan = scanRecords(bytes);
      strictEqual(scan.fault, null);
      if (name === "snapshot.bin") {
        deepStrictEqual(encodeSnapshot(decodeSnapshot(bytes, scan.records[0]!)), bytes);
        return;
      }
      for (const span of scan.records) {
        const record = decodeLogRecord(bytes, span);
        const again = record.type === "segment"
          ? encodeSegmentHeader(record.seq, record.hard)
          : encodeBatch(record.hard, record.entries);
        deepStrictEqual(again, bytes.subarray(span.offset, span.end), `record at ${span.offset}`);
      }
    });
  }
});

Deno.test("encodeBatch() lays a batch out with the primitives of src/binary/", () => {
  const entries: Entry[] = [];
  let prev = GENESIS_HASH;
  for (let i = 1; i <= 3; i++) {
    const entry = createEntry(i, prev, {
      term: 2 ** 33 + i,
      kind: i === 1 ? "config" : "command",
      proposer: i === 1 ? "" : "nœud-2",
      timeMs: 1_700_000_000_000.25 + i,
      data: Uint8Array.from({ length: i * 10 }, (_, j) => (i * j) & 255),
    });
    entries.push(entry);
    prev = entry.hash;
  }
  const hard = { term: 7, vote: "n3", commit: 2 };
  const record = encodeBatch(hard, entries);

  const w = new ByteWriter();
  w.u8(2);
  w.u8(1);
  w.u53(hard.term);
  w.u53(hard.commit);
  w.nullableString(hard.vote);
  w.u32(entries.length);
  for (const e of entries) {
    w.u53(e.index);
    w.u53(e.term);
    w.u8(e.kind === "command" ? 0 : e.kind === "noop" ? 1 : 2);
    w.f64(e.timeMs);
    w.string(e.proposer);
    w.hash(e.hash);
    w.bytes(e.data);
  }
  deepStrictEqual(record.subarray(RECORD_HEADER_BYTES), w.finish());
  // Sized exactly: the record is its buffer, whole.
  strictEqual(record.byteLength, record.buffer.byteLength);

  const r = new ByteReader(record, RECORD_HEADER_BYTES);
  deepStrictEqual([r.u8("type"), r.u8("flags")], [2, 1]);
  deepStrictEqual([r.u53("term"), r.u53("commit"), r.nullableString("vote")], [7, 2, "n3"]);
  strictEqual(r.u32("count"), 3);
  const decoded = decodeLogRecord(record, {
    offset: 0,
    start: RECORD_HEADER_BYTES,
    end: record.length,
  });
  deepStrictEqual(decoded, { type: "batch", hard, entries });
});

/** A record whose payload `write` writes (its header left zero: decoding does not read it). */
function record(write: (w: ByteWriter) => void): { bytes: Uint8Array; span: RecordSpan } {
  const w = new ByteWriter();
  w.raw(new Uint8Array(RECORD_HEADER_BYTES));
  write(w);
  const bytes = w.finish();
  return { bytes, span: { offset: 0, start: RECORD_HEADER_BYTES, end: bytes.length } };
}

function segmentStart(w: ByteWriter, magic = 0x474c4357, version = 1): void {
  w.u8(1);
  w.u32(magic);
  w.u8(version);
}

function batchOfOne(w: ByteWriter, kind = 0, proposer = new Uint8Array([110, 49])): void {
  w.u8(2);
  w.u8(0);
  w.u32(1);
  w.u53(1);
  w.u53(1);
  w.u8(kind);
  w.f64(0);
  w.bytes(proposer);
  w.hash(GENESIS_HASH);
  w.bytes(new Uint8Array(0));
}

function snapshotOf(w: ByteWriter, config: string): void {
  w.u8(3);
  w.u32(0x474c4357);
  w.u8(1);
  w.u53(5);
  w.u53(2);
  w.hash(GENESIS_HASH);
  w.string(config);
}

Deno.test("decodeLogRecord() and decodeSnapshot() name the field and offset they refuse", async (t) => {
  const rows: { name: string; write: (w: ByteWriter) => void; snapshot?: true; want: RegExp }[] = [
    {
      name: "unknown record type",
      write: (w) => w.u8(9),
      want: /^record type at offset 12: 9 is unknown$/,
    },
    {
      name: "wrong magic",
      write: (w) => segmentStart(w, 0x12345678),
      want: /^magic at offset 13: 0x12345678 is not 0x474c4357$/,
    },
    {
      name: "another format version",
      write: (w) => segmentStart(w, undefined, 2),
      want: /^format version at offset 17: 2 is unknown, this code reads 1$/,
    },
    {
      name: "a segment header cut short",
      write: (w) => segmentStart(w),
      want: /^segment number at offset 18: needs 8 bytes, 0 remain$/,
    },
    {
      name: "a term of 2^53",
      write: (w) => {
        segmentStart(w);
        w.u53(1);
        w.raw(new Uint8Array([0, 0, 0, 0, 0, 0, 32, 0]));
      },
      want: /^term at offset 26: 9007199254740992 is not a safe integer$/,
    },
    {
      name: "unknown entry kind",
      write: (w) => batchOfOne(w, 3),
      want: /^kind at offset 34: 3 is not a known entry kind$/,
    },
    {
      name: "a proposer that is not UTF-8",
      write: (w) => batchOfOne(w, 0, new Uint8Array([0xff])),
      want: /^proposer at offset 47: is not UTF-8$/,
    },
    {
      name: "bytes after the record",
      write: (w) => {
        batchOfOne(w);
        w.u8(0);
      },
      want: /^record at offset 85: 1 bytes follow its end$/,
    },
    {
      name: "a segment record where the snapshot should be",
      write: (w) => segmentStart(w),
      snapshot: true,
      want: /^record type at offset 12: 1 is not a snapshot \(3\)$/,
    },
    {
      name: "a configuration that is not JSON",
      write: (w) => snapshotOf(w, "{"),
      snapshot: true,
      want: /^configuration at offset 66: is not JSON$/,
    },
    {
      name: "a configuration without members",
      write: (w) => snapshotOf(w, "{}"),
      snapshot: true,
      want: /^configuration at offset 66: has no members$/,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const { bytes, span } = record(row.write);
      const decode = row.snapshot ? decodeSnapshot : decodeLogRecord;
      throws(() => decode(bytes, span), (e: unknown) => {
        ok(e instanceof MalformedError, `not a MalformedError: ${e}`);
        ok(row.want.test(e.message), e.message);
        return true;
      });
    });
  }
  await t.step("records.ts's MalformedError is the one of src/binary/", () => {
    strictEqual(MalformedError, BinaryMalformedError);
  });
});
