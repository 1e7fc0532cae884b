/**
 * The peer routes of API.md section 4, as a Hono sub-app. Bodies are binary
 * frames (`frames.ts`):
 *
 * - `POST /raft/stream`: a long-lived request whose body is a stream of
 *   message frames; each is stepped as it arrives. The route answers `204`
 *   when the sender ends the stream, `400` (ending it) at the first
 *   malformed frame.
 * - `POST /raft/messages`: one message frame; steps it, answers `204`.
 * - `POST /raft/forward`: a proposal frame; runs it as leader, answers `200`
 *   with an answer frame.
 *
 * Every request needs `X-Raft-From` with a valid node id (else `400
 * invalid_request`). With a cluster secret, the signature headers of
 * `auth.ts` are verified (over the exact raw body, or over an empty body
 * for a stream, when it opens) before anything is parsed or done (else
 * `401 unauthorized`). Bodies over the limit (default 4 MiB) get `413
 * too_large`; a stream frame over it and malformed frames `400
 * invalid_request`, naming the field. A
 * frame holding a message whose `from` differs from `X-Raft-From` is
 * refused whole with `400`: that is a bug or a forgery, and nothing of it
 * reaches the node. Errors have the JSON shape of API.md section 2.
 *
 * @module
 */

/**
 * `Hono` is public in its own package, but doc lint reports every type from
 * a dependency as private (denoland/deno#27364); the tag silences that.
 *
 * @ignore
 */
import { Hono } from "hono";
import { concatBytes } from "@noble/hashes/utils.js";
import type { Context } from "hono";
import { isNodeId, NODE_ID_RULE } from "../../core/config.ts";
import { WaterCraftError } from "../../errors.ts";
import {
  createRequestVerifier,
  FROM_HEADER,
  type RequestVerifier,
  SIGNATURE_HEADER,
} from "./auth.ts";
import {
  decodeForwardedProposal,
  decodeMessages,
  encodeForwardedAnswer,
  FrameError,
  FrameReader,
} from "./frames.ts";
import { STREAM_PATH } from "./peer_stream.ts";
import { FORWARD_PATH, MESSAGES_PATH } from "./sender.ts";
import type { Message } from "../../core/messages.ts";
import type { PeerHandler } from "../transport.ts";

/** Options of {@linkcode peerRoutes}. */
export interface PeerRoutesOptions {
  /** Cluster secret: when set, every request must prove it. */
  readonly secret?: string;
  /** Largest request body, bytes. Default 4 MiB. */
  readonly bodyLimitBytes?: number;
}

/** Default body limit of peer requests: 4 MiB. */
export const PEER_BODY_LIMIT_BYTES: number = 4 << 20;

/**
 * Creates the peer routes. Mount them at the root of a node's app
 * (`app.route("/", peerRoutes(node))`), or under the same prefix as the
 * node's advertised URL. Refusals are thrown as `WaterCraftError`s for the
 * app's error handler to render (`createApp` renders them as API.md
 * section 2 says).
 *
 * @param handler Where incoming traffic goes (the node).
 * @param options Secret and body limit.
 * @returns A Hono app with `POST /raft/stream`, `POST /raft/messages` and `POST /raft/forward`.
 * @throws {TypeError} When the secret is empty.
 * @throws {RangeError} When the body limit is not a positive integer.
 *
 * @example Unsigned requests are refused when a secret is set
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { Hono } from "hono";
 * import { errorResponse } from "../../http/errors.ts";
 * import { peerRoutes } from "./routes.ts";
 *
 * let received = 0;
 * const app = new Hono().onError((e, c) => errorResponse(c, e));
 * app.route("/", peerRoutes({
 *   receive() { received++; },
 *   forwarded: () => Promise.resolve({ ok: true, value: null }),
 * }, { secret: "s3cret" }));
 * const res = await app.request("/raft/messages", {
 *   method: "POST",
 *   headers: { "X-Raft-From": "n2", "content-type": "application/octet-stream" },
 *   body: new Uint8Array(6),
 * });
 * strictEqual(res.status, 401);
 * strictEqual((await res.json()).error.code, "unauthorized");
 * strictEqual(received, 0);
 * ```
 */
