/**
 * Proof of the cluster secret on peer requests (API.md section 4).
 *
 * Every peer request carries `X-Raft-From: <sender id>`. When the cluster has
 * a secret, it also carries:
 *
 * - `X-Raft-Time`: the sender's clock, ms since the Unix epoch;
 * - `X-Raft-Nonce`: 16 random bytes, 32 lowercase hex digits;
 * - `X-Raft-Signature`: lowercase hex HMAC-SHA256 with the secret as key over
 *   `method "\n" path "\n" from "\n" time "\n" nonce "\n" sha256hex(body)`.
 *
 * `path` is the RPC path relative to the node's base URL (`/raft/messages`,
 * `/raft/forward`), not the full request path, so that a node mounted under
 * a prefix or behind a path-rewriting proxy still verifies.
 *
 * A verifier rejects a request whose time is more than 5 minutes away from
 * its own clock, and a nonce it has already accepted within that window
 * (replay). Its nonce cache is bounded; when it must evict a nonce that is
 * still inside the window, it remembers that sender's largest evicted time
 * and from then on refuses that sender's requests stamped at or before it,
 * so a replay is refused even after eviction.
 *
 * Clocks: consensus never depends on clocks (Raft counts ticks, and entry
 * times are informational), but authentication does: it tolerates at most 5
 * minutes of clock difference between nodes. Nodes whose clocks differ by
 * more refuse each other's requests with `401 unauthorized`; keep clocks
 * synchronised (NTP) when a secret is set.
 *
 * Only Web standards are used (`crypto.subtle`, `crypto.getRandomValues`),
 * so this runs on Deno, Bun, Node 20 and edge runtimes.
 *
 * @module
 */

import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { isNodeId } from "../../core/config.ts";

/** Header naming the sender of a peer request. */
export const FROM_HEADER = "X-Raft-From";
/** Header with the sender's clock, ms since the epoch. */
export const TIME_HEADER = "X-Raft-Time";
/** Header with the request's random nonce. */
export const NONCE_HEADER = "X-Raft-Nonce";
/** Header with the HMAC signature. */
export const SIGNATURE_HEADER = "X-Raft-Signature";

/** Largest accepted difference between the sender's and the verifier's clock: 5 minutes. */
export const AUTH_WINDOW_MS: number = 5 * 60_000;

/** Default bound on the nonces a verifier remembers. */
export const NONCE_CACHE_MAX: number = 100_000;

const TIME_PATTERN = /^\d{1,16}$/;
const NONCE_PATTERN = /^[0-9a-f]{32}$/;
const SIGNATURE_PATTERN = /^[0-9a-f]{64}$/;

const encoder = new TextEncoder();

/** What {@linkcode signRequest} signs. */
export interface SignRequestOptions {
  /** The cluster secret. */
  readonly secret: string;
  /** The sender's node id. */
  readonly from: string;
  /** HTTP method, e.g. `POST`. */
  readonly method: string;
  /** RPC path relative to the peer's base URL, e.g. `/raft/messages`. */
  readonly path: string;
  /** The exact body that will be sent (a string is signed as its UTF-8 bytes). */
  readonly body: string | Uint8Array;
  /** The sender's clock; default `Date.now()`. */
  readonly nowMs?: number;
}

/**
 * Signs a peer request.
 *
 * @param options The secret, sender and request.
 * @returns The headers to send: `X-Raft-From`, `X-Raft-Time`, `X-Raft-Nonce`,
 *   `X-Raft-Signature`.
 * @throws {TypeError} When the secret is empty.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { signRequest } from "./auth.ts";
 *
 * const headers = await signRequest({ secret: "s3cret", from: "n1", method: "POST", path: "/raft/messages", body: "{}" });
 * strictEqual(headers["X-Raft-From"], "n1");
 * strictEqual(headers["X-Raft-Signature"]!.length, 64);
 * ```
 */
