/**
 * The payloads of the frames a follower and its leader exchange for a
 * forwarded write (`frames.ts` holds the envelope). The primitives are
 * those of `src/binary/`; `str?` is a string that may be null, `sstr` a
 * short string (a u8 length), `json?` a `str?` holding JSON text.
 *
 * ## Kind 2, a forwarded proposal (`ForwardedProposal`)
 *
 * `bytes` command (the command's own bytes, as the node that took the
 * request encoded them), `str?` idempotencyKey (1 to 256 characters), u8
 * wait (0 accepted, 1 committed), u53 timeoutMs.
 *
 * ## Kind 3, a forwarded answer (`ForwardedAnswer`)
 *
 * bool ok; if ok, `json?` value (null for `undefined`); otherwise `sstr` code
 * (`[a-z_]{1,64}`), `str` message (at most 65536 characters), `json?` details
 * (a JSON object, or null when absent).
 *
 * @module
 */

import { type ByteReader, type ByteWriter, MalformedError } from "../../binary/mod.ts";
import type { ForwardedAnswer, ForwardedProposal } from "../transport.ts";
import { boundedText } from "./frame_fields.ts";

const IDEMPOTENCY_KEY_CHARS_MAX = 256;
const ANSWER_MESSAGE_CHARS_MAX = 64 * 1024;
const ERROR_CODE_PATTERN = /^[a-z_]{1,64}$/;

/**
 * Opens a frame's writer with room for a payload of about `payloadBytes`;
 * `frames.ts` passes one that writes the frame's header first.
 */
export type OpenPayload = (payloadBytes: number) => ByteWriter;

/**
 * Writes a proposal's payload; the command's bytes go in as they are.
 *
 * @param proposal The proposal.
 * @param open Opens the writer, given the payload's size.
 * @returns The writer, the payload written.
 * @throws {TypeError} When `timeoutMs` is not a non-negative safe integer.
 * @throws {RangeError} When the command takes 2^32 - 1 bytes or more.
 */
export function writeProposal(proposal: ForwardedProposal, open: OpenPayload): ByteWriter {
  const key = proposal.idempotencyKey;
  const w = open(4 + proposal.command.length + 4 + (key?.length ?? 0) + 1 + 8);
  w.bytes(proposal.command);
  w.nullableString(key ?? null);
  w.u8(proposal.wait === "accepted" ? 0 : 1);
  w.u53(proposal.timeoutMs, "timeoutMs");
  return w;
}

/** JSON text of a value, or null for what JSON cannot hold (`undefined`, a function). */
function jsonText(value: unknown): string | null {
  return JSON.stringify(value) ?? null;
}

/**
 * Writes an answer's payload.
 *
 * @param answer The answer; `value` and `details` must be JSON.
 * @param open Opens the writer, given the payload's size.
 * @returns The writer, the payload written.
 * @throws {TypeError} When `JSON.stringify` refuses `value` or `details`.
 * @throws {RangeError} When `code` takes more than 255 bytes.
 */
export function writeAnswer(answer: ForwardedAnswer, open: OpenPayload): ByteWriter {
  if (answer.ok) {
    const value = jsonText(answer.value);
    const w = open(1 + 4 + (value?.length ?? 0));
    w.bool(true);
    w.nullableString(value);
    return w;
  }
  const details = answer.details === undefined ? null : jsonText(answer.details);
  const w = open(
    1 + 1 + answer.code.length + 4 + answer.message.length + 4 + (details?.length ?? 0),
  );
  w.bool(false);
  w.shortString(answer.code);
  w.string(answer.message);
  w.nullableString(details);
  return w;
}

/**
 * Reads a proposal's payload, checking every bound.
 *
 * @param r The reader, at the payload.
 * @returns The proposal.
 * @throws {MalformedError} For anything malformed, naming the field.
 */
export function readProposal(r: ByteReader): ForwardedProposal {
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
  return {
    command,
    wait: wait === 0 ? "accepted" : "committed",
    timeoutMs,
    ...(key === null ? {} : { idempotencyKey: key }),
  };
}

/**
 * Reads an answer's payload, checking every bound.
 *
 * @param r The reader, at the payload.
 * @returns The answer; an ok answer without a value has `value: undefined`.
 * @throws {MalformedError} For anything malformed, naming the field.
 */
export function readAnswer(r: ByteReader): ForwardedAnswer {
  if (r.bool("ok")) return { ok: true, value: readJson(r, "value") };
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
  return {
    ok: false,
    code,
    message,
    ...(details === undefined ? {} : { details: details as Record<string, unknown> }),
  };
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
