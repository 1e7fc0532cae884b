/**
 * Serves a fetch handler (such as a node's Hono app) on whichever runtime is
 * running: `Deno.serve` on Deno, `Bun.serve` on Bun, `@hono/node-server` on
 * Node; over HTTP, or HTTPS when given a certificate.
 *
 * @module
 */

/** A fetch handler: what `app.fetch` is. */
export type FetchHandler = (request: Request) => Response | Promise<Response>;

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
 * Serves `handler` until `shutdown()`.
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
  switch (runtime()) {
    case "deno":
      return await serveDeno(handler, options, hostname, protocol);
    case "bun":
      return serveBun(handler, options, hostname, protocol);
    case "node":
      return await serveNode(handler, options, hostname, protocol);
  }
}

function serveDeno(
  handler: FetchHandler,
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
    }, handler);
  });
}

interface BunServer {
  port: number;
  stop(closeActive?: boolean): Promise<void> | void;
}

function serveBun(
  handler: FetchHandler,
  options: ServeOptions,
  hostname: string,
  protocol: "http" | "https",
): Server {
  const bun = (globalThis as unknown as { Bun: { serve(o: unknown): BunServer } }).Bun;
  const server = bun.serve({
    port: options.port,
    hostname,
    fetch: handler,
    ...(options.tls ? { tls: { cert: options.tls.cert, key: options.tls.key } } : {}),
  });
  return { port: server.port, protocol, shutdown: async () => await server.stop(true) };
}

async function serveNode(
  handler: FetchHandler,
  options: ServeOptions,
  hostname: string,
  protocol: "http" | "https",
): Promise<Server> {
  const { serve: nodeServe } = await import("@hono/node-server");
  const https = options.tls ? await import("node:https") : null;
  return await new Promise((resolve, reject) => {
    const server = nodeServe({
      fetch: handler,
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
