/**
 * The binary wire format of the peer protocol: length-prefixed frames, each
 * carrying a batch of Raft messages, a forwarded proposal or a forwarded
 * answer. It replaces the JSON codec (`codec.ts`): entry and snapshot bytes
 * travel as they are (no base64), frames can follow each other on one
 * long-lived stream ({@linkcode FrameReader} splits them again), and the
 * decoder checks every bound the JSON codec checks, throwing only
 * {@linkcode FrameError} for anything it refuses.
 *
 * ## Frame
 *
 * Integers are little-endian; the primitives (`u53`, `str`, `sstr`, `hash`,
 * `bytes`, `bool`) are those of `src/binary.ts`: `u53` is a safe integer in 8
 * bytes, `str` a u32 length then UTF-8 (`0xFFFFFFFF` for null in a `str?`),
 * `sstr` a u8 length then UTF-8, `bytes` a u32 length then raw bytes, `hash`
 * 32 raw bytes, `bool` a byte 0 or 1, `json` a `str` holding JSON text.
 *
 * | bytes | field                                                     |
 * | ----- | --------------------------------------------------------- |
 * | 0-3   | u32 length `n`: bytes that follow (at least 2)             |
 * | 4     | u8 version: {@linkcode FRAME_VERSION}                      |
 * | 5     | u8 kind: 1 messages, 2 proposal, 3 answer                  |
 * | 6-    | the payload, `n - 2` bytes, all of it read by its kind     |
 *
 * ## Kind 1, messages
 *
 * u32 count (at most {@linkcode MAX_MESSAGES_PER_BATCH}), then each message:
 * u8 type, `sstr` from, `sstr` to, u53 term, then by type:
 *
 * - 1 vote: bool preVote, bool transfer, u53 lastIndex, u53 lastTerm
 * - 2 voteResponse: bool preVote, bool granted
 * - 3 append: u53 prevIndex, u53 prevTerm, hash prevHash, u53 commit, u32
 *   entry count, then per entry: u53 index (at least 1), u53 term, u8 kind
 *   (0 command, 1 noop, 2 config), f64 timeMs (finite, at least 0), hash,
 *   `sstr` proposer (a node id, or empty for the bootstrap entry), `bytes` data
 * - 4 appendResponse: bool success, u53 index, u53 hintIndex, u53 hintTerm
 * - 5 snapshot: u53 meta.index, u53 meta.term, hash meta.hash, u32 member
 *   count (at most 4096), then per member: `sstr` id, bool voter, u8 readOnly
 *   (0 absent, 1 false, 2 true), `str?` url (at most 2048 characters);
 *   then u53 offset, u53 total, `bytes` data
 * - 6 snapshotResponse: u53 index, u53 received
 * - 7 heartbeat: u53 commit, `str?` context (at most 1024 characters), u32
 *   seen count (at most 4096), then per member: `sstr` id, u53 ticks
 * - 8 heartbeatResponse: `str?` context (at most 1024 characters), u53 configIndex
 * - 9 timeoutNow: nothing more
 * - 10 readIndex: `str` context (at most 1024 characters)
 * - 11 readIndexResponse: `str` context (at most 1024 characters), u53 index
 * - 12 transferLeader: `sstr` target
 *
 * Every id matches {@linkcode NODE_ID_PATTERN}.
 *
 * ## Kind 2, a forwarded proposal ({@linkcode ForwardedProposal})
 *
 * `bytes` command (the command's own bytes, as the node that took the
 * request encoded them), `str?` idempotencyKey (1 to 256 characters), u8
 * wait (0 accepted, 1 committed), u53 timeoutMs.
 *
 * ## Kind 3, a forwarded answer ({@linkcode ForwardedAnswer})
 *
 * bool ok; if ok, `json?` value (null for `undefined`); otherwise `sstr` code
 * (`[a-z_]{1,64}`), `str` message (at most 65536 characters), `json?` details
 * (a JSON object, or null when absent).
 *
 * A newer peer changes the format by raising the version, which this code
 * refuses; there are no unknown fields to skip.
 *
 * @module
 */

import { ByteReader, ByteWriter, MalformedError } from "../../binary.ts";
import { type Member, NODE_ID_PATTERN, NODE_ID_RULE } from "../../core/config.ts";
import type { Entry, EntryKind } from "../../core/entry.ts";
import type { Message, MessageType } from "../../core/messages.ts";
import { WaterCraftError } from "../../errors.ts";
import type { ForwardedAnswer, ForwardedProposal } from "../transport.ts";

/** The format version this code writes and reads: byte 4 of every frame. */
export const FRAME_VERSION = 1;
/** Bytes before a frame's payload: length, version, kind. */
export const FRAME_HEADER_BYTES = 6;
/** Default bound of {@linkcode FrameReader}: 4 MiB per frame, header included. */
export const FRAME_BYTES_MAX_DEFAULT: number = 4 * 1024 * 1024;
/** Most messages one frame may carry (as in the JSON codec). */
export const MAX_MESSAGES_PER_BATCH: number = 10_000;

/** What a frame carries. */
export type FrameKind = "messages" | "proposal" | "answer";

