/**
 * One per-batch `POST {url}/raft/messages` of Raft messages to a peer, the
 * sender's fallback when streams are off (for proxies that buffer request
 * bodies): the signed request (sent again at once, signed under the new
 * challenge, when the peer hands one out), its timeout, and its answer. An accepted
 * answer's body is discarded, so that no resource outlives the request; a
 * refusal (non-2xx) is put into words for `onPeerError` and the peer's
 * `lastError`, reading at most a few KiB of it, since an error body is
 * small and anything else is cut. It never throws: a failure comes back as
 * a {@linkcode PeerProblem}, for the sender to count and back off.
 *
 * @module
 */

import { concatBytes } from "@noble/hashes/utils.js";
import type { Message } from "../../core/messages.ts";
import type { Proof } from "./credentials.ts";
import { encodeMessages } from "./frames.ts";
import { describeFetchError, isCertificateError } from "./tls.ts";

/** Path of the Raft message route, relative to a node's base URL. */
export const MESSAGES_PATH = "/raft/messages";

/** Why a request to a peer failed. */
export interface PeerProblem {
  /** What went wrong, with the underlying causes, or how the peer refused. */
  readonly message: string;
  /** Whether the peer's certificate was refused. */
  readonly certificate: boolean;
}

/** One batch to post, and how. */
export interface PostMessagesOptions {
  /** The `fetch` to call the peer with. */
  readonly fetch: typeof fetch;
  /** The peer's base URL, without a trailing slash. */
  readonly url: string;
  /** The messages, in order; at most `MAX_MESSAGES_PER_BATCH`. */
  readonly batch: readonly Message[];
  /** How long the request may take, answer included, ms. */
  readonly timeoutMs: number;
  /** The proof of a `POST` of `body` to `path` (`PeerCredentials.sign`). */
  readonly prove: (path: string, body: Uint8Array) => Proof;
  /**
   * Learns the challenge a refusal hands out (`PeerCredentials.learn`);
   * true when the request should be sent again.
   */
  readonly learn: (response: Response) => boolean;
  /**
   * Aborts the request (e.g. the peer was removed); it is aborted with a
   * `TimeoutError` after `timeoutMs`.
   */
  readonly controller: AbortController;
  /** Called when the request is about to leave (its headers are ready), to count it. */
  readonly onSending: () => void;
}

/**
 * Posts one batch of messages to a peer and reads its answer.
 *
 * @param options The peer, the batch, and how to send it.
 * @returns Null when the peer accepted the batch (answered 2xx), else why not.
 *
 * @example A refusal, worded with the peer's error body
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { postMessages } from "./message_post.ts";
 *
 * const body = JSON.stringify({ error: { code: "unauthorized", message: "Bad signature" } });
 * const problem = await postMessages({
 *   fetch: () => Promise.resolve(new Response(body, { status: 401 })),
 *   url: "http://127.0.0.1:1",
 *   batch: [{ type: "timeoutNow", from: "n1", to: "n2", term: 1 }],
 *   timeoutMs: 500,
 *   prove: () => ({ headers: {}, signed: null }),
 *   learn: () => false,
 *   controller: new AbortController(),
 *   onSending() {},
 * });
 * deepStrictEqual(problem, {
 *   message: "answered 401 unauthorized: Bad signature",
 *   certificate: false,
 * });
 * ```
 */
export async function postMessages(options: PostMessagesOptions): Promise<PeerProblem | null> {
  const { controller } = options;
  const timer = setTimeout(
    () => controller.abort(new DOMException("The request timed out", "TimeoutError")),
    options.timeoutMs,
  );
  try {
    const body = encodeMessages(options.batch) as Uint8Array<ArrayBuffer>;
    for (let attempt = 1;; attempt++) {
      const { headers } = options.prove(MESSAGES_PATH, body);
      options.onSending();
      const response = await options.fetch(options.url + MESSAGES_PATH, {
        method: "POST",
        headers: { ...headers, "content-type": "application/octet-stream" },
        body,
        signal: controller.signal,
      });
      if (response.ok) {
        await discard(response);
        return null;
      }
      // A new challenge: sign under it and send again, once.
      if (attempt === 1 && options.learn(response)) {
        await discard(response);
        continue;
      }
      return { message: await refusal(response), certificate: false };
    }
  } catch (e) {
    const reason = controller.signal.aborted ? controller.signal.reason : e;
    return { message: describeFetchError(reason), certificate: isCertificateError(reason) };
  } finally {
    clearTimeout(timer);
  }
}

/** Most characters of a refusing peer's answer kept in a failure message. */
const REFUSAL_CHARS_MAX = 300;
/** Most bytes read of a refusing peer's answer: an error body is small, anything else is cut. */
const REFUSAL_BYTES_MAX = 4096;

/**
 * Words a non-2xx answer to a message request: the status, and the code and
 * message of an API.md error body (such as why a signature was refused).
 */
async function refusal(response: Response): Promise<string> {
  const text = await readAtMost(response, REFUSAL_BYTES_MAX);
  let detail = text.trim().slice(0, REFUSAL_CHARS_MAX).replace(/\s*\n\s*/g, " ");
  try {
    const error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof error?.code === "string" || typeof error?.message === "string") {
      detail = [error.code, error.message].filter((p) => typeof p === "string").join(": ")
        .slice(0, REFUSAL_CHARS_MAX);
    }
  } catch {
    // Not JSON: keep the text.
  }
  return `answered ${response.status}${detail === "" ? "" : ` ${detail}`}`;
}

/** Consumes or cancels a response body, so no resource outlives the request. */
async function discard(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // The body is gone either way.
  }
}

/** Reads the start of a body as text, at most `limit` bytes, and cancels the rest. */
async function readAtMost(response: Response, limit: number): Promise<string> {
  const reader = response.body?.getReader();
  if (reader === undefined) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // What arrived still says something; the status too.
  } finally {
    reader.cancel().catch(() => {});
  }
  return new TextDecoder().decode(concatBytes(...chunks).subarray(0, limit));
}
