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
 * @module
 */

import { pathProblem, pathRefusal, requestPath } from "./http/request_path.ts";

/** A fetch handler: what `app.fetch` is. */
export type FetchHandler = (request: Request) => Response | Promise<Response>;

/**
 * A fetch handler as the runtimes call it: with what they know of the
 * request besides (Deno's connection info, Node's `{ incoming, outgoing }`),
 * which Hono's `app.fetch` takes as its `env`.
 */
type RuntimeHandler = (request: Request, env?: unknown) => Response | Promise<Response>;

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
 * @param options Port, address and TLS.
 * @returns The running server, once it listens.
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
  // The handler gets what the runtime passes besides the request, as it
  // would if it were served directly (Hono reads it as `env`).
  const full = handler as RuntimeHandler;
  switch (runtime()) {
    case "deno":
      return await serveDeno(full, options, hostname, protocol);
    case "bun":
      return serveBun(full, options, hostname, protocol);
    case "node":
      return await serveNode(full, options, hostname, protocol);
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

function serveDeno(
  handler: RuntimeHandler,
  options: ServeOptions,
  hostname: string,
  protocol: "http" | "https",
): Promise<Server> {
  return new Promise((resolve) => {
    const server = Deno.serve({
      port: options.port,
      hostname,
      ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
      onListen: ({ port }) => resolve({ port, protocol, shutdown: () => server.shutdown() }),
    }, (request, info) =>
      // Deno's request URL is the request-target as it came: check it as is.
      checked(requestPath(request.url), () => handler(request, info)));
  });
}

interface BunServer {
  port: number;
  stop(closeActive?: boolean): Promise<void> | void;
}

/** A request as Bun's router hands it over: with the matched segments. */
type BunRouteRequest = Request & { readonly params?: Readonly<Record<string, string>> };

function serveBun(
  handler: RuntimeHandler,
  options: ServeOptions,
  hostname: string,
  protocol: "http" | "https",
): Server {
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
  const server = bun.serve({
    port: options.port,
    hostname,
    routes,
    fetch: (request: Request, server: unknown) =>
      checked(requestPath(request.url), () => handler(request, server)),
    ...(options.tls ? { tls: { cert: options.tls.cert, key: options.tls.key } } : {}),
  });
  return { port: server.port, protocol, shutdown: async () => await server.stop(true) };
}

async function serveNode(
  handler: RuntimeHandler,
  options: ServeOptions,
  hostname: string,
  protocol: "http" | "https",
): Promise<Server> {
  const { serve: nodeServe } = await import("@hono/node-server");
  const https = options.tls ? await import("node:https") : null;
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
      ...(https && options.tls
        ? {
          createServer: https.createServer,
          serverOptions: { cert: options.tls.cert, key: options.tls.key },
        }
        : {}),
    }, (info) => {
      // Peer streams are requests that last as long as the node: Node's
      // default would cut every request after 5 minutes.
      (server as { requestTimeout?: number }).requestTimeout = 0;
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
  });
}