/** A decoded frame, by kind. */
export type DecodedFrame =
  | { readonly kind: "messages"; readonly messages: Message[] }
  | { readonly kind: "proposal"; readonly proposal: ForwardedProposal }
  | { readonly kind: "answer"; readonly answer: ForwardedAnswer };

/**
 * A frame that does not decode: cut short, followed by stray bytes, of an
 * unknown version or kind, declaring more than the bound, or with a field
 * out of its bounds. The only error the decoders throw for bad input; an
 * `invalid_request` for the HTTP layer.
 */
export class FrameError extends WaterCraftError {
  /** What is wrong: the field's path, its offset in the frame, the problem. */
  readonly reason: string;
  /** Offset in the frame (or the stream, for {@linkcode FrameReader}) of the bad field. */
  readonly offset: number;

  /**
   * Creates the error.
   *
   * @param reason What is wrong, naming the field, e.g.
   *   `messages.0.term at offset 19: needs 8 bytes, 2 remain`.
   * @param offset Where the bad field starts.
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { FrameError } from "./frames.ts";
   *
   * const error = new FrameError("frame version at offset 4: 9 is unknown", 4);
   * strictEqual(error.code, "invalid_request");
   * strictEqual(error.message, "Cannot decode a peer frame: frame version at offset 4: 9 is unknown");
   * ```
   */
  constructor(reason: string, offset: number) {
    super("invalid_request", `Cannot decode a peer frame: ${reason}`);
    this.name = "FrameError";
    this.reason = reason;
    this.offset = offset;
  }
}

const KIND_CODES: Readonly<Record<FrameKind, number>> = { messages: 1, proposal: 2, answer: 3 };
const KINDS: readonly (FrameKind | undefined)[] = [undefined, "messages", "proposal", "answer"];

const TYPE_CODES: Readonly<Record<MessageType, number>> = {
  vote: 1,
  voteResponse: 2,
  append: 3,
  appendResponse: 4,
  snapshot: 5,
  snapshotResponse: 6,
  heartbeat: 7,
  heartbeatResponse: 8,
  timeoutNow: 9,
  readIndex: 10,
  readIndexResponse: 11,
  transferLeader: 12,
};
const TYPE_COUNT = 12;

const ENTRY_KIND_CODES: Readonly<Record<EntryKind, number>> = { command: 0, noop: 1, config: 2 };
const ENTRY_KINDS: readonly EntryKind[] = ["command", "noop", "config"];

// The JSON codec's bounds. Its string bounds count UTF-16 code units; here
// the UTF-8 length is first held to 3 bytes per unit (the most one unit
// takes), before anything is decoded, then the decoded length is checked.
const MEMBERS_MAX = 4096;
const READ_CONTEXT_CHARS_MAX = 1024;
const URL_CHARS_MAX = 2048;
const IDEMPOTENCY_KEY_CHARS_MAX = 256;
const ANSWER_MESSAGE_CHARS_MAX = 64 * 1024;
const NODE_ID_BYTES_MAX = 64;
const ERROR_CODE_PATTERN = /^[a-z_]{1,64}$/;

// The fewest bytes each repeated item can take, to refuse a count the rest
// of the frame cannot hold before looping over it.
const MESSAGE_BYTES_MIN = 1 + 2 + 2 + 8;
const ENTRY_BYTES_MIN = 8 + 8 + 1 + 8 + 32 + 1 + 4;
const MEMBER_BYTES_MIN = 2 + 1 + 1 + 4;
const SEEN_BYTES_MIN = 2 + 8;

const U32_MAX = 0xffff_ffff;

// ------------------------------------------------------------------ encoding

/** Starts a frame: the length (patched by {@linkcode sealFrame}), version and kind. */
function openFrameWriter(kind: FrameKind, payloadBytes: number): ByteWriter {
  const w = new ByteWriter(FRAME_HEADER_BYTES + payloadBytes);
  w.u32(0);
  w.u8(FRAME_VERSION);
  w.u8(KIND_CODES[kind]);
  return w;
}

function sealFrame(w: ByteWriter): Uint8Array {
  const length = w.length - 4;
  if (length > U32_MAX) {
    throw new RangeError(`Cannot encode a frame of ${length} bytes: the limit is ${U32_MAX}`);
  }
  w.setU32(0, length);
  return w.finish();
}

/**
 * Wraps a payload in a frame.
 *
 * @param kind What the payload is.
 * @param payload The payload, laid out as the module doc says for `kind`.
 * @returns The frame: header, then a copy of `payload`.
 * @throws {RangeError} When `kind` is unknown or the frame would exceed the
 *   u32 length.
 *
 * @example An empty batch of messages
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeMessages, encodeFrame } from "./frames.ts";
 *
 * const frame = encodeFrame("messages", new Uint8Array([0, 0, 0, 0]));
 * deepStrictEqual(frame, new Uint8Array([6, 0, 0, 0, 1, 1, 0, 0, 0, 0]));
 * deepStrictEqual(decodeMessages(frame), []);
 * ```
 */
export function encodeFrame(kind: FrameKind, payload: Uint8Array): Uint8Array {
  if (!Object.hasOwn(KIND_CODES, kind)) {
    throw new RangeError(`Cannot encode a frame of kind ${JSON.stringify(kind)}: unknown kind`);
  }
  const w = openFrameWriter(kind, payload.length);
  w.raw(payload);
  return sealFrame(w);
}