export function peerRoutes(handler: PeerHandler, options: PeerRoutesOptions = {}): Hono {
  const limit = options.bodyLimitBytes ?? PEER_BODY_LIMIT_BYTES;
  if (!Number.isSafeInteger(limit) || limit <= 0) {
    throw new RangeError(`bodyLimitBytes must be a positive integer, not ${limit}`);
  }
  const verifier = options.secret === undefined
    ? null
    : createRequestVerifier({ secret: options.secret });
  const app = new Hono();

  /** The open stream from each sender: a new one replaces it (one per sender, bounded). */
  const streams = new Map<string, () => void>();

  app.post(STREAM_PATH, async (c) => {
    const from = await admitStream(c, verifier);
    const body = c.req.raw.body;
    if (body === null) return c.body(null, 204);
    const reader = body.getReader();
    const frames = new FrameReader({ frameBytesMax: limit });
    // A sender reconnects after its stream broke; the old one may linger
    // half-open: end it, so streams never pile up.
    streams.get(from)?.();
    const end = () => void reader.cancel().catch(() => {});
    streams.set(from, end);
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch {
          // The sender hung up mid-stream (or a newer stream replaced this
          // one): not an error of ours, and nothing more will come.
          return c.body(null, 204);
        }
        const { done, value } = chunk;
        if (done) break;
        for (const frame of frames.push(value)) {
          if (handler.receive(from, fromSender(frame, from)) === false) {
            // This node stopped (an embedder may have replaced it behind the
            // same server): end the stream, so the sender reconnects.
            await reader.cancel().catch(() => {});
            return c.json({ error: { code: "unavailable", message: "The node stopped" } }, 503);
          }
        }
      }
      frames.finish();
    } catch (e) {
      // A stream out of step cannot be resynchronised: end it; the sender reconnects.
      await reader.cancel().catch(() => {});
      throw e;
    } finally {
      if (streams.get(from) === end) streams.delete(from);
    }
    return c.body(null, 204);
  });

  app.post(MESSAGES_PATH, async (c) => {
    const { from, body } = await admit(c, MESSAGES_PATH, limit, verifier);
    handler.receive(from, fromSender(body, from));
    return c.body(null, 204);
  });

  app.post(FORWARD_PATH, async (c) => {
    const { from, body } = await admit(c, FORWARD_PATH, limit, verifier);
    const answer = await handler.forwarded(from, decodeForwardedProposal(body));
    return new Response(encodeForwardedAnswer(answer) as Uint8Array<ArrayBuffer>, {
      status: 200,
      headers: { "content-type": "application/octet-stream" },
    });
  });

  return app;
}

/**
 * Decodes a message frame and checks that every message is from the sender
 * the request names.
 *
 * @throws {FrameError} When the frame is malformed or names another sender.
 */
function fromSender(frame: Uint8Array, from: string): Message[] {
  const messages = decodeMessages(frame);
  for (let i = 0; i < messages.length; i++) {
    if (messages[i]!.from !== from) {
      throw new FrameError(`messages.${i}.from differs from ${FROM_HEADER} (${from})`, 0);
    }
  }
  return messages;
}

/**
 * Checks the sender header and, with a secret, the signature a stream opens
 * with (over an empty body); nothing is read before this succeeds.
 *
 * @throws {WaterCraftError} `invalid_request` or `unauthorized`.
 */
async function admitStream(c: Context, verifier: RequestVerifier | null): Promise<string> {
  const from = sender(c);
  if (verifier !== null) {
    const result = await verifier.verifyRequest({
      method: c.req.method,
      path: STREAM_PATH,
      headers: c.req.raw.headers,
      body: new Uint8Array(0),
    });
    if (!result.ok) throw unauthorized(result.reason);
  }
  return from;
}

/**
 * Checks the sender header, reads the body within the limit and verifies the
 * signature; nothing is parsed before this succeeds.
 *
 * @throws {WaterCraftError} `invalid_request`, `too_large` or `unauthorized`.
 */
async function admit(
  c: Context,
  path: string,
  limit: number,
  verifier: RequestVerifier | null,
): Promise<{ from: string; body: Uint8Array }> {
  const from = sender(c);
  // Cheap refusal before reading a body that could not be verified anyway.
  if (verifier !== null && c.req.header(SIGNATURE_HEADER) === undefined) {
    throw unauthorized(`missing ${SIGNATURE_HEADER}`);
  }
  const body = await readBody(c, limit);
  if (verifier !== null) {
    const result = await verifier.verifyRequest({
      method: c.req.method,
      path,
      headers: c.req.raw.headers,
      body,
    });
    if (!result.ok) throw unauthorized(result.reason);
  }
  return { from, body };
}

/** The sender's id from `X-Raft-From`. */
function sender(c: Context): string {
  const from = c.req.header(FROM_HEADER);
  if (from === undefined || !isNodeId(from)) {
    throw new WaterCraftError(
      "invalid_request",
      `Invalid header ${FROM_HEADER}: must be the sender's id, matching ${NODE_ID_RULE}`,
    );
  }
  return from;
}

function unauthorized(reason: string): WaterCraftError {
  return new WaterCraftError("unauthorized", `Cannot accept the peer request: ${reason}`);
}

function tooLarge(limit: number): WaterCraftError {
  return new WaterCraftError("too_large", `Request body is over ${limit} bytes`);
}

/**
 * Reads the raw body, refusing it as soon as it passes `limit` (a declared
 * `content-length` is checked first; a chunked body is counted as it comes).
 *
 * @throws {WaterCraftError} `too_large`.
 */
async function readBody(c: Context, limit: number): Promise<Uint8Array> {
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
  const raw = c.req.raw;
  if (raw.bodyUsed) {
    // Read earlier by a middleware of the embedding app: Hono cached it.
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.length > limit) throw tooLarge(limit);
    return bytes;
  }
  if (raw.body === null) return new Uint8Array(0);
  const reader = raw.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0]! : concatBytes(...chunks);
}
