/**
 * The binary peer frames: every message type, proposals and answers survive
 * a round trip; every bound of the JSON codec is enforced, refused with a
 * `FrameError` naming the field; `FrameReader` splits any chunking of a
 * stream and refuses an oversized length before its body arrives; and
 * thousands of random and mutated frames from a seeded PRNG make the
 * decoders throw nothing but `FrameError`.
 *
 * @module
 */

import { deepStrictEqual, notStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { ByteWriter } from "../../../src/binary/mod.ts";
import { createEntry, type Entry, GENESIS_HASH } from "../../../src/core/entry.ts";
import { type Message, TERM_WIRE_MAX } from "../../../src/core/messages.ts";
import { type Prng, randomInt, seededPrng } from "../../../src/core/prng.ts";
import { WaterCraftError } from "../../../src/errors.ts";
import {
  decodeForwardedAnswer,
  decodeForwardedProposal,
  decodeFrame,
  decodeMessages,
  encodeForwardedAnswer,
  encodeForwardedProposal,
  encodeFrame,
  encodeMessages,
  FRAME_BYTES_MAX_DEFAULT,
  FRAME_HEADER_BYTES,
  FrameError,
  FrameReader,
  MAX_MESSAGES_PER_BATCH,
} from "../../../src/transport/http/frames.ts";
import type { ForwardedAnswer, ForwardedProposal } from "../../../src/transport/transport.ts";

const encoder = new TextEncoder();

function entries(datas: readonly Uint8Array[]): Entry[] {
  const out: Entry[] = [];
  let prev = GENESIS_HASH;
  for (const [i, data] of datas.entries()) {
    const entry = createEntry(i + 1, prev, {
      term: 2,
      kind: i === 0 ? "noop" : "command",
      proposer: "n1",
      timeMs: 1_700_000_000_000 + i,
      data,
    });
    out.push(entry);
    prev = entry.hash;
  }
  return out;
}

const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i);

// The shapes of tests/transport/http/codec_test.ts, plus the edges binary adds.
const MESSAGES: { name: string; input: Message }[] = [
  {
    name: "vote",
    input: {
      type: "vote",
      from: "n1",
      to: "n2",
      term: 3,
      preVote: true,
      transfer: false,
      lastIndex: 9,
      lastTerm: 2,
    },
  },
  {
    name: "vote at the highest term a peer may send",
    input: {
      type: "vote",
      from: "a",
      to: "b",
      term: TERM_WIRE_MAX,
      preVote: false,
      transfer: true,
      lastIndex: 2 ** 32,
      lastTerm: 2 ** 32 - 1,
    },
  },
  {
    name: "voteResponse",
    input: { type: "voteResponse", from: "n2", to: "n1", term: 3, preVote: false, granted: true },
  },
  {
    name: "append with binary entries",
    input: {
      type: "append",
      from: "n1",
      to: "n2",
      term: 2,
      prevIndex: 0,
      prevTerm: 0,
      prevHash: GENESIS_HASH,
      entries: entries([
        new Uint8Array(0),
        everyByte,
        new Uint8Array([0]),
        new Uint8Array([255, 254]),
      ]),
      commit: 1,
    },
  },
  {
    name: "append with the bootstrap entry (no proposer)",
    input: {
      type: "append",
      from: "n1",
      to: "n2",
      term: 1,
      prevIndex: 0,
      prevTerm: 0,
      prevHash: GENESIS_HASH,
      entries: [createEntry(1, GENESIS_HASH, {
        term: 1,
        kind: "config",
        proposer: "",
        timeMs: 0,
        data: new Uint8Array([123, 125]),
      })],
      commit: 0,
    },
  },
  {
    name: "append probe (no entries), a fractional time elsewhere",
    input: {
      type: "append",
      from: "node-1.a_b",
      to: "n2",
      term: 9,
      prevIndex: 41,
      prevTerm: 8,
      prevHash: "0123456789abcdef".repeat(4),
      entries: [{
        index: 42,
        term: 9,
        kind: "command",
        proposer: "x".repeat(64),
        timeMs: 0.5,
        data: new Uint8Array([1]),
        hash: "f".repeat(64),
      }],
      commit: 40,
    },
  },
  {
    name: "appendResponse",
    input: {
      type: "appendResponse",
      from: "n2",
      to: "n1",
      term: 2,
      success: false,
      index: 7,
      hintIndex: 5,
      hintTerm: 1,
    },
  },
  {
    name: "heartbeat",
    input: {
      type: "heartbeat",
      from: "n1",
      to: "n2",
      term: 2,
      commit: 4,
      context: "n2:1",
      seen: { n1: 0, "node-2.b_c": 3 },
    },
  },
  {
    name: "heartbeat without context",
    input: { type: "heartbeat", from: "n1", to: "n2", term: 2, commit: 4, context: null, seen: {} },
  },
  {
    name: "heartbeat with a non-ASCII context of 1024 characters and a __proto__ member",
    input: {
      type: "heartbeat",
      from: "n1",
      to: "n2",
      term: 2,
      commit: 4,
      context: "€".repeat(1024),
      seen: JSON.parse('{"__proto__": 5, "constructor": 1}'),
    },
  },
  {
    name: "heartbeatResponse",
    input: {
      type: "heartbeatResponse",
      from: "n2",
      to: "n1",
      term: 2,
      context: null,
      configIndex: 1,
    },
  },
  {
    name: "heartbeatResponse with an empty context",
    input: {
      type: "heartbeatResponse",
      from: "n2",
      to: "n1",
      term: 2,
      context: "",
      configIndex: 0,
    },
  },
  { name: "timeoutNow", input: { type: "timeoutNow", from: "n1", to: "n2", term: 5 } },
  {
    name: "readIndex",
    input: { type: "readIndex", from: "n2", to: "n1", term: 0, context: "n2:17" },
  },
  {
    name: "readIndexResponse",
    input: {
      type: "readIndexResponse",
      from: "n1",
      to: "n2",
      term: 0,
      context: "n2:17",
      index: 12,
    },
  },
  {
    name: "transferLeader",
    input: { type: "transferLeader", from: "n2", to: "n1", term: 0, target: "n3" },
  },
  {
    name: "snapshot",
    input: {
      type: "snapshot",
      from: "n1",
      to: "n2",
      term: 4,
      meta: {
        index: 200,
        term: 3,
        hash: "c".repeat(64),
        config: {
          members: [
            { id: "n1", voter: true, url: "http://127.0.0.1:6969" },
            { id: "n2", voter: false, readOnly: true },
            { id: "n3", voter: false, readOnly: false, url: "" },
          ],
        },
      },
      offset: 1024,
      total: 4000,
      data: new Uint8Array([0, 1, 2, 253, 254, 255]),
    },
  },
  {
    name: "snapshot of an empty configuration",
    input: {
      type: "snapshot",
      from: "n1",
      to: "n2",
      term: 4,
      meta: { index: 0, term: 0, hash: GENESIS_HASH, config: { members: [] } },
      offset: 0,
      total: 0,
      data: new Uint8Array(0),
    },
  },
  {
    name: "snapshotResponse",
    input: { type: "snapshotResponse", from: "n2", to: "n1", term: 4, index: 200, received: 2048 },
  },
];