/** A size to start the writer at: close above most batches, so it rarely grows. */
function estimateBytes(messages: readonly Message[]): number {
  let n = 4;
  for (const m of messages) {
    n += 160;
    if (m.type === "append") {
      n += m.entries.length * 130;
      for (const e of m.entries) n += e.data.length;
    } else if (m.type === "snapshot") {
      n += m.data.length + m.meta.config.members.length * 80;
    } else if (m.type === "heartbeat") {
      for (const _ in m.seen) n += 80;
    }
  }
  return n;
}

/**
 * Encodes messages as one frame.
 *
 * @param messages The messages, in the order the recipient should step
 *   them; at most {@linkcode MAX_MESSAGES_PER_BATCH}.
 * @returns The frame.
 * @throws {RangeError} When there are too many messages, or a string is too
 *   long for its length prefix.
 * @throws {TypeError} When a number is not what its field holds (e.g. a
 *   negative term) or a hash is not 64 lowercase hex digits: a bug of the
 *   sender, refused before it reaches a peer. Ids and other bounds are left
 *   to the recipient's decoder.
 *
 * @example Round trip
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeMessages, encodeMessages } from "./frames.ts";
 * import type { Message } from "../../core/messages.ts";
 *
 * const messages: Message[] = [{ type: "timeoutNow", from: "n1", to: "n2", term: 3 }];
 * deepStrictEqual(decodeMessages(encodeMessages(messages)), messages);
 * ```
 */
export function encodeMessages(messages: readonly Message[]): Uint8Array {
  if (messages.length > MAX_MESSAGES_PER_BATCH) {
    throw new RangeError(
      `Cannot encode ${messages.length} messages in one frame: the limit is ${MAX_MESSAGES_PER_BATCH}`,
    );
  }
  const w = openFrameWriter("messages", estimateBytes(messages));
  w.u32(messages.length);
  for (const m of messages) writeMessage(w, m);
  return sealFrame(w);
}

function writeMessage(w: ByteWriter, m: Message): void {
  w.u8(TYPE_CODES[m.type]);
  w.shortString(m.from);
  w.shortString(m.to);
  w.u53(m.term, "term");
  switch (m.type) {
    case "vote":
      w.bool(m.preVote);
      w.bool(m.transfer);
      w.u53(m.lastIndex, "lastIndex");
      w.u53(m.lastTerm, "lastTerm");
      return;
    case "voteResponse":
      w.bool(m.preVote);
      w.bool(m.granted);
      return;
    case "append":
      w.u53(m.prevIndex, "prevIndex");
      w.u53(m.prevTerm, "prevTerm");
      w.hash(m.prevHash, "prevHash");
      w.u53(m.commit, "commit");
      w.u32(m.entries.length);
      for (const e of m.entries) writeEntry(w, e);
      return;
    case "appendResponse":
      w.bool(m.success);
      w.u53(m.index, "index");
      w.u53(m.hintIndex, "hintIndex");
      w.u53(m.hintTerm, "hintTerm");
      return;
    case "snapshot": {
      const { meta } = m;
      w.u53(meta.index, "meta.index");
      w.u53(meta.term, "meta.term");
      w.hash(meta.hash, "meta.hash");
      w.u32(meta.config.members.length);
      for (const member of meta.config.members) writeMember(w, member);
      w.u53(m.offset, "offset");
      w.u53(m.total, "total");
      w.bytes(m.data);
      return;
    }
    case "snapshotResponse":
      w.u53(m.index, "index");
      w.u53(m.received, "received");
      return;
    case "heartbeat": {
      w.u53(m.commit, "commit");
      w.nullableString(m.context);
      const ids = Object.keys(m.seen);
      w.u32(ids.length);
      for (const id of ids) {
        w.shortString(id);
        w.u53(m.seen[id]!, "seen");
      }
      return;
    }
    case "heartbeatResponse":
      w.nullableString(m.context);
      w.u53(m.configIndex, "configIndex");
      return;
    case "timeoutNow":
      return;
    case "readIndex":
      w.string(m.context);
      return;
    case "readIndexResponse":
      w.string(m.context);
      w.u53(m.index, "index");
      return;
    case "transferLeader":
      w.shortString(m.target);
      return;
    default: {
      const unknown: never = m;
      throw new TypeError(`Cannot encode message type ${(unknown as Message).type}`);
    }
  }
}

function writeEntry(w: ByteWriter, e: Entry): void {
  w.u53(e.index, "entry index");
  w.u53(e.term, "entry term");
  w.u8(ENTRY_KIND_CODES[e.kind]);
  w.f64(e.timeMs);
  w.hash(e.hash, "entry hash");
  w.shortString(e.proposer);
  w.bytes(e.data);
}

function writeMember(w: ByteWriter, m: Member): void {
  w.shortString(m.id);
  w.bool(m.voter);
  w.u8(m.readOnly === undefined ? 0 : m.readOnly ? 2 : 1);
  w.nullableString(m.url ?? null);
}

