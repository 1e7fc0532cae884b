/**
 * The receiving side of the peer proof (`auth.ts`): the challenges a node
 * hands out, the sessions they open, and the replay window of each.
 *
 * A challenge is pending from when it is handed out until a request signed
 * under it verifies; it then opens a session, which the sender keeps
 * using with increasing sequence numbers. Everything is bounded:
 *
 * - pending challenges: at most {@linkcode PENDING_MAX}, each forgotten
 *   {@linkcode PENDING_TTL_MS} after it was handed out (the receiver's own
 *   monotonic clock; no one else's is read), the oldest first past the bound;
 * - sessions: only a sender that knows the secret can open one; at most
 *   {@linkcode SESSIONS_PER_SENDER} per sender id and
 *   {@linkcode SESSIONS_MAX} in all, the least recently used forgotten
 *   first. A sender whose session was forgotten gets a `401` with a fresh
 *   challenge and carries on under it;
 * - per session, a window of the last {@linkcode REPLAY_WINDOW} sequence
 *   numbers: a number seen before is a replay, one below the window cannot
 *   be checked and is refused too. Concurrent requests may arrive out of
 *   order, within the window.
 *
 * @module
 */

import { bytesToHex } from "@noble/hashes/utils.js";
import { isNodeId } from "../../core/config.ts";
import {
  CHALLENGE_HEADER,
  CHALLENGE_PATTERN,
  checkSecret,
  FROM_HEADER,
  requestSignature,
  sameSignature,
  SEQ_HEADER,
  SEQ_PATTERN,
  SIGNATURE_HEADER,
  SIGNATURE_PATTERN,
  type SignedRequest,
} from "./auth.ts";

/** Most challenges handed out and not yet used. */
export const PENDING_MAX = 1024;
/** How long a challenge handed out stays usable, ms. */
export const PENDING_TTL_MS = 60_000;
/** Most sessions in all. */
export const SESSIONS_MAX = 1024;
/** Most sessions per sender id (a sender opens a new one each time it restarts). */
export const SESSIONS_PER_SENDER = 8;
/** Sequence numbers per session's replay window. */
export const REPLAY_WINDOW = 4096;

/** A request to verify. */
export interface VerifyInput {
  /** HTTP method. */
  readonly method: string;
  /** RPC path relative to the node's base URL, e.g. `/raft/messages`. */
  readonly path: string;
  /** The request's headers. */
  readonly headers: Headers;
  /** The exact raw body (empty for a stream). */
  readonly body: Uint8Array;
}

/**
 * Outcome of a verification: the signed request, or why it was refused
 * and, when the sender should sign again under a new challenge, that
 * challenge.
 */
export type VerifyResult =
  | { readonly ok: true; readonly request: SignedRequest }
  | {
    readonly ok: false;
    readonly reason: string;
    readonly challenge: string | null;
    /**
     * The request, when its signature is right but its challenge is
     * forgotten (this node restarted): the refusal may be signed for it, so
     * that its sender knows the request was not acted on.
     */
    readonly forgotten: SignedRequest | null;
  };

/** Options of {@linkcode PeerVerifier}. */
export interface PeerVerifierOptions {
  /** The cluster secret. */
  readonly secret: string;
  /** The receiver's monotonic clock, ms. Default `performance.now()`. */
  readonly now?: () => number;
}

/**
 * Verifies signed peer requests and refuses replays.
 *
 * @example A request without a challenge gets one; signed under it, it passes once
 * ```ts
 * import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
 * import { requestSignature } from "./auth.ts";
 * import { PeerVerifier } from "./verifier.ts";
 *
 * const verifier = new PeerVerifier({ secret: "s3cret" });
 * const body = new Uint8Array([1]);
 * const input = (headers: Record<string, string>) =>
 *   ({ method: "POST", path: "/raft/messages", headers: new Headers(headers), body });
 * const first = verifier.verify(input({ "X-Raft-From": "n1" }));
 * ok(!first.ok && first.challenge !== null);
 * const signed = { method: "POST", path: "/raft/messages", from: "n1", challenge: first.challenge, seq: 1, body };
 * const headers = {
 *   "X-Raft-From": "n1", "X-Raft-Challenge": first.challenge, "X-Raft-Seq": "1",
 *   "X-Raft-Signature": requestSignature("s3cret", signed),
 * };
 * deepStrictEqual(verifier.verify(input(headers)), { ok: true, request: signed });
 * strictEqual(verifier.verify(input(headers)).ok, false); // the replay
 * ```
 */
export class PeerVerifier {
  readonly #secret: string;
  readonly #now: () => number;
  /** Challenge → when handed out; insertion-ordered, the oldest first. */
  readonly #pending = new Map<string, number>();
  /** Challenge → session; insertion order is use order, the least recent first. */
  readonly #sessions = new Map<string, Session>();

  /**
   * Creates a verifier.
   *
   * @param options The secret and clock.
   * @throws {TypeError} When the secret is empty.
   */
  constructor(options: PeerVerifierOptions) {
    this.#secret = checkSecret(options.secret);
    this.#now = options.now ?? (() => performance.now());
  }

