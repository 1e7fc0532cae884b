/**
 * The HTTP surface of a node: a Hono app with the client routes of API.md
 * section 3 (`/v1/snapshot`, the backup, included), the peer routes of
 * section 4, `/healthz`, `/readyz`, `/metrics` and the live cluster page
 * at `/`.
 *
 * @module
 */

/**
 * `Hono` is public in its own package, but doc lint reports every type from
 * a dependency as private (denoland/deno#27364); the tag silences that.
 *
 * @ignore
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { UnavailableError, WaterCraftError } from "../errors.ts";
import { kvRoutes } from "../kv/routes.ts";
import type { WaterCraftNode } from "../node/node.ts";
import { peerSecurityOf } from "../node/security.ts";
import { sameSignature } from "../transport/http/auth.ts";
import { peerRoutes, proofRefusal } from "../transport/http/routes.ts";
import { PeerVerifier } from "../transport/http/verifier.ts";
import {
  consistencyQuery,
  idempotencyKey,
  parseBody,
  parseJson,
  parseWith,
} from "../validation.ts";
import { encodeBackup } from "./backup.ts";
import { bodyLimit } from "./body_limit.ts";
import { processMetrics } from "./process_metrics.ts";
import { buildInfoMetric } from "./build_info.ts";
import { readiness } from "./readiness.ts";
import { errorBody, errorResponse } from "./errors.ts";
import { logRoutes } from "./log_routes.ts";
import { clusterPage } from "./page.tsx";
import { pathProblem, pathRefusalMessage, requestPath } from "./request_path.ts";
import {
  CLIENT_TOKEN_PATTERN,
  CLIENT_TOKEN_RULE,
  entryBody,
  entryId,
  memberBody,
  nodeId,
  transferBody,
  waitQuery,
} from "./schemas.ts";

/** Options of {@linkcode createApp}. */
export interface AppOptions {
  /** Bearer token required on client routes (`/v1/*`, `/metrics`). */
  readonly clientToken?: string;
  /** Largest client request body, bytes. Default 1 MiB. */
  readonly bodyLimitBytes?: number;
  /** Serve the key-value routes (`/v1/kv`); needs the built-in KV state machine. Default true. */
  readonly kv?: boolean;
  /**
   * `/readyz` answers 503 while more committed entries than this wait to
   * be applied. Default 1000 (`READY_APPLY_LAG_MAX` of `readiness.ts`).
   */
  readonly readyApplyLagMax?: number;
}

/**
 * Creates the Hono app of a node. Serve it as is (`app.fetch` is a standard
 * fetch handler, fit for an edge function) or mount it in your own app with
 * `yourApp.route("/prefix", createApp(node))`.
 *
 * Peer routes and membership changes take the proof of the cluster secret
 * the node was created with (`NodeOptions.secret`), or nothing when it was
 * created `insecure`. A node created with neither (on an in-process
 * transport) takes no peer requests at all.
 *
 * @param node The node to serve.
 * @param options Secrets and limits.
 * @returns The app.
 * @throws {TypeError} When the client token is not an RFC 6750 bearer token.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { createApp, createNode, kvStateMachine } from "../../mod.ts";
 * import { MemoryNetwork } from "../testing.ts";
 *
 * const node = await createNode({ id: "n1", stateMachine: kvStateMachine(), transport: new MemoryNetwork().transport() });
 * const app = createApp(node);
 * const res = await app.request("/v1/kv/a", { method: "PUT", body: JSON.stringify({ value: 1 }) });
 * strictEqual(res.status, 200);
 * strictEqual((await (await app.request("/v1/kv/a")).json()).value, 1);
 * await node.stop();
 * ```
 */