/** JSON text of a value, or null for what JSON cannot hold (`undefined`, a function). */
function jsonText(value: unknown): string | null {
  return JSON.stringify(value) ?? null;
}

/**
 * Encodes a forwarded proposal as one frame; the command's bytes go in as
 * they are.
 *
 * @param proposal The proposal.
 * @returns The frame.
 * @throws {TypeError} When `timeoutMs` is not a non-negative safe integer.
 * @throws {RangeError} When the command takes 2^32 - 1 bytes or more.
 *
 * @example Round trip
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeForwardedProposal, encodeForwardedProposal } from "./frames.ts";
 *
 * const proposal = {
 *   command: new TextEncoder().encode('{"op":"put"}'),
 *   wait: "committed" as const,
 *   timeoutMs: 500,
 * };
 * deepStrictEqual(decodeForwardedProposal(encodeForwardedProposal(proposal)), proposal);
 * ```
 */
export function encodeForwardedProposal(proposal: ForwardedProposal): Uint8Array {
  const key = proposal.idempotencyKey;
  const w = openFrameWriter("proposal", 4 + proposal.command.length + 4 + (key?.length ?? 0) + 9);
  w.bytes(proposal.command);
  w.nullableString(key ?? null);
  w.u8(proposal.wait === "accepted" ? 0 : 1);
  w.u53(proposal.timeoutMs, "timeoutMs");
  return sealFrame(w);
}

/**
 * Encodes a forwarded answer as one frame.
 *
 * @param answer The answer; `value` and `details` must be JSON (a `value`
 *   JSON cannot hold, such as `undefined`, decodes as `undefined`).
 * @returns The frame.
 * @throws {TypeError} When `JSON.stringify` refuses `value` or `details`
 *   (a cycle, a bigint).
 * @throws {RangeError} When `code` takes more than 255 bytes.
 *
 * @example Round trip
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeForwardedAnswer, encodeForwardedAnswer } from "./frames.ts";
 *
 * const answer = { ok: false as const, code: "rejected", message: "No" };
 * deepStrictEqual(decodeForwardedAnswer(encodeForwardedAnswer(answer)), answer);
 * ```
 */
export function encodeForwardedAnswer(answer: ForwardedAnswer): Uint8Array {
  if (answer.ok) {
    const value = jsonText(answer.value);
    const w = openFrameWriter("answer", 5 + (value?.length ?? 0));
    w.bool(true);
    w.nullableString(value);
    return sealFrame(w);
  }
  const details = answer.details === undefined ? null : jsonText(answer.details);
  const w = openFrameWriter(
    "answer",
    1 + 1 + answer.code.length + 4 + answer.message.length + 4 + (details?.length ?? 0),
  );
  w.bool(false);
  w.shortString(answer.code);
  w.string(answer.message);
  w.nullableString(details);
  return sealFrame(w);
}

// ------------------------------------------------------------------ decoding

/** Prefixes the field path of a {@linkcode MalformedError}; passes anything else on. */
function within(error: unknown, prefix: string): unknown {
  if (!(error instanceof MalformedError)) return error;
  return new MalformedError(`${prefix}.${error.what}`, error.offset, error.problem);
}

/** Turns a {@linkcode MalformedError} into a {@linkcode FrameError}; anything else is a bug and passes on. */
function frameError(error: unknown): unknown {
  if (!(error instanceof MalformedError)) return error;
  return new FrameError(error.message, error.offset);
}

/** Checks a frame's header and returns the kind. */
function readHeader(frame: Uint8Array): FrameKind {
  if (frame.length < FRAME_HEADER_BYTES) {
    throw new FrameError(
      `frame at offset 0: ${frame.length} bytes, fewer than the ${FRAME_HEADER_BYTES}-byte header`,
      0,
    );
  }
  const length = (frame[0]! | (frame[1]! << 8) | (frame[2]! << 16) | (frame[3]! << 24)) >>> 0;
  if (length !== frame.length - 4) {
    const problem = length > frame.length - 4 ? "is cut short" : "is followed by stray bytes";
    throw new FrameError(
      `frame length at offset 0: declares ${length} bytes after the length, ${
        frame.length - 4
      } are there (the frame ${problem})`,
      0,
    );
  }
  const version = frame[4]!;
  if (version !== FRAME_VERSION) {
    throw new FrameError(
      `frame version at offset 4: ${version} is unknown, this code reads ${FRAME_VERSION}`,
      4,
    );
  }
  const kind = KINDS[frame[5]!];
  if (kind === undefined) throw new FrameError(`frame kind at offset 5: ${frame[5]} is unknown`, 5);
  return kind;
}

/** Checks the header against the expected kind and returns a reader of the payload. */
function openFrame(frame: Uint8Array, kind: FrameKind): ByteReader {
  const found = readHeader(frame);
  if (found !== kind) {
    throw new FrameError(`frame kind at offset 5: ${found}, expected ${kind}`, 5);
  }
  return new ByteReader(frame, FRAME_HEADER_BYTES);
}

