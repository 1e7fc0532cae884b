/**
 * Deno's HTTP server on connections this module accepts itself, so that the
 * connection limits hold without a relay in front (`front.ts`): the
 * listener is the module's own (`Deno.listen`; TLS stays with the front,
 * since Deno cannot close a connection whose handshake stalls), each
 * accepted connection is admitted by the {@linkcode ConnectionGuard}, then
 * served by the runtime's server for one connection
 * (`serveHttpOnConnection`, which `Deno.serve` itself is built on), and
 * closed through that server. The guard sees the requests, not the
 * bytes (`request_tracker.ts` says what that changes).
 *
 * Why: the relay costs two socket writes and two reads per request on the
 * node's one thread. Without it, a trivial handler served twice the
 * requests, and a node some 40 % more reads (`bench/README.md`).
 *
 * The runtime's server for one connection is not part of Deno's public API;
 * nor is where a `Response` keeps whether its body is a stream, which tells
 * a streamed answer (watched while it flows) from one held in memory
 * (given once the runtime has it). Both are looked up and checked once, and
 * {@linkcode denoConnectionServing} says null when either is missing or
 * behaves otherwise: `serve()` then puts the relay in front as before.
 *
 * @module
 */

import { requestPath } from "../http/request_path.ts";
import {
  checkIntervalMs,
  ConnectionGuard,
  type ConnectionLimits,
  RefusedConnections,
} from "./guard.ts";
import {
  type ClientWait,
  observedAnswer,
  observedBody,
  TrackedConnection,
} from "./request_tracker.ts";

/** What Deno passes a handler besides the request. */
interface HandlerInfo {
  /**
   * Settles once the request is over: an answer in memory handed to the
   * runtime, a streamed one ended, or the request failed.
   */
  readonly completed: Promise<void>;
}

/** A handler as the runtime's server calls it. */
type ConnectionHandler = (request: Request, info: HandlerInfo) => Response | Promise<Response>;

/** The runtime's server for one accepted connection. */
type ServeOnConnection = (
  connection: Deno.Conn,
  signal: Closer,
  handler: ConnectionHandler,
  onError: (error: unknown) => Response | Promise<Response>,
  onListen: (address: Deno.Addr) => void,
) => { readonly finished: Promise<void>; shutdown(): Promise<void> };

/** Options of {@linkcode startDenoConnections}. */
export interface DenoConnectionsOptions {
  /** Public port; 0 picks a free one. */
  readonly port: number;
  /** Public address. */
  readonly hostname: string;
  /** The limits. */
  readonly limits: ConnectionLimits;
  /** Answers the requests. */
  readonly handler: (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;
  /**
   * Paths of long-lived requests (a peer stream) that a shutdown does not
   * wait for: their connections are closed at once.
   */
  readonly longLivedPaths: ReadonlySet<string>;
  /**
   * Told when a handler switches protocols (a WebSocket): Deno's server for
   * one connection closes the upgraded connection as soon as its HTTP part
   * ends, so such a server needs the front instead.
   */
  readonly switchedProtocols: () => void;
}

/** A running server. */
export interface DenoConnections {
  /** The public port. */
  readonly port: number;
  /** Stops accepting, lets the requests in progress finish, and closes every connection. */
  shutdown(): Promise<void>;
}

/** After an accept fails (out of file descriptors, say), the next waits this long. */
const ACCEPT_RETRY_MS = 100;

/**
 * What the runtime's server for one connection takes as its abort signal:
 * it only registers a listener, which calling {@linkcode close} runs. An
 * `AbortSignal` would do, but its listener throws when the server has
 * already closed, and a listener's throw is uncaught; here it is caught.
 */
class Closer {
  #listener: (() => void) | null = null;

  /** Keeps the server's abort listener. */
  addEventListener(type: string, listener: () => void): void {
    if (type === "abort") this.#listener = listener;
  }

  /** Whether the server gave its listener. */
  get armed(): boolean {
    return this.#listener !== null;
  }

