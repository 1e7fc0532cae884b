/**
 * The peer wire format: every message type survives a round trip, binary
 * entry data included, and bad input is refused naming the field.
 *
 * @module
 */

import { WaterCraftError } from "../../../src/errors.ts";
import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { createEntry, type Entry, GENESIS_HASH } from "../../../src/core/entry.ts";
import type { Message } from "../../../src/core/messages.ts";
import {
  decodeBase64,
  decodeForwardedAnswer,
  decodeForwardedProposal,
  decodeMessages,
  encodeBase64,
  encodeForwardedProposal,
  encodeMessages,
  MAX_MESSAGES_PER_BATCH,
  messageSchema,
} from "../../../src/transport/http/codec.ts";

const HASH = "ab".repeat(32);

function roundTrip(messages: readonly Message[]): Message[] {
  return decodeMessages(JSON.parse(encodeMessages(messages)));
}

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
          ],
        },
      },
      offset: 1024,
      total: 4000,
      data: new Uint8Array([0, 1, 2, 253, 254, 255]),
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
      deepStrictEqual(roundTrip([row.input]), [row.input]);
    });
  }
  await t.step("a batch keeps its order", () => {
    const batch = MESSAGES.map((row) => row.input);
    deepStrictEqual(roundTrip(batch), batch);
  });
  await t.step("an empty batch", () => {
    deepStrictEqual(roundTrip([]), []);
  });
});

Deno.test("encodeMessages() carries entry data as base64 and drops unknown fields on decode", () => {
  const [entry] = entries([new Uint8Array([1, 2, 3])]);
  const wire = JSON.parse(encodeMessages([{
    type: "append",
    from: "n1",
    to: "n2",
    term: 1,
    prevIndex: 0,
    prevTerm: 0,
    prevHash: GENESIS_HASH,
    entries: [entry!],
    commit: 0,
  }]));
  strictEqual(wire.messages[0].entries[0].data, "AQID");
  wire.messages[0].extra = "from a newer peer";
  const [decoded] = decodeMessages(wire);
  ok(decoded !== undefined && !("extra" in decoded));
});

Deno.test("decodeMessages() round-trips a 1 MiB entry", () => {
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
  const [decoded] = roundTrip([message]);
  ok(decoded?.type === "append");
  deepStrictEqual(decoded.entries[0]!.data, data);
  strictEqual(decoded.entries[0]!.hash, message.entries[0]!.hash);
});

Deno.test("encodeBase64() and decodeBase64() agree with btoa for every length remainder", async (t) => {
  for (const length of [0, 1, 2, 3, 4, 5, 6, 255, 256, 257, 1000]) {
    await t.step(`${length} bytes`, () => {
      const bytes = Uint8Array.from({ length }, (_, i) => (i * 31 + 7) & 255);
      const text = encodeBase64(bytes);
      strictEqual(text, btoa(String.fromCharCode(...bytes)));
      deepStrictEqual(decodeBase64(text), bytes);
    });
  }
});

Deno.test("decodeBase64() refuses what is not padded standard base64", async (t) => {
  for (
    const text of [
      "A",
      "AB",
      "ABC",
      "AB=C",
      "A===",
      "AQID\n",
      "AQ-_",
      "AQ I",
      "é===",
      "====",
      "AQ==AQ==",
    ]
  ) {
    await t.step(JSON.stringify(text), () => {
      strictEqual(decodeBase64(text), null);
    });
  }
});

/** A valid message to corrupt field by field. */
function validAppend(): Record<string, unknown> {
  const [entry] = entries([new Uint8Array([1])]);
  return JSON.parse(encodeMessages([{
    type: "append",
    from: "n1",
    to: "n2",
    term: 2,
    prevIndex: 0,
    prevTerm: 0,
    prevHash: GENESIS_HASH,
    entries: [entry!],
    commit: 0,
  }])).messages[0];
}

function withEntry(field: string, value: unknown): Record<string, unknown> {
  const m = validAppend();
  (m.entries as Record<string, unknown>[])[0]![field] = value;
  return m;
}

