/**
 * The peer routes of API.md section 4, as a Hono sub-app:
 *
 * - `POST /raft/messages`, body `{"messages": [...]}` (see
 *   `codec.ts`): steps the messages, answers `204`.
 * - `POST /raft/forward`, body a forwarded proposal: runs it as leader,
 *   answers `200` with the forwarded answer (`{"ok": true, "value"}` or
 *   `{"ok": false, "code", "message", "details"?}`).
 *
 * Every request needs `X-Raft-From` with a valid node id (else `400
 * invalid_request`). With a cluster secret, the signature headers of
 * `auth.ts` are verified over the exact raw body before
 * anything is parsed or done (else `401 unauthorized`). Bodies over the limit
 * (default 4 MiB) get `413 too_large`; malformed ones `400 invalid_request`
 * naming the field. A batch holding a message whose `from` differs from
 * `X-Raft-From` is refused whole with `400`: that is a bug or a forgery, and
 * nothing of it reaches the node. Errors have the JSON shape of API.md
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
import type { Context } from "hono";
import { isNodeId, NODE_ID_RULE } from "../../core/config.ts";
import { WaterCraftError } from "../../errors.ts";
import { parseJson } from "../../validation.ts";
import {
  createRequestVerifier,
  FROM_HEADER,
  type RequestVerifier,
  SIGNATURE_HEADER,
} from "./auth.ts";
import { decodeForwardedProposal, decodeMessages } from "./codec.ts";
import { FORWARD_PATH, MESSAGES_PATH } from "./sender.ts";
import type { PeerHandler } from "../transport.ts";
import { errorResponse } from "../../http/errors.ts";

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
 * node's advertised URL.
 *
 * @param handler Where incoming traffic goes (the node).
 * @param options Secret and body limit.
 * @returns A Hono app with `POST /raft/messages` and `POST /raft/forward`.
 * @throws {TypeError} When the secret is empty.
 * @throws {RangeError} When the body limit is not a positive integer.
 *
 * @example Unsigned requests are refused when a secret is set
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { peerRoutes } from "./routes.ts";
 *
 * let received = 0;
 * const app = peerRoutes({
 *   receive() { received++; },
 *   forwarded: () => Promise.resolve({ ok: true, value: null }),
 * }, { secret: "s3cret" });
 * const res = await app.request("/raft/messages", {
 *   method: "POST",
 *   headers: { "X-Raft-From": "n2", "content-type": "application/json" },
 *   body: JSON.stringify({ messages: [] }),
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
  app.onError((err, c) => errorResponse(c, err));

  app.post(MESSAGES_PATH, async (c) => {
    const { from, body } = await admit(c, MESSAGES_PATH, limit, verifier);
    const messages = decodeMessages(parseJson(body));
    for (let i = 0; i < messages.length; i++) {
      if (messages[i]!.from !== from) {
        throw new WaterCraftError(
          "invalid_request",
          `Invalid body field messages.${i}.from: differs from ${FROM_HEADER} (${from})`,
        );
      }
    }
    handler.receive(from, messages);
    return c.body(null, 204);
  });

  app.post(FORWARD_PATH, async (c) => {
    const { from, body } = await admit(c, FORWARD_PATH, limit, verifier);
    const proposal = decodeForwardedProposal(parseJson(body));
    return c.json(await handler.forwarded(from, proposal), 200);
  });

  return app;
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
  const from = c.req.header(FROM_HEADER);
  if (from === undefined || !isNodeId(from)) {
    throw new WaterCraftError(
      "invalid_request",
      `Invalid header ${FROM_HEADER}: must be the sender's id, matching ${NODE_ID_RULE}`,
    );
  }
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
  if (chunks.length === 1) return chunks[0]!;
  const body = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.length;
  }
  return body;
}