export async function signRequest(options: SignRequestOptions): Promise<Record<string, string>> {
  const key = await hmacKey(options.secret);
  const time = String(Math.floor(options.nowMs ?? Date.now()));
  const nonce = bytesToHex(crypto.getRandomValues(new Uint8Array(16)));
  const bodyHash = await sha256Hex(options.body);
  const mac = await crypto.subtle.sign(
    "HMAC",
    key,
    encoder.encode(canonical(options.method, options.path, options.from, time, nonce, bodyHash)),
  );
  return {
    [FROM_HEADER]: options.from,
    [TIME_HEADER]: time,
    [NONCE_HEADER]: nonce,
    [SIGNATURE_HEADER]: bytesToHex(new Uint8Array(mac)),
  };
}

/** A request to verify. */
export interface VerifyRequestInput {
  /** HTTP method. */
  readonly method: string;
  /** RPC path relative to the node's base URL, e.g. `/raft/messages`. */
  readonly path: string;
  /** The request's headers. */
  readonly headers: Headers;
  /** The exact raw body received. */
  readonly body: string | Uint8Array;
  /** The verifier's clock; default `Date.now()`. */
  readonly nowMs?: number;
}

/** Outcome of a verification: the authenticated sender, or why it failed. */
export type VerifyResult =
  | { readonly ok: true; readonly from: string }
  | { readonly ok: false; readonly reason: string };

/** Options of {@linkcode createRequestVerifier}. */
export interface RequestVerifierOptions {
  /** The cluster secret. */
  readonly secret: string;
  /** Accepted clock difference, ms. Default {@linkcode AUTH_WINDOW_MS}. */
  readonly windowMs?: number;
  /** Most nonces remembered. Default {@linkcode NONCE_CACHE_MAX}. */
  readonly nonceCacheMax?: number;
}

/** Checks signed peer requests; owns the nonce cache that refuses replays. */
export interface RequestVerifier {
  /**
   * Verifies a request's headers and signature, and records its nonce when
   * (and only when) the request is authentic.
   *
   * @param input The request.
   * @returns The authenticated sender, or the reason for refusal.
   */
  verifyRequest(input: VerifyRequestInput): Promise<VerifyResult>;
  /** Nonces currently remembered. */
  readonly nonces: number;
}

/**
 * Creates a verifier for requests signed with {@linkcode signRequest}.
 *
 * @param options The secret and limits.
 * @returns The verifier.
 * @throws {TypeError} When the secret is empty.
 * @throws {RangeError} When a limit is not a positive integer.
 *
 * @example Sign, verify, refuse the replay
 * ```ts
 * import { deepStrictEqual, strictEqual } from "node:assert/strict";
 * import { createRequestVerifier, signRequest } from "./auth.ts";
 *
 * const request = { method: "POST", path: "/raft/messages", body: "{}" };
 * const headers = new Headers(await signRequest({ secret: "s3cret", from: "n1", ...request }));
 * const verifier = createRequestVerifier({ secret: "s3cret" });
 * deepStrictEqual(await verifier.verifyRequest({ ...request, headers }), { ok: true, from: "n1" });
 * strictEqual((await verifier.verifyRequest({ ...request, headers })).ok, false);
 * ```
 */