Deno.test("encodeMessages() and decodeMessages() round-trip every message type", async (t) => {
  for (const row of MESSAGES) {
    await t.step(row.name, () => {
      deepStrictEqual(decodeMessages(encodeMessages([row.input])), [row.input]);
    });
  }
  await t.step("a batch keeps its order", () => {
    const batch = MESSAGES.map((row) => row.input);
    deepStrictEqual(decodeMessages(encodeMessages(batch)), batch);
  });
  await t.step("an empty batch", () => {
    deepStrictEqual(decodeMessages(encodeMessages([])), []);
  });
  await t.step("the largest batch", () => {
    const batch: Message[] = Array.from(
      { length: MAX_MESSAGES_PER_BATCH },
      (_, i) => ({ type: "timeoutNow", from: "a", to: "b", term: i }),
    );
    deepStrictEqual(decodeMessages(encodeMessages(batch)), batch);
  });
  await t.step("every type covered", () => {
    strictEqual(new Set(MESSAGES.map((row) => row.input.type)).size, 12);
  });
});

Deno.test("encodeMessages() lays a frame out as length, version, kind, count, messages", () => {
  const frame = encodeMessages([{ type: "timeoutNow", from: "n1", to: "n2", term: 3 }]);
  deepStrictEqual(
    frame,
    new Uint8Array([
      ...[21, 0, 0, 0, 1, 1], // length 21, version 1, kind 1 (messages)
      ...[1, 0, 0, 0], // one message
      ...[9, 2, 110, 49, 2, 110, 50], // timeoutNow, "n1", "n2"
      ...[3, 0, 0, 0, 0, 0, 0, 0], // term
    ]),
  );
  deepStrictEqual(encodeFrame("messages", frame.subarray(FRAME_HEADER_BYTES)), frame);
});

Deno.test("decodeMessages() carries a 1 MiB entry and returns data that owns its bytes", () => {
  const data = new Uint8Array(1 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7919 + (i >> 8)) & 255;
  const message: Message = {
    type: "append",
    from: "n1",
    to: "n2",
    term: 2,
    prevIndex: 0,
    prevTerm: 0,
    prevHash: GENESIS_HASH,
    entries: entries([data]),
    commit: 0,
  };
  const frame = encodeMessages([message]);
  ok(frame.length < data.length + 200, `a ${frame.length}-byte frame for ${data.length} bytes`);
  const [decoded] = decodeMessages(frame);
  ok(decoded?.type === "append");
  deepStrictEqual(decoded.entries[0]!.data, data);
  strictEqual(decoded.entries[0]!.hash, message.entries[0]!.hash);
  notStrictEqual(decoded.entries[0]!.data.buffer, frame.buffer);
  frame.fill(0);
  deepStrictEqual(decoded.entries[0]!.data, data);
});

Deno.test("MAX_MESSAGES_PER_BATCH is 10 000, as peers of the JSON codec took", () => {
  strictEqual(MAX_MESSAGES_PER_BATCH, 10_000);
});

Deno.test("encodeMessages() refuses what its peer would refuse or could not be written", async (t) => {
  const append: Message = {
    type: "append",
    from: "n1",
    to: "n2",
    term: 1,
    prevIndex: 0,
    prevTerm: 0,
    prevHash: GENESIS_HASH,
    entries: [],
    commit: 0,
  };
  const rows: { name: string; input: Message[]; want: RegExp; type: ErrorConstructor }[] = [
    {
      name: "too many messages",
      input: Array.from(
        { length: MAX_MESSAGES_PER_BATCH + 1 },
        () => ({ type: "timeoutNow" as const, from: "a", to: "b", term: 1 }),
      ),
      want: /10001 messages in one frame: the limit is 10000/,
      type: RangeError,
    },
    {
      name: "negative term",
      input: [{ ...append, term: -1 }],
      want: /Cannot store term -1/,
      type: TypeError,
    },
    {
      name: "uppercase prevHash",
      input: [{ ...append, prevHash: "A".repeat(64) }],
      want: /Cannot store prevHash/,
      type: TypeError,
    },
    {
      name: "fractional commit",
      input: [{ ...append, commit: 1.5 }],
      want: /Cannot store commit 1.5/,
      type: TypeError,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      throws(() => encodeMessages(row.input), (e: unknown) => {
        ok(e instanceof row.type, `not a ${row.type.name}: ${e}`);
        ok(
          row.want.test((e as Error).message),
          `${(e as Error).message} does not match ${row.want}`,
        );
        return true;
      });
    });
  }
});

const PROPOSALS: { name: string; input: ForwardedProposal }[] = [
  {
    name: "with an idempotency key",
    input: {
      command: encoder.encode('{"op":"put","key":"k","value":[1,null]}'),
      idempotencyKey: "abc",
      wait: "accepted",
      timeoutMs: 100,
    },
  },
  {
    name: "without one, and an empty command",
    input: { command: new Uint8Array(0), wait: "committed", timeoutMs: 0 },
  },
  {
    name: "binary command, longest key",
    input: {
      command: everyByte,
      idempotencyKey: "é".repeat(256),
      wait: "committed",
      timeoutMs: Number.MAX_SAFE_INTEGER,
    },
  },
  {
    name: "a member addition (kind 4)",
    input: {
      kind: "addMember",
      member: { id: "n4", url: "https://n4.test:6969/raft-prefix", readOnly: false },
      timeoutMs: 5_000,
    },
  },
  {
    name: "a read-only member addition with the longest id and URL",
    input: {
      kind: "addMember",
      member: { id: "r".repeat(64), url: `http://${"é".repeat(2040)}`, readOnly: true },
      timeoutMs: 0,
    },
  },
  {
    name: "a member removal (kind 5)",
    input: { kind: "removeMember", id: "n._-2", timeoutMs: Number.MAX_SAFE_INTEGER },
  },
  {
    name: "a leadership transfer to a target (kind 6)",
    input: { kind: "transferLeader", target: "n3", timeoutMs: 1_000 },
  },
  {
    name: "a leadership transfer to whoever the leader picks",
    input: { kind: "transferLeader", timeoutMs: 1_000 },
  },
];

const ANSWERS: { name: string; input: ForwardedAnswer; want?: ForwardedAnswer }[] = [
  { name: "ok with a value", input: { ok: true, value: { index: 3, id: "ab".repeat(32) } } },
  { name: "ok with null", input: { ok: true, value: null } },
  { name: "ok without a value", input: { ok: true, value: undefined } },
  {
    name: "ok with a value JSON cannot hold",
    input: { ok: true, value: () => 1 },
    want: { ok: true, value: undefined },
  },
  {
    name: "an error with details",
    input: {
      ok: false,
      code: "not_leader",
      message: "Go away",
      details: { leader: { id: "n3", url: null } },
    },
  },
  { name: "an error without details", input: { ok: false, code: "timeout", message: "" } },
  {
    name: "an error with the longest message",
    input: { ok: false, code: "a".repeat(64), message: "😀".repeat(32 * 1024) },
  },
];

Deno.test("forwarded proposals and answers round-trip", async (t) => {
  for (const row of PROPOSALS) {
    await t.step(`proposal ${row.name}`, () => {
      deepStrictEqual(decodeForwardedProposal(encodeForwardedProposal(row.input)), row.input);
    });
  }
  for (const row of ANSWERS) {
    await t.step(`answer ${row.name}`, () => {
      deepStrictEqual(
        decodeForwardedAnswer(encodeForwardedAnswer(row.input)),
        row.want ?? row.input,
      );
    });
  }
});

