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
 * In a secured cluster every request must prove the secret (`auth.ts`,
 * checked by `verifier.ts`) before anything of its body is parsed or done,
 * else `401 unauthorized` saying which proof is wrong; a `401` that asks
 * the sender to sign under a new challenge carries it in
 * `X-Raft-Challenge`. A stream's opening request is signed over an empty
 * body and each of its frames is followed by a seal (`stream_seal.ts`); a
 * frame whose seal is wrong ends the stream with `401`. The answer to a
 * forwarded write is signed. In an open cluster (`--insecure`) only
 * `X-Raft-From` is needed, with a valid node id (else `400
 * invalid_request`).
 *
 * Bodies over the limit (default 4 MiB) get `413 too_large`; a stream frame
 * over it and malformed frames `400 invalid_request`, naming the field. A
 * forwarded command over the client body limit gets `413` too: forwarding
 * is no way around it. A frame holding a message whose `from` differs from
 * `X-Raft-From` is refused whole with `400`: that is a bug or a forgery,
 * and nothing of it reaches the node. Errors have the JSON shape of API.md
 * section 2.
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
import { errorBody, errorResponse } from "../../http/errors.ts";
import {
  answerSignature,
  CHALLENGE_HEADER,
  checkSecret,
  FROM_HEADER,
  SIGNATURE_HEADER,
  type SignedRequest,
  streamKey,
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
import { FrameOpener } from "./stream_seal.ts";
import { PeerVerifier, type VerifyResult } from "./verifier.ts";
import type { Message } from "../../core/messages.ts";
import type { PeerHandler } from "../transport.ts";

/** Options of {@linkcode peerRoutes}. */
export interface PeerRoutesOptions {
  /**
   * The cluster secret every request must prove, or null for an open
   * cluster (`--insecure`: anyone who reaches the port is a peer). No
   * default: a node is open only when told so.
   */
  readonly secret: string | null;
  /**
   * The verifier of the secret's proofs, when the app shares one with other
   * routes (membership changes); by default the routes make their own.
   */
  readonly verifier?: PeerVerifier;
  /** Largest request body, bytes. Default 4 MiB. */
  readonly bodyLimitBytes?: number;
  /** Largest forwarded command, bytes: the client body limit. Default 1 MiB. */
  readonly commandLimitBytes?: number;
}

/** Default body limit of peer requests: 4 MiB. */
export const PEER_BODY_LIMIT_BYTES: number = 4 << 20;

/**
 * Creates the peer routes. Mount them at the root of a node's app
 * (`app.route("/", peerRoutes(node, ...))`), or under the same prefix as the
 * node's advertised URL. Refusals are thrown as `WaterCraftError`s for the
 * app's error handler to render (`createApp` renders them as API.md
 * section 2 says), except those that hand out a challenge, which answer
 * themselves.
 *
 * @param handler Where incoming traffic goes (the node).
 * @param options Secret and body limits.
 * @returns A Hono app with `POST /raft/stream`, `POST /raft/messages` and `POST /raft/forward`.
 * @throws {TypeError} When the secret is an empty string.
 * @throws {RangeError} When a body limit is not a positive integer.
 *
 * @example Unsigned requests are refused in a secured cluster, and handed a challenge
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
 * strictEqual(res.headers.get("X-Raft-Challenge")?.length, 32);
 * strictEqual(received, 0);
 * ```
 */
export function peerRoutes(handler: PeerHandler, options: PeerRoutesOptions): Hono {
  const limit = positiveLimit("bodyLimitBytes", options.bodyLimitBytes ?? PEER_BODY_LIMIT_BYTES);
  const commandLimit = positiveLimit("commandLimitBytes", options.commandLimitBytes ?? 1 << 20);
  const secret = options.secret === null ? null : checkSecret(options.secret);
  const verifier = secret === null ? null : options.verifier ?? new PeerVerifier({ secret });
  const app = new Hono();

  /** The open stream from each sender: a new one replaces it (one per sender, bounded). */
  const streams = new Map<string, () => void>();

  app.post(STREAM_PATH, async (c) => {
    const admitted = admit(c, STREAM_PATH, new Uint8Array(0), verifier, secret);
    if ("refusal" in admitted) return admitted.refusal;
    const { from, signed } = admitted;
    const body = c.req.raw.body;
    if (body === null) return c.body(null, 204);
    const reader = body.getReader();
    const frames = new FrameReader({ frameBytesMax: limit });
    const opener = secret === null || signed === null
      ? null
      : new FrameOpener(streamKey(secret, signed));
    /** A frame waiting for its seal. */
    let unsealed: Uint8Array | null = null;
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
          let message = frame;
          if (opener !== null) {
            if (unsealed === null) {
              unsealed = frame;
              continue;
            }
            const problem = opener.open(unsealed, frame);
            if (problem !== null) {
              await reader.cancel().catch(() => {});
              throw unauthorized(`the stream's ${problem}`);
            }
            message = unsealed;
            unsealed = null;
          }
          if (handler.receive(from, fromSender(message, from)) === false) {
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
    const admitted = await admitPosted(c, MESSAGES_PATH, limit, verifier, secret);
    if ("refusal" in admitted) return admitted.refusal;
    handler.receive(admitted.from, fromSender(admitted.body, admitted.from));
    return c.body(null, 204);
  });

  app.post(FORWARD_PATH, async (c) => {
    const admitted = await admitPosted(c, FORWARD_PATH, limit, verifier, secret);
    if ("refusal" in admitted) return admitted.refusal;
    // Every answer of an admitted forward is signed, refusals included: an
    // unsigned one could be anyone's, so the forwarding node cannot trust
    // it to say whether the write was made.
    const signed = (status: number, contentType: string, bytes: Uint8Array): Response => {
      const headers: Record<string, string> = { "content-type": contentType };
      if (secret !== null && admitted.signed !== null) {
        const { challenge, seq } = admitted.signed;
        headers[SIGNATURE_HEADER] = answerSignature(secret, challenge, seq, status, bytes);
      }
      return new Response(bytes as Uint8Array<ArrayBuffer>, { status, headers });
    };
    try {
      const proposal = decodeForwardedProposal(admitted.body);
      if ("command" in proposal && proposal.command.length > commandLimit) {
        throw new WaterCraftError(
          "too_large",
          `The forwarded command is over ${commandLimit} bytes, the client body limit`,
        );
      }
      const answer = await handler.forwarded(admitted.from, proposal);
      return signed(200, "application/octet-stream", encodeForwardedAnswer(answer));
    } catch (e) {
      const refusal = errorResponse(c, e);
      const bytes = new Uint8Array(await refusal.arrayBuffer());
      return signed(refusal.status, "application/json", bytes);
    }
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
 * Checks the request's proof: the sender header and, in a secured cluster,
 * the signature over `body` (empty for a stream).
 *
 * @returns The sender and what it signed, or the `401` to answer with (not
 *   told apart with `instanceof Response`: Node's server adapter swaps the
 *   global `Response` class).
 * @throws {WaterCraftError} `invalid_request` for a missing sender in an open cluster.
 */
function admit(
  c: Context,
  path: string,
  body: Uint8Array,
  verifier: PeerVerifier | null,
  secret: string | null,
): { from: string; signed: SignedRequest | null } | { refusal: Response } {
  if (verifier === null) return { from: sender(c), signed: null };
  const result = verifier.verify({ method: c.req.method, path, headers: c.req.raw.headers, body });
  if (!result.ok) {
    const message = `Cannot accept the peer request: ${result.reason}`;
    return { refusal: proofRefusal(message, result, secret) };
  }
  return { from: result.request.from, signed: result.request };
}

/**
 * The `401` of a refused proof, with the fresh challenge to sign under when
 * there is one, signed when the request was authentic but its challenge
 * forgotten (with `secret` given): its sender may then resend it knowing it
 * was not acted on.
 *
 * @param message What the error says, the refusal's reason included.
 * @param result The verifier's refusal.
 * @param secret The cluster secret, to sign the refusal of a forgotten
 *   challenge; null to leave it unsigned.
 * @returns The answer.
 */
export function proofRefusal(
  message: string,
  result: Extract<VerifyResult, { ok: false }>,
  secret: string | null,
): Response {
  const body = new TextEncoder().encode(JSON.stringify(errorBody("unauthorized", message)));
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (result.challenge !== null) headers[CHALLENGE_HEADER] = result.challenge;
  if (result.forgotten !== null && secret !== null) {
    const { challenge, seq } = result.forgotten;
    headers[SIGNATURE_HEADER] = answerSignature(secret, challenge, seq, 401, body);
  }
  return new Response(body, { status: 401, headers });
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

function positiveLimit(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer, not ${value}`);
  }
  return value;
}

function tooLarge(limit: number): WaterCraftError {
  return new WaterCraftError("too_large", `Request body is over ${limit} bytes`);
}

/**
 * Reads a posted body and checks the request's proof over it. A request
 * with no signature at all is refused first, without reading a body that
 * could not be verified anyway.
 *
 * @returns The sender, what it signed and the body, or the `401` to answer with.
 * @throws {WaterCraftError} `too_large`, or `invalid_request` for a missing
 *   sender in an open cluster.
 */
async function admitPosted(
  c: Context,
  path: string,
  limit: number,
  verifier: PeerVerifier | null,
  secret: string | null,
): Promise<
  { from: string; signed: SignedRequest | null; body: Uint8Array } | { refusal: Response }
> {
  if (verifier !== null && c.req.header(SIGNATURE_HEADER) === undefined) {
    // Without a signature the proof cannot verify: this is its refusal.
    const unsigned = admit(c, path, new Uint8Array(0), verifier, secret);
    if ("refusal" in unsigned) return unsigned;
  }
  const body = await readBody(c, limit);
  const admitted = admit(c, path, body, verifier, secret);
  return "refusal" in admitted ? admitted : { ...admitted, body };
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
