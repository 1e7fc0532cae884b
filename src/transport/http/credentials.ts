/**
 * The sending side of the peer proof (`auth.ts`): per peer, the challenge
 * it handed out and the next sequence number under it.
 *
 * A sender starts with no challenge for a peer. Its first request goes out
 * unsigned and is refused with a `401` that carries a challenge; the
 * sender learns it ({@linkcode PeerCredentials.learn}) and sends again,
 * signed. From then on every request to that peer is signed under the same
 * challenge with the next sequence number, until the peer forgets it (it
 * restarted): then the same `401` hands out a new one.
 *
 * In an open cluster (`--insecure`) requests carry only `X-Raft-From`.
 *
 * @module
 */

import {
  answerSignature,
  CHALLENGE_HEADER,
  CHALLENGE_PATTERN,
  checkSecret,
  FROM_HEADER,
  requestSignature,
  sameSignature,
  SEQ_HEADER,
  SIGNATURE_HEADER,
  type SignedRequest,
  streamKey,
} from "./auth.ts";

/** A request's proof: its headers, and what was signed (null in an open cluster). */
export interface Proof {
  /** Headers to send: `X-Raft-From` and, in a secured cluster, the signature's. */
  readonly headers: Record<string, string>;
  /** What was signed; null when the request is unsigned. */
  readonly signed: SignedRequest | null;
}

/**
 * Signs a node's requests to its peers.
 *
 * @example The first request is unsigned; the peer's 401 hands out the challenge
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { PeerCredentials } from "./credentials.ts";
 *
 * const credentials = new PeerCredentials("s3cret");
 * const url = "http://127.0.0.1:7001";
 * const body = new Uint8Array(0);
 * strictEqual(credentials.sign(url, "n1", "POST", "/raft/messages", body).signed, null);
 * const refusal = new Response(null, { status: 401, headers: { "X-Raft-Challenge": "ab".repeat(16) } });
 * strictEqual(credentials.learn(url, refusal), true);
 * strictEqual(credentials.sign(url, "n1", "POST", "/raft/messages", body).signed?.seq, 1);
 * strictEqual(credentials.sign(url, "n1", "POST", "/raft/messages", body).signed?.seq, 2);
 * ```
 */
export class PeerCredentials {
  readonly #secret: string | null;
  /** Peer base URL → its challenge and the last sequence number used under it. */
  readonly #sessions = new Map<string, { challenge: string; seq: number }>();

  /**
   * Creates the credentials of a node.
   *
   * @param secret The cluster secret, or null in an open cluster.
   * @throws {TypeError} When the secret is an empty string.
   */
  constructor(secret: string | null) {
    this.#secret = secret === null ? null : checkSecret(secret);
  }

  /** Whether requests are signed. */
  get secured(): boolean {
    return this.#secret !== null;
  }

  /**
   * Whether a challenge of this peer is known, so that the next request to
   * it goes out signed.
   *
   * @param url The peer's base URL.
   * @returns True once a challenge was learned (and not forgotten).
   */
  knows(url: string): boolean {
    return this.#sessions.has(url);
  }

  /**
   * The proof of one request.
   *
   * @param url The peer's base URL.
   * @param from This node's id.
   * @param method HTTP method.
   * @param path RPC path relative to the peer's base URL.
   * @param body The exact body (empty for a stream).
   * @returns The headers to send and what they sign.
   */
  sign(url: string, from: string, method: string, path: string, body: Uint8Array): Proof {
    const session = this.#sessions.get(url);
    if (this.#secret === null || session === undefined) {
      return { headers: { [FROM_HEADER]: from }, signed: null };
    }
    session.seq++;
    const signed: SignedRequest = {
      method,
      path,
      from,
      challenge: session.challenge,
      seq: session.seq,
      body,
    };
    return {
      headers: {
        [FROM_HEADER]: from,
        [CHALLENGE_HEADER]: session.challenge,
        [SEQ_HEADER]: String(session.seq),
        [SIGNATURE_HEADER]: requestSignature(this.#secret, signed),
      },
      signed,
    };
  }

  /**
   * Learns the challenge a peer's refusal hands out.
   *
   * @param url The peer's base URL.
   * @param response The peer's answer.
   * @returns True when it was a `401` with a challenge: send the request
   *   again (signed under it).
   */
  learn(url: string, response: Response): boolean {
    if (this.#secret === null || response.status !== 401) return false;
    const challenge = response.headers.get(CHALLENGE_HEADER);
    if (challenge === null || !CHALLENGE_PATTERN.test(challenge)) return false;
    this.#sessions.set(url, { challenge, seq: 0 });
    return true;
  }

  /**
   * Whether a signed request's answer carries the peer's signature.
   *
   * @param signed What the request signed (null: unsigned, nothing to check).
   * @param response The answer.
   * @param body The answer's exact body.
   * @returns True when the answer is the peer's, or the request was unsigned.
   */
  answerIsAuthentic(signed: SignedRequest | null, response: Response, body: Uint8Array): boolean {
    if (this.#secret === null || signed === null) return true;
    const signature = response.headers.get(SIGNATURE_HEADER);
    return signature !== null &&
      sameSignature(
        signature,
        answerSignature(this.#secret, signed.challenge, signed.seq, response.status, body),
      );
  }

  /**
   * The key that seals the frames of a stream opened by `signed`.
   *
   * @param signed The stream's opening request.
   * @returns The key, or null for an unsigned stream.
   */
  streamKey(signed: SignedRequest | null): Uint8Array | null {
    return this.#secret === null || signed === null ? null : streamKey(this.#secret, signed);
  }

  /**
   * Forgets a peer's challenge: it was removed from the cluster, or its
   * stream ended and it may have restarted. The next request is unsigned,
   * and the peer's refusal hands out a fresh challenge.
   *
   * @param url The peer's base URL.
   */
  forget(url: string): void {
    this.#sessions.delete(url);
  }
}