/** Reads a u32 count, refusing one above `max` or more items than the rest could hold. */
function readCount(r: ByteReader, what: string, max: number, itemBytesMin: number): number {
  const at = r.offset;
  const n = r.u32(what);
  if (n > max) throw new MalformedError(what, at, `${n} items, more than the ${max} allowed`);
  if (n * itemBytesMin > r.remaining) {
    throw new MalformedError(
      what,
      at,
      `${n} items cannot fit in the ${r.remaining} bytes that remain`,
    );
  }
  return n;
}

function readId(r: ByteReader, what: string): string {
  const at = r.offset;
  const id = r.shortString(what, NODE_ID_BYTES_MAX);
  if (!NODE_ID_PATTERN.test(id)) throw new MalformedError(what, at, `must match ${NODE_ID_RULE}`);
  return id;
}

/** Reads a string whose UTF-16 length is bounded, as zod's `.max()` counts. */
function boundedText(text: string | null, what: string, at: number, max: number): void {
  if (text !== null && text.length > max) {
    throw new MalformedError(what, at, `${text.length} characters, more than the ${max} allowed`);
  }
}

function readContext(r: ByteReader): string {
  const at = r.offset;
  const context = r.string("context", 3 * READ_CONTEXT_CHARS_MAX);
  boundedText(context, "context", at, READ_CONTEXT_CHARS_MAX);
  return context;
}

function readNullableContext(r: ByteReader): string | null {
  const at = r.offset;
  const context = r.nullableString("context", 3 * READ_CONTEXT_CHARS_MAX);
  boundedText(context, "context", at, READ_CONTEXT_CHARS_MAX);
  return context;
}

/**
 * Decodes a frame of messages.
 *
 * @param frame One whole frame, as {@linkcode encodeMessages} or
 *   {@linkcode FrameReader.push} give it.
 * @returns The messages, as fresh objects; entry and snapshot data are
 *   copies, so they do not pin `frame` in memory.
 * @throws {FrameError} For anything malformed, naming the field's path
 *   (e.g. `messages.2.entries.0.kind`) and offset. Nothing else, whatever
 *   the input.
 *
 * @example A bad field is named
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { decodeMessages, encodeMessages, FrameError } from "./frames.ts";
 *
 * const frame = encodeMessages([{ type: "timeoutNow", from: "n1", to: "n2", term: 3 }]);
 * throws(() => decodeMessages(frame.subarray(0, frame.length - 1)), FrameError);
 * frame[13] = 32; // the sender "n1" becomes "n "
 * throws(() => decodeMessages(frame), /messages\.0\.from at offset 11: must match/);
 * ```
 */
export function decodeMessages(frame: Uint8Array): Message[] {
  return readMessages(openFrame(frame, "messages"));
}

function readMessages(r: ByteReader): Message[] {
  try {
    const count = readCount(r, "messages", MAX_MESSAGES_PER_BATCH, MESSAGE_BYTES_MIN);
    const messages: Message[] = [];
    for (let i = 0; i < count; i++) {
      try {
        messages.push(readMessage(r));
      } catch (error) {
        throw within(error, `messages.${i}`);
      }
    }
    r.end("frame");
    return messages;
  } catch (error) {
    throw frameError(error);
  }
}

function readMessage(r: ByteReader): Message {
  const at = r.offset;
  const code = r.u8("type");
  if (code < 1 || code > TYPE_COUNT) {
    throw new MalformedError("type", at, `${code} is not a known message type`);
  }
  const from = readId(r, "from");
  const to = readId(r, "to");
  const term = r.u53("term");
  // Object literals evaluate their values in order: each read follows the layout.
  switch (code) {
    case 1:
      return {
        type: "vote",
        from,
        to,
        term,
        preVote: r.bool("preVote"),
        transfer: r.bool("transfer"),
        lastIndex: r.u53("lastIndex"),
        lastTerm: r.u53("lastTerm"),
      };
    case 2:
      return {
        type: "voteResponse",
        from,
        to,
        term,
        preVote: r.bool("preVote"),
        granted: r.bool("granted"),
      };
    case 3:
      return {
        type: "append",
        from,
        to,
        term,
        prevIndex: r.u53("prevIndex"),
        prevTerm: r.u53("prevTerm"),
        prevHash: r.hash("prevHash"),
        commit: r.u53("commit"),
        entries: readEntries(r),
      };
    case 4:
      return {
        type: "appendResponse",
        from,
        to,
        term,
        success: r.bool("success"),
        index: r.u53("index"),
        hintIndex: r.u53("hintIndex"),
        hintTerm: r.u53("hintTerm"),
      };
    case 5:
      return {
        type: "snapshot",
        from,
        to,
        term,
        meta: {
          index: r.u53("meta.index"),
          term: r.u53("meta.term"),
          hash: r.hash("meta.hash"),
          config: { members: readMembers(r) },
        },
        offset: r.u53("offset"),
        total: r.u53("total"),
        data: r.bytes("data"),
      };
    case 6:
      return {
        type: "snapshotResponse",
        from,
        to,
        term,
        index: r.u53("index"),
        received: r.u53("received"),
      };
    case 7:
      return {
        type: "heartbeat",
        from,
        to,
        term,
        commit: r.u53("commit"),
        context: readNullableContext(r),
        seen: readSeen(r),
      };
    case 8:
      return {
        type: "heartbeatResponse",
        from,
        to,
        term,
        context: readNullableContext(r),
        configIndex: r.u53("configIndex"),
      };
    case 9:
      return { type: "timeoutNow", from, to, term };
    case 10:
      return { type: "readIndex", from, to, term, context: readContext(r) };
    case 11:
      return {
        type: "readIndexResponse",
        from,
        to,
        term,
        context: readContext(r),
        index: r.u53("index"),
      };
    default:
      return { type: "transferLeader", from, to, term, target: readId(r, "target") };
  }
}