export function createApp(node: WaterCraftNode, options: AppOptions = {}): Hono {
  const app = new Hono();
  app.onError((err, c) => errorResponse(c, err));
  app.notFound((c) =>
    c.json(
      { error: { code: "not_found", message: `No route for ${c.req.method} ${c.req.path}` } },
      404,
    )
  );

  // Before any route: a path that runtimes read differently (a dot segment,
  // a malformed escape) is refused the same way on all of them.
  app.use("*", async (c, next) => {
    const problem = pathProblem(rawPath(c));
    if (problem !== undefined) {
      throw new WaterCraftError("invalid_request", pathRefusalMessage(problem));
    }
    await next();
  });

  app.get("/healthz", (c) => c.json({ ok: true }));
  // The page holds no data (its script reads the client API with the
  // token), so it is open like /healthz.
  app.get("/", clusterPage);
  // Open like /healthz: load balancers carry no token.
  app.get("/readyz", (c) => {
    const ready = readiness(node, options.readyApplyLagMax);
    if (ready.ready) return c.json({ ready: true });
    throw new UnavailableError(`Not ready: ${ready.reason}`, node.status().leader);
  });
  const security = peerSecurityOf(node);
  const secret = security !== null && "secret" in security ? security.secret : null;
  // One verifier for peer routes and membership changes: a challenge a
  // joining node learned from either is good for both.
  const verifier = secret === null ? null : new PeerVerifier({ secret });
  const secretDigest = secret === null ? null : bytesToHex(sha256(utf8ToBytes(secret)));
  if (security === null) {
    app.all("/raft/*", () => {
      throw new WaterCraftError(
        "unauthorized",
        "This node takes no peer requests: it was created with neither a cluster secret nor insecure: true",
      );
    });
  } else {
    app.route(
      "/",
      peerRoutes(node, {
        secret,
        ...(verifier === null ? {} : { verifier }),
        commandLimitBytes: options.bodyLimitBytes ?? 1 << 20,
      }),
    );
  }

  const maxBodyBytes = options.bodyLimitBytes ?? 1 << 20;
  const limit = bodyLimit(maxBodyBytes, () => {
    throw new WaterCraftError("too_large", `Request body is over ${maxBodyBytes} bytes`);
  });
  // Only the client routes take the token: peer routes carry the cluster's
  // proof instead, and /healthz stays open for load balancers.
  const token = options.clientToken;
  if (token !== undefined && !CLIENT_TOKEN_PATTERN.test(token)) {
    throw new TypeError(`The client token must hold ${CLIENT_TOKEN_RULE}`);
  }
  const guard = token === undefined ? [] : [clientTokenGuard(token)];
  app.use("/v1/*", ...guard, limit);
  if (guard.length > 0) app.use("/metrics", ...guard);

  app.get(
    "/metrics",
    (c) =>
      c.text(node.metrics() + buildInfoMetric() + processMetrics(), 200, {
        "content-type": "text/plain; version=0.0.4",
      }),
  );
  // `removed: true` only when it applies, so that the contract's shape stays as it is.
  app.get(
    "/v1/status",
    (c) => c.json({ ...node.status(), ...(node.removed ? { removed: true } : {}) }),
  );
  app.get("/v1/snapshot", async (c) => {
    const consistency = parseWith(
      consistencyQuery,
      c.req.query("consistency"),
      "query parameter consistency",
    );
    const backup = await node.backup({ consistency });
    const { stream, bytes } = encodeBackup({
      format: "watercraft-backup",
      index: backup.index,
      term: backup.term,
      head: backup.head,
      config: backup.config,
      nodeId: node.id,
      takenAt: new Date().toISOString(),
      dataBytes: backup.data.length,
    }, backup.data);
    return new Response(stream, {
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(bytes),
        "content-disposition": `attachment; filename="watercraft-${backup.index}.backup"`,
        "x-watercraft-index": String(backup.index),
        "x-watercraft-term": String(backup.term),
        "x-watercraft-head": backup.head,
      },
    });
  });
  app.get("/v1/members", (c) => c.json(node.members()));

  // Membership changes need the cluster secret in a secured cluster: a
  // peer's proof (what joining nodes send) or the secret itself in
  // `X-WaterCraft-Secret` (for operators with curl, over HTTPS). A node
  // with no security at all refuses them.
  const proveSecret = (c: Context, path: string, body: string): Response | null => {
    if (security === null) {
      throw new WaterCraftError(
        "unauthorized",
        "Membership changes need the cluster secret, and this node was created without one",
      );
    }
    if (verifier === null) return null;
    const given = c.req.header("x-watercraft-secret");
    if (given !== undefined) {
      // Digests compared, so that the time taken tells nothing of the secret, its length included.
      if (sameSignature(bytesToHex(sha256(utf8ToBytes(given))), secretDigest!)) return null;
      throw new WaterCraftError("unauthorized", "Wrong X-WaterCraft-Secret");
    }
    const result = verifier.verify({
      method: c.req.method,
      path,
      headers: c.req.raw.headers,
      body: new TextEncoder().encode(body),
    });
    if (result.ok) return null;
    const message = "Membership changes need the cluster secret: send it in " +
      `X-WaterCraft-Secret (over HTTPS), or sign the request as a peer does (${result.reason})`;
    return proofRefusal(message, result, null);
  };

  app.post("/v1/members", async (c) => {
    const text = await c.req.text();
    const refused = proveSecret(c, "/v1/members", text);
    if (refused !== null) return refused;
    const body = parseWith(memberBody, parseJson(text), "body");
    await node.addMember({ id: body.id, url: body.url, readOnly: body.readOnly ?? false });
    return c.json(node.members());
  });

  app.delete("/v1/members/:id", async (c) => {
    const id = parseWith(nodeId, c.req.param("id"), "path parameter id");
    const refused = proveSecret(c, `/v1/members/${id}`, "");
    if (refused !== null) return refused;
    await node.removeMember(id);
    return c.json(node.members());
  });
  app.get("/v1/head", (c) => c.json(node.head()));

  app.post("/v1/leader/transfer", async (c) => {
    const body = await parseBody(c, transferBody);
    await node.transferLeader(body.id);
    return c.json({ leader: node.status().leader });
  });

  app.post("/v1/entries", async (c) => {
    const body = await parseBody(c, entryBody);
    const wait = parseWith(waitQuery, c.req.query("wait"), "query parameter wait");
    const key = parseWith(
      idempotencyKey,
      c.req.header("idempotency-key"),
      "header Idempotency-Key",
    );
    const r = await node.propose(body.data, {
      wait,
      ...(key === undefined ? {} : { idempotencyKey: key }),
    });
    return c.json({
      id: r.id,
      index: r.index,
      term: r.term,
      state: r.state,
      head: r.head,
      result: r.result ?? null,
    }, 201);
  });

  app.get("/v1/entries/:id", (c) => {
    const id = parseWith(entryId, c.req.param("id"), "path parameter id");
    const entry = node.entry(id);
    if (entry === null) throw new WaterCraftError("not_found", `No entry ${id} on this node`);
    return c.json(entry);
  });

  app.route("/", logRoutes(node));
  if (options.kv !== false) app.route("/", kvRoutes(node));
  return app;
}