Deno.test("decodeFrame() tells the kinds apart; the typed decoders refuse the others", () => {
  const messages: Message[] = [{ type: "timeoutNow", from: "n1", to: "n2", term: 1 }];
  const proposal = PROPOSALS[0]!.input;
  const answer = ANSWERS[0]!.input;
  deepStrictEqual(decodeFrame(encodeMessages(messages)), { kind: "messages", messages });
  deepStrictEqual(decodeFrame(encodeForwardedProposal(proposal)), { kind: "proposal", proposal });
  deepStrictEqual(decodeFrame(encodeForwardedAnswer(answer)), { kind: "answer", answer });
  throws(
    () => decodeMessages(encodeForwardedAnswer(answer)),
    /frame kind at offset 5: answer, expected messages/,
  );
  throws(() => decodeForwardedAnswer(encodeMessages(messages)), FrameError);
  throws(() => decodeForwardedProposal(encodeMessages(messages)), FrameError);
  throws(
    () => decodeForwardedProposal(encodeForwardedAnswer(answer)),
    /frame kind at offset 5: answer, expected a forwarded proposal/,
  );
  throws(() => encodeFrame("gossip" as "messages", new Uint8Array(0)), RangeError);
});

Deno.test("forwarded membership changes and transfers travel in frame kinds 4 to 6", async (t) => {
  const rows: { input: ForwardedProposal; kind: number }[] = [
    { input: PROPOSALS[0]!.input, kind: 2 },
    {
      input: {
        kind: "addMember",
        member: { id: "a", url: "http://a", readOnly: true },
        timeoutMs: 1,
      },
      kind: 4,
    },
    { input: { kind: "removeMember", id: "a", timeoutMs: 1 }, kind: 5 },
    { input: { kind: "transferLeader", timeoutMs: 1 }, kind: 6 },
  ];
  for (const row of rows) {
    await t.step(`${row.input.kind ?? "write"} is kind ${row.kind}`, () => {
      const frame = encodeForwardedProposal(row.input);
      strictEqual(frame[5], row.kind);
      deepStrictEqual(decodeFrame(frame), { kind: "proposal", proposal: row.input });
      // The envelope is the same for every kind: only the kind byte tells them apart.
      deepStrictEqual(
        encodeFrame(
          (["proposal", "addMember", "removeMember", "transferLeader"] as const)[
            [2, 4, 5, 6].indexOf(row.kind)
          ]!,
          frame.subarray(FRAME_HEADER_BYTES),
        ),
        frame,
      );
    });
  }
});

// ------------------------------------------------------------------ bounds

/** Writes a frame by hand, so that a test can put anything in it. */
function frameOf(kind: number, write: (w: ByteWriter) => void, version = 1): Uint8Array {
  const w = new ByteWriter();
  w.u32(0);
  w.u8(version);
  w.u8(kind);
  write(w);
  w.setU32(0, w.length - 4);
  return w.finish().slice();
}

/** A messages frame of the given messages, each written by hand. */
function batch(...messages: ((w: ByteWriter) => void)[]): Uint8Array {
  return frameOf(1, (w) => {
    w.u32(messages.length);
    for (const m of messages) m(w);
  });
}

/** Writes a message's type and envelope. */
function head(w: ByteWriter, type: number, from = "n1", to = "n2", term = 1): void {
  w.u8(type);
  w.shortString(from);
  w.shortString(to);
  w.u53(term);
}

/** Writes an 8-byte integer by its two words, so that unsafe values can be written. */
function u64(w: ByteWriter, low: number, high: number): void {
  w.u32(low);
  w.u32(high);
}

interface EntryFields {
  index?: number;
  kind?: number;
  timeMs?: number;
  proposer?: string;
  dataLength?: number;
  cut?: boolean;
}

/** An append of one entry, its fields as given. */
function appendWith(fields: EntryFields = {}): (w: ByteWriter) => void {
  return (w) => {
    head(w, 3);
    w.u53(0);
    w.u53(0);
    w.hash(GENESIS_HASH);
    w.u53(0);
    w.u32(1);
    w.u53(fields.index ?? 1);
    w.u53(1);
    w.u8(fields.kind ?? 0);
    w.f64(fields.timeMs ?? 5);
    if (fields.cut) {
      w.raw(new Uint8Array(31));
      return;
    }
    w.hash("ab".repeat(32));
    w.shortString(fields.proposer ?? "n1");
    w.u32(fields.dataLength ?? 1);
    w.u8(7);
  };
}

function heartbeatWith(
  context: string | null,
  seen: [string, number][],
  count = seen.length,
): (w: ByteWriter) => void {
  return (w) => {
    head(w, 7);
    w.u53(0);
    w.nullableString(context);
    w.u32(count);
    for (const [id, ticks] of seen) {
      w.shortString(id);
      w.u53(ticks);
    }
  };
}

interface MemberFields {
  id?: string;
  voter?: number;
  readOnly?: number;
  url?: string | null;
}

function snapshotWith(members: MemberFields[], count = members.length): (w: ByteWriter) => void {
  return (w) => {
    head(w, 5);
    w.u53(10);
    w.u53(2);
    w.hash(GENESIS_HASH);
    w.u32(count);
    for (const m of members) {
      w.shortString(m.id ?? "n1");
      w.u8(m.voter ?? 1);
      w.u8(m.readOnly ?? 0);
      w.nullableString(m.url === undefined ? null : m.url);
    }
    w.u53(0);
    w.u53(1);
    w.bytes(new Uint8Array([1]));
  };
}

const timeoutNow = (w: ByteWriter): void => head(w, 9);

