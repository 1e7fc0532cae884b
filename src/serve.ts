/**
 * Serves a fetch handler (such as a node's Hono app) on whichever runtime is
 * running: `Deno.serve` on Deno, `Bun.serve` on Bun, `@hono/node-server` on
 * Node; over HTTP, or HTTPS when given a certificate.
 *
 * Before the handler, each server refuses a request whose path, as the
 * client sent it, runtimes would read differently (a dot segment, a
 * malformed percent-escape, a backslash: `src/http/request_path.ts`) with
 * `400 invalid_request`. It has to happen here: Bun and Node resolve dot
 * segments in the URL they hand the handler, so `/v1/kv/..` would reach it
 * as `/v1/`.
 *
 * Its connections are bounded on every runtime (the rules are in
 * `serve/guard.ts`): an idle timeout, a timeout on a request's head, and a
 * cap on open connections. Node's server enforces them itself
 * (`serve/node_limits.ts`). `Deno.serve` has none of them: without TLS the
 * node accepts each connection and has Deno's server serve it, keeping the
 * limits per request (`serve/deno_connections.ts`). `Bun.serve` has only an
 * idle timeout: there, and on Deno with TLS, a front (`serve/front.ts`)
 * takes the public address, enforces them, and relays each connection,
 * once its first head has arrived, to the runtime's server, which listens
 * on an abstract Unix socket of its own on Linux (a loopback port
 * elsewhere). With every limit set to 0 the runtime's server takes the
 * public address itself, as before.
 *
 * @module
 */

import { pathProblem, pathRefusal, requestPath } from "./http/request_path.ts";
import {
  abstractSocketPath,
  INNER_HOSTNAME,
  type InnerAddress,
  startFront,
} from "./serve/front.ts";
import {
  anyLimit,
  type ConnectionLimits,
  connectionLimits,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
} from "./serve/guard.ts";
import { applyNodeLimits, nodeServerOptions } from "./serve/node_limits.ts";
import { denoConnectionServing, startDenoConnections } from "./serve/deno_connections.ts";
import { STREAM_PATH } from "./transport/http/peer_stream.ts";
import type { Server as NodeHttpServer } from "node:http";

export { DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS };

/**
 * A fetch handler: what `app.fetch` is. The runtimes call it with what they
 * know of the request besides (Deno's connection info, Node's `{ incoming,
 * outgoing }`), which Hono's `app.fetch` takes as its `env`; a handler may
 * ignore it.
 */
export type FetchHandler = (request: Request, env?: unknown) => Response | Promise<Response>;

/**
 * How many segments of a path Bun's router reports as they were sent; a
 * dot segment deeper than this reaches the handler resolved.
 */
const BUN_RAW_SEGMENTS_MAX = 16;

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /** Port; 0 picks a free one. */
  readonly port: number;
  /** Address to bind. Default `0.0.0.0`. */
  readonly hostname?: string;
  /** PEM certificate chain and private key: serve HTTPS. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /**
   * Closes a connection that has waited this long on its client, ms: for a
   * request to begin, for the next bytes of a body, or for the client to
   * read what it was sent. Time the handler takes to answer does not count,
   * and a body that keeps arriving is never cut (keep this above the 8 s a
   * peer stream may go between keepalives). Default
   * {@linkcode DEFAULT_IDLE_TIMEOUT_MS}; 0: never.
   */
  readonly idleTimeoutMs?: number;
  /**
   * Closes a connection whose request head (request line and headers) has
   * not arrived in full this long after its first byte (after the
   * connection opened, for its first request), ms. Default
   * {@linkcode DEFAULT_HEADERS_TIMEOUT_MS}; 0: never.
   */
  readonly headersTimeoutMs?: number;
  /**
   * Open connections at most. At the cap, a new connection takes the place
   * of the one that has waited longest for a request (if a while: up to a
   * second); else it is refused, closed unanswered (on Deno and Bun after
   * being held a second, which slows clients that reconnect in a loop).
   * Default {@linkcode DEFAULT_MAX_CONNECTIONS}; 0: no cap.
   */
  readonly maxConnections?: number;
  /**
   * Paths of long-lived streaming `POST` requests that the front in front
   * of Deno's and Bun's servers answers in this process when one opens a
   * connection, rather than relaying each chunk of it to the runtime's
   * server (`serve/direct_request.ts`); the handler answers them either
   * way. Default: a node's peer stream, `/raft/stream`. Where there is no
   * front, as on Node, they are served like any request; on Deno without
   * a front, a shutdown closes them at once rather than wait for their end.
   */
  readonly directPaths?: readonly string[];
  /**
   * On Deno, how the limits are applied: `"auto"` (the default) has Deno's
   * server serve each connection accepted here, with no relay
   * (`serve/deno_connections.ts`), where this Deno allows it and without
   * TLS, and else does as `"relay"`: the front takes the port and relays to
   * `Deno.serve` (`serve/front.ts`). Serving WebSockets on Deno needs
   * `"relay"`: Deno's server for one connection closes an upgraded
   * connection as soon as its HTTP part ends (a 101 answer is logged).
   * Ignored on Bun and Node.
   */
  readonly denoLimits?: "auto" | "relay";
}