function readEntries(r: ByteReader): Entry[] {
  const count = readCount(r, "entries", U32_MAX, ENTRY_BYTES_MIN);
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    try {
      entries.push(readEntry(r));
    } catch (error) {
      throw within(error, `entries.${i}`);
    }
  }
  return entries;
}

function readEntry(r: ByteReader): Entry {
  const indexAt = r.offset;
  const index = r.u53("index");
  if (index < 1) throw new MalformedError("index", indexAt, "must be at least 1");
  const term = r.u53("term");
  const kindAt = r.offset;
  const kindCode = r.u8("kind");
  const kind = ENTRY_KINDS[kindCode];
  if (kind === undefined) {
    throw new MalformedError("kind", kindAt, `${kindCode} is not a known entry kind`);
  }
  const timeAt = r.offset;
  const timeMs = r.f64("timeMs");
  if (!(timeMs >= 0 && timeMs < Infinity)) {
    throw new MalformedError("timeMs", timeAt, `${timeMs} is not a finite number at least 0`);
  }
  const hash = r.hash("hash");
  const proposerAt = r.offset;
  const proposer = r.shortString("proposer", NODE_ID_BYTES_MAX);
  // The bootstrap entry has no proposer.
  if (proposer !== "" && !NODE_ID_PATTERN.test(proposer)) {
    throw new MalformedError("proposer", proposerAt, `must be empty or match ${NODE_ID_RULE}`);
  }
  const data = r.bytes("data");
  return { index, term, kind, proposer, timeMs, data, hash };
}

function readMembers(r: ByteReader): Member[] {
  const count = readCount(r, "meta.config.members", MEMBERS_MAX, MEMBER_BYTES_MIN);
  const members: Member[] = [];
  for (let i = 0; i < count; i++) {
    try {
      members.push(readMember(r));
    } catch (error) {
      throw within(error, `meta.config.members.${i}`);
    }
  }
  return members;
}

function readMember(r: ByteReader): Member {
  const id = readId(r, "id");
  const voter = r.bool("voter");
  const readOnlyAt = r.offset;
  const readOnly = r.u8("readOnly");
  if (readOnly > 2) {
    throw new MalformedError("readOnly", readOnlyAt, `${readOnly} is not 0 (absent), 1 or 2`);
  }
  const urlAt = r.offset;
  const url = r.nullableString("url", 3 * URL_CHARS_MAX);
  boundedText(url, "url", urlAt, URL_CHARS_MAX);
  return {
    id,
    voter,
    ...(readOnly === 0 ? {} : { readOnly: readOnly === 2 }),
    ...(url === null ? {} : { url }),
  };
}

