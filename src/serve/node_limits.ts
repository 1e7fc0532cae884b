/**
 * The connection rules of `guard.ts` on Node's own HTTP server, which has
 * most of them built in: `headersTimeout` is the head timeout (counted from
 * the connection for its first request, from the first byte for later
 * ones), `keepAliveTimeout` and the socket timeout are the idle timeout, and
 * `requestTimeout` stays off, since a peer stream is a request as long as
 * the node lives. What Node lacks is added here: the socket timeout spares
 * a request the application is still answering, and the cap makes room by
 * closing the connection that has waited longest for a request (Node's
 * `maxConnections` only refuses).
 *
 * @module
 */

import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { checkIntervalMs, type ConnectionLimits, evictableAfterMs } from "./guard.ts";

/** Node's own default for how often it checks head timeouts, ms. */
const NODE_CHECK_INTERVAL_MS = 30_000;

/**
 * The `http.createServer()` options that carry the limits (Node reads some
 * of them only when the server is created).
 *
 * @param limits The limits.
 * @returns Options for `http.createServer()` or `https.createServer()`.
 */
export function nodeServerOptions(limits: ConnectionLimits): Record<string, number> {
  return {
    headersTimeout: limits.headersTimeoutMs,
    // A total limit would cut the peer streams.
    requestTimeout: 0,
    keepAliveTimeout: limits.idleTimeoutMs,
    // Node checks head timeouts every 30 s by default: far too coarse for a 10 s limit.
    connectionsCheckingInterval: checkIntervalMs(limits) || NODE_CHECK_INTERVAL_MS,
  };
}

/** What is known of one connection. */
interface Tracked {
  readonly socket: Socket;
  /** Requests that arrived and whose response has not closed. */
  pending: number;
  /** The latest request, and its response. */
  request: IncomingMessage | null;
  response: ServerResponse | null;
  /** Since when nothing has been in progress: the order of eviction. */
  waitingSinceMs: number;
}

/**
 * Applies the idle timeout and the cap to a Node server created with
 * {@linkcode nodeServerOptions}, before it accepts its first connection.
 *
 * @param server The server (`http` or `https`).
 * @param limits The limits.
 */
export function applyNodeLimits(server: Server, limits: ConnectionLimits): void {
  // Keyed by the client's address and port, which the TCP socket and, with
  // TLS, the TLS socket above it both report.
  const open = new Map<string, Tracked>();
  const key = (socket: Socket) => `${socket.remoteAddress}|${socket.remotePort}`;

  server.on("connection", (socket: Socket) => {
    const max = limits.maxConnections;
    if (max > 0 && open.size >= max) {
      const waitedSince = performance.now() - evictableAfterMs(limits);
      let victim: Tracked | null = null;
      for (const tracked of open.values()) {
        if (tracked.pending > 0 || tracked.waitingSinceMs > waitedSince) continue;
        if (victim === null || tracked.waitingSinceMs < victim.waitingSinceMs) victim = tracked;
      }
      if (victim === null) {
        socket.destroy();
        return;
      }
      open.delete(key(victim.socket));
      victim.socket.destroy();
    }
    const id = key(socket);
    const tracked: Tracked = {
      socket,
      pending: 0,
      request: null,
      response: null,
      waitingSinceMs: performance.now(),
    };
    open.set(id, tracked);
    socket.once("close", () => {
      if (open.get(id) === tracked) open.delete(id);
    });
  });

  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    const tracked = open.get(key(request.socket));
    if (tracked === undefined) return;
    tracked.pending++;
    tracked.request = request;
    tracked.response = response;
    response.once("close", () => {
      tracked.pending--;
      if (tracked.pending === 0) tracked.waitingSinceMs = performance.now();
    });
  });

  if (limits.idleTimeoutMs > 0) {
    server.timeout = limits.idleTimeoutMs;
    // With a listener, Node leaves the decision to it (it destroys the
    // socket otherwise).
    server.on("timeout", (socket: Socket) => {
      const tracked = open.get(key(socket));
      const waitingForApplication = tracked !== undefined && tracked.pending > 0 &&
        tracked.request?.complete === true && socket.writableLength === 0;
      if (!waitingForApplication) socket.destroy();
    });
  }
}