/** A running server. */
export interface Server {
  /** The port it listens on (the real one when 0 was asked). */
  readonly port: number;
  /** `http` or `https`. */
  readonly protocol: "http" | "https";
  /** Stops accepting connections and waits for open requests to finish. */
  shutdown(): Promise<void>;
}

/** The runtime this code runs on. */
export type Runtime = "deno" | "bun" | "node";

/**
 * Tells which runtime is running.
 *
 * @returns "deno", "bun" or "node".
 */
export function runtime(): Runtime {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  if (g.Bun !== undefined) return "bun";
  if (g.Deno !== undefined) return "deno";
  return "node";
}

/**
 * Serves `handler` until `shutdown()`. A request whose path, as sent,
 * runtimes would read differently (a dot segment, a malformed
 * percent-escape, a backslash) is answered `400 invalid_request` without
 * reaching `handler`, so that a path means the same on every runtime.
 *
 * @param handler The fetch handler.
 * @param options Port, address, TLS and connection limits.
 * @returns The running server, once it listens.
 * @throws {RangeError} When a limit is not a whole number from 0 up.
 * @throws {Error} When the address cannot be bound.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { serve } from "./serve.ts";
 *
 * const server = await serve(() => new Response("hi"), { port: 0, hostname: "127.0.0.1" });
 * const res = await fetch(`http://127.0.0.1:${server.port}/`);
 * strictEqual(await res.text(), "hi");
 * await server.shutdown();
 * ```
 */
export async function serve(handler: FetchHandler, options: ServeOptions): Promise<Server> {
  const hostname = options.hostname ?? "0.0.0.0";
  const protocol = options.tls ? "https" : "http";
  const limits = connectionLimits(options);
  switch (runtime()) {
    case "deno":
      return await serveDeno(handler, options, { hostname, protocol, limits });
    case "bun":
      return await serveBun(handler, options, { hostname, protocol, limits });
    case "node":
      return await serveNode(handler, options, { hostname, protocol, limits });
  }
}

/**
 * Answers a request whose raw path `path` is refused, or passes it on.
 *
 * @param path The path as the client sent it.
 * @param pass Runs the handler.
 */
function checked(
  path: string,
  pass: () => Response | Promise<Response>,
): Response | Promise<Response> {
  const problem = pathProblem(path);
  return problem === undefined ? pass() : pathRefusal(problem);
}

/** Runs `fn` the first time only. */
function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

/** What every runtime's serve needs besides the handler and the options. */
interface Resolved {
  readonly hostname: string;
  readonly protocol: "http" | "https";
  readonly limits: ConnectionLimits;
}

/** A runtime's server behind a front. */
interface Inner {
  readonly address: InnerAddress;
  shutdown(): Promise<void>;
}