const BAD_FRAMES: { name: string; input: Uint8Array; want: RegExp }[] = [
  {
    name: "shorter than a header",
    input: new Uint8Array([2, 0, 0]),
    want: /^frame at offset 0: 3 bytes/,
  },
  {
    name: "cut short",
    input: batch(timeoutNow).subarray(0, 20),
    want:
      /^frame length at offset 0: declares 21 bytes after the length, 16 are there \(the frame is cut short\)/,
  },
  {
    name: "followed by a stray byte",
    input: new Uint8Array([...batch(timeoutNow), 0]),
    want: /frame is followed by stray bytes/,
  },
  {
    name: "a payload longer than its messages",
    input: frameOf(1, (w) => {
      w.u32(0);
      w.u8(0);
    }),
    want: /^frame at offset 10: 1 bytes follow its end$/,
  },
  {
    name: "unknown version",
    input: frameOf(1, (w) => w.u32(0), 2),
    want: /^frame version at offset 4: 2 is unknown, this code reads 1$/,
  },
  {
    name: "unknown kind",
    input: frameOf(7, (w) => w.u32(0)),
    want: /^frame kind at offset 5: 7 is unknown$/,
  },
  {
    name: "kind 0",
    input: frameOf(0, (w) => w.u32(0)),
    want: /^frame kind at offset 5: 0 is unknown$/,
  },
  {
    name: "too many messages",
    input: frameOf(1, (w) => w.u32(MAX_MESSAGES_PER_BATCH + 1)),
    want: /^messages at offset 6: 10001 items, more than the 10000 allowed$/,
  },
  {
    name: "more messages than the frame could hold",
    input: frameOf(1, (w) => w.u32(2)),
    want: /^messages at offset 6: 2 items cannot fit in the 0 bytes that remain$/,
  },
  {
    name: "unknown message type",
    input: batch((w) => head(w, 13)),
    want: /^messages\.0\.type at offset 10: 13 is not a known message type$/,
  },
  { name: "message type 0", input: batch((w) => head(w, 0)), want: /^messages\.0\.type/ },
  {
    name: "bad sender id",
    input: batch((w) => head(w, 9, "n 1")),
    want: /^messages\.0\.from at offset 11: must match \[A-Za-z0-9._-\]\{1,64\}$/,
  },
  {
    name: "empty recipient id",
    input: batch((w) => head(w, 9, "n1", "")),
    want: /^messages\.0\.to at offset 14: must match/,
  },
  {
    name: "id too long",
    input: batch((w) => head(w, 9, "n1", "x".repeat(65))),
    want: /^messages\.0\.to at offset 14: declares 65 bytes, more than the 64 allowed$/,
  },
  {
    name: "id not UTF-8",
    input: batch((w) => {
      w.u8(9);
      w.u8(1);
      w.u8(0xff);
      w.shortString("b");
      w.u53(1);
    }),
    want: /^messages\.0\.from at offset 12: is not UTF-8$/,
  },
  {
    name: "unsafe term",
    input: batch((w) => {
      w.u8(9);
      w.shortString("a");
      w.shortString("b");
      u64(w, 0, 0x20_0000);
    }),
    want: /^messages\.0\.term at offset 15: 9007199254740992 is not a safe integer$/,
  },
  {
    name: "term cut short",
    input: batch((w) => {
      w.u8(9);
      w.shortString("a");
      w.shortString("b");
      w.u32(0);
      w.u16(0);
      w.u8(0);
      w.u8(0);
      w.u8(0);
    }).subarray(0, 0),
    want: /^frame at offset 0: 0 bytes/,
  },
  {
    name: "boolean field",
    input: batch((w) => {
      head(w, 2);
      w.u8(2);
      w.u8(1);
    }),
    want: /^messages\.0\.preVote at offset 25: 2 is not a boolean/,
  },
  {
    name: "entry kind",
    input: batch(appendWith({ kind: 3 })),
    want: /^messages\.0\.entries\.0\.kind at offset \d+: 3 is not a known entry kind$/,
  },
  {
    name: "entry index 0",
    input: batch(appendWith({ index: 0 })),
    want: /^messages\.0\.entries\.0\.index at offset \d+: must be at least 1$/,
  },
  {
    name: "entry time negative",
    input: batch(appendWith({ timeMs: -5 })),
    want: /^messages\.0\.entries\.0\.timeMs at offset \d+: -5 is not a finite number at least 0$/,
  },
  { name: "entry time NaN", input: batch(appendWith({ timeMs: NaN })), want: /entries\.0\.timeMs/ },
  {
    name: "entry time infinite",
    input: batch(appendWith({ timeMs: Infinity })),
    want: /entries\.0\.timeMs/,
  },
  {
    name: "entry proposer",
    input: batch(appendWith({ proposer: "a/b" })),
    want: /^messages\.0\.entries\.0\.proposer at offset \d+: must be empty or match/,
  },
  {
    name: "entry data longer than the frame",
    input: batch(appendWith({ dataLength: 2 })),
    want: /^messages\.0\.entries\.0\.data at offset \d+: needs 2 bytes, 1 remain$/,
  },
  {
    name: "an entry cut short inside its hash: fewer bytes than any entry takes",
    input: batch(appendWith({ cut: true })),
    want: /^messages\.0\.entries at offset 81: 1 items cannot fit in the 56 bytes that remain$/,
  },
  {
    name: "more entries than the frame could hold",
    input: batch((w) => {
      head(w, 3);
      w.u53(0);
      w.u53(0);
      w.hash(GENESIS_HASH);
      w.u53(0);
      w.u32(2 ** 32 - 1);
    }),
    want: /^messages\.0\.entries at offset \d+: 4294967295 items cannot fit/,
  },
  {
    name: "prevHash cut short",
    input: batch((w) => {
      head(w, 3);
      w.u53(0);
      w.u53(0);
      w.raw(new Uint8Array(10));
    }),
    want: /^messages\.0\.prevHash at offset 41: needs 32 bytes, 10 remain$/,
  },
  {
    name: "heartbeat context too long",
    input: batch(heartbeatWith("x".repeat(1025), [])),
    want: /^messages\.0\.context at offset \d+: 1025 characters, more than the 1024 allowed$/,
  },
  {
    name: "heartbeat context of too many bytes, refused before decoding",
    input: batch(heartbeatWith("€".repeat(1025), [])),
    want: /^messages\.0\.context at offset \d+: declares 3075 bytes, more than the 3072 allowed$/,
  },
  {
    name: "heartbeat context not UTF-8",
    input: batch((w) => {
      head(w, 7);
      w.u53(0);
      w.bytes(new Uint8Array([0xed, 0xa0, 0x80])); // an encoded surrogate
      w.u32(0);
    }),
    want: /^messages\.0\.context at offset \d+: is not UTF-8$/,
  },
  {
    name: "heartbeat seen key",
    input: batch(heartbeatWith(null, [["no way", 1]])),
    want: /^messages\.0\.seen\.0\.id at offset \d+: must match/,
  },
  {
    name: "heartbeat seen duplicate",
    input: batch(heartbeatWith(null, [["a", 1], ["a", 2]])),
    want: /^messages\.0\.seen\.1\.id at offset \d+: is a duplicate$/,
  },
  {
    name: "heartbeat seen too many members",
    input: batch(heartbeatWith(null, [], 4097)),
    want: /^messages\.0\.seen at offset \d+: 4097 items, more than the 4096 allowed$/,
  },
  {
    name: "heartbeat seen ticks cut short",
    input: batch((w) => {
      heartbeatWith(null, [], 1)(w);
      w.shortString("abcdefg");
      w.u32(0);
    }),
    want: /^messages\.0\.seen\.0\.ticks at offset \d+: needs 8 bytes, 4 remain$/,
  },
  {
    name: "read context too long",
    input: batch((w) => {
      head(w, 10, "a", "b", 0);
      w.string("x".repeat(1025));
    }),
    want: /^messages\.0\.context at offset \d+: 1025 characters/,
  },
  {
    name: "read context null",
    input: batch((w) => {
      head(w, 10, "a", "b", 0);
      w.nullableString(null);
    }),
    want: /^messages\.0\.context at offset \d+: declares 4294967295 bytes/,
  },
  {
    name: "readIndexResponse context",
    input: batch((w) => {
      head(w, 11, "a", "b", 0);
      w.bytes(new Uint8Array([0xff]));
      w.u53(1);
    }),
    want: /^messages\.0\.context at offset \d+: is not UTF-8$/,
  },
  {
    name: "transfer target",
    input: batch((w) => {
      head(w, 12, "a", "b", 0);
      w.shortString("");
    }),
    want: /^messages\.0\.target at offset 23: must match/,
  },
  {
    name: "snapshot members too many",
    input: batch(snapshotWith([], 4097)),
    want:
      /^messages\.0\.meta\.config\.members at offset \d+: 4097 items, more than the 4096 allowed$/,
  },
  {
    name: "snapshot member id",
    input: batch(snapshotWith([{}, { id: "n/2" }])),
    want: /^messages\.0\.meta\.config\.members\.1\.id at offset \d+: must match/,
  },
  {
    name: "snapshot member voter",
    input: batch(snapshotWith([{ voter: 3 }])),
    want: /^messages\.0\.meta\.config\.members\.0\.voter at offset \d+: 3 is not a boolean/,
  },
  {
    name: "snapshot member readOnly",
    input: batch(snapshotWith([{ readOnly: 3 }])),
    want:
      /^messages\.0\.meta\.config\.members\.0\.readOnly at offset \d+: 3 is not 0 \(absent\), 1 or 2$/,
  },
  {
    name: "snapshot member url too long",
    input: batch(snapshotWith([{ url: "h".repeat(2049) }])),
    want:
      /^messages\.0\.meta\.config\.members\.0\.url at offset \d+: 2049 characters, more than the 2048 allowed$/,
  },
  {
    name: "snapshot data cut short",
    input: batch((w) => {
      snapshotWith([])(w);
      w.u32(0);
    }).subarray(0, 0),
    want: /^frame at offset 0/,
  },
  {
    name: "snapshot meta.index unsafe",
    input: batch((w) => {
      head(w, 5);
      u64(w, 0, 0xffff_ffff);
    }),
    want: /^messages\.0\.meta\.index at offset 25: \d+ is not a safe integer$/,
  },
  {
    name: "second message bad",
    input: batch(timeoutNow, (w) => head(w, 9, "a", "b c")),
    want: /^messages\.1\.to at offset 28: must match/,
  },
];

