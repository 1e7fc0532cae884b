/**
 * Forwarding a client's write, membership change or leadership transfer to
 * the leader (all "writes" below): one signed
 * `POST {leader}/raft/forward` of a proposal frame per write, bounded in
 * time (the leader's own timeout, plus the transport's for the answer to
 * travel), whose answer frame is decoded, or whose non-2xx answer is turned
 * into an error answer.
 *
 * A forward that fails is classified by whether the leader may have the
 * write: `unavailable` when it surely has not (cancelled before sending,
 * or the connection was never made), `timeout` when it may have (the
 * request left, but no readable answer came back), so that callers retry
 * only what is safe to retry.
 *
 * @module
 */

import { WaterCraftError } from "../../errors.ts";
import { describeProposal, type ForwardedAnswer, type ForwardedProposal } from "../transport.ts";
import type { Proof } from "./credentials.ts";
import { decodeForwardedAnswer, encodeForwardedProposal } from "./frames.ts";
import { describeFetchError } from "./tls.ts";

/** Path of the forwarded-write route, relative to a node's base URL. */
export const FORWARD_PATH = "/raft/forward";

/** How a {@linkcode ForwardClient} calls leaders. */
export interface ForwardClientOptions {
  /** The `fetch` to call leaders with. */
  readonly fetch: typeof fetch;
  /**
   * Time for the answer to travel, ms, on top of the proposal's own
   * `timeoutMs` (within which the leader answers). A positive integer.
   */
  readonly timeoutMs: number;
  /** The proof of a `POST` of `body` to `path` at `url` (`PeerCredentials.sign`). */
  readonly prove: (url: string, path: string, body: Uint8Array) => Proof;
  /**
   * Learns the challenge a refusal hands out (`PeerCredentials.learn`);
   * true when the forward should be sent again.
   */
  readonly learn: (url: string, response: Response) => boolean;
  /**
   * Whether an answer carries the leader's signature
   * (`PeerCredentials.answerIsAuthentic`).
   */
  readonly authentic: (proof: Proof, response: Response, body: Uint8Array) => boolean;
  /** Aborts every forward in flight, e.g. when the transport closes. */
  readonly closing: AbortSignal;
}

/** One write to forward. */
export interface ForwardRequest {
  /** The leader's base URL, without a trailing slash. */
  readonly url: string;
  /** The leader's id, for messages. */
  readonly to: string;
  /** The write. */
  readonly proposal: ForwardedProposal;
  /** Cancels the forward; after it left, the outcome is then unknown. */
  readonly signal: AbortSignal;
}

/**
 * Forwards writes to the leader over HTTP and counts them.
 *
 * @example A write cancelled before sending is surely not written
 * ```ts
 * import { rejects } from "node:assert/strict";
 * import { ForwardClient } from "./forward_client.ts";
 *
 * const client = new ForwardClient({
 *   fetch: () => Promise.reject(new Error("not called")),
 *   timeoutMs: 500,
 *   prove: () => ({ headers: {}, signed: null }),
 *   learn: () => false,
 *   authentic: () => true,
 *   closing: new AbortController().signal,
 * });
 * await rejects(
 *   client.forward({
 *     url: "http://127.0.0.1:1",
 *     to: "n2",
 *     proposal: { command: new Uint8Array(0), wait: "committed", timeoutMs: 1000 },
 *     signal: AbortSignal.abort(),
 *   }),
 *   { code: "unavailable" },
 * );
 * ```
 */
export class ForwardClient {
  readonly #options: ForwardClientOptions;
  /** Forwarded writes sent (their request started). */
  #forwards = 0;
  /** The forwards in flight, aborted together when `closing` aborts. */
  readonly #inFlight = new Set<AbortController>();