const BAD_BATCHES: { name: string; input: unknown; want: RegExp }[] = [
  { name: "not an object", input: "nope", want: /^Invalid body: / },
  { name: "no messages", input: {}, want: /body field messages:/ },
  { name: "messages not an array", input: { messages: {} }, want: /body field messages:/ },
  {
    name: "unknown type",
    input: { messages: [{ ...validAppend(), type: "gossip" }] },
    want: /messages\.0\.type/,
  },
  {
    name: "bad sender id",
    input: { messages: [{ ...validAppend(), from: "n 1" }] },
    want: /messages\.0\.from/,
  },
  {
    name: "empty recipient id",
    input: { messages: [{ ...validAppend(), to: "" }] },
    want: /messages\.0\.to/,
  },
  {
    name: "id too long",
    input: { messages: [{ ...validAppend(), to: "x".repeat(65) }] },
    want: /messages\.0\.to/,
  },
  {
    name: "negative term",
    input: { messages: [{ ...validAppend(), term: -1 }] },
    want: /messages\.0\.term/,
  },
  {
    name: "fractional commit",
    input: { messages: [{ ...validAppend(), commit: 1.5 }] },
    want: /messages\.0\.commit/,
  },
  {
    name: "unsafe integer",
    input: { messages: [{ ...validAppend(), prevIndex: 2 ** 53 }] },
    want: /messages\.0\.prevIndex/,
  },
  {
    name: "term as a string",
    input: { messages: [{ ...validAppend(), term: "2" }] },
    want: /messages\.0\.term/,
  },
  {
    name: "uppercase hash",
    input: { messages: [{ ...validAppend(), prevHash: HASH.toUpperCase() }] },
    want: /messages\.0\.prevHash/,
  },
  {
    name: "short hash",
    input: { messages: [{ ...validAppend(), prevHash: "ab" }] },
    want: /messages\.0\.prevHash/,
  },
  {
    name: "entries missing",
    input: { messages: [{ ...validAppend(), entries: undefined }] },
    want: /\.entries/,
  },
  {
    name: "entry kind",
    input: { messages: [withEntry("kind", "snapshot")] },
    want: /messages\.0\.entries\.0\.kind/,
  },
  {
    name: "entry index 0",
    input: { messages: [withEntry("index", 0)] },
    want: /messages\.0\.entries\.0\.index/,
  },
  {
    name: "entry data not base64",
    input: { messages: [withEntry("data", "%%%%")] },
    want: /messages\.0\.entries\.0\.data: must be standard base64/,
  },
  {
    name: "entry data as bytes",
    input: { messages: [withEntry("data", [1, 2])] },
    want: /entries\.0\.data/,
  },
  {
    name: "entry proposer",
    input: { messages: [withEntry("proposer", "a/b")] },
    want: /entries\.0\.proposer/,
  },
  { name: "entry hash", input: { messages: [withEntry("hash", null)] }, want: /entries\.0\.hash/ },
  {
    name: "entry time",
    input: { messages: [withEntry("timeMs", -5)] },
    want: /entries\.0\.timeMs/,
  },
  {
    name: "boolean field",
    input: {
      messages: [{ type: "voteResponse", from: "a", to: "b", term: 1, preVote: 0, granted: true }],
    },
    want: /messages\.0\.preVote/,
  },
  {
    name: "heartbeat context",
    input: {
      messages: [{
        type: "heartbeat",
        from: "a",
        to: "b",
        term: 1,
        commit: 0,
        context: 5,
        seen: {},
      }],
    },
    want: /messages\.0\.context/,
  },
  {
    name: "heartbeat seen key",
    input: {
      messages: [{
        type: "heartbeat",
        from: "a",
        to: "b",
        term: 1,
        commit: 0,
        context: null,
        seen: { "no way": 1 },
      }],
    },
    want: /messages\.0\.seen/,
  },
  {
    name: "read context too long",
    input: {
      messages: [{ type: "readIndex", from: "a", to: "b", term: 0, context: "x".repeat(1025) }],
    },
    want: /messages\.0\.context/,
  },
  {
    name: "transfer target",
    input: { messages: [{ type: "transferLeader", from: "a", to: "b", term: 0, target: "" }] },
    want: /messages\.0\.target/,
  },
  {
    name: "second message bad",
    input: { messages: [validAppend(), { type: "timeoutNow", from: "a", to: "b" }] },
    want: /messages\.1\.term/,
  },
  {
    name: "too many messages",
    input: {
      messages: Array.from(
        { length: MAX_MESSAGES_PER_BATCH + 1 },
        () => ({ type: "timeoutNow", from: "a", to: "b", term: 1 }),
      ),
    },
    want: /body field messages:/,
  },
];