const BAD_PROPOSALS: { name: string; input: Uint8Array; want: RegExp }[] = [
  {
    name: "command cut short",
    input: frameOf(2, (w) => w.u32(5)),
    want: /^command at offset 10: needs 5 bytes, 0 remain$/,
  },
  {
    name: "empty key",
    input: frameOf(2, (w) => {
      w.bytes(new Uint8Array(1));
      w.string("");
      w.u8(0);
      w.u53(1);
    }),
    want: /^idempotencyKey at offset 11: must not be empty$/,
  },
  {
    name: "key too long",
    input: frameOf(2, (w) => {
      w.bytes(new Uint8Array(1));
      w.string("k".repeat(257));
      w.u8(0);
      w.u53(1);
    }),
    want: /^idempotencyKey at offset 11: 257 characters, more than the 256 allowed$/,
  },
  {
    name: "bad wait",
    input: frameOf(2, (w) => {
      w.bytes(new Uint8Array(1));
      w.nullableString(null);
      w.u8(2);
      w.u53(1);
    }),
    want: /^wait at offset 15: 2 is not 0 \(accepted\) or 1 \(committed\)$/,
  },
  {
    name: "unsafe timeout",
    input: frameOf(2, (w) => {
      w.bytes(new Uint8Array(1));
      w.nullableString(null);
      w.u8(1);
      u64(w, 0, 0x4000_0000);
    }),
    want: /^timeoutMs at offset 16: \d+ is not a safe integer$/,
  },
  {
    name: "a stray byte after the proposal",
    input: frameOf(2, (w) => {
      w.bytes(new Uint8Array(1));
      w.nullableString(null);
      w.u8(1);
      w.u53(1);
      w.u8(0);
    }),
    want: /^frame at offset 24: 1 bytes follow its end$/,
  },
  {
    name: "a member addition with a malformed id",
    input: frameOf(4, (w) => {
      w.shortString("n 4");
      w.string("http://n4");
      w.bool(false);
      w.u53(1);
    }),
    want: /^member\.id at offset 6: must match /,
  },
  {
    name: "a member addition with an id over 64 bytes",
    input: frameOf(4, (w) => {
      w.shortString("n".repeat(65));
      w.string("http://n4");
      w.bool(false);
      w.u53(1);
    }),
    want: /^member\.id at offset 6: declares 65 bytes, more than the 64 allowed$/,
  },
  {
    name: "a member addition with an empty URL",
    input: frameOf(4, (w) => {
      w.shortString("n4");
      w.string("");
      w.bool(false);
      w.u53(1);
    }),
    want: /^member\.url at offset 9: must not be empty$/,
  },
  {
    name: "a member addition with a URL over 2048 characters",
    input: frameOf(4, (w) => {
      w.shortString("n4");
      w.string("h".repeat(2049));
      w.bool(false);
      w.u53(1);
    }),
    want: /^member\.url at offset 9: 2049 characters, more than the 2048 allowed$/,
  },
  {
    name: "a member addition whose URL declares more bytes than remain",
    input: frameOf(4, (w) => {
      w.shortString("n4");
      w.u32(1000);
      w.raw(new Uint8Array(3));
    }),
    want: /^member\.url at offset 13: needs 1000 bytes, 3 remain$/,
  },
  {
    name: "a member addition with readOnly not a boolean",
    input: frameOf(4, (w) => {
      w.shortString("n4");
      w.string("http://n4");
      w.u8(2);
      w.u53(1);
    }),
    want: /^member\.readOnly at offset 22: 2 is not a boolean/,
  },
  {
    name: "a member addition cut short before its timeout",
    input: frameOf(4, (w) => {
      w.shortString("n4");
      w.string("http://n4");
      w.bool(true);
    }),
    want: /^timeoutMs at offset 23: needs 8 bytes, 0 remain$/,
  },
  {
    name: "a member removal with an empty id",
    input: frameOf(5, (w) => {
      w.shortString("");
      w.u53(1);
    }),
    want: /^id at offset 6: must match /,
  },
  {
    name: "a member removal with an unsafe timeout",
    input: frameOf(5, (w) => {
      w.shortString("n2");
      u64(w, 0, 0x4000_0000);
    }),
    want: /^timeoutMs at offset 9: \d+ is not a safe integer$/,
  },
  {
    name: "a member removal followed by a stray byte",
    input: frameOf(5, (w) => {
      w.shortString("n2");
      w.u53(1);
      w.u8(0);
    }),
    want: /^frame at offset 17: 1 bytes follow its end$/,
  },
  {
    name: "a leadership transfer to a malformed target",
    input: frameOf(6, (w) => {
      w.shortString("n/3");
      w.u53(1);
    }),
    want: /^target at offset 6: must be empty or match /,
  },
  {
    name: "a leadership transfer cut short",
    input: frameOf(6, (w) => w.shortString("n3")),
    want: /^timeoutMs at offset 9: needs 8 bytes, 0 remain$/,
  },
  {
    name: "an empty leadership transfer",
    input: frameOf(6, () => {}),
    want: /^target at offset 6: needs 1 bytes, 0 remain$/,
  },
];

const BAD_ANSWERS: { name: string; input: Uint8Array; want: RegExp }[] = [
  {
    name: "ok not a boolean",
    input: frameOf(3, (w) => w.u8(2)),
    want: /^ok at offset 6: 2 is not a boolean/,
  },
  {
    name: "value not JSON",
    input: frameOf(3, (w) => {
      w.bool(true);
      w.string("{");
    }),
    want: /^value at offset 7: is not JSON$/,
  },
  {
    name: "bad code",
    input: frameOf(3, (w) => {
      w.bool(false);
      w.shortString("Not Leader");
      w.string("");
      w.nullableString(null);
    }),
    want: /^code at offset 7: must match \[a-z_\]\{1,64\}$/,
  },
  {
    name: "message too long",
    input: frameOf(3, (w) => {
      w.bool(false);
      w.shortString("rejected");
      w.string("m".repeat(64 * 1024 + 1));
      w.nullableString(null);
    }),
    want: /^message at offset 16: 65537 characters, more than the 65536 allowed$/,
  },
  {
    name: "details an array",
    input: frameOf(3, (w) => {
      w.bool(false);
      w.shortString("rejected");
      w.string("");
      w.string("[1]");
    }),
    want: /^details at offset 20: must be a JSON object$/,
  },
  {
    name: "details null",
    input: frameOf(3, (w) => {
      w.bool(false);
      w.shortString("rejected");
      w.string("");
      w.string("null");
    }),
    want: /^details at offset 20: must be a JSON object$/,
  },
  {
    name: "details missing",
    input: frameOf(3, (w) => {
      w.bool(false);
      w.shortString("rejected");
      w.string("");
    }),
    want: /^details at offset 20: needs 4 bytes, 0 remain$/,
  },
];

