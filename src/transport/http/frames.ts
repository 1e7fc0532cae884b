/**
 * The binary wire format of the peer protocol: length-prefixed frames, each
 * carrying a batch of Raft messages, a forwarded proposal (a write, a
 * membership change or a leadership transfer) or a forwarded answer. Entry and snapshot bytes travel as they are (no base64), frames
 * can follow each other on one long-lived stream ({@linkcode FrameReader}
 * splits them again), and the decoders check every bound the JSON codec
 * they replaced checked, throwing only {@linkcode FrameError} for anything
 * they refuse.
 *
 * This file holds the envelope and the API; the payloads are laid out in
 * `message_frames.ts` (kind 1) and `forward_frames.ts` (kinds 2 to 6),
 * with the primitives of `src/binary/` (integers little-endian, `u53` a
 * safe integer in 8 bytes).
 *
 * ## Frame
 *
 * | bytes | field                                                     |
 * | ----- | --------------------------------------------------------- |
 * | 0-3   | u32 length `n`: bytes that follow (at least 2)             |
 * | 4     | u8 version: {@linkcode FRAME_VERSION}                      |
 * | 5     | u8 kind: 1 messages, 2 proposal (a write), 3 answer, 4    |
 * |       | member addition, 5 member removal, 6 leadership transfer  |
 * | 6-    | the payload, `n - 2` bytes, all of it read by its kind     |
 *
 * The payload of kind 1 is a u32 count (at most
 * {@linkcode MAX_MESSAGES_PER_BATCH}), then each message.
 *
 * A newer peer changes the format by raising the version, which this code
 * refuses; there are no unknown fields to skip.
 *
 * @module
 */

import { ByteReader, ByteWriter, MalformedError } from "../../binary/mod.ts";
import type { Message } from "../../core/messages.ts";
import { WaterCraftError } from "../../errors.ts";
import type { ForwardedAnswer, ForwardedProposal } from "../transport.ts";
import { readList } from "./frame_fields.ts";
import {
  readAnswer,
  readLeaderTransfer,
  readMemberAddition,
  readMemberRemoval,
  readProposal,
  writeAnswer,
  writeProposal,
} from "./forward_frames.ts";
import {
  estimateMessagesBytes,
  MESSAGE_BYTES_MIN,
  readMessage,
  writeMessage,
} from "./message_frames.ts";

/** The format version this code writes and reads: byte 4 of every frame. */
export const FRAME_VERSION = 1;
/** Bytes before a frame's payload: length, version, kind. */
export const FRAME_HEADER_BYTES = 6;
/** Default bound of {@linkcode FrameReader}: 4 MiB per frame, header included. */
export const FRAME_BYTES_MAX_DEFAULT: number = 4 * 1024 * 1024;
/** Most messages one frame may carry (as in the JSON codec). */
export const MAX_MESSAGES_PER_BATCH: number = 10_000;

/**
 * What a frame carries: `proposal` is a forwarded write; `addMember`,
 * `removeMember` and `transferLeader` are the other forwarded proposals.
 */
export type FrameKind =
  | "messages"
  | "proposal"
  | "answer"
  | "addMember"
  | "removeMember"
  | "transferLeader";

/**
 * A decoded frame, by what it carries: `proposal` stands for a forwarded
 * proposal of any kind (frame kinds 2 and 4 to 6), which its own `kind`
 * tells apart.
 */
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

const KIND_CODES: Readonly<Record<FrameKind, number>> = {
  messages: 1,
  proposal: 2,
  answer: 3,
  addMember: 4,
  removeMember: 5,
  transferLeader: 6,
};
const KINDS: readonly (FrameKind | undefined)[] = [
  undefined,
  "messages",
  "proposal",
  "answer",
  "addMember",
  "removeMember",
  "transferLeader",
];

/** How the payload of each kind of forwarded proposal is read. */
const PROPOSAL_READERS: Readonly<
  Record<
    "proposal" | "addMember" | "removeMember" | "transferLeader",
    (r: ByteReader) => ForwardedProposal
  >
> = {
  proposal: readProposal,
  addMember: readMemberAddition,
  removeMember: readMemberRemoval,
  transferLeader: readLeaderTransfer,
};

/** The frame kind of a forwarded proposal. */
function proposalFrameKind(proposal: ForwardedProposal): FrameKind {
  return proposal.kind === undefined || proposal.kind === "write" ? "proposal" : proposal.kind;
}

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
  const w = openFrameWriter("messages", estimateMessagesBytes(messages));
  w.u32(messages.length);
  for (const m of messages) writeMessage(w, m);
  return sealFrame(w);
}

/**
 * Encodes a forwarded proposal as one frame of its kind (2 for a write, 4
 * to 6 for the others); a write's command bytes go in as they are.
 *
 * @param proposal The proposal.
 * @returns The frame.
 * @throws {TypeError} When `timeoutMs` is not a non-negative safe integer.
 * @throws {RangeError} When the command takes 2^32 - 1 bytes or more, or an
 *   id more than 255 bytes.
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
  return sealFrame(writeProposal(proposal, (n) => openFrameWriter(proposalFrameKind(proposal), n)));
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
  return sealFrame(writeAnswer(answer, (n) => openFrameWriter("answer", n)));
}

// ------------------------------------------------------------------ decoding

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

/** Reads a whole payload with `read`, turning what it refuses into a {@linkcode FrameError}. */
function readPayload<T>(r: ByteReader, read: (r: ByteReader) => T): T {
  try {
    const value = read(r);
    r.end("frame");
    return value;
  } catch (error) {
    throw frameError(error);
  }
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
  return readPayload(openFrame(frame, "messages"), readMessages);
}

function readMessages(r: ByteReader): Message[] {
  return readList(r, "messages", MAX_MESSAGES_PER_BATCH, MESSAGE_BYTES_MIN, readMessage);
}

/**
 * Decodes a frame holding a forwarded proposal of any kind: a write, a
 * member addition or removal, or a leadership transfer.
 *
 * @param frame One whole frame.
 * @returns The proposal; a write has no `kind` field.
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
  const kind = readHeader(frame);
  if (!isProposalKind(kind)) {
    throw new FrameError(`frame kind at offset 5: ${kind}, expected a forwarded proposal`, 5);
  }
  return readPayload(new ByteReader(frame, FRAME_HEADER_BYTES), PROPOSAL_READERS[kind]);
}

function isProposalKind(kind: FrameKind): kind is keyof typeof PROPOSAL_READERS {
  return Object.hasOwn(PROPOSAL_READERS, kind);
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
  return readPayload(openFrame(frame, "answer"), readAnswer);
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
      return { kind, messages: readPayload(r, readMessages) };
    case "answer":
      return { kind, answer: readPayload(r, readAnswer) };
    case "proposal":
    case "addMember":
    case "removeMember":
    case "transferLeader":
      return { kind: "proposal", proposal: readPayload(r, PROPOSAL_READERS[kind]) };
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