  /** Challenges handed out and not yet used. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Sessions open. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /**
   * Hands out a fresh challenge.
   *
   * @returns 32 lowercase hex digits.
   */
  challenge(): string {
    const now = this.#now();
    for (const [challenge, at] of this.#pending) {
      if (now - at <= PENDING_TTL_MS && this.#pending.size < PENDING_MAX) break;
      this.#pending.delete(challenge);
    }
    const challenge = bytesToHex(crypto.getRandomValues(new Uint8Array(16)));
    this.#pending.set(challenge, now);
    return challenge;
  }

  /**
   * Verifies a request's proof, and records its sequence number when (and
   * only when) it is authentic.
   *
   * @param input The request.
   * @returns The signed request, or the reason for refusal (with a fresh
   *   challenge when the sender should sign again).
   */
  verify(input: VerifyInput): VerifyResult {
    const { headers } = input;
    const from = headers.get(FROM_HEADER);
    if (from === null || !isNodeId(from)) {
      return this.#refuse(`missing or malformed ${FROM_HEADER}`, false);
    }
    const challenge = headers.get(CHALLENGE_HEADER);
    if (challenge === null) {
      return this.#refuse(`no ${CHALLENGE_HEADER} yet: sign under the one in this answer`, true);
    }
    if (!CHALLENGE_PATTERN.test(challenge)) {
      return this.#refuse(`malformed ${CHALLENGE_HEADER}: 32 lowercase hex digits`, true);
    }
    const seqText = headers.get(SEQ_HEADER);
    if (seqText === null || !SEQ_PATTERN.test(seqText) || !Number.isSafeInteger(+seqText)) {
      return this.#refuse(`missing or malformed ${SEQ_HEADER}: a decimal integer from 1`, false);
    }
    const signature = headers.get(SIGNATURE_HEADER);
    if (signature === null || !SIGNATURE_PATTERN.test(signature)) {
      return this.#refuse(
        `missing or malformed ${SIGNATURE_HEADER}: 64 lowercase hex digits`,
        false,
      );
    }
    const seq = Number(seqText);
    const request: SignedRequest = {
      method: input.method,
      path: input.path,
      from,
      challenge,
      seq,
      body: input.body,
    };
    // Computed only where the answer needs it: a replay is refused without it.
    const authentic = () => sameSignature(requestSignature(this.#secret, request), signature);
    const session = this.#sessions.get(challenge);
    const pendingSince = this.#pending.get(challenge);
    if (session === undefined) {
      if (pendingSince === undefined || this.#now() - pendingSince > PENDING_TTL_MS) {
        return {
          ...this.#refuse(
            `unknown or expired ${CHALLENGE_HEADER}: sign under the one in this answer`,
            true,
          ),
          forgotten: authentic() ? request : null,
        };
      }
    } else {
      if (session.from !== from) {
        return this.#refuse(`${CHALLENGE_HEADER} belongs to another sender`, true);
      }
      const problem = session.window.check(seq);
      if (problem !== null) return this.#refuse(problem, false);
    }
    if (!authentic()) {
      return this.#refuse(
        `wrong ${SIGNATURE_HEADER}: the sender's cluster secret differs from this node's`,
        false,
      );
    }
    this.#admit(challenge, from, session).window.record(seq);
    return { ok: true, request };
  }

  /** The session of an authentic request: opened from a pending challenge, or moved to most recently used. */
  #admit(challenge: string, from: string, existing: Session | undefined): Session {
    if (existing !== undefined) {
      this.#sessions.delete(challenge);
      this.#sessions.set(challenge, existing);
      return existing;
    }
    this.#pending.delete(challenge);
    const session: Session = { from, window: new ReplayWindow(REPLAY_WINDOW) };
    // A sender opens a session per restart: past its bound, its least
    // recently used ones go (the map's order is use order).
    const own = [...this.#sessions].filter(([, other]) => other.from === from);
    for (let i = 0; i <= own.length - SESSIONS_PER_SENDER; i++) {
      this.#sessions.delete(own[i]![0]);
    }
    this.#sessions.set(challenge, session);
    while (this.#sessions.size > SESSIONS_MAX) {
      this.#sessions.delete(this.#sessions.keys().next().value!);
    }
    return session;
  }

  #refuse(reason: string, withChallenge: boolean): Extract<VerifyResult, { ok: false }> {
    return {
      ok: false,
      reason,
      challenge: withChallenge ? this.challenge() : null,
      forgotten: null,
    };
  }
}

interface Session {
  readonly from: string;
  readonly window: ReplayWindow;
}

/**
 * The sequence numbers seen in a session: the highest, and a bit per number
 * in the window below it.
 */
export class ReplayWindow {
  readonly #size: number;
  readonly #bits: Uint32Array;
  #highest = 0;

  /**
   * Creates an empty window.
   *
   * @param size How many numbers below the highest are remembered; a multiple of 32.
   */
  constructor(size: number) {
    this.#size = size;
    this.#bits = new Uint32Array(size / 32);
  }

  /**
   * Tells why `seq` cannot be accepted, or null when it can.
   *
   * @param seq A sequence number, a safe integer from 1.
   * @returns The reason, or null.
   */
  check(seq: number): string | null {
    if (seq + this.#size <= this.#highest) {
      return `${SEQ_HEADER} ${seq} is too far behind ${this.#highest} to check for replay`;
    }
    if (seq <= this.#highest && this.#has(seq)) {
      return `${SEQ_HEADER} ${seq} was already used (a replay)`;
    }
    return null;
  }

  /**
   * Records `seq`, which {@linkcode ReplayWindow.check} accepted.
   *
   * @param seq The sequence number.
   */
  record(seq: number): void {
    if (seq > this.#highest) {
      // Numbers between the old highest and `seq` were not seen: clear their bits.
      const from = Math.max(this.#highest + 1, seq - this.#size + 1);
      for (let n = from; n < seq; n++) this.#set(n, false);
      this.#highest = seq;
    }
    this.#set(seq, true);
  }

  #has(seq: number): boolean {
    const slot = seq % this.#size;
    return (this.#bits[slot >>> 5]! & (1 << (slot & 31))) !== 0;
  }

  #set(seq: number, on: boolean): void {
    const slot = seq % this.#size;
    const word = this.#bits[slot >>> 5]!;
    const bit = 1 << (slot & 31);
    this.#bits[slot >>> 5] = on ? word | bit : word & ~bit;
  }
}
