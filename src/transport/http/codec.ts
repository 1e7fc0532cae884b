/**
 * The JSON wire format of peer RPCs, validated with zod.
 *
 * - `POST /raft/messages` carries `{"messages": [Message, ...]}`. Every
 *   message is the plain object of `src/core/messages.ts`; the `data` of each
 *   entry of an `append` travels as standard base64 (with padding), every
 *   other field as is.
 * - `POST /raft/forward` carries a {@linkcode ForwardedProposal} as JSON and
 *   is answered with a {@linkcode ForwardedAnswer}.
 *
 * Decoders check every field of every message type (ids match
 * `[A-Za-z0-9._-]{1,64}`, indexes and terms are non-negative safe integers,
 * hashes are 64 lowercase hex digits) and throw `invalid_request` naming the
 * first bad field's path, e.g. `messages.2.entries.0.data`. Unknown fields
 * are dropped, so a newer peer may add fields without breaking older ones.
 *
 * @module
 */

import { z } from "zod";
import { parseWith } from "../../validation.ts";
import type { Entry } from "../../core/entry.ts";
import { type Member, NODE_ID_PATTERN, NODE_ID_RULE } from "../../core/config.ts";
import type { Message } from "../../core/messages.ts";
import type { ForwardedAnswer, ForwardedProposal } from "../transport.ts";

/** Most messages one `POST /raft/messages` body may carry. */
export const MAX_MESSAGES_PER_BATCH: number = 10_000;

// ------------------------------------------------------------------ base64

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const PAD = 61; // "="
const ENCODE_TABLE = new Uint8Array(64);
const DECODE_TABLE = new Int8Array(256).fill(-1);
for (let i = 0; i < 64; i++) {
  ENCODE_TABLE[i] = ALPHABET.charCodeAt(i);
  DECODE_TABLE[ALPHABET.charCodeAt(i)] = i;
}
const utf8Encoder = new TextEncoder();
// Base64 output is ASCII, which UTF-8 decodes one byte to one character: this
// turns a byte buffer into a string natively, with no per-character concatenation.
const asciiDecoder = new TextDecoder();

/**
 * Encodes bytes as standard base64 with padding. Portable (no `Buffer`, no
 * `btoa`) and linear: output characters are written into a byte buffer that
 * is decoded to a string in one native call.
 *
 * @param bytes The bytes.
 * @returns Their base64 text.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { encodeBase64 } from "./codec.ts";
 *
 * strictEqual(encodeBase64(new TextEncoder().encode("raft")), "cmFmdA==");
 * ```
 */
export function encodeBase64(bytes: Uint8Array): string {
  const n = bytes.length;
  const out = new Uint8Array(Math.ceil(n / 3) * 4);
  const whole = n - (n % 3);
  let o = 0;
  for (let i = 0; i < whole; i += 3) {
    const t = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = ENCODE_TABLE[t >>> 18]!;
    out[o++] = ENCODE_TABLE[(t >>> 12) & 63]!;
    out[o++] = ENCODE_TABLE[(t >>> 6) & 63]!;
    out[o++] = ENCODE_TABLE[t & 63]!;
  }
  if (n % 3 === 1) {
    const t = bytes[whole]! << 16;
    out[o++] = ENCODE_TABLE[t >>> 18]!;
    out[o++] = ENCODE_TABLE[(t >>> 12) & 63]!;
    out[o++] = PAD;
    out[o++] = PAD;
  } else if (n % 3 === 2) {
    const t = (bytes[whole]! << 16) | (bytes[whole + 1]! << 8);
    out[o++] = ENCODE_TABLE[t >>> 18]!;
    out[o++] = ENCODE_TABLE[(t >>> 12) & 63]!;
    out[o++] = ENCODE_TABLE[(t >>> 6) & 63]!;
    out[o++] = PAD;
  }
  return asciiDecoder.decode(out);
}