  /** Closes the connection at once, requests in progress and all; harmless once closed. */
  close(): void {
    const listener = this.#listener;
    this.#listener = null;
    try {
      listener?.();
    } catch {
      // The server had closed already.
    }
  }
}

/**
 * The runtime's server for one connection, when this Deno has it and it
 * behaves as this module needs: checked once, live, on a loopback
 * connection (a request answered, a streamed answer told from one in
 * memory, the connection closed on demand).
 *
 * @returns The function, or null.
 */
export function denoConnectionServing(): Promise<ServeOnConnection | null> {
  checked ??= check().catch(() => null);
  return checked;
}

let checked: Promise<ServeOnConnection | null> | undefined;

async function check(): Promise<ServeOnConnection | null> {
  const deno = (globalThis as { Deno?: Record<string | symbol, unknown> }).Deno;
  const key = deno?.internal;
  const internal = typeof key === "symbol" || typeof key === "string"
    ? deno?.[key] as Record<string, unknown> | undefined
    : undefined;
  const serveOn = internal?.serveHttpOnConnection;
  if (typeof serveOn !== "function" || serveOn.length !== 5) return null;
  // Deno keeps a short text body apart, lazily: its inner body reads as none.
  const inMemory = bodyKind(new Response("in memory"), RESPONSE_STATE);
  if (
    bodyKind(new Response(new ReadableStream()), RESPONSE_STATE) !== "stream" ||
    inMemory === null || inMemory === "stream"
  ) return null;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let client: Deno.Conn | null = null;
  try {
    const dialed = Deno.connect({
      hostname: "127.0.0.1",
      port: (listener.addr as Deno.NetAddr).port,
    });
    const conn = await listener.accept();
    client = await dialed;
    const closer = new Closer();
    let completes = false;
    const server = (serveOn as ServeOnConnection)(
      conn,
      closer,
      (_request, info) => {
        completes = info?.completed instanceof Promise;
        return new Response("ok");
      },
      () => new Response(null, { status: 500 }),
      () => {},
    );
    if (!closer.armed) {
      await server.shutdown().catch(() => {});
      return null;
    }
    await client.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    const answer = await readSome(client);
    if (answer === null || !answer.startsWith("HTTP/1.1 200") || !completes) return null;
    closer.close();
    const ended = await readSome(client);
    closer.close();
    await Promise.race([server.finished.catch(() => {}), delay(1_000)]);
    return ended === null ? serveOn as ServeOnConnection : null;
  } finally {
    client?.close();
    listener.close();
  }
}

/** Resolves after `ms`. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Reads what arrives next, within a second; null at the end or past the second. */
async function readSome(conn: Deno.Conn): Promise<string | null> {
  const buffer = new Uint8Array(4_096);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const n = await Promise.race([
    conn.read(buffer),
    new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 1_000)),
  ]).finally(() => clearTimeout(timer));
  return n === null ? null : new TextDecoder().decode(buffer.subarray(0, n));
}

/** The keys under which Deno keeps a `Response`'s and a `Request`'s inner state. */
const RESPONSE_STATE = stateKey(new Response(null), "response");
const REQUEST_STATE = stateKey(new Request("http://localhost/"), "request");

function stateKey(object: object, description: string): symbol | undefined {
  return Object.getOwnPropertySymbols(object).find((symbol) => symbol.description === description);
}

/**
 * Where the body Deno keeps for a request or an answer is, read without
 * touching the public `body` (which would turn bytes in memory into a
 * stream): `"stream"`, `"memory"`, or `"none"`.
 *
 * @param object The request or answer.
 * @param key Its inner state's key.
 * @returns Where, or null when it cannot tell.
 */
function bodyKind(object: object, key: symbol | undefined): "stream" | "memory" | "none" | null {
  if (key === undefined) return null;
  const state = (object as Record<symbol, { body?: unknown } | undefined>)[key];
  if (state === undefined || state === null || !("body" in state)) return null;
  const body = state.body as { streamOrStatic?: unknown } | null | undefined;
  if (body === null) return "none";
  if (typeof body !== "object" || !("streamOrStatic" in body)) return null;
  return body.streamOrStatic instanceof ReadableStream ? "stream" : "memory";
}

/**
 * Whether a request's body may still be arriving: false when it has none
 * or Deno's server has it whole already (the common case of a small body,
 * taken here as the handler would take it, so it stays bytes).
 *
 * @param request The request.
 * @returns True unless it is known to be whole or absent.
 */
function mayBeArriving(request: Request): boolean {
  const kind = bodyKind(request, REQUEST_STATE);
  return kind === null ? request.body !== null : kind === "stream";
}

/**
 * Starts serving on the public address.
 *
 * @param serveOn The runtime's server for one connection ({@linkcode denoConnectionServing}).
 * @param options Address, TLS, limits and handler.
 * @returns The server, once it listens.
 * @throws {Error} When the address cannot be bound.
 */