/**
 * `Authorization: Bearer <token>`: the scheme in any case (auth schemes are
 * case-insensitive, RFC 9110 section 11.1), one or more spaces, then an RFC
 * 6750 token (the class has both cases, so the flag does not widen it).
 */
const BEARER_HEADER = /^bearer +([A-Za-z0-9._~+/-]+=*)$/i;

/**
 * The client-token check of the client routes. Each refusal is `401
 * unauthorized` and says which proof is wrong: no header, a header that is
 * not `Bearer <token>`, or another token. Written here rather than taken
 * from hono's `bearerAuth`, whose scheme matching changed within the
 * versions our dependency range allows (older ones are case-sensitive).
 */
function clientTokenGuard(token: string): MiddlewareHandler {
  const refuse = (message: string, error?: "invalid_request" | "invalid_token") =>
    Response.json(errorBody("unauthorized", message), {
      status: 401,
      headers: {
        "WWW-Authenticate": `Bearer realm="watercraft"${error ? `, error="${error}"` : ""}`,
      },
    });
  return async (c, next) => {
    const header = c.req.header("authorization");
    if (header === undefined || header === "") {
      return refuse("Missing client token: send the header Authorization: Bearer <token>");
    }
    const given = BEARER_HEADER.exec(header)?.[1];
    if (given === undefined) {
      return refuse(
        "Malformed Authorization header: it must be Bearer <token> (an RFC 6750 token)",
        "invalid_request",
      );
    }
    if (!await timingSafeEqual(given, token)) {
      return refuse("Wrong client token", "invalid_token");
    }
    await next();
  };
}

/**
 * The request's path as the client sent it, as far as this app can see it:
 * `@hono/node-server` passes Node's raw request-target in `env.incoming`;
 * elsewhere the request's URL is all there is (on Deno, the raw target; on
 * Bun, already resolved, which `serve()` makes up for).
 */
function rawPath(c: Context): string {
  const incoming = (c.env as { incoming?: { url?: unknown } } | undefined)?.incoming?.url;
  return requestPath(typeof incoming === "string" ? incoming : c.req.url);
}