/**
 * Decodes standard base64 with padding (no whitespace, no URL alphabet).
 *
 * @param text The base64 text.
 * @returns The bytes, or null when `text` is not valid base64.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, strictEqual } from "node:assert/strict";
 * import { decodeBase64 } from "./codec.ts";
 *
 * deepStrictEqual(decodeBase64("cmFmdA=="), new TextEncoder().encode("raft"));
 * strictEqual(decodeBase64("not base64!"), null);
 * ```
 */
export function decodeBase64(text: string): Uint8Array | null {
  const n = text.length;
  if (n % 4 !== 0) return null;
  // Non-ASCII characters become bytes >= 0x80 (or change the length): both invalid.
  const src = utf8Encoder.encode(text);
  if (src.length !== n) return null;
  if (n === 0) return new Uint8Array(0);
  const pad = src[n - 1] === PAD ? (src[n - 2] === PAD ? 2 : 1) : 0;
  const out = new Uint8Array((n / 4) * 3 - pad);
  const whole = pad === 0 ? n : n - 4;
  let o = 0;
  for (let i = 0; i < whole; i += 4) {
    const a = DECODE_TABLE[src[i]!]!;
    const b = DECODE_TABLE[src[i + 1]!]!;
    const c = DECODE_TABLE[src[i + 2]!]!;
    const d = DECODE_TABLE[src[i + 3]!]!;
    if ((a | b | c | d) < 0) return null;
    const t = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = t >>> 16;
    out[o++] = (t >>> 8) & 255;
    out[o++] = t & 255;
  }
  if (pad > 0) {
    const a = DECODE_TABLE[src[whole]!]!;
    const b = DECODE_TABLE[src[whole + 1]!]!;
    const c = pad === 1 ? DECODE_TABLE[src[whole + 2]!]! : 0;
    if ((a | b | c) < 0) return null;
    const t = (a << 18) | (b << 12) | (c << 6);
    out[o++] = t >>> 16;
    if (pad === 1) out[o++] = (t >>> 8) & 255;
  }
  return out;
}

// ------------------------------------------------------------------ schemas

/** A node id: {@linkcode NODE_ID_PATTERN}. */
export const peerIdSchema: z.ZodString = z.string().regex(
  NODE_ID_PATTERN,
  `must match ${NODE_ID_RULE}`,
);

const count = z.int("must be a non-negative safe integer").min(
  0,
  "must be a non-negative safe integer",
);
const hash = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits");
const readContext = z.string().max(1024);
// A bound on per-member maps in messages, far above any real cluster.
const MAX_MEMBERS = 4096;
const base64Bytes = z.string().transform((text, ctx) => {
  const bytes = decodeBase64(text);
  if (bytes === null) {
    ctx.addIssue({ code: "custom", message: "must be standard base64 with padding" });
    return z.NEVER;
  }
  return bytes;
});

const entrySchema = z.object({
  index: count.min(1, "must be at least 1"),
  term: count,
  kind: z.enum(["command", "noop", "config"]),
  // The bootstrap entry has no proposer.
  proposer: z.union([z.literal(""), peerIdSchema], `must be "" or match ${NODE_ID_RULE}`),
  timeMs: z.number().min(0).refine(Number.isFinite, "must be finite"),
  data: base64Bytes,
  hash,
});

const envelope = { from: peerIdSchema, to: peerIdSchema, term: count };

const memberSchema = z.object({
  id: peerIdSchema,
  voter: z.boolean(),
  readOnly: z.boolean().optional(),
  url: z.string().max(2048).optional(),
}).transform((m): Member => ({
  id: m.id,
  voter: m.voter,
  ...(m.readOnly === undefined ? {} : { readOnly: m.readOnly }),
  ...(m.url === undefined ? {} : { url: m.url }),
}));

