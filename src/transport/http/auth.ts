/**
 * Proof of the cluster secret on peer requests (API.md section 4), with no
 * clock in it: freshness comes from the receiver's challenge and the
 * sender's sequence numbers, never from comparing wall clocks between
 * nodes (nothing in WaterCraft depends on clock sync).
 *
 * A peer request carries `X-Raft-From: <sender id>` and, in a secured
 * cluster:
 *
 * - `X-Raft-Challenge`: a challenge the receiver issued (32 lowercase hex
 *   digits). A receiver hands a fresh one out in the `X-Raft-Challenge`
 *   header of a `401` that refuses a request for having none, or one it
 *   does not know (it restarted, or forgot it): the sender then signs with
 *   it and sends again.
 * - `X-Raft-Seq`: the sender's sequence number under that challenge, a
 *   decimal integer from 1, new for every request. The receiver refuses a
 *   number it has seen (a replay) or one too far behind the highest it has
 *   seen to tell (see `verifier.ts`).
 * - `X-Raft-Signature`: lowercase hex HMAC-SHA256 keyed with the secret
 *   over `"watercraft-request\n" method "\n" path "\n" from "\n" challenge
 *   "\n" seq "\n"` followed by the exact body bytes.
 *
 * `path` is the RPC path relative to the node's base URL (`/raft/messages`),
 * not the full request path, so that a node mounted under a prefix or
 * behind a path-rewriting proxy still verifies. None of the signed fields
 * can hold a newline, so the signed text is unambiguous.
 *
 * The answer to a forwarded write is signed too (`X-Raft-Signature` on the
 * response, over `"watercraft-answer\n" challenge "\n" seq "\n" status
 * "\n"` and the body), so that no one on the path can tell a client that a
 * write committed when it did not, or the other way round. A stream's frames are sealed one by one with
 * a key derived from its opening request (`stream_seal.ts`).
 *
 * HMAC-SHA256 is synchronous (`hmac.ts`), so that signing adds no turn of
 * the event loop to a request.
 *
 * @module
 */

import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { hmacSha256 } from "./hmac.ts";

/** Header naming the sender of a peer request. */
export const FROM_HEADER = "X-Raft-From";
/** Header with the receiver's challenge the request is signed under (and, on a 401, a fresh one). */
export const CHALLENGE_HEADER = "X-Raft-Challenge";
/** Header with the request's sequence number under its challenge. */
export const SEQ_HEADER = "X-Raft-Seq";
/** Header with the HMAC signature of a request or of a forwarded write's answer. */
export const SIGNATURE_HEADER = "X-Raft-Signature";

/** What a challenge looks like: 16 random bytes as lowercase hex. */
export const CHALLENGE_PATTERN: RegExp = /^[0-9a-f]{32}$/;
/** What a sequence number looks like: a decimal integer from 1, at most 16 digits. */
export const SEQ_PATTERN: RegExp = /^[1-9][0-9]{0,15}$/;
/** What a signature looks like: 32 bytes as lowercase hex. */
export const SIGNATURE_PATTERN: RegExp = /^[0-9a-f]{64}$/;

/** The fields of a request that its signature covers. */
export interface SignedRequest {
  /** HTTP method, e.g. `POST`. */
  readonly method: string;
  /** RPC path relative to the peer's base URL, e.g. `/raft/messages`. */
  readonly path: string;
  /** The sender's node id. */
  readonly from: string;
  /** The receiver's challenge. */
  readonly challenge: string;
  /** The sequence number under the challenge. */
  readonly seq: number;
  /** The exact body (empty for a stream, whose frames are sealed instead). */
  readonly body: Uint8Array;
}

/**
 * Signs a request.
 *
 * @param secret The cluster secret.
 * @param request What to sign.
 * @returns The signature, 64 lowercase hex digits.
 * @throws {TypeError} When the secret is empty.
 *
 * @example Any change to what is signed changes the signature
 * ```ts
 * import { notStrictEqual, strictEqual } from "node:assert/strict";
 * import { requestSignature } from "./auth.ts";
 *
 * const request = {
 *   method: "POST", path: "/raft/messages", from: "n1",
 *   challenge: "00".repeat(16), seq: 1, body: new Uint8Array([1, 2, 3]),
 * };
 * const signature = requestSignature("s3cret", request);
 * strictEqual(signature.length, 64);
 * notStrictEqual(requestSignature("s3cret", { ...request, seq: 2 }), signature);
 * ```
 */
export function requestSignature(secret: string, request: SignedRequest): string {
  return bytesToHex(hmacSha256(secretKey(secret), [
    utf8ToBytes(
      `watercraft-request\n${request.method.toUpperCase()}\n${request.path}\n${request.from}\n${request.challenge}\n${request.seq}\n`,
    ),
    request.body,
  ]));
}

/**
 * Signs the answer to a signed request (a forwarded write's).
 *
 * @param secret The cluster secret.
 * @param challenge The request's challenge.
 * @param seq The request's sequence number.
 * @param status The answer's HTTP status.
 * @param body The exact answer body.
 * @returns The signature, 64 lowercase hex digits.
 * @throws {TypeError} When the secret is empty.
 */
export function answerSignature(
  secret: string,
  challenge: string,
  seq: number,
  status: number,
  body: Uint8Array,
): string {
  return bytesToHex(hmacSha256(secretKey(secret), [
    utf8ToBytes(`watercraft-answer\n${challenge}\n${seq}\n${status}\n`),
    body,
  ]));
}

/**
 * The key that seals the frames of one stream, derived from the request
 * that opened it: a stream's frames cannot be spliced into another stream.
 *
 * @param secret The cluster secret.
 * @param request The stream's opening request (its body is empty).
 * @returns A 32-byte key.
 * @throws {TypeError} When the secret is empty.
 */
export function streamKey(secret: string, request: SignedRequest): Uint8Array {
  return hmacSha256(secretKey(secret), [
    utf8ToBytes(`watercraft-stream\n${request.from}\n${request.challenge}\n${request.seq}`),
  ]);
}

/**
 * Compares two hex signatures in time that depends only on their length,
 * not on where they differ.
 *
 * @param a One signature.
 * @param b The other.
 * @returns Whether they are equal.
 */
export function sameSignature(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Checks a cluster secret as the library and the CLI take it.
 *
 * @param secret The candidate.
 * @returns The secret.
 * @throws {TypeError} When it is not a non-empty string.
 */
export function checkSecret(secret: unknown): string {
  if (typeof secret !== "string" || secret.length === 0) {
    throw new TypeError("The cluster secret must be a non-empty string");
  }
  return secret;
}

/** HMAC key bytes by secret; a node has one secret, so a tiny bound suffices. */
const keys = new Map<string, Uint8Array>();

function secretKey(secret: string): Uint8Array {
  checkSecret(secret);
  let key = keys.get(secret);
  if (key === undefined) {
    key = utf8ToBytes(secret);
    keys.set(secret, key);
    if (keys.size > 8) keys.delete(keys.keys().next().value!);
  }
  return key;
}