/**
 * Starts a runtime's server for a front: on an abstract Unix socket where
 * there is one (the relay costs less than over TCP), else, or when that
 * fails, on a loopback port.
 */
async function startInner(listen: (address: InnerAddress) => Promise<Inner>): Promise<Inner> {
  const path = abstractSocketPath();
  if (path !== null) {
    try {
      return await listen({ path });
    } catch {
      // Not offered here after all: loopback TCP does the same, a little slower.
    }
  }
  return await listen({ port: 0 });
}

/**
 * Puts a front before a runtime's server, and returns both as one server.
 * `handler` answers the requests the front takes itself (`directPaths`).
 */
async function fronted(
  inner: Inner,
  handler: FetchHandler,
  options: ServeOptions,
  resolved: Resolved,
): Promise<Server> {
  const paths = options.directPaths ?? [STREAM_PATH];
  const direct = paths.length === 0 ? null : {
    paths: new Set(paths),
    handler: (request: Request) => checked(requestPath(request.url), () => handler(request)),
  };
  let front;
  try {
    front = await startFront({
      port: options.port,
      hostname: resolved.hostname,
      ...(options.tls ? { tls: options.tls } : {}),
      limits: resolved.limits,
      inner: inner.address,
      ...(direct === null ? {} : { direct }),
    });
  } catch (error) {
    await inner.shutdown();
    throw error;
  }
  return {
    port: front.port,
    protocol: resolved.protocol,
    async shutdown() {
      front.stopAccepting();
      // The runtime's server ends the idle connections and lets the
      // requests in progress finish; the front then ends what is left.
      await inner.shutdown();
      await front.close();
    },
  };
}

async function serveDeno(
  handler: FetchHandler,
  options: ServeOptions,
  resolved: Resolved,
): Promise<Server> {
  const { protocol } = resolved;
  // Deno's request URL is the request-target as it came: check it as is.
  const checkedHandler = (request: Request, info: Deno.ServeHandlerInfo) =>
    checked(requestPath(request.url), () => handler(request, info));
  if (!anyLimit(resolved.limits)) {
    return await new Promise((resolve) => {
      const server = Deno.serve({
        port: options.port,
        hostname: resolved.hostname,
        ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
        onListen: ({ port }) => resolve({ port, protocol, shutdown: () => server.shutdown() }),
      }, checkedHandler);
    });
  }
  // Over TLS the front stays: Deno cannot close a connection whose handshake
  // stalls, and the head timeout must.
  const serveOn = options.denoLimits === "relay" || options.tls
    ? null
    : await denoConnectionServing();
  if (serveOn !== null) {
    const server = startDenoConnections(serveOn, {
      port: options.port,
      hostname: resolved.hostname,
      limits: resolved.limits,
      handler: checkedHandler,
      longLivedPaths: new Set(options.directPaths ?? [STREAM_PATH]),
      switchedProtocols: once(() =>
        console.error(
          'watercraft: serve() on Deno cannot keep an upgraded connection (a WebSocket) without its front: pass denoLimits: "relay"',
        )
      ),
    });
    return { port: server.port, protocol, shutdown: () => server.shutdown() };
  }
  const inner = await startInner((address) =>
    new Promise<Inner>((resolve) => {
      const onListen = (addr: Deno.Addr) => {
        resolve({
          address: "path" in address ? address : { port: (addr as Deno.NetAddr).port },
          shutdown: () => server.shutdown(),
        });
      };
      const server = "path" in address
        ? Deno.serve({ path: address.path, onListen }, checkedHandler)
        : Deno.serve({ port: 0, hostname: INNER_HOSTNAME, onListen }, checkedHandler);
    })
  );
  return await fronted(inner, handler, options, resolved);
}

interface BunServer {
  port: number;
  stop(closeActive?: boolean): Promise<void> | void;
}

/** A request as Bun's router hands it over: with the matched segments. */
type BunRouteRequest = Request & { readonly params?: Readonly<Record<string, string>> };