const messageShape = z.discriminatedUnion("type", [
  z.object({
    ...envelope,
    type: z.literal("vote"),
    preVote: z.boolean(),
    transfer: z.boolean(),
    lastIndex: count,
    lastTerm: count,
  }),
  z.object({
    ...envelope,
    type: z.literal("voteResponse"),
    preVote: z.boolean(),
    granted: z.boolean(),
  }),
  z.object({
    ...envelope,
    type: z.literal("append"),
    prevIndex: count,
    prevTerm: count,
    prevHash: hash,
    entries: z.array(entrySchema),
    commit: count,
  }),
  z.object({
    ...envelope,
    type: z.literal("appendResponse"),
    success: z.boolean(),
    index: count,
    hintIndex: count,
    hintTerm: count,
  }),
  z.object({
    ...envelope,
    type: z.literal("heartbeat"),
    commit: count,
    context: readContext.nullable(),
    seen: z.record(peerIdSchema, count).refine(
      (seen) => Object.keys(seen).length <= MAX_MEMBERS,
      `must have at most ${MAX_MEMBERS} members`,
    ),
  }),
  z.object({
    ...envelope,
    type: z.literal("heartbeatResponse"),
    context: readContext.nullable(),
    configIndex: count,
  }),
  z.object({ ...envelope, type: z.literal("timeoutNow") }),
  z.object({ ...envelope, type: z.literal("readIndex"), context: readContext }),
  z.object({
    ...envelope,
    type: z.literal("readIndexResponse"),
    context: readContext,
    index: count,
  }),
  z.object({ ...envelope, type: z.literal("transferLeader"), target: peerIdSchema }),
  z.object({
    ...envelope,
    type: z.literal("snapshot"),
    meta: z.object({
      index: count,
      term: count,
      hash,
      config: z.object({
        members: z.array(memberSchema).max(MAX_MEMBERS),
      }),
    }),
    offset: count,
    total: count,
    data: base64Bytes,
  }),
  z.object({ ...envelope, type: z.literal("snapshotResponse"), index: count, received: count }),
]);

/** The body of `POST /raft/messages`. */
const batchShape = z.object({
  messages: z.array(messageShape).max(MAX_MESSAGES_PER_BATCH),
});

const proposalShape = z.object({
  command: base64Bytes,
  idempotencyKey: z.string().min(1).max(256).exactOptional(),
  wait: z.enum(["accepted", "committed"]),
  timeoutMs: count,
});

const answerShape = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), value: z.unknown().optional() }),
  z.object({
    ok: z.literal(false),
    code: z.string().regex(/^[a-z_]{1,64}$/, "must match [a-z_]{1,64}"),
    message: z.string().max(64 * 1024),
    details: z.record(z.string(), z.unknown()).exactOptional(),
  }),
]).transform((a): ForwardedAnswer => {
  if (a.ok) return { ok: true, value: a.value };
  return {
    ok: false,
    code: a.code,
    message: a.message,
    ...(a.details === undefined ? {} : { details: a.details }),
  };
});

/** zod schema of one {@linkcode Message} (entry data as base64 on input). */
export const messageSchema: z.ZodType<Message, unknown> = messageShape;

/** zod schema of the `POST /raft/messages` body (see {@linkcode decodeMessages}). */
export const messageBatchSchema: z.ZodType<{ messages: Message[] }, unknown> = batchShape;

/** zod schema of the `POST /raft/forward` body (see {@linkcode decodeForwardedProposal}). */
export const forwardedProposalSchema: z.ZodType<ForwardedProposal, unknown> = proposalShape;

/** zod schema of the `POST /raft/forward` answer (see {@linkcode decodeForwardedAnswer}). */
export const forwardedAnswerSchema: z.ZodType<ForwardedAnswer, unknown> = answerShape;

// ------------------------------------------------------------------ messages

/** An entry as it travels: `data` in base64. */
interface WireEntry extends Omit<Entry, "data"> {
  readonly data: string;
}

