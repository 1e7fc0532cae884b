/**
 * Seals for the frames of a secured stream (`POST /raft/stream`). The
 * request that opens a stream is signed like any peer request (over an
 * empty body); each frame written after it is followed by a seal frame:
 *
 * ```
 * u32 length = 18 | u8 version = 1 | u8 kind = 4 (seal) | 16-byte tag
 * ```
 *
 * where the tag is the first 16 bytes of HMAC-SHA256, keyed with the
 * stream's key (`streamKey` in `auth.ts`: derived from the secret and the
 * opening request), over the frame's number in the stream (u64 big-endian,
 * from 0) and the whole frame. So no frame can be forged, altered,
 * reordered, replayed or moved to another stream; one cut off at the end is
 * lost, which Raft tolerates.
 *
 * @module
 */

import { hmacSha256 } from "./hmac.ts";

/** The kind byte of a seal frame. */
const SEAL_KIND = 4;
/** Bytes of a seal's tag. */
const TAG_BYTES = 16;
/** Bytes of a whole seal frame. */
const SEAL_FRAME_BYTES: number = 6 + TAG_BYTES;

/**
 * Seals the frames of one stream, in the order they are written.
 *
 * @example A sealer and an opener with the same key agree, in order
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { FrameOpener, FrameSealer } from "./stream_seal.ts";
 *
 * const key = new Uint8Array(32);
 * const sealer = new FrameSealer(key);
 * const opener = new FrameOpener(key);
 * const a = new Uint8Array([6, 0, 0, 0, 1, 1, 0, 0, 0, 0]);
 * const sealA = sealer.seal(a);
 * strictEqual(opener.open(a, sealA), null);
 * strictEqual(typeof opener.open(a, sealA), "string"); // the same seal again: out of order
 * ```
 */
export class FrameSealer {
  readonly #key: Uint8Array;
  #count = 0;

  /**
   * Creates the sealer of a stream.
   *
   * @param key The stream's key.
   */
  constructor(key: Uint8Array) {
    this.#key = key;
  }

  /**
   * Seals the next frame.
   *
   * @param frame The whole frame, as written to the stream just before.
   * @returns The seal frame to write right after it.
   */
  seal(frame: Uint8Array): Uint8Array {
    const seal = new Uint8Array(SEAL_FRAME_BYTES);
    seal[0] = SEAL_FRAME_BYTES - 4;
    seal[4] = 1;
    seal[5] = SEAL_KIND;
    seal.set(tag(this.#key, this.#count++, frame), 6);
    return seal;
  }
}

/** Checks the seals of one stream's frames, in the order they arrive. */
export class FrameOpener {
  readonly #key: Uint8Array;
  #count = 0;

  /**
   * Creates the opener of a stream.
   *
   * @param key The stream's key.
   */
  constructor(key: Uint8Array) {
    this.#key = key;
  }

  /**
   * Checks a frame against the seal that followed it.
   *
   * @param frame The whole frame.
   * @param seal The whole frame after it, which must be its seal.
   * @returns Null when the seal is right, else what is wrong.
   */
  open(frame: Uint8Array, seal: Uint8Array): string | null {
    const number = this.#count++;
    if (!isSeal(seal)) return `frame ${number} is not followed by its seal`;
    const expected = tag(this.#key, number, frame);
    let diff = 0;
    for (let i = 0; i < TAG_BYTES; i++) diff |= expected[i]! ^ seal[6 + i]!;
    return diff === 0 ? null : `frame ${number} has a wrong seal`;
  }
}

/**
 * Whether a frame is a seal frame.
 *
 * @param frame A whole frame.
 * @returns True for a well-formed seal frame.
 */
function isSeal(frame: Uint8Array): boolean {
  return frame.length === SEAL_FRAME_BYTES && frame[0] === SEAL_FRAME_BYTES - 4 &&
    frame[1] === 0 && frame[2] === 0 && frame[3] === 0 && frame[4] === 1 &&
    frame[5] === SEAL_KIND;
}

function tag(key: Uint8Array, number: number, frame: Uint8Array): Uint8Array {
  const counter = new Uint8Array(8);
  new DataView(counter.buffer).setBigUint64(0, BigInt(number));
  return hmacSha256(key, [counter, frame]).subarray(0, TAG_BYTES);
}