async function serveBun(
  handler: FetchHandler,
  options: ServeOptions,
  resolved: Resolved,
): Promise<Server> {
  const bun = (globalThis as unknown as { Bun: { serve(o: unknown): BunServer } }).Bun;
  // Bun hands the handler a URL with dot segments already resolved, but its
  // router matches `routes` against the request-target as sent and reports
  // the matched segments (decoded) as parameters: the only place Bun shows
  // them. One route per depth, each segment a parameter, catches a dot
  // segment or a backslash among the first BUN_RAW_SEGMENTS_MAX; the rest
  // of the check (escapes, which the URL keeps as they are) runs on the URL.
  const viaRoute = (request: BunRouteRequest, server: unknown) => {
    const segments = Object.values(request.params ?? {});
    const dots = segments.find((s) => s === "." || s === "..");
    if (dots !== undefined) return pathRefusal(pathProblem(`/${dots}`)!);
    // A backslash as sent becomes "/" in the URL, which then has more
    // segments than were matched (one sent as %5C stays one segment).
    const path = requestPath(request.url);
    const slashed = segments.find((s) => s.includes("\\"));
    if (slashed !== undefined && path.split("/").length - 1 !== segments.length) {
      return pathRefusal(pathProblem(`/${slashed}`)!);
    }
    return checked(path, () => handler(request, server));
  };
  const routes: Record<string, typeof viaRoute> = {};
  for (let depth = 1; depth <= BUN_RAW_SEGMENTS_MAX; depth++) {
    let pattern = "";
    for (let i = 0; i < depth; i++) pattern += `/:s${i}`;
    routes[pattern] = viaRoute;
  }
  const fetch = (request: Request, server: unknown) =>
    checked(requestPath(request.url), () => handler(request, server));
  const { protocol, limits } = resolved;
  if (!anyLimit(limits)) {
    const server = bun.serve({
      port: options.port,
      hostname: resolved.hostname,
      routes,
      fetch,
      // 0: no idle timeout, as asked (Bun's default is 10 s).
      idleTimeout: 0,
      ...(options.tls ? { tls: { cert: options.tls.cert, key: options.tls.key } } : {}),
    });
    return { port: server.port, protocol, shutdown: async () => await server.stop(true) };
  }
  const inner = await startInner((address) => {
    const server = bun.serve({
      ...("path" in address ? { unix: address.path } : { port: 0, hostname: INNER_HOSTNAME }),
      routes,
      fetch,
      // The front applies the idle timeout, sparing requests the handler is
      // still answering, which Bun's own would cut.
      idleTimeout: 0,
    });
    return Promise.resolve({
      address: "path" in address ? address : { port: server.port },
      shutdown: async () => await server.stop(true),
    });
  });
  return await fronted(inner, handler, options, resolved);
}

async function serveNode(
  handler: FetchHandler,
  options: ServeOptions,
  resolved: Resolved,
): Promise<Server> {
  const { serve: nodeServe } = await import("@hono/node-server");
  const https = options.tls ? await import("node:https") : null;
  const { hostname, protocol, limits } = resolved;
  return await new Promise((resolve, reject) => {
    const server = nodeServe({
      // The request's URL has dot segments resolved: check Node's raw target.
      fetch: (request: Request, env: { incoming?: { url?: string | undefined } }) =>
        checked(
          requestPath(env?.incoming?.url ?? request.url),
          () => handler(request, env),
        ),
      port: options.port,
      hostname,
      serverOptions: {
        ...nodeServerOptions(limits),
        ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
      },
      ...(https ? { createServer: https.createServer } : {}),
    }, (info) => {
      resolve({
        port: info.port,
        protocol,
        shutdown: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            (server as { closeAllConnections?: () => void }).closeAllConnections?.();
          }),
      });
    });
    server.once("error", reject);
    applyNodeLimits(server as unknown as NodeHttpServer, limits);
  });
}
