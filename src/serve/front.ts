/**
 * A front that bounds the connections of a server which cannot bound them
 * itself: `Bun.serve` has an idle timeout only, and `Deno.serve` no idle
 * or head timeout and no connection cap (Deno without TLS does without the
 * front: `deno_connections.ts`). The front accepts every
 * connection on the public address, applies the {@linkcode ConnectionGuard}'s
 * rules, and relays the bytes of each connection to the real server, which
 * listens on a socket of its own and parses HTTP as before.
 *
 * A connection reaches the server only once its first request head has
 * arrived in full, so slow and idle clients cost the server nothing; the
 * front holds at most a head (16 KiB) per connection for them. A first
 * request to one of the direct routes (the peer stream) never reaches it:
 * the front answers it in this process (`direct_request.ts`). With TLS,
 * the front decrypts (HTTP/1.1 only: it frames HTTP/1.1) and relays plain
 * bytes.
 *
 * It uses `node:net` and `node:tls`, which Deno and Bun both provide. The
 * relay costs CPU on the thread that runs the node: some 10 to 15 µs per
 * request and answer (measured in `bench/README.md`), less over a Unix
 * socket than over loopback TCP, which is why the server behind listens on
 * an abstract Unix socket where Linux offers one. (A front in a worker
 * thread spared that thread, but cost more CPU in all, and on two cores
 * served fewer requests.)
 *
 * @module
 */

import { concatBytes } from "@noble/hashes/utils.js";
import net from "node:net";
import tls from "node:tls";
import {
  checkIntervalMs,
  type CloseReason,
  ConnectionGuard,
  type ConnectionLimits,
  type GuardedConnection,
  RefusedConnections,
} from "./guard.ts";
import { DirectExchange, directHead, type DirectRoutes } from "./direct_request.ts";
import { HEAD_BYTES_MAX } from "./http1_framing.ts";

/** Options of {@linkcode startFront}. */
export interface FrontOptions {
  /** Public port; 0 picks a free one. */
  readonly port: number;
  /** Public address. */
  readonly hostname: string;
  /** PEM certificate chain and key: the front serves HTTPS. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** The limits. */
  readonly limits: ConnectionLimits;
  /** Where the real server listens: a Unix socket's path, or a loopback port. */
  readonly inner: InnerAddress;
  /** Requests the front answers itself rather than relaying (`direct_request.ts`). */
  readonly direct?: DirectRoutes;
}

/** Where the server behind a front listens. */
export type InnerAddress = { readonly path: string } | { readonly port: number };

/** A running front. */
export interface Front {
  /** The public port. */
  readonly port: number;
  /** Stops accepting and closes the connections that have not reached the server. */
  stopAccepting(): void;
  /** Closes every connection; resolves once the listener is closed. */
  close(): Promise<void>;
}

/** The loopback address of the real server, when it listens on TCP. */
export const INNER_HOSTNAME = "127.0.0.1";

/**
 * A fresh name for the server behind a front in Linux's abstract Unix
 * socket namespace (a leading NUL byte): no file to create or clean up,
 * and only `--allow-net` on Deno.
 *
 * @returns The path, or null where there is no abstract namespace.
 */