  /**
   * Creates a client.
   *
   * @param options How to call leaders, already validated by the transport.
   */
  constructor(options: ForwardClientOptions) {
    this.#options = options;
    // One listener for all forwards: a listener per forward would pile up
    // on the shared signal (Node warns past 10).
    options.closing.addEventListener("abort", () => {
      for (const controller of this.#inFlight) controller.abort(options.closing.reason);
    }, { once: true });
  }

  /** Forwarded writes sent since the client was created. */
  get forwards(): number {
    return this.#forwards;
  }

  /**
   * Forwards one write and waits for the leader's answer.
   *
   * @param request The leader, the write, and its cancellation.
   * @returns The leader's answer, or an error answer made of a non-2xx one.
   * @throws {WaterCraftError} `unavailable` when the leader surely did not
   *   get the write; `timeout` when it may have but the outcome is unknown.
   */
  async forward(request: ForwardRequest): Promise<ForwardedAnswer> {
    const { to, proposal, signal } = request;
    const what = describeProposal(proposal);
    if (signal.aborted) throw cancelledBeforeSending(to, what);
    if (this.#options.closing.aborted) throw cancelledBeforeSending(to, what);
    const controller = new AbortController();
    this.#inFlight.add(controller);
    const unlink = linkAbort(controller, [signal]);
    // The leader answers within `timeoutMs`; give the answer time to travel.
    const timer = setTimeout(
      () => controller.abort(new DOMException(`The forwarded ${what} timed out`, "TimeoutError")),
      proposal.timeoutMs + this.#options.timeoutMs,
    );
    try {
      return await this.#post(request, controller.signal);
    } finally {
      clearTimeout(timer);
      unlink();
      this.#inFlight.delete(controller);
    }
  }

  async #post(request: ForwardRequest, signal: AbortSignal): Promise<ForwardedAnswer> {
    const { url, to, proposal } = request;
    const what = describeProposal(proposal);
    const body = encodeForwardedProposal(proposal);
    for (let attempt = 1;; attempt++) {
      const proof = this.#options.prove(url, FORWARD_PATH, body);
      if (signal.aborted) throw cancelledBeforeSending(to, what);
      if (attempt === 1) this.#forwards++;
      const { response, answer } = await this.#send(url, to, what, proof, body, signal);
      if (response.ok) {
        if (!this.#options.authentic(proof, response, answer)) {
          throw new WaterCraftError(
            "timeout",
            `Cannot trust the answer to the ${what} forwarded to ${to}: it does not carry the leader's signature`,
          );
        }
        try {
          return decodeForwardedAnswer(answer);
        } catch (e) {
          throw new WaterCraftError(
            "timeout",
            `Cannot read the answer to the ${what} forwarded to ${to}: ${describeFetchError(e)}`,
          );
        }
      }
      // A new challenge: the leader refused the proof, not the write. Sent
      // again, signed under it, when this attempt was unsigned (a leader
      // runs nothing unsigned) or the refusal is signed (the leader forgot
      // the challenge, as after a restart); an unsigned refusal of a signed
      // attempt may be a forgery hiding a write that ran.
      if (this.#options.learn(url, response)) {
        const sure = proof.signed === null || this.#options.authentic(proof, response, answer);
        if (attempt === 1 && sure) continue;
        throw new WaterCraftError(
          "timeout",
          `Cannot learn the outcome of the ${what} forwarded to ${to}: an unsigned refusal handed out a new challenge`,
        );
      }
      if (proof.signed !== null && !this.#options.authentic(proof, response, answer)) {
        // Anyone on the path could have written an unsigned refusal: it
        // cannot say that the write was not made.
        throw new WaterCraftError(
          "timeout",
          `Cannot trust the refusal of the ${what} forwarded to ${to} (${response.status}): it does not carry the leader's signature`,
        );
      }
      return errorAnswer(response.status, new TextDecoder().decode(answer), { to, what });
    }
  }

  /** Sends one signed forward and reads its whole answer. */
  async #send(
    url: string,
    to: string,
    what: string,
    proof: Proof,
    body: Uint8Array,
    signal: AbortSignal,
  ): Promise<{ response: Response; answer: Uint8Array }> {
    let response: Response;
    try {
      response = await this.#options.fetch(url + FORWARD_PATH, {
        method: "POST",
        headers: { ...proof.headers, "content-type": "application/octet-stream" },
        body: body as Uint8Array<ArrayBuffer>,
        signal,
      });
    } catch (e) {
      // Only a failure to connect proves the leader never saw the write.
      if (!signal.aborted && isConnectFailure(e)) {
        throw new WaterCraftError(
          "unavailable",
          `Cannot forward the ${what} to ${to}: ${describeFetchError(e)}`,
        );
      }
      throw new WaterCraftError(
        "timeout",
        `Cannot learn the outcome of the ${what} forwarded to ${to}: ${
          describeFetchError(signal.aborted ? signal.reason : e)
        }`,
      );
    }
    try {
      return { response, answer: new Uint8Array(await response.arrayBuffer()) };
    } catch (e) {
      throw new WaterCraftError(
        "timeout",
        `Cannot read the answer to the ${what} forwarded to ${to}: ${
          describeFetchError(signal.aborted ? signal.reason : e)
        }`,
      );
    }
  }
}

