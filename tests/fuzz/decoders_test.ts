/**
 * Fuzzes every decoder of bytes that come from outside the process: the peer
 * frames (`frames.ts`, with the payloads of `message_frames.ts` and
 * `forward_frames.ts`), the stream splitter `FrameReader`, and the file
 * storage's records (`records.ts`) and its whole recovery from a directory.
 * Inputs are random bytes, and valid frames and files bent by flipping,
 * setting, inserting and deleting bytes, cutting them short and writing
 * extreme counts, with the length prefix or the checksums made right again
 * half of the time, so that the damage reaches the payload decoders instead
 * of stopping at the first check.
 *
 * Property: each decoder returns a value or throws its own documented error
 * (`FrameError`, `MalformedError` for a record, `CorruptLogError` for a
 * directory), never anything else (`RangeError`, `TypeError`,
 * `AssertionError`, a `SyntaxError` from JSON); and what it returns is well
 * formed: it encodes again, and decodes back to itself.
 *
 * @module
 */

import { deepStrictEqual, ok } from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import {
  createEntry,
  type Entry,
  GENESIS_HASH,
  type HardState,
  TERM_WIRE_MAX,
} from "../../src/core/mod.ts";
import {
  decodeForwardedAnswer,
  decodeForwardedProposal,
  decodeFrame,
  decodeMessages,
  encodeForwardedAnswer,
  encodeForwardedProposal,
  encodeMessages,
  FrameError,
  FrameReader,
} from "../../src/transport/http/frames.ts";
import { crc32c } from "../../src/storage/file/crc.ts";
import {
  decodeLogRecord,
  decodeSnapshot,
  encodeBatch,
  encodeSegmentHeader,
  encodeSnapshot,
  MalformedError,
  RECORD_HEADER_BYTES,
  scanRecords,
} from "../../src/storage/file/records.ts";
import { segmentName, SNAPSHOT_FILE } from "../../src/storage/file/segments.ts";
import { fileStorage } from "../../src/storage/file/storage.ts";
import { CorruptLogError } from "../../src/storage/storage.ts";
import { checkAsyncProperty, checkProperty } from "./_fuzz.ts";
import {
  applyEdits,
  bentFrameArb,
  type ByteEdit,
  decodeOrRefuse,
  editsArb,
  frameArb,
  randomFrameArb,
} from "./_frames.ts";
import { idArb, messageArb } from "./_messages.ts";

const FILE = "tests/fuzz/decoders_test.ts";

/** Checks every frame decoder on one input. */
function checkFrame(bytes: Uint8Array): void {
  const messages = decodeOrRefuse(() => decodeMessages(bytes), FrameError);
  if (messages !== undefined) deepStrictEqual(decodeMessages(encodeMessages(messages)), messages);
  const proposal = decodeOrRefuse(() => decodeForwardedProposal(bytes), FrameError);
  if (proposal !== undefined) {
    deepStrictEqual(decodeForwardedProposal(encodeForwardedProposal(proposal)), proposal);
  }
  const answer = decodeOrRefuse(() => decodeForwardedAnswer(bytes), FrameError);
  // JSON's own numbers (1e400 reads as Infinity, which writes as null)
  // need not survive a round trip: that the answer encodes again suffices.
  if (answer !== undefined) encodeForwardedAnswer(answer);
  decodeOrRefuse(() => decodeFrame(bytes), FrameError);
}

Deno.test("fuzz: peer frame decoders return a frame that encodes to itself, or throw FrameError", () => {
  checkProperty(fc.property(fc.oneof(bentFrameArb, randomFrameArb), checkFrame), {
    numRuns: 10_000,
    file: FILE,
  });
});

Deno.test("fuzz: a message frame encodes and decodes to itself when its ids are valid", () => {
  checkProperty(
    fc.property(fc.array(messageArb, { maxLength: 4 }), (messages) => {
      const frame = encodeMessages(messages);
      const decoded = decodeOrRefuse(() => decodeMessages(frame), FrameError);
      if (decoded !== undefined) deepStrictEqual(decoded, messages);
      // All these messages may hold that the decoder refuses: an invalid id,
      // a term past the wire's bound, an entry at index 0.
      const numbersValid = messages.every((m) =>
        m.term <= TERM_WIRE_MAX && (m.type !== "append" || m.entries.every((e) => e.index >= 1))
      );
      const ids = messages.flatMap((m) => [
        m.from,
        m.to,
        ...(m.type === "transferLeader" ? [m.target] : []),
        ...(m.type === "heartbeat" ? Object.keys(m.seen) : []),
        ...(m.type === "snapshot" ? m.meta.config.members.map((x) => x.id) : []),
      ]);
      if (numbersValid && ids.every((id) => /^[A-Za-z0-9._-]{1,64}$/.test(id))) {
        ok(decoded !== undefined, "a valid frame was refused");
      }
    }),
    { numRuns: 2000, file: FILE },
  );
});