export function abstractSocketPath(): string | null {
  const platform = (globalThis as { Deno?: { build: { os: string } } }).Deno?.build.os ??
    (globalThis as { process?: { platform: string } }).process?.platform;
  if (platform !== "linux") return null;
  const id = Array.from(
    crypto.getRandomValues(new Uint8Array(12)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  return `\0watercraft-${id}`;
}

/** What a client gets for a head over the limit, before the connection ends. */
const TOO_LARGE_RESPONSE = (() => {
  const body = JSON.stringify({
    error: { code: "too_large", message: `Request head over ${HEAD_BYTES_MAX} bytes` },
  });
  return "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n" +
    `content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`;
})();

/**
 * Starts a front before a server that listens on `options.inner`.
 *
 * @param options Public address, TLS, the limits and the server's address.
 * @returns The front, once it listens.
 * @throws {Error} When the public address cannot be bound.
 */
export async function startFront(options: FrontOptions): Promise<Front> {
  const guard = new ConnectionGuard(options.limits);
  const relays = new Set<Relay>();
  /** Set once the port, part of the requests' origin, is known: no connection comes before. */
  let direct: DirectSetup | null = null;
  const secureContext = options.tls === undefined
    ? null
    : tls.createSecureContext({ cert: options.tls.cert, key: options.tls.key });
  const refused = new RefusedConnections(options.limits.maxConnections);
  const listener = net.createServer({ allowHalfOpen: true }, (raw) => {
    let relay: Relay | null = null;
    const guarded = guard.admit((reason) => relay?.closeFor(reason));
    if (guarded === null) {
      // At the cap with every connection busy: refused. The client sees
      // the connection close, unanswered, after a while.
      hold(raw);
      return;
    }
    relay = new Relay(raw, secureContext, options.inner, direct, (r) => relays.delete(r));
    relays.add(relay);
    relay.start(guarded);
  });
  const hold = (raw: net.Socket) => {
    raw.pause();
    raw.on("error", () => {});
    raw.once("close", refused.hold(() => raw.destroy()));
  };
  const sweepMs = checkIntervalMs(guard.limits);
  const sweeper = sweepMs > 0 ? setInterval(() => guard.sweep(), sweepMs) : null;
  try {
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(options.port, options.hostname, () => {
        listener.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    if (sweeper !== null) clearInterval(sweeper);
    throw error;
  }
  // Accept errors (out of file descriptors, say) cost one connection, not
  // the server: say so and carry on.
  listener.on(
    "error",
    (error) => console.error(`watercraft: cannot accept a connection: ${error}`),
  );
  const port = (listener.address() as net.AddressInfo).port;
  if (options.direct !== undefined) {
    const host = options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname;
    const origin = `${options.tls === undefined ? "http" : "https"}://${host}:${port}`;
    direct = { routes: options.direct, origin };
  }
  const closed = new Promise<void>((resolve) => listener.once("close", () => resolve()));
  let accepting = true;
  const stopAccepting = () => {
    if (accepting) {
      accepting = false;
      listener.close();
    }
    for (const relay of relays) relay.closeIfUnforwarded();
  };
  return {
    port,
    stopAccepting,
    async close() {
      stopAccepting();
      if (sweeper !== null) clearInterval(sweeper);
      for (const relay of relays) relay.destroy();
      refused.closeAll();
      await closed;
    },
  };
}

/** One client connection and, once its first head has arrived, its connection to the server. */
class Relay {
  readonly #raw: net.Socket;
  /** The socket the client's plain bytes come from: the TLS socket over `#raw`, or `#raw`. */
  readonly #client: net.Socket;
  readonly #inner: InnerAddress;
  readonly #forget: (relay: Relay) => void;
  #guarded: GuardedConnection | null = null;
  #upstream: net.Socket | null = null;
  /** Whether `#upstream` has connected: until then, client bytes wait in `#early`. */
  #connected = false;
  /** The client ended its side before the server's connection opened: end that once it has. */
  #endPending = false;
  /** Client bytes held until the server's connection is open. */
  #early: Uint8Array[] = [];
  #destroyed = false;
  readonly #direct: DirectSetup | null;
  /** The request the front answers itself, when the first one is such. */
  #exchange: DirectExchange | null = null;

  constructor(
    raw: net.Socket,
    secureContext: tls.SecureContext | null,
    inner: InnerAddress,
    direct: DirectSetup | null,
    forget: (relay: Relay) => void,
  ) {
    this.#raw = raw;
    this.#inner = inner;
    this.#direct = direct;
    this.#forget = forget;
    raw.setNoDelay(true);
    this.#client = secureContext === null ? raw : new tls.TLSSocket(raw, {
      isServer: true,
      secureContext,
      // The front frames HTTP/1.1 only.
      ALPNProtocols: ["http/1.1"],
    });
  }

  start(guarded: GuardedConnection): void {
    this.#guarded = guarded;
    const client = this.#client;
    client.on("data", (chunk: Uint8Array) => this.#fromClient(chunk));
    client.on("drain", () => {
      guarded.writeBlocked(false);
      this.#upstream?.resume();
    });
    client.on("end", () => {
      // The client sent all it will: pass that on, so the server answers
      // what it has and then ends its side.
      if (this.#exchange !== null) this.#exchange.clientEnded();
      else if (this.#upstream === null) this.destroy();
      else if (this.#connected) this.#upstream.end();
      else this.#endPending = true;
    });
    client.on("error", () => this.destroy());
    client.on("close", () => this.destroy());
    if (client !== this.#raw) {
      this.#raw.on("error", () => this.destroy());
      this.#raw.on("close", () => this.destroy());
    }
  }

  #fromClient(chunk: Uint8Array): void {
    const guarded = this.#guarded!;
    if (!guarded.received(chunk)) return;
    if (this.#exchange !== null) {
      this.#exchange.push(chunk);
      return;
    }
    const upstream = this.#upstream;
    if (upstream !== null && this.#connected) {
      if (!upstream.write(chunk)) this.#client.pause();
      return;
    }
    this.#early.push(chunk);
    if (upstream === null && guarded.headsReceived > 0 && !this.#answerDirectly()) {
      this.#connect();
    }
  }

  /** Takes the first request in this process when it is one of the direct routes. */
  #answerDirectly(): boolean {
    if (this.#direct === null) return false;
    const early = this.#early.length === 1 ? this.#early[0]! : concatBytes(...this.#early);
    const head = directHead(early, this.#direct.routes.paths);
    if (head === null) return false;
    this.#early = [];
    const client = this.#client;
    this.#exchange = new DirectExchange(head, this.#direct.origin, this.#direct.routes, {
      pause: () => client.pause(),
      resume: () => client.resume(),
      answer: (bytes) => {
        this.#guarded!.sent(bytes);
        client.end(bytes);
      },
    });
    this.#exchange.push(early);
    return true;
  }

  /** Opens the connection to the server, once a whole head is here to send. */
  #connect(): void {
    const client = this.#client;
    // Held back until the server's connection is open: at most one head and
    // what came with it is buffered.
    client.pause();
    const upstream = "path" in this.#inner
      ? net.connect({ path: this.#inner.path, allowHalfOpen: true })
      : net.connect({
        host: INNER_HOSTNAME,
        port: this.#inner.port,
        noDelay: true,
        allowHalfOpen: true,
      });
    this.#upstream = upstream;
    upstream.on("connect", () => {
      this.#connected = true;
      let flowing = true;
      for (const chunk of this.#early) flowing = upstream.write(chunk);
      this.#early = [];
      if (this.#endPending) upstream.end();
      else if (flowing) client.resume();
    });
    upstream.on("drain", () => client.resume());
    upstream.on("data", (chunk: Uint8Array) => {
      const guarded = this.#guarded!;
      guarded.sent(chunk);
      if (!client.write(chunk)) {
        guarded.writeBlocked(true);
        upstream.pause();
      }
    });
    upstream.on("end", () => client.end());
    upstream.on("error", () => this.destroy());
    upstream.on("close", () => this.destroy());
  }

  /** What the guard asks for. */
  closeFor(reason: CloseReason): void {
    if (reason === "too_large" && (this.#guarded?.owed ?? 0) === 0) {
      // Nothing else is being answered on it: say why, then end. The guard
      // still counts it, and destroys it if the client does not take this.
      const upstream = this.#upstream;
      this.#upstream = null;
      this.#early = [];
      if (upstream !== null) {
        upstream.removeAllListeners();
        upstream.on("error", () => {});
        upstream.destroy();
      }
      this.#client.end(TOO_LARGE_RESPONSE);
      return;
    }
    this.destroy();
  }

  /** During shutdown: a connection the server never saw has no request to finish. */
  closeIfUnforwarded(): void {
    if (this.#upstream === null && this.#exchange === null) this.destroy();
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#guarded?.closed();
    this.#forget(this);
    this.#exchange?.close();
    this.#upstream?.destroy();
    this.#client.destroy();
    if (this.#client !== this.#raw) this.#raw.destroy();
  }
}

/** The direct routes of a front, with its origin for the requests' URLs. */
interface DirectSetup {
  readonly routes: DirectRoutes;
  readonly origin: string;
}