export function startDenoConnections(
  serveOn: ServeOnConnection,
  options: DenoConnectionsOptions,
): DenoConnections {
  const { hostname, port } = options;
  const listener = Deno.listen({ hostname, port });
  const guard = new ConnectionGuard(options.limits);
  const served = new Set<ServedConnection>();
  const refused = new RefusedConnections(options.limits.maxConnections);
  let accepting = true;

  const admit = (conn: Deno.Conn) => {
    const closer = new Closer();
    const tracked = guard.admitWith((now) =>
      new TrackedConnection(() => closer.close(), (c) => guard.forget(c), now)
    );
    if (tracked === null) {
      refused.hold(() => closeQuietly(conn));
      return;
    }
    (conn as Deno.TcpConn).setNoDelay(true);
    const connection = new ServedConnection(tracked, closer, options);
    served.add(connection);
    const closed = () => {
      tracked.closed();
      served.delete(connection);
    };
    let server;
    try {
      server = serveOn(
        conn,
        closer,
        (request, info) => connection.serve(request, info),
        (error) => {
          console.error("watercraft: a request failed:", error);
          return new Response("Internal Server Error", { status: 500 });
        },
        () => {},
      );
    } catch (error) {
      closed();
      throw error;
    }
    connection.server = server;
    server.finished.catch(() => {}).finally(closed);
  };

  const accepted = (async () => {
    while (accepting) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (!accepting || error instanceof Deno.errors.BadResource) return;
        // Such an error costs one connection, not the server: say so, and go on.
        console.error(`watercraft: cannot accept a connection: ${error}`);
        await delay(ACCEPT_RETRY_MS);
        continue;
      }
      if (!accepting) {
        closeQuietly(conn);
        return;
      }
      try {
        admit(conn);
      } catch (error) {
        // One connection lost, not the server.
        console.error(`watercraft: cannot serve a connection: ${error}`);
        closeQuietly(conn);
      }
    }
  })();

  const sweepMs = checkIntervalMs(options.limits);
  const sweeper = sweepMs > 0 ? setInterval(() => guard.sweep(), sweepMs) : null;
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async shutdown() {
      if (accepting) {
        accepting = false;
        listener.close();
      }
      await accepted;
      // The runtime's server ends the idle connections and lets requests in
      // progress finish; long-lived ones are not waited for.
      const finishing = [...served].map((connection) => connection.shutdown());
      await Promise.all(finishing);
      if (sweeper !== null) clearInterval(sweeper);
      refused.closeAll();
    },
  };
}

/** One admitted connection: its requests, watched for the guard. */
class ServedConnection {
  /** The runtime's server on it, once started. */
  server: { readonly finished: Promise<void>; shutdown(): Promise<void> } | null = null;
  readonly #tracked: TrackedConnection;
  readonly #closer: Closer;
  readonly #options: DenoConnectionsOptions;
  /** Long-lived requests in progress. */
  #longLived = 0;

  constructor(tracked: TrackedConnection, closer: Closer, options: DenoConnectionsOptions) {
    this.#tracked = tracked;
    this.#closer = closer;
    this.#options = options;
  }

  /**
   * Runs one request's handler, watching its body and, when streamed, its
   * answer. An answer in memory is the runtime's to write once handed over:
   * the runtime ends the request there, so the idle clock runs from then,
   * and a client that does not take it is closed at the idle timeout.
   */
  serve(request: Request, info: HandlerInfo): Response | Promise<Response> {
    const tracked = this.#tracked;
    tracked.requestBegan();
    let answerWait: ClientWait | null = null;
    let ended = false;
    const longLived = this.#options.longLivedPaths.size > 0 &&
      this.#options.longLivedPaths.has(requestPath(request.url));
    if (longLived) this.#longLived++;
    const end = () => {
      if (ended) return;
      ended = true;
      if (longLived) this.#longLived--;
      tracked.waitEnded(answerWait);
      tracked.requestEnded();
    };
    info.completed.then(end, end);
    const observed = !mayBeArriving(request) ? request : new Request(request, {
      body: observedBody(request.body!, tracked),
      duplex: "half",
    } as RequestInit);
    const answered = (response: Response): Response => {
      if (response.status === 101) this.#options.switchedProtocols();
      if (ended || bodyKind(response, RESPONSE_STATE) !== "stream" || response.body === null) {
        return response;
      }
      return new Response(
        observedAnswer(response.body, tracked, (wait) => answerWait = wait),
        response,
      );
    };
    const answer = this.#options.handler(observed, info as unknown as Deno.ServeHandlerInfo);
    return answer instanceof Response ? answered(answer) : answer.then(answered);
  }

  /** Ends the connection: at once when idle or long-lived, else once its requests finish. */
  async shutdown(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    // The guard still runs meanwhile: a request held up by its client ends
    // at the idle timeout, as any other.
    if (this.#tracked.waitingForRequest || this.#longLived > 0) this.#closer.close();
    else await server.shutdown().catch(() => {});
    await server.finished.catch(() => {});
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