function assertFrameError(decode: () => unknown, want: RegExp): void {
  throws(decode, (e: unknown) => {
    ok(e instanceof FrameError, `not a FrameError: ${e}`);
    ok(e instanceof WaterCraftError && e.code === "invalid_request");
    ok(want.test(e.reason), `${e.reason} does not match ${want}`);
    strictEqual(e.message, `Cannot decode a peer frame: ${e.reason}`);
    return true;
  });
}

Deno.test("decodeMessages() refuses every out-of-bounds field with a FrameError naming it", async (t) => {
  for (const row of BAD_FRAMES) {
    await t.step(row.name, () => {
      assertFrameError(() => decodeMessages(row.input), row.want);
      assertFrameError(() => decodeFrame(row.input), row.want);
    });
  }
});

Deno.test("decodeForwardedProposal() refuses every out-of-bounds field, naming it", async (t) => {
  for (const row of BAD_PROPOSALS) {
    await t.step(row.name, () => {
      assertFrameError(() => decodeForwardedProposal(row.input), row.want);
    });
  }
});

Deno.test("decodeForwardedAnswer() refuses every out-of-bounds field, naming it", async (t) => {
  for (const row of BAD_ANSWERS) {
    await t.step(row.name, () => {
      assertFrameError(() => decodeForwardedAnswer(row.input), row.want);
    });
  }
});

// ------------------------------------------------------------------ streams

/** A few frames of every kind, back to back. */
function sampleStream(): { frames: Uint8Array[]; stream: Uint8Array } {
  const frames = [
    ...MESSAGES.map((row) => encodeMessages([row.input])),
    ...PROPOSALS.map((row) => encodeForwardedProposal(row.input)),
    ...ANSWERS.map((row) => encodeForwardedAnswer(row.input)),
    encodeMessages(MESSAGES.map((row) => row.input)),
  ];
  const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of frames) {
    stream.set(f, at);
    at += f.length;
  }
  return { frames, stream };
}

/** Pushes `stream` in chunks whose sizes `size()` draws; returns the frames. */
function pushChunks(reader: FrameReader, stream: Uint8Array, size: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < stream.length;) {
    const n = Math.max(1, size());
    out.push(...reader.push(stream.subarray(at, at + n)));
    at += n;
  }
  return out;
}

Deno.test("FrameReader splits a stream however it is chunked", async (t) => {
  const { frames, stream } = sampleStream();
  await t.step("1-byte chunks", () => {
    const reader = new FrameReader();
    const got: Uint8Array[] = [];
    for (let at = 0; at < stream.length; at++) {
      got.push(...reader.push(stream.subarray(at, at + 1)));
      if (got.length < frames.length) ok(reader.buffered > 0 || got.length > 0);
    }
    deepStrictEqual(got, frames);
    strictEqual(reader.buffered, 0);
    reader.finish();
  });
  await t.step("every frame in one chunk, returned as views of it", () => {
    const reader = new FrameReader();
    const got = reader.push(stream);
    deepStrictEqual(got, frames);
    for (const frame of got) strictEqual(frame.buffer, stream.buffer);
    reader.finish();
  });
  await t.step("empty chunks change nothing", () => {
    const reader = new FrameReader();
    deepStrictEqual(reader.push(new Uint8Array(0)), []);
    deepStrictEqual(reader.push(stream.subarray(0, 2)), []);
    deepStrictEqual(reader.push(new Uint8Array(0)), []);
    strictEqual(reader.buffered, 2);
    deepStrictEqual(pushChunks(reader, stream.subarray(2), () => 1000), frames);
  });
  await t.step("the length prefix split 2 + 2, then the body in pieces", () => {
    const reader = new FrameReader();
    const first = frames[0]!;
    deepStrictEqual(reader.push(first.subarray(0, 2)), []);
    deepStrictEqual(reader.push(first.subarray(2, 4)), []);
    strictEqual(reader.buffered, 4);
    deepStrictEqual(reader.push(first.subarray(4, 9)), []);
    strictEqual(reader.buffered, 9);
    const [got] = reader.push(first.subarray(9));
    deepStrictEqual(got, first);
    notStrictEqual(got!.buffer, first.buffer, "an assembled frame is a fresh buffer");
  });
  await t.step("random chunk sizes from a seeded PRNG, each frame decodes", () => {
    const seed = 0xc4a0;
    const prng = seededPrng(seed);
    for (let round = 0; round < 50; round++) {
      const reader = new FrameReader();
      const got = pushChunks(reader, stream, () => randomInt(prng, 64));
      deepStrictEqual(got, frames, `seed ${seed} round ${round}`);
      for (const frame of got) decodeFrame(frame);
      reader.finish();
    }
  });
});

Deno.test("FrameReader refuses a length over its bound before the body arrives", async (t) => {
  await t.step("default bound: 4 MiB in all", () => {
    strictEqual(FRAME_BYTES_MAX_DEFAULT, 4 * 1024 * 1024);
    const atBound = new Uint8Array(4);
    new DataView(atBound.buffer).setUint32(0, FRAME_BYTES_MAX_DEFAULT - 4, true);
    const reader = new FrameReader();
    deepStrictEqual(reader.push(atBound), []);
    strictEqual(reader.buffered, 4);
    const over = new Uint8Array(4);
    new DataView(over.buffer).setUint32(0, FRAME_BYTES_MAX_DEFAULT - 3, true);
    assertFrameError(
      () => new FrameReader().push(over),
      /^frame length at offset 0: declares 4194301 bytes after the length, more than the 4194300 a 4194304-byte frame allows$/,
    );
  });
  await t.step("the prefix alone, one byte at a time, after a whole frame", () => {
    const reader = new FrameReader({ frameBytesMax: 64 });
    const ok1 = encodeMessages([{ type: "timeoutNow", from: "n1", to: "n2", term: 3 }]);
    strictEqual(reader.push(ok1).length, 1);
    reader.push(new Uint8Array([0xff]));
    reader.push(new Uint8Array([0xff]));
    reader.push(new Uint8Array([0xff]));
    assertFrameError(
      () => reader.push(new Uint8Array([0x7f])),
      /^frame length at offset 25: declares 2147483647 bytes after the length, more than the 60/,
    );
    strictEqual(reader.buffered, 0, "nothing of the refused frame is buffered");
  });
  await t.step("then the stream stays refused", () => {
    const reader = new FrameReader({ frameBytesMax: 16 });
    let first: unknown;
    try {
      reader.push(new Uint8Array([100, 0, 0, 0]));
    } catch (e) {
      first = e;
    }
    ok(first instanceof FrameError);
    throws(() => reader.push(new Uint8Array(0)), (e) => e === first);
    throws(() => reader.finish(), (e) => e === first);
  });
  await t.step("a length below the version and kind", () => {
    for (const length of [0, 1]) {
      assertFrameError(
        () => new FrameReader().push(new Uint8Array([length, 0, 0, 0])),
        /declares \d bytes after the length, fewer than the version and kind$/,
      );
    }
  });
  await t.step("a frame of exactly the bound passes", () => {
    const frame = encodeMessages([{ type: "timeoutNow", from: "n1", to: "n2", term: 3 }]);
    const reader = new FrameReader({ frameBytesMax: frame.length });
    deepStrictEqual(reader.push(frame), [frame]);
  });
  await t.step("bad bounds are refused at construction", () => {
    for (const frameBytesMax of [5, 1.5, -1, 2 ** 32 + 4, NaN]) {
      throws(() => new FrameReader({ frameBytesMax }), RangeError);
    }
  });
});