/** The error of a forward cancelled before its request left: nothing was written. */
function cancelledBeforeSending(to: string, what: string): WaterCraftError {
  return new WaterCraftError(
    "unavailable",
    `Cannot forward the ${what} to ${to}: it was cancelled before sending`,
  );
}

/** Aborts `target` when any of `sources` aborts; returns a function that unlinks. */
function linkAbort(target: AbortController, sources: readonly AbortSignal[]): () => void {
  const listeners: [AbortSignal, () => void][] = [];
  for (const source of sources) {
    if (source.aborted) {
      target.abort(source.reason);
      continue;
    }
    const onAbort = () => target.abort(source.reason);
    source.addEventListener("abort", onAbort, { once: true });
    listeners.push([source, onAbort]);
  }
  return () => {
    for (const [source, onAbort] of listeners) source.removeEventListener("abort", onAbort);
  };
}

/**
 * Whether a `fetch` failure happened while connecting (refused, unreachable,
 * DNS, TLS handshake), before any byte of the request was sent. Runtimes
 * word this differently (Deno: "tcp connect error", Node: `ECONNREFUSED` in
 * `cause.code`, Bun: `ConnectionRefused`), so the error and its causes are
 * searched; anything unrecognised counts as "maybe sent". Of certificate
 * failures, only this side's refusal of the peer's certificate counts: it
 * happens in the handshake, before the request is written.
 */
function isConnectFailure(error: unknown): boolean {
  const connect =
    /ECONNREFUSED|ConnectionRefused|Connection refused|tcp connect error|client error \(Connect\)|ENOTFOUND|EAI_AGAIN|dns error|failed to lookup|EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL|UND_ERR_CONNECT|FailedToOpenSocket|UnableToConnect|invalid peer certificate|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|ERR_TLS_CERT_ALTNAME_INVALID/i;
  let e: unknown = error;
  for (let depth = 0; depth < 5 && e !== undefined && e !== null; depth++) {
    if (typeof e === "object") {
      const { message, code, name } = e as { message?: unknown; code?: unknown; name?: unknown };
      for (const text of [message, code, name]) {
        if (typeof text === "string" && connect.test(text)) return true;
      }
      e = (e as { cause?: unknown }).cause;
    } else {
      return typeof e === "string" && connect.test(e);
    }
  }
  return false;
}

/**
 * Turns a non-2xx answer to a forwarded write into an error answer. A body of
 * the API.md shape keeps its code, message and other fields (as `details`).
 * Without one, or with the code `internal` (a bug on the leader), the status
 * decides: a 5xx other than 503 leaves the outcome unknown (`timeout`), any
 * other status means nothing was written (`unavailable`).
 */
function errorAnswer(
  status: number,
  text: string,
  { to, what }: { to: string; what: string },
): ForwardedAnswer {
  // A non-2xx answer refuses the peer request itself (its proof, its size, its
  // shape) or reports a fault: the client's write was not judged, so the
  // client must not see the leader's code (a 401 here says nothing about the
  // client's token). Nothing was written, except after a fault (5xx), where
  // the outcome is unknown.
  let message: unknown;
  try {
    message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
  } catch {
    message = undefined;
  }
  const reason = typeof message === "string" ? `: ${message.slice(0, 300)}` : "";
  return {
    ok: false,
    code: status >= 500 && status !== 503 ? "timeout" : "unavailable",
    message: `The leader ${to} refused the forwarded ${what} (${status})${reason}`,
  };
}