function wireEntry(entry: Entry): WireEntry {
  return {
    index: entry.index,
    term: entry.term,
    kind: entry.kind,
    proposer: entry.proposer,
    timeMs: entry.timeMs,
    data: encodeBase64(entry.data),
    hash: entry.hash,
  };
}

/**
 * Encodes messages as the body of `POST /raft/messages`:
 * `{"messages": [...]}`, entry data in base64.
 *
 * @param messages The messages, in the order the recipient should step them.
 * @returns The JSON text.
 *
 * @example Round trip
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeMessages, encodeMessages } from "./codec.ts";
 * import type { Message } from "../../core/messages.ts";
 *
 * const messages: Message[] = [{ type: "timeoutNow", from: "n1", to: "n2", term: 3 }];
 * deepStrictEqual(decodeMessages(JSON.parse(encodeMessages(messages))), messages);
 * ```
 */
export function encodeMessages(messages: readonly Message[]): string {
  const wire = messages.map((m) =>
    m.type === "append"
      ? { ...m, entries: m.entries.map(wireEntry) }
      : m.type === "snapshot"
      ? { ...m, data: encodeBase64(m.data) }
      : m
  );
  return JSON.stringify({ messages: wire });
}

/**
 * Decodes and validates the parsed JSON body of `POST /raft/messages`.
 *
 * @param body The parsed JSON (`{"messages": [...]}`).
 * @returns The messages, as fresh objects holding only the known fields.
 * @throws {WaterCraftError} `invalid_request`, naming the path of the first
 *   bad field (e.g. `body field messages.0.term`).
 *
 * @example A bad field is named
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { decodeMessages } from "./codec.ts";
 *
 * throws(
 *   () => decodeMessages({ messages: [{ type: "timeoutNow", from: "n1", to: "n2", term: -1 }] }),
 *   /messages\.0\.term/,
 * );
 * ```
 */
export function decodeMessages(body: unknown): Message[] {
  return parseWith(batchShape, body, "body").messages;
}

// ------------------------------------------------------------------ forwarding

/**
 * Encodes the body of `POST /raft/forward`: the command's bytes in base64.
 *
 * @param proposal The forwarded write.
 * @returns JSON text.
 */
export function encodeForwardedProposal(proposal: ForwardedProposal): string {
  return JSON.stringify({ ...proposal, command: encodeBase64(proposal.command) });
}

/**
 * Decodes and validates the parsed JSON body of `POST /raft/forward`.
 *
 * @param body The parsed JSON.
 * @returns The proposal.
 * @throws {WaterCraftError} `invalid_request`, naming the first bad field.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeForwardedProposal, encodeForwardedProposal } from "./codec.ts";
 *
 * const proposal = { command: new Uint8Array([1, 2]), wait: "committed" as const, timeoutMs: 500 };
 * deepStrictEqual(decodeForwardedProposal(JSON.parse(encodeForwardedProposal(proposal))), proposal);
 * ```
 */
export function decodeForwardedProposal(body: unknown): ForwardedProposal {
  const p = parseWith(proposalShape, body, "body");
  return {
    command: p.command,
    wait: p.wait,
    timeoutMs: p.timeoutMs,
    ...(p.idempotencyKey === undefined ? {} : { idempotencyKey: p.idempotencyKey }),
  };
}

/**
 * Decodes and validates the JSON answer of `POST /raft/forward`.
 *
 * @param body The parsed JSON.
 * @returns The answer. A missing `value` (JSON has no `undefined`) decodes as
 *   `undefined`.
 * @throws {WaterCraftError} `invalid_request`, naming the first bad field.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeForwardedAnswer } from "./codec.ts";
 *
 * const answer = { ok: false as const, code: "rejected", message: "No" };
 * deepStrictEqual(decodeForwardedAnswer(answer), answer);
 * ```
 */
export function decodeForwardedAnswer(body: unknown): ForwardedAnswer {
  return parseWith(answerShape, body, "answer");
}