Deno.test("FrameReader.finish() refuses a stream that ends inside a frame", () => {
  const frame = encodeMessages([]);
  for (let cut = 1; cut < frame.length; cut++) {
    const reader = new FrameReader();
    reader.push(frame);
    reader.push(frame.subarray(0, cut));
    assertFrameError(
      () => reader.finish(),
      new RegExp(`^frame at offset ${frame.length}: the stream ends inside a frame: ${cut} bytes`),
    );
  }
});

// ------------------------------------------------------------------ fuzz

const ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
const TEXT_CHARS = ["a", "z", "0", ":", " ", "é", "€", "😀", "\uFEFF", "\u0000", '"', "\\"];

function pick<T>(prng: Prng, items: readonly T[]): T {
  return items[randomInt(prng, items.length)]!;
}

function randomId(prng: Prng): string {
  if (prng.next() < 0.05) return pick(prng, ["__proto__", "constructor", "x".repeat(64)]);
  let id = "";
  for (let n = 1 + randomInt(prng, 8); n > 0; n--) id += pick(prng, [...ID_CHARS]);
  return id;
}

function randomText(prng: Prng, maxChars: number): string {
  let text = "";
  const n = randomInt(prng, Math.min(maxChars, 20) + 1);
  while (text.length < n) {
    const c = pick(prng, TEXT_CHARS);
    if (text.length + c.length > maxChars) break;
    text += c;
  }
  return text;
}

function randomCount(prng: Prng): number {
  const r = prng.next();
  if (r < 0.2) return 0;
  if (r < 0.3) return Number.MAX_SAFE_INTEGER - randomInt(prng, 3);
  if (r < 0.4) return 2 ** 32 + randomInt(prng, 3) - 1;
  return randomInt(prng, 1000);
}

function randomHash(prng: Prng): string {
  let hash = "";
  for (let i = 0; i < 64; i++) hash += "0123456789abcdef"[randomInt(prng, 16)];
  return hash;
}

function randomBytes(prng: Prng, max: number): Uint8Array {
  return Uint8Array.from({ length: randomInt(prng, max + 1) }, () => randomInt(prng, 256));
}

function randomEntry(prng: Prng, index: number): Entry {
  return {
    index,
    term: randomCount(prng),
    kind: pick(prng, ["command", "noop", "config"] as const),
    proposer: prng.next() < 0.1 ? "" : randomId(prng),
    timeMs: prng.next() < 0.5 ? randomCount(prng) : prng.next() * 1e13,
    data: randomBytes(prng, 40),
    hash: randomHash(prng),
  };
}