Deno.test("decodeMessages() refuses bad input with invalid_request naming the field", async (t) => {
  for (const row of BAD_BATCHES) {
    await t.step(row.name, () => {
      throws(() => decodeMessages(row.input), (e: unknown) => {
        ok(e instanceof WaterCraftError, `not a WaterCraftError: ${e}`);
        strictEqual(e.code, "invalid_request");
        ok(row.want.test(e.message), `${e.message} does not match ${row.want}`);
        return true;
      });
    });
  }
});

Deno.test("messageSchema validates one message", () => {
  strictEqual(
    messageSchema.safeParse({ type: "timeoutNow", from: "a", to: "b", term: 1 }).success,
    true,
  );
  strictEqual(
    messageSchema.safeParse({ type: "timeoutNow", from: "a", to: "b", term: 1.5 }).success,
    false,
  );
});

Deno.test("decodeForwardedProposal() round-trips and refuses bad fields", async (t) => {
  await t.step("with an idempotency key", () => {
    const proposal = {
      command: new TextEncoder().encode('{"op":"put","key":"k","value":[1,null]}'),
      idempotencyKey: "abc",
      wait: "accepted" as const,
      timeoutMs: 100,
    };
    deepStrictEqual(
      decodeForwardedProposal(JSON.parse(encodeForwardedProposal(proposal))),
      proposal,
    );
  });
  await t.step("without one, and an empty command", () => {
    const proposal = { command: new Uint8Array(0), wait: "committed" as const, timeoutMs: 0 };
    deepStrictEqual(
      decodeForwardedProposal(JSON.parse(encodeForwardedProposal(proposal))),
      proposal,
    );
  });
  const bad: { name: string; input: unknown; want: RegExp }[] = [
    {
      name: "missing command",
      input: { wait: "committed", timeoutMs: 1 },
      want: /field command: /,
    },
    {
      name: "command not base64",
      input: { command: "a!", wait: "committed", timeoutMs: 1 },
      want: /field command: must be standard base64/,
    },
    {
      name: "bad wait",
      input: { command: "AQ==", wait: "applied", timeoutMs: 1 },
      want: /field wait/,
    },
    {
      name: "negative timeout",
      input: { command: "AQ==", wait: "committed", timeoutMs: -1 },
      want: /field timeoutMs/,
    },
    {
      name: "empty key",
      input: { command: "AQ==", wait: "committed", timeoutMs: 1, idempotencyKey: "" },
      want: /idempotencyKey/,
    },
    { name: "not an object", input: [], want: /Invalid body: / },
  ];
  for (const row of bad) {
    await t.step(row.name, () => {
      throws(() => decodeForwardedProposal(row.input), row.want);
    });
  }
});

Deno.test("decodeForwardedAnswer() round-trips both shapes and refuses bad ones", async (t) => {
  await t.step("ok with a value", () => {
    const answer = { ok: true as const, value: { index: 3, id: HASH } };
    deepStrictEqual(decodeForwardedAnswer(JSON.parse(JSON.stringify(answer))), answer);
  });
  await t.step("ok without a value (undefined does not survive JSON)", () => {
    deepStrictEqual(decodeForwardedAnswer({ ok: true }), { ok: true, value: undefined });
  });
  await t.step("an error with details", () => {
    const answer = {
      ok: false as const,
      code: "not_leader",
      message: "Go away",
      details: { leader: { id: "n3", url: null } },
    };
    deepStrictEqual(decodeForwardedAnswer(JSON.parse(JSON.stringify(answer))), answer);
  });
  await t.step("bad code", () => {
    throws(
      () => decodeForwardedAnswer({ ok: false, code: "Not Leader", message: "" }),
      /answer field code/,
    );
  });
  await t.step("ok not a boolean", () => {
    throws(() => decodeForwardedAnswer({ ok: "yes" }), /answer field ok/);
  });
});