function readSeen(r: ByteReader): Record<string, number> {
  const count = readCount(r, "seen", MEMBERS_MAX, SEEN_BYTES_MIN);
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const at = r.offset;
    let id: string;
    let ticks: number;
    try {
      id = readId(r, "id");
      ticks = r.u53("ticks");
    } catch (error) {
      throw within(error, `seen.${i}`);
    }
    if (Object.hasOwn(seen, id)) throw new MalformedError(`seen.${i}.id`, at, "is a duplicate");
    // "__proto__" is a valid id: define it, as assigning it would set the prototype.
    if (id === "__proto__") {
      Object.defineProperty(seen, id, {
        value: ticks,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else {
      seen[id] = ticks;
    }
  }
  return seen;
}

/** Reads a `json?` field: the parsed value, or `undefined` where the field holds null. */
function readJson(r: ByteReader, what: string): unknown {
  const at = r.offset;
  const text = r.nullableString(what);
  if (text === null) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new MalformedError(what, at, "is not JSON");
  }
}

/**
 * Decodes a frame holding a forwarded proposal.
 *
 * @param frame One whole frame.
 * @returns The proposal.
 * @throws {FrameError} For anything malformed, naming the field. Nothing
 *   else, whatever the input.
 *
 * @example A bad wait is refused
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { decodeForwardedProposal, encodeForwardedProposal } from "./frames.ts";
 *
 * const command = new Uint8Array([1]);
 * const frame = encodeForwardedProposal({ command, wait: "accepted", timeoutMs: 5 });
 * frame[15] = 7; // the wait byte
 * throws(() => decodeForwardedProposal(frame), /wait at offset 15: 7 is not 0 \(accepted\) or 1/);
 * ```
 */
export function decodeForwardedProposal(frame: Uint8Array): ForwardedProposal {
  return readProposal(openFrame(frame, "proposal"));
}

function readProposal(r: ByteReader): ForwardedProposal {
  try {
    const command = r.bytes("command");
    const keyAt = r.offset;
    const key = r.nullableString("idempotencyKey", 3 * IDEMPOTENCY_KEY_CHARS_MAX);
    if (key === "") throw new MalformedError("idempotencyKey", keyAt, "must not be empty");
    boundedText(key, "idempotencyKey", keyAt, IDEMPOTENCY_KEY_CHARS_MAX);
    const waitAt = r.offset;
    const wait = r.u8("wait");
    if (wait > 1) {
      throw new MalformedError("wait", waitAt, `${wait} is not 0 (accepted) or 1 (committed)`);
    }
    const timeoutMs = r.u53("timeoutMs");
    r.end("frame");
    return {
      command,
      wait: wait === 0 ? "accepted" : "committed",
      timeoutMs,
      ...(key === null ? {} : { idempotencyKey: key }),
    };
  } catch (error) {
    throw frameError(error);
  }
}

/**
 * Decodes a frame holding a forwarded answer.
 *
 * @param frame One whole frame.
 * @returns The answer; an ok answer without a value has `value: undefined`.
 * @throws {FrameError} For anything malformed, naming the field. Nothing
 *   else, whatever the input.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { decodeForwardedAnswer, encodeForwardedAnswer } from "./frames.ts";
 *
 * const answer = { ok: true as const, value: { index: 3 } };
 * deepStrictEqual(decodeForwardedAnswer(encodeForwardedAnswer(answer)), answer);
 * ```
 */
export function decodeForwardedAnswer(frame: Uint8Array): ForwardedAnswer {
  return readAnswer(openFrame(frame, "answer"));
}

function readAnswer(r: ByteReader): ForwardedAnswer {
  try {
    let answer: ForwardedAnswer;
    if (r.bool("ok")) {
      answer = { ok: true, value: readJson(r, "value") };
    } else {
      const codeAt = r.offset;
      const code = r.shortString("code", 64);
      if (!ERROR_CODE_PATTERN.test(code)) {
        throw new MalformedError("code", codeAt, "must match [a-z_]{1,64}");
      }
      const messageAt = r.offset;
      const message = r.string("message", 3 * ANSWER_MESSAGE_CHARS_MAX);
      boundedText(message, "message", messageAt, ANSWER_MESSAGE_CHARS_MAX);
      const detailsAt = r.offset;
      const details = readJson(r, "details");
      if (
        details !== undefined &&
        (typeof details !== "object" || details === null || Array.isArray(details))
      ) {
        throw new MalformedError("details", detailsAt, "must be a JSON object");
      }
      answer = {
        ok: false,
        code,
        message,
        ...(details === undefined ? {} : { details: details as Record<string, unknown> }),
      };
    }
    r.end("frame");
    return answer;
  } catch (error) {
    throw frameError(error);
  }
}

/**
 * Decodes a frame of any kind: for a stream that carries several.
 *
 * @param frame One whole frame, as {@linkcode FrameReader.push} gives it.
 * @returns What it holds, by kind.
 * @throws {FrameError} For anything malformed. Nothing else, whatever the input.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { decodeFrame, encodeForwardedAnswer } from "./frames.ts";
 *
 * const decoded = decodeFrame(encodeForwardedAnswer({ ok: true, value: 1 }));
 * strictEqual(decoded.kind, "answer");
 * ```
 */
export function decodeFrame(frame: Uint8Array): DecodedFrame {
  const kind = readHeader(frame);
  const r = new ByteReader(frame, FRAME_HEADER_BYTES);
  switch (kind) {
    case "messages":
      return { kind, messages: readMessages(r) };
    case "proposal":
      return { kind, proposal: readProposal(r) };
    case "answer":
      return { kind, answer: readAnswer(r) };
  }
}

// ------------------------------------------------------------------ streams

/** Options of a {@linkcode FrameReader}. */
export interface FrameReaderOptions {
  /**
   * The most bytes one frame may take, header included. A frame declaring
   * more is refused as soon as its length arrives, before its body is
   * buffered. Default {@linkcode FRAME_BYTES_MAX_DEFAULT} (4 MiB).
   */
  readonly frameBytesMax?: number;
}

/**
 * Splits a byte stream into frames, whatever its chunks: a frame split
 * across many chunks, several frames in one, a length prefix cut in two.
 * Holds at most one incomplete frame, of at most `frameBytesMax` bytes.
 * Checks lengths only; the decoders check the rest.
 *
 * After a refused length the stream is out of step: every later call
 * throws the same error, and the caller should close the connection.
 */
export class FrameReader {
  readonly #frameBytesMax: number;
  /** The length prefix while it is incomplete. */
  readonly #prefix = new Uint8Array(4);
  #prefixFill = 0;
  /** The incomplete frame, allocated at its declared size once its prefix is known. */
  #frame: Uint8Array | null = null;
  #frameFill = 0;
  /** Bytes consumed since the start of the stream, for error offsets. */
  #consumed = 0;
  #failed: FrameError | null = null;

  /**
   * Creates a reader at the start of a stream.
   *
   * @param options The bound on a frame's size.
   * @throws {RangeError} When `frameBytesMax` is not an integer in
   *   `[6, 2^32 + 3]`.
   *
   * @example Two frames, cut anywhere
   * ```ts
   * import { deepStrictEqual, strictEqual } from "node:assert/strict";
   * import { decodeMessages, encodeMessages, FrameReader } from "./frames.ts";
   *
   * const one = encodeMessages([{ type: "timeoutNow", from: "n1", to: "n2", term: 1 }]);
   * const both = new Uint8Array([...one, ...one]);
   * const reader = new FrameReader();
   * const frames = [...reader.push(both.subarray(0, 7)), ...reader.push(both.subarray(7))];
   * strictEqual(frames.length, 2);
   * deepStrictEqual(decodeMessages(frames[1]!), decodeMessages(one));
   * reader.finish();
   * ```
   */
  constructor(options: FrameReaderOptions = {}) {
    const max = options.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT;
    if (!Number.isSafeInteger(max) || max < FRAME_HEADER_BYTES || max > U32_MAX + 4) {
      throw new RangeError(
        `Cannot bound frames at ${max} bytes: not an integer in [${FRAME_HEADER_BYTES}, ${
          U32_MAX + 4
        }]`,
      );
    }
    this.#frameBytesMax = max;
  }

  /** Bytes held of a frame not yet complete (its length prefix included). */
  get buffered(): number {
    return this.#frame === null ? this.#prefixFill : this.#frameFill;
  }

  /**
   * Takes the next chunk of the stream and returns the frames it completes.
   *
   * @param chunk The next bytes, of any length. A frame that lies whole
   *   within it is returned as a view of it, not a copy: leave the chunk
   *   unchanged while that frame is in use.
   * @returns The completed frames, in stream order, each whole (length
   *   prefix included), ready for {@linkcode decodeFrame}.
   * @throws {FrameError} When a frame declares fewer than 2 bytes or more
   *   than `frameBytesMax` in all; then on every later call.
   *
   * @example A length above the bound is refused before its body arrives
   * ```ts
   * import { throws } from "node:assert/strict";
   * import { FrameReader } from "./frames.ts";
   *
   * const reader = new FrameReader({ frameBytesMax: 1024 });
   * throws(() => reader.push(new Uint8Array([0, 4, 0, 0])), /declares 1024 bytes after the length/);
   * ```
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failed !== null) throw this.#failed;
    const frames: Uint8Array[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.#frame === null) {
        if (this.#prefixFill === 0 && chunk.length - at >= 4) {
          // The common case: the prefix is whole in this chunk.
          const length = this.#check(
            (chunk[at]! | (chunk[at + 1]! << 8) | (chunk[at + 2]! << 16) |
              (chunk[at + 3]! << 24)) >>>
              0,
          );
          if (chunk.length - at >= 4 + length) {
            frames.push(chunk.subarray(at, at + 4 + length));
            at += 4 + length;
            this.#consumed += 4 + length;
            continue;
          }
          this.#frame = new Uint8Array(4 + length);
          this.#frameFill = 0;
        } else {
          const n = Math.min(4 - this.#prefixFill, chunk.length - at);
          this.#prefix.set(chunk.subarray(at, at + n), this.#prefixFill);
          this.#prefixFill += n;
          at += n;
          if (this.#prefixFill < 4) break;
          const p = this.#prefix;
          const length = this.#check((p[0]! | (p[1]! << 8) | (p[2]! << 16) | (p[3]! << 24)) >>> 0);
          this.#prefixFill = 0;
          this.#frame = new Uint8Array(4 + length);
          this.#frame.set(p);
          this.#frameFill = 4;
        }
      }
      const frame = this.#frame;
      const n = Math.min(frame.length - this.#frameFill, chunk.length - at);
      frame.set(chunk.subarray(at, at + n), this.#frameFill);
      this.#frameFill += n;
      at += n;
      if (this.#frameFill === frame.length) {
        frames.push(frame);
        this.#consumed += frame.length;
        this.#frame = null;
        this.#frameFill = 0;
      }
    }
    return frames;
  }

  /** Returns a declared length if it is within bounds; fails the stream otherwise. */
  #check(length: number): number {
    if (length < 2 || length + 4 > this.#frameBytesMax) {
      const bound = length < 2
        ? "fewer than the version and kind"
        : `more than the ${this.#frameBytesMax - 4} a ${this.#frameBytesMax}-byte frame allows`;
      // Nothing of the refused frame is kept.
      this.#prefixFill = 0;
      this.#failed = new FrameError(
        `frame length at offset ${this.#consumed}: declares ${length} bytes after the length, ${bound}`,
        this.#consumed,
      );
      throw this.#failed;
    }
    return length;
  }

  /**
   * Checks that the stream ended between frames.
   *
   * @throws {FrameError} When it ended inside one (or after a refused length).
   *
   * @example
   * ```ts
   * import { throws } from "node:assert/strict";
   * import { FrameReader } from "./frames.ts";
   *
   * const reader = new FrameReader();
   * reader.push(new Uint8Array([10, 0]));
   * throws(() => reader.finish(), /the stream ends inside a frame: 2 bytes of it arrived/);
   * ```
   */
  finish(): void {
    if (this.#failed !== null) throw this.#failed;
    const held = this.buffered;
    if (held === 0) return;
    throw new FrameError(
      `frame at offset ${this.#consumed}: the stream ends inside a frame: ${held} bytes of it arrived`,
      this.#consumed,
    );
  }
}