function randomMessage(prng: Prng): Message {
  const envelope = {
    from: randomId(prng),
    to: randomId(prng),
    term: Math.min(randomCount(prng), TERM_WIRE_MAX),
  };
  const context = (): string | null => prng.next() < 0.3 ? null : randomText(prng, 1024);
  switch (randomInt(prng, 12)) {
    case 0:
      return {
        ...envelope,
        type: "vote",
        preVote: prng.next() < 0.5,
        transfer: prng.next() < 0.5,
        lastIndex: randomCount(prng),
        lastTerm: randomCount(prng),
      };
    case 1:
      return {
        ...envelope,
        type: "voteResponse",
        preVote: prng.next() < 0.5,
        granted: prng.next() < 0.5,
      };
    case 2: {
      const prevIndex = randomInt(prng, 100);
      return {
        ...envelope,
        type: "append",
        prevIndex,
        prevTerm: randomCount(prng),
        prevHash: randomHash(prng),
        entries: Array.from(
          { length: randomInt(prng, 5) },
          (_, i) => randomEntry(prng, prevIndex + 1 + i),
        ),
        commit: randomCount(prng),
      };
    }
    case 3:
      return {
        ...envelope,
        type: "appendResponse",
        success: prng.next() < 0.5,
        index: randomCount(prng),
        hintIndex: randomCount(prng),
        hintTerm: randomCount(prng),
      };
    case 4: {
      const ids = new Set(Array.from({ length: randomInt(prng, 5) }, () => randomId(prng)));
      return {
        ...envelope,
        type: "snapshot",
        meta: {
          index: randomCount(prng),
          term: randomCount(prng),
          hash: randomHash(prng),
          config: {
            members: [...ids].map((id) => ({
              id,
              voter: prng.next() < 0.5,
              ...(prng.next() < 0.5 ? {} : { readOnly: prng.next() < 0.5 }),
              ...(prng.next() < 0.5 ? {} : { url: `http://${randomText(prng, 30)}` }),
            })),
          },
        },
        offset: randomCount(prng),
        total: randomCount(prng),
        data: randomBytes(prng, 64),
      };
    }
    case 5:
      return {
        ...envelope,
        type: "snapshotResponse",
        index: randomCount(prng),
        received: randomCount(prng),
      };
    case 6: {
      const seen: Record<string, number> = {};
      for (let n = randomInt(prng, 5); n > 0; n--) {
        Object.defineProperty(seen, randomId(prng), {
          value: randomCount(prng),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return {
        ...envelope,
        type: "heartbeat",
        commit: randomCount(prng),
        context: context(),
        seen,
      };
    }
    case 7:
      return {
        ...envelope,
        type: "heartbeatResponse",
        context: context(),
        configIndex: randomCount(prng),
      };
    case 8:
      return { ...envelope, type: "timeoutNow" };
    case 9:
      return { ...envelope, type: "readIndex", context: randomText(prng, 1024) };
    case 10:
      return {
        ...envelope,
        type: "readIndexResponse",
        context: randomText(prng, 1024),
        index: randomCount(prng),
      };
    default:
      return { ...envelope, type: "transferLeader", target: randomId(prng) };
  }
}

function randomJson(prng: Prng, depth = 0): unknown {
  const r = prng.next();
  if (depth > 2 || r < 0.3) {
    return pick(prng, [null, true, false, 0, 1.5, -7, 2 ** 53, randomText(prng, 10)]);
  }
  if (r < 0.6) return Array.from({ length: randomInt(prng, 4) }, () => randomJson(prng, depth + 1));
  const object: Record<string, unknown> = {};
  for (let n = randomInt(prng, 4); n > 0; n--) {
    object[randomText(prng, 6)] = randomJson(prng, depth + 1);
  }
  return object;
}

function randomProposal(prng: Prng): ForwardedProposal {
  const timeoutMs = randomCount(prng);
  const roll = prng.next();
  if (roll < 0.15) {
    const url = "http://" + randomText(prng, 100);
    const member = { id: randomId(prng), url, readOnly: prng.next() < 0.5 };
    return { kind: "addMember", member, timeoutMs };
  }
  if (roll < 0.3) return { kind: "removeMember", id: randomId(prng), timeoutMs };
  if (roll < 0.45) {
    return {
      kind: "transferLeader",
      ...(prng.next() < 0.5 ? {} : { target: randomId(prng) }),
      timeoutMs,
    };
  }
  return {
    command: randomBytes(prng, 50),
    wait: prng.next() < 0.5 ? "accepted" : "committed",
    timeoutMs: randomCount(prng),
    ...(prng.next() < 0.5 ? {} : { idempotencyKey: "k" + randomText(prng, 255) }),
  };
}

function randomAnswer(prng: Prng): ForwardedAnswer {
  if (prng.next() < 0.5) {
    return { ok: true, value: prng.next() < 0.2 ? undefined : randomJson(prng) };
  }
  let code = "";
  for (let n = 1 + randomInt(prng, 12); n > 0; n--) code += pick(prng, [..."abcxyz_"]);
  const details = randomJson(prng);
  return {
    ok: false,
    code,
    message: randomText(prng, 200),
    ...(typeof details === "object" && details !== null && !Array.isArray(details)
      ? { details: details as Record<string, unknown> }
      : {}),
  };
}

/** A valid frame of a random kind, and what it should decode to. */
function randomFrame(prng: Prng): { frame: Uint8Array; want: unknown } {
  const r = prng.next();
  if (r < 0.6) {
    const messages = Array.from({ length: randomInt(prng, 4) }, () => randomMessage(prng));
    return { frame: encodeMessages(messages), want: { kind: "messages", messages } };
  }
  if (r < 0.8) {
    const proposal = randomProposal(prng);
    return { frame: encodeForwardedProposal(proposal), want: { kind: "proposal", proposal } };
  }
  const answer = randomAnswer(prng);
  return { frame: encodeForwardedAnswer(answer), want: { kind: "answer", answer } };
}

/** Sets the length prefix to what follows it, so that a mutation reaches the payload. */
function fixLength(frame: Uint8Array): Uint8Array {
  if (frame.length >= 4) {
    new DataView(frame.buffer, frame.byteOffset).setUint32(0, frame.length - 4, true);
  }
  return frame;
}

function mutate(prng: Prng, frame: Uint8Array, other: Uint8Array): Uint8Array {
  let out = frame.slice();
  switch (randomInt(prng, 7)) {
    case 0: // flip 1 to 4 bits
      for (let n = 1 + randomInt(prng, 4); n > 0 && out.length > 0; n--) {
        out[randomInt(prng, out.length)]! ^= 1 << randomInt(prng, 8);
      }
      break;
    case 1: // overwrite a byte with an edge value
      if (out.length > 0) {
        out[randomInt(prng, out.length)] = pick(prng, [0, 1, 2, 0x7f, 0x80, 0xff]);
      }
      break;
    case 2: // truncate
      out = out.slice(0, randomInt(prng, out.length));
      break;
    case 3: // extend with random bytes
      out = new Uint8Array([...out, ...randomBytes(prng, 16)]);
      break;
    case 4: // splice in part of another frame
    {
      const at = randomInt(prng, out.length + 1);
      const from = randomInt(prng, other.length);
      out = new Uint8Array([
        ...out.subarray(0, at),
        ...other.subarray(from, from + 1 + randomInt(prng, 24)),
      ]);
      break;
    }
    case 5: // overwrite 4 bytes with a large u32 (lengths, counts)
      if (out.length >= 4) {
        const at = randomInt(prng, out.length - 3);
        new DataView(out.buffer).setUint32(
          at,
          pick(prng, [0xffff_ffff, 0x8000_0000, 10_001, 4097, 65]),
          true,
        );
      }
      break;
    default: // random bytes behind a valid header
      out = new Uint8Array([0, 0, 0, 0, 1, 1 + randomInt(prng, 3), ...randomBytes(prng, 64)]);
      break;
  }
  // Most mutations keep the length consistent, so that they reach the payload.
  return prng.next() < 0.8 ? fixLength(out) : out;
}

Deno.test("decoders throw only FrameError on thousands of random and mutated frames (seeded)", () => {
  const seed = 0x00f2_a3e5;
  const prng = seededPrng(seed);
  let refused = 0;
  let accepted = 0;
  let previous = encodeMessages([]);
  for (let round = 0; round < 3000; round++) {
    const where = `seed ${seed} round ${round}`;
    const { frame, want } = randomFrame(prng);
    deepStrictEqual(decodeFrame(frame), want, `${where}: a valid frame does not round-trip`);
    for (let m = 0; m < 6; m++) {
      const mutated = mutate(prng, frame, previous);
      let decoded: ReturnType<typeof decodeFrame>;
      try {
        decoded = decodeFrame(mutated);
      } catch (e) {
        ok(e instanceof FrameError, `${where} mutation ${m}: threw ${e}`);
        ok(e.offset >= 0 && e.offset <= mutated.length, `${where}: offset ${e.offset}`);
        refused++;
        continue;
      }
      accepted++;
      // What decodes is valid: it encodes again, to a frame that decodes the same.
      if (decoded.kind === "messages") {
        deepStrictEqual(decodeMessages(encodeMessages(decoded.messages)), decoded.messages, where);
      } else if (decoded.kind === "proposal") {
        deepStrictEqual(
          decodeForwardedProposal(encodeForwardedProposal(decoded.proposal)),
          decoded.proposal,
          where,
        );
      }
      // Each typed decoder agrees, or refuses the kind with a FrameError.
      for (const decode of [decodeMessages, decodeForwardedProposal, decodeForwardedAnswer]) {
        try {
          decode(mutated);
        } catch (e) {
          ok(e instanceof FrameError, `${where}: threw ${e}`);
        }
      }
    }
    // The mutated bytes as a stream, cut at random, through a small bound.
    const stream = mutate(prng, new Uint8Array([...frame, ...previous]), frame);
    const reader = new FrameReader({
      frameBytesMax: 1 + randomInt(prng, 2048) + FRAME_HEADER_BYTES,
    });
    try {
      for (const f of pushChunks(reader, stream, () => 1 + randomInt(prng, 40))) {
        try {
          decodeFrame(f);
        } catch (e) {
          ok(e instanceof FrameError, `${where} (stream): threw ${e}`);
        }
      }
      reader.finish();
    } catch (e) {
      ok(e instanceof FrameError, `${where} (stream): threw ${e}`);
    }
    previous = frame;
  }
  // Both outcomes happen often enough for the test to mean something.
  ok(refused > 10_000, `only ${refused} mutations refused`);
  ok(accepted > 100, `only ${accepted} mutations accepted`);
});

Deno.test("decodeMessages() refuses a term past TERM_WIRE_MAX: every term it carries can be incremented", () => {
  const at = (term: number) => encodeMessages([{ type: "timeoutNow", from: "n1", to: "n2", term }]);
  strictEqual(decodeMessages(at(TERM_WIRE_MAX))[0]!.term, TERM_WIRE_MAX);
  throws(
    () => decodeMessages(at(TERM_WIRE_MAX + 1)),
    (e: unknown) => e instanceof FrameError && /term .* is over/.test(e.message),
  );
  throws(() => decodeMessages(at(Number.MAX_SAFE_INTEGER)), FrameError);
});