export function createRequestVerifier(options: RequestVerifierOptions): RequestVerifier {
  const windowMs = options.windowMs ?? AUTH_WINDOW_MS;
  const nonceCacheMax = options.nonceCacheMax ?? NONCE_CACHE_MAX;
  if (!Number.isSafeInteger(windowMs) || windowMs <= 0) {
    throw new RangeError(`windowMs must be a positive integer, not ${windowMs}`);
  }
  if (!Number.isSafeInteger(nonceCacheMax) || nonceCacheMax <= 0) {
    throw new RangeError(`nonceCacheMax must be a positive integer, not ${nonceCacheMax}`);
  }
  const keyPromise = hmacKey(options.secret);
  // Insertion-ordered: the first entry is the oldest. Value: the request time.
  const seen = new Map<string, { from: string; timeMs: number }>();
  // Per sender: the largest request time among nonces evicted while still
  // inside the window. Requests at or before it cannot be checked for replay.
  const floors = new Map<string, number>();

  function forgetExpired(nowMs: number): void {
    for (const [nonce, { timeMs }] of seen) {
      if (timeMs + windowMs >= nowMs) break;
      seen.delete(nonce);
    }
    for (const [from, floor] of floors) {
      if (floor + windowMs < nowMs) floors.delete(from);
    }
  }

  function remember(nonce: string, from: string, timeMs: number, nowMs: number): void {
    forgetExpired(nowMs);
    seen.set(nonce, { from, timeMs });
    while (seen.size > nonceCacheMax) {
      const [oldest, entry] = seen.entries().next().value!;
      seen.delete(oldest);
      if (entry.timeMs + windowMs >= nowMs) {
        floors.set(entry.from, Math.max(floors.get(entry.from) ?? 0, entry.timeMs));
      }
    }
  }

  async function verifyRequest(input: VerifyRequestInput): Promise<VerifyResult> {
    const nowMs = input.nowMs ?? Date.now();
    const from = input.headers.get(FROM_HEADER);
    const time = input.headers.get(TIME_HEADER);
    const nonce = input.headers.get(NONCE_HEADER);
    const signature = input.headers.get(SIGNATURE_HEADER);
    if (from === null || !isNodeId(from)) {
      return refuse(`missing or malformed ${FROM_HEADER}`);
    }
    if (time === null || !TIME_PATTERN.test(time)) {
      return refuse(`missing or malformed ${TIME_HEADER}`);
    }
    if (nonce === null || !NONCE_PATTERN.test(nonce)) {
      return refuse(`missing or malformed ${NONCE_HEADER}`);
    }
    if (signature === null || !SIGNATURE_PATTERN.test(signature)) {
      return refuse(`missing or malformed ${SIGNATURE_HEADER}`);
    }
    const timeMs = Number(time);
    if (Math.abs(nowMs - timeMs) > windowMs) {
      return refuse(`${TIME_HEADER} is more than ${windowMs} ms away from this node's clock`);
    }
    if (timeMs <= (floors.get(from) ?? -1)) {
      return refuse(`${TIME_HEADER} is too old to check for replay`);
    }
    if (seen.has(nonce)) return refuse(`${NONCE_HEADER} was already used`);

    const key = await keyPromise;
    const bodyHash = await sha256Hex(input.body);
    const expected = new Uint8Array(
      await crypto.subtle.sign(
        "HMAC",
        key,
        encoder.encode(canonical(input.method, input.path, from, time, nonce, bodyHash)),
      ),
    );
    if (!equalBytes(expected, hexToBytes(signature))) return refuse("wrong signature");

    // Checked again: a concurrent request with this nonce may have been
    // accepted while this one awaited the digest. From here on nothing awaits,
    // so the check and the insertion are atomic.
    if (seen.has(nonce)) return refuse(`${NONCE_HEADER} was already used`);
    remember(nonce, from, timeMs, nowMs);
    return { ok: true, from };
  }

  return {
    verifyRequest,
    get nonces() {
      return seen.size;
    },
  };
}

function refuse(reason: string): VerifyResult {
  return { ok: false, reason };
}

function canonical(
  method: string,
  path: string,
  from: string,
  time: string,
  nonce: string,
  bodyHash: string,
): string {
  return `${method.toUpperCase()}\n${path}\n${from}\n${time}\n${nonce}\n${bodyHash}`;
}

/** HMAC keys by secret; a node has one secret, so a tiny bound suffices. */
const keyCache = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  if (typeof secret !== "string" || secret.length === 0) {
    throw new TypeError("The cluster secret must be a non-empty string");
  }
  let key = keyCache.get(secret);
  if (key === undefined) {
    key = crypto.subtle.importKey(
      "raw",
      encoder.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    keyCache.set(secret, key);
    if (keyCache.size > 8) keyCache.delete(keyCache.keys().next().value!);
  }
  return key;
}

async function sha256Hex(body: string | Uint8Array): Promise<string> {
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  return bytesToHex(
    new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)),
  );
}

/**
 * Compares two byte strings in time that depends only on their length, not
 * on where they differ.
 */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