const FRAME_BYTES_MAX = 2048;

Deno.test("fuzz: FrameReader splits any byte stream into bounded frames, or throws FrameError", () => {
  checkProperty(
    fc.property(
      fc.array(fc.oneof(frameArb, bentFrameArb, fc.uint8Array({ maxLength: 32 })), {
        maxLength: 5,
      }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
      (parts, cuts) => {
        const stream = new Uint8Array(parts.flatMap((p) => [...p]));
        const reader = new FrameReader({ frameBytesMax: FRAME_BYTES_MAX });
        let at = 0;
        // Every loop ends: each chunk takes at least one byte.
        for (let i = 0; at < stream.length; i++) {
          const chunk = stream.subarray(at, at + cuts[i % cuts.length]!);
          at += chunk.length;
          const frames = decodeOrRefuse(() => reader.push(chunk), FrameError);
          if (frames === undefined) return;
          for (const frame of frames) {
            ok(frame.length <= FRAME_BYTES_MAX, `a frame of ${frame.length} bytes`);
            decodeOrRefuse(() => decodeFrame(frame), FrameError);
          }
          ok(reader.buffered <= FRAME_BYTES_MAX, `${reader.buffered} bytes held`);
        }
        decodeOrRefuse(() => reader.finish(), FrameError);
      },
    ),
    { numRuns: 3000, file: FILE },
  );
});

// ------------------------------------------------------------------ records

const hardArb: fc.Arbitrary<HardState> = fc.record({
  term: fc.nat(),
  commit: fc.nat(),
  vote: fc.option(idArb),
});

/** A hash-chained run of entries from index 1. */
const entriesArb: fc.Arbitrary<Entry[]> = fc.array(
  fc.record({
    term: fc.nat(9),
    kind: fc.constantFrom("command" as const, "noop" as const, "config" as const),
    proposer: fc.constantFrom("", "n1", "é"),
    timeMs: fc.constantFrom(0, 1.5, 1e15),
    data: fc.uint8Array({ maxLength: 24 }),
  }),
  { maxLength: 4 },
).map((fields) => {
  let prev = GENESIS_HASH;
  return fields.map((f, i) => {
    const e = createEntry(i + 1, prev, f);
    prev = e.hash;
    return e;
  });
});

/** The records of segment `seq`: its header, then batches. */
function segmentRecordsArb(seq: fc.Arbitrary<number>): fc.Arbitrary<Uint8Array[]> {
  return fc.tuple(
    seq,
    hardArb,
    fc.array(fc.tuple(fc.option(hardArb), entriesArb), { maxLength: 3 }),
  ).map(([n, hard, batches]) => [
    encodeSegmentHeader(n, hard),
    ...batches.map(([h, entries]) => encodeBatch(h, entries)),
  ]);
}

const snapshotRecordArb: fc.Arbitrary<Uint8Array> = fc.record({
  index: fc.nat(),
  term: fc.nat(),
  members: fc.array(fc.record({ id: idArb, voter: fc.boolean() }), { maxLength: 3 }),
  data: fc.uint8Array({ maxLength: 32 }),
}).map((s) =>
  encodeSnapshot({
    meta: { index: s.index, term: s.term, hash: GENESIS_HASH, config: { members: s.members } },
    data: s.data,
  })
);

/** Gives a record whose payload was bent the length and checksums that make it intact again. */
function reseal(record: Uint8Array): Uint8Array {
  const payload = record.subarray(Math.min(RECORD_HEADER_BYTES, record.length));
  const out = new Uint8Array(RECORD_HEADER_BYTES + payload.length);
  out.set(payload, RECORD_HEADER_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length, true);
  view.setUint32(4, crc32c(out, RECORD_HEADER_BYTES), true);
  view.setUint32(8, crc32c(out, 0, 8), true);
  return out;
}

/** Where and how to bend one record of a file. */
interface Bend {
  /** Which record, modulo their count. */
  readonly which: number;
  readonly edits: readonly ByteEdit[];
  /** Bend the payload only and make the record intact again. */
  readonly inPayload: boolean;
}

const bendArb: fc.Arbitrary<Bend> = fc.record({
  which: fc.nat(),
  edits: editsArb,
  inPayload: fc.boolean(),
});

/**
 * Joins records into a file, one of them bent: its payload only, made
 * intact again (the decoders see it), or anywhere, checksums left as they
 * are (the scan must cope).
 */
function fileOf(records: readonly Uint8Array[], bend: Bend | null): Uint8Array {
  const i = bend === null ? -1 : bend.which % records.length;
  const bent = records.map((r, j) => {
    if (j !== i || bend === null) return r;
    if (!bend.inPayload) return applyEdits(r, bend.edits);
    const payload = applyEdits(r.subarray(RECORD_HEADER_BYTES), bend.edits);
    return reseal(new Uint8Array([...r.subarray(0, RECORD_HEADER_BYTES), ...payload]));
  });
  return new Uint8Array(bent.flatMap((r) => [...r]));
}

/** A segment or snapshot file with one record bent. */
const bentFileArb: fc.Arbitrary<Uint8Array> = fc.tuple(
  fc.oneof(segmentRecordsArb(fc.nat(9)), snapshotRecordArb.map((r) => [r])),
  bendArb,
).map(([records, bend]) => fileOf(records, bend));

Deno.test("fuzz: file records scan without throwing and decode to records that encode to themselves, or throw MalformedError", () => {
  checkProperty(
    fc.property(fc.oneof(bentFileArb, fc.uint8Array({ maxLength: 256 })), (file) => {
      const scan = scanRecords(file);
      ok(scan.goodEnd <= file.length);
      for (const span of scan.records) {
        const record = decodeOrRefuse(() => decodeLogRecord(file, span), MalformedError);
        if (record?.type === "batch") {
          const again = encodeBatch(record.hard, record.entries);
          const reread = decodeLogRecord(again, scanRecords(again).records[0]!);
          deepStrictEqual(reread, record);
        }
        const snapshot = decodeOrRefuse(() => decodeSnapshot(file, span), MalformedError);
        if (snapshot !== undefined) encodeSnapshot(snapshot);
      }
    }),
    { numRuns: 10_000, file: FILE },
  );
});

Deno.test("fuzz: file storage recovers a damaged directory or throws CorruptLogError", async () => {
  const dir = await Deno.makeTempDir({ prefix: "watercraft_fuzz_" });
  const loads = { recovered: 0, corrupt: 0 };
  try {
    await checkAsyncProperty(
      fc.asyncProperty(
        // Segments named as their headers say, some of them bent, and maybe a snapshot.
        fc.array(fc.tuple(fc.nat(), fc.option(bendArb, { freq: 2 })), {
          minLength: 1,
          maxLength: 3,
        })
          .chain((plan) =>
            fc.tuple(
              ...plan.map(([_, bend], i) =>
                segmentRecordsArb(fc.constant(i + 1)).map((records) => fileOf(records, bend))
              ),
            )
          ),
        fc.option(
          fc.tuple(snapshotRecordArb, fc.option(bendArb)).map(([r, bend]) => fileOf([r], bend)),
          { freq: 3 },
        ),
        async (segments, snapshot) => {
          for await (const e of Deno.readDir(dir)) await Deno.remove(join(dir, e.name));
          for (const [i, bytes] of segments.entries()) {
            await Deno.writeFile(join(dir, segmentName(i + 1)), bytes);
          }
          if (snapshot !== null) await Deno.writeFile(join(dir, SNAPSHOT_FILE), snapshot);
          const storage = fileStorage(dir, { onWarning: () => {} });
          try {
            await storage.load();
            loads.recovered++;
          } catch (e) {
            loads.corrupt++;
            if (!(e instanceof CorruptLogError)) {
              throw new Error(`load() threw ${e instanceof Error ? e.name : ""}: ${e}`, {
                cause: e,
              });
            }
          } finally {
            await storage.close();
          }
        },
      ),
      { numRuns: 300, file: FILE },
    );
    // Both ends must be reached: damage that recovery takes (a torn tail),
    // and damage it refuses.
    ok(loads.recovered > 30 && loads.corrupt > 30, JSON.stringify(loads));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
