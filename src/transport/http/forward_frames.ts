/**
 * The payloads of the frames a member and its leader exchange for a
 * forwarded request (`frames.ts` holds the envelope). The primitives are
 * those of `src/binary/`; `str?` is a string that may be null, `sstr` a
 * short string (a u8 length), `json?` a `str?` holding JSON text, `id` an
 * `sstr` that is a node id.
 *
 * ## Kind 2, a forwarded write (`ForwardedWrite`)
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
 * ## Kind 4, a forwarded member addition (`ForwardedMemberAddition`)
 *
 * `id` member.id, `str` member.url (1 to 2048 characters, as a
 * configuration's member URLs), bool member.readOnly, u53 timeoutMs.
 *
 * ## Kind 5, a forwarded member removal (`ForwardedMemberRemoval`)
 *
 * `id` id, u53 timeoutMs.
 *
 * ## Kind 6, a forwarded leadership transfer (`ForwardedLeaderTransfer`)
 *
 * `sstr` target (a node id, or empty when the leader is to pick one), u53
 * timeoutMs.
 *
 * Kinds 4 to 6 are new kinds rather than a new layout of kind 2, so that a
 * node that predates them refuses them as an unknown kind (`400`, which the
 * forwarding member reads as "nothing was done") instead of misreading them.
 *
 * @module
 */

import { type ByteReader, type ByteWriter, MalformedError } from "../../binary/mod.ts";
import { NODE_ID_PATTERN, NODE_ID_RULE } from "../../core/config.ts";
import type {
  ForwardedAnswer,
  ForwardedLeaderTransfer,
  ForwardedMemberAddition,
  ForwardedMemberRemoval,
  ForwardedProposal,
  ForwardedWrite,
} from "../transport.ts";
import { boundedText, NODE_ID_BYTES_MAX, readId } from "./frame_fields.ts";

const IDEMPOTENCY_KEY_CHARS_MAX = 256;
/** Most characters of a member's URL: the bound of a configuration's member URLs. */
const MEMBER_URL_CHARS_MAX = 2048;
const ANSWER_MESSAGE_CHARS_MAX = 64 * 1024;
const ERROR_CODE_PATTERN = /^[a-z_]{1,64}$/;

/**
 * Opens a frame's writer with room for a payload of about `payloadBytes`;
 * `frames.ts` passes one that writes the frame's header first.
 */
export type OpenPayload = (payloadBytes: number) => ByteWriter;

/**
 * Writes a proposal's payload, laid out for its kind (2, 4, 5 or 6); a
 * write's command bytes go in as they are.
 *
 * @param proposal The proposal.
 * @param open Opens the writer, given the payload's size.
 * @returns The writer, the payload written.
 * @throws {TypeError} When `timeoutMs` is not a non-negative safe integer.
 * @throws {RangeError} When the command takes 2^32 - 1 bytes or more, or an
 *   id more than 255 bytes.
 */
export function writeProposal(proposal: ForwardedProposal, open: OpenPayload): ByteWriter {
  switch (proposal.kind) {
    case "addMember":
      return writeMemberAddition(proposal, open);
    case "removeMember":
      return writeMemberRemoval(proposal, open);
    case "transferLeader":
      return writeLeaderTransfer(proposal, open);
    default:
      return writeWrite(proposal, open);
  }
}

function writeWrite(proposal: ForwardedWrite, open: OpenPayload): ByteWriter {
  const key = proposal.idempotencyKey;
  const w = open(4 + proposal.command.length + 4 + (key?.length ?? 0) + 1 + 8);
  w.bytes(proposal.command);
  w.nullableString(key ?? null);
  w.u8(proposal.wait === "accepted" ? 0 : 1);
  w.u53(proposal.timeoutMs, "timeoutMs");
  return w;
}

function writeMemberAddition(proposal: ForwardedMemberAddition, open: OpenPayload): ByteWriter {
  const { id, url, readOnly } = proposal.member;
  const w = open(1 + id.length + 4 + url.length + 1 + 8);
  w.shortString(id);
  w.string(url);
  w.bool(readOnly);
  w.u53(proposal.timeoutMs, "timeoutMs");
  return w;
}

function writeMemberRemoval(proposal: ForwardedMemberRemoval, open: OpenPayload): ByteWriter {
  const w = open(1 + proposal.id.length + 8);
  w.shortString(proposal.id);
  w.u53(proposal.timeoutMs, "timeoutMs");
  return w;
}

function writeLeaderTransfer(proposal: ForwardedLeaderTransfer, open: OpenPayload): ByteWriter {
  const target = proposal.target ?? "";
  const w = open(1 + target.length + 8);
  w.shortString(target);
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
 * Reads a forwarded write's payload (kind 2), checking every bound.
 *
 * @param r The reader, at the payload.
 * @returns The write; it has no `kind` field, as writes are the default.
 * @throws {MalformedError} For anything malformed, naming the field.
 */
export function readProposal(r: ByteReader): ForwardedWrite {
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
 * Reads a forwarded member addition's payload (kind 4), checking every bound.
 *
 * @param r The reader, at the payload.
 * @returns The addition.
 * @throws {MalformedError} For anything malformed, naming the field.
 */
export function readMemberAddition(r: ByteReader): ForwardedMemberAddition {
  const id = readId(r, "member.id");
  const urlAt = r.offset;
  const url = r.string("member.url", 3 * MEMBER_URL_CHARS_MAX);
  if (url === "") throw new MalformedError("member.url", urlAt, "must not be empty");
  boundedText(url, "member.url", urlAt, MEMBER_URL_CHARS_MAX);
  const readOnly = r.bool("member.readOnly");
  const timeoutMs = r.u53("timeoutMs");
  return { kind: "addMember", member: { id, url, readOnly }, timeoutMs };
}

/**
 * Reads a forwarded member removal's payload (kind 5), checking every bound.
 *
 * @param r The reader, at the payload.
 * @returns The removal.
 * @throws {MalformedError} For anything malformed, naming the field.
 */
export function readMemberRemoval(r: ByteReader): ForwardedMemberRemoval {
  const id = readId(r, "id");
  const timeoutMs = r.u53("timeoutMs");
  return { kind: "removeMember", id, timeoutMs };
}

/**
 * Reads a forwarded leadership transfer's payload (kind 6), checking every
 * bound.
 *
 * @param r The reader, at the payload.
 * @returns The transfer; without `target` when the leader is to pick one.
 * @throws {MalformedError} For anything malformed, naming the field.
 */
export function readLeaderTransfer(r: ByteReader): ForwardedLeaderTransfer {
  const targetAt = r.offset;
  const target = r.shortString("target", NODE_ID_BYTES_MAX);
  // Empty stands for "none": no node id is empty.
  if (target !== "" && !NODE_ID_PATTERN.test(target)) {
    throw new MalformedError("target", targetAt, `must be empty or match ${NODE_ID_RULE}`);
  }
  const timeoutMs = r.u53("timeoutMs");
  return { kind: "transferLeader", ...(target === "" ? {} : { target }), timeoutMs };
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
