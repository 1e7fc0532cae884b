/**
 * Bytes for fuzzing the decoders and the peer routes: valid peer frames of
 * every kind, random bytes, and edits that damage them (flip, set, insert,
 * delete, cut, write an extreme count), with the length prefix made right
 * again where asked so that the damage reaches the payload decoders.
 *
 * @module
 */

import fc from "fast-check";
import {
  encodeForwardedAnswer,
  encodeForwardedProposal,
  encodeMessages,
} from "../../src/transport/http/frames.ts";
import type { ForwardedAnswer, ForwardedProposal } from "../../src/transport/transport.ts";
import { messageArb } from "./_messages.ts";

// ------------------------------------------------------------------ byte edits

/** One way to damage bytes; positions are taken modulo the length. */
export type ByteEdit =
  | { readonly k: "flip"; readonly at: number; readonly bit: number }
  | { readonly k: "set"; readonly at: number; readonly value: number }
  | { readonly k: "insert"; readonly at: number; readonly bytes: Uint8Array }
  | { readonly k: "delete"; readonly at: number; readonly count: number }
  | { readonly k: "cut"; readonly at: number }
  | { readonly k: "extreme"; readonly at: number; readonly bytes: Uint8Array };

/** Byte edits: most are small; `extreme` writes a count or length of 0, 2^31 or all ones. */
export const byteEditArb: fc.Arbitrary<ByteEdit> = fc.oneof(
  fc.record({ k: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ k: fc.constant("set" as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({
    k: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }),
  }),
  fc.record({
    k: fc.constant("delete" as const),
    at: fc.nat(),
    count: fc.integer({ min: 1, max: 9 }),
  }),
  fc.record({ k: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({
    k: fc.constant("extreme" as const),
    at: fc.nat(),
    bytes: fc.constantFrom(
      new Uint8Array([0xff, 0xff, 0xff, 0xff]),
      new Uint8Array([0xfe, 0xff, 0xff, 0xff]),
      new Uint8Array([0, 0, 0, 0x80]),
      new Uint8Array([0, 0, 0, 0]),
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0]),
      new Uint8Array([0, 0, 0, 0, 0, 0, 0x20, 0]),
      new Uint8Array([0, 0, 0, 0, 0, 0, 0xf0, 0x7f]),
    ),
  }),
);

/**
 * Applies edits in order.
 *
 * @param input The bytes, left unchanged.
 * @param edits The edits.
 * @returns The damaged copy.
 */
export function applyEdits(input: Uint8Array, edits: readonly ByteEdit[]): Uint8Array {
  let bytes = input.slice();
  for (const e of edits) {
    const at = bytes.length === 0 ? 0 : e.at % bytes.length;
    switch (e.k) {
      case "flip":
        if (bytes.length > 0) bytes[at]! ^= 1 << e.bit;
        break;
      case "set":
        if (bytes.length > 0) bytes[at] = e.value;
        break;
      case "insert":
        bytes = new Uint8Array([...bytes.subarray(0, at), ...e.bytes, ...bytes.subarray(at)]);
        break;
      case "delete":
        bytes = new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + e.count)]);
        break;
      case "cut":
        bytes = bytes.slice(0, at);
        break;
      case "extreme":
        bytes.set(e.bytes.subarray(0, Math.max(0, bytes.length - at)), at);
        break;
    }
  }
  return bytes;
}

export const editsArb: fc.Arbitrary<ByteEdit[]> = fc.array(byteEditArb, {
  minLength: 1,
  maxLength: 4,
});

/**
 * Runs a decoder on bytes from outside: it must return, or throw `expected`.
 *
 * @param decode The decoder.
 * @param expected Its documented error.
 * @returns What it returned, or undefined when it refused the input.
 * @throws {Error} Naming what else it threw.
 */
export function decodeOrRefuse<T>(
  decode: () => T,
  expected: abstract new (...args: never[]) => Error,
): T | undefined {
  try {
    return decode();
  } catch (e) {
    if (e instanceof expected) return undefined;
    throw new Error(
      `the decoder threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}, ` +
        `not a ${expected.name}`,
      { cause: e },
    );
  }
}

export const proposalArb: fc.Arbitrary<ForwardedProposal> = fc.record({
  command: fc.uint8Array({ maxLength: 64 }),
  wait: fc.constantFrom("accepted" as const, "committed" as const),
  timeoutMs: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
}).chain((p) =>
  fc.option(fc.string({ minLength: 1, maxLength: 8 }), { freq: 2 }).map((key) =>
    key === null ? p : { ...p, idempotencyKey: key }
  )
);

export const answerArb: fc.Arbitrary<ForwardedAnswer> = fc.oneof(
  fc.record({ ok: fc.constant(true as const), value: fc.jsonValue({ maxDepth: 3 }) }),
  fc.record({
    ok: fc.constant(false as const),
    code: fc.constantFrom("not_leader", "rejected", "timeout", "x"),
    message: fc.string({ maxLength: 40 }),
  }),
  fc.record({
    ok: fc.constant(false as const),
    code: fc.constantFrom("cas_failed", "unavailable"),
    message: fc.string({ maxLength: 40 }),
    details: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), {
      maxKeys: 3,
    }),
  }),
);

/** A valid frame of any kind. */
export const frameArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: fc.array(messageArb, { maxLength: 4 }).map(encodeMessages) },
  { weight: 1, arbitrary: proposalArb.map(encodeForwardedProposal) },
  { weight: 1, arbitrary: answerArb.map(encodeForwardedAnswer) },
);

/** Writes the u32 length prefix that a frame of these bytes has. */
export function fixLength(frame: Uint8Array): Uint8Array {
  if (frame.length < 4) return frame;
  const out = frame.slice();
  new DataView(out.buffer).setUint32(0, out.length - 4, true);
  return out;
}

/** Bent frames, half of them with their length prefix made right again. */
export const bentFrameArb: fc.Arbitrary<Uint8Array> = fc.tuple(frameArb, editsArb, fc.boolean())
  .map((
    [frame, edits, fix],
  ) => fix ? fixLength(applyEdits(frame, edits)) : applyEdits(frame, edits));

/** Random bytes, some of them behind a valid header so that the payload decoders see them. */
export const randomFrameArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 256 }),
  fc.tuple(fc.integer({ min: 1, max: 3 }), fc.uint8Array({ maxLength: 256 })).map(([kind, body]) =>
    fixLength(new Uint8Array([0, 0, 0, 0, 1, kind, ...body]))
  ),
);
