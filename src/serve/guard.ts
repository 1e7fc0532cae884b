/**
 * The bookkeeping that bounds a server's connections, apart from any socket
 * API: an idle timeout, a head timeout and a cap on open connections, with
 * the rules the runtimes' fronts share (`front.ts` on Deno and Bun; Node's
 * own server applies the same rules in `node_limits.ts`).
 *
 * The rules:
 *
 * - **Idle**: a connection is closed once it has waited this long on its
 *   client: for a request to begin, for the rest of a body, or for the
 *   client to take what the server sent. Time the application takes to
 *   answer is not the client's fault and is not counted (the node bounds its
 *   own waits: writes answer `504 timeout` after 5 s by default). A body
 *   that keeps trickling in is never cut by this: the peer streams
 *   (`POST /raft/stream`) are bodies that last as long as the node, with a
 *   keepalive frame every 4 s.
 * - **Head**: a request's head (request line and headers) must arrive in
 *   full within this long of its first byte; the first request's clock
 *   starts when the connection is accepted, so a TLS handshake counts too.
 * - **Cap**: at most this many open connections. At the cap, a new
 *   connection takes the place of the connection that has waited longest
 *   for a request (idle, or with a head still arriving), if it has waited a
 *   while (a quarter of the shorter timeout, at most a second); else the
 *   new one is refused: closed unanswered (the front holds it a second
 *   first, so that clients reconnecting in a loop do not keep the server
 *   busy accepting and closing). So slow or idle clients
 *   cannot lock the others out, and peer streams and requests in progress
 *   are never closed to make room.
 *
 * @module
 */

import { HeadTooLargeError, MessageFramer } from "./http1_framing.ts";

/** Limits on a server's connections; 0 turns a limit off. */
export interface ConnectionLimits {
  /** How long a connection may wait on its client, ms (see the module's rules). */
  readonly idleTimeoutMs: number;
  /** How long a request's head may take to arrive in full, ms. */
  readonly headersTimeoutMs: number;
  /** Open connections at most. */
  readonly maxConnections: number;
}

/** Default idle timeout, ms: well above the peer streams' keepalive gap (4 to 8 s) and a write's 5 s. */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/** Default head timeout, ms: a head normally arrives in one packet. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** Default cap on open connections. */
export const DEFAULT_MAX_CONNECTIONS = 4_096;

/**
 * A connection refused at the cap is held this long, unread, before it is
 * closed: a client that reconnects the moment it is closed would otherwise
 * have the server accept and close as fast as the machine can go.
 */
export const REFUSED_HOLD_MS = 1_000;

/** The largest timeout accepted, ms (a day: more is a typo). */
const TIMEOUT_MS_MAX = 86_400_000;
/** The largest cap accepted (far above any file descriptor limit). */
const CONNECTIONS_MAX = 1_000_000;
/** Requests a client may send ahead of their answers (pipelining) before it is closed. */
const PIPELINED_MAX = 256;
/** The longest a connection must wait for a request before a newcomer may take its place, ms. */
const EVICTABLE_AFTER_MS_MAX = 1_000;

/**
 * How long a connection must have waited for a request before a newcomer
 * may take its place at the cap: a quarter of the shorter timeout, at most
 * a second. Without it, clients that reconnect the moment they are closed
 * evict one another in a chain, as fast as the machine can accept; with
 * it, each place changes hands at most that often.
 *
 * @param limits The limits.
 * @returns The wait, ms.
 */
export function evictableAfterMs(limits: ConnectionLimits): number {
  const timeouts = [limits.idleTimeoutMs, limits.headersTimeoutMs].filter((ms) => ms > 0);
  return Math.min(EVICTABLE_AFTER_MS_MAX, ...timeouts.map((ms) => Math.floor(ms / 4)));
}

/**
 * Fills in and checks connection limits.
 *
 * @param limits Any of the three; the rest take their defaults.
 * @returns All three.
 * @throws {RangeError} When one is not a whole number from 0 to its maximum.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, throws } from "node:assert/strict";
 * import { connectionLimits } from "./guard.ts";
 *
 * deepStrictEqual(connectionLimits({ maxConnections: 0 }), {
 *   idleTimeoutMs: 30_000,
 *   headersTimeoutMs: 10_000,
 *   maxConnections: 0,
 * });
 * throws(() => connectionLimits({ idleTimeoutMs: -1 }), RangeError);
 * ```
 */
export function connectionLimits(limits: Partial<ConnectionLimits> = {}): ConnectionLimits {
  return {
    idleTimeoutMs: whole(
      "idleTimeoutMs",
      limits.idleTimeoutMs,
      DEFAULT_IDLE_TIMEOUT_MS,
      TIMEOUT_MS_MAX,
    ),
    headersTimeoutMs: whole(
      "headersTimeoutMs",
      limits.headersTimeoutMs,
      DEFAULT_HEADERS_TIMEOUT_MS,
      TIMEOUT_MS_MAX,
    ),
    maxConnections: whole(
      "maxConnections",
      limits.maxConnections,
      DEFAULT_MAX_CONNECTIONS,
      CONNECTIONS_MAX,
    ),
  };
}

function whole(name: string, value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be a whole number from 0 (off) to ${max}, not ${value}`);
  }
  return value;
}

/**
 * Whether any limit is on.
 *
 * @param limits The limits.
 * @returns False when all three are 0.
 */
export function anyLimit(limits: ConnectionLimits): boolean {
  return limits.idleTimeoutMs > 0 || limits.headersTimeoutMs > 0 || limits.maxConnections > 0;
}

/**
 * How often to check the timeouts, ms: an eighth of the shorter one, so a
 * connection is closed at most an eighth late, within 10 ms to 1 s.
 *
 * @param limits The limits.
 * @returns The period, or 0 when no timeout is on.
 */
export function checkIntervalMs(limits: ConnectionLimits): number {
  const timeouts = [limits.idleTimeoutMs, limits.headersTimeoutMs].filter((ms) => ms > 0);
  if (timeouts.length === 0) return 0;
  return Math.min(1_000, Math.max(10, Math.floor(Math.min(...timeouts) / 8)));
}

/**
 * Why the guard closes a connection.
 *
 * - `idle`: it waited on its client longer than the idle timeout;
 * - `headers`: a request's head took longer than the head timeout;
 * - `evicted`: a new connection took its place at the cap;
 * - `too_large`: a head over 16 KiB (the front answers 431 first);
 * - `pipelined`: too many requests sent ahead of their answers.
 */
export type CloseReason = "idle" | "headers" | "evicted" | "too_large" | "pipelined";

/**
 * Connections refused at the cap, each held unread for
 * {@linkcode REFUSED_HOLD_MS} before it is closed. At most `max` are held;
 * past that a refused connection is closed at once.
 */
export class RefusedConnections {
  readonly #max: number;
  /** How to close each held connection, with the timer that will. */
  readonly #held = new Map<() => void, ReturnType<typeof setTimeout>>();

  /**
   * Creates an empty set.
   *
   * @param max Most connections held at once (the cap on open connections).
   */
  constructor(max: number) {
    this.#max = max;
  }

  /**
   * Holds a refused connection.
   *
   * @param close Closes it; called once, by this set.
   * @returns Forgets it without closing it: for a connection that closed by itself.
   */
  hold(close: () => void): () => void {
    if (this.#held.size >= this.#max) {
      close();
      return () => {};
    }
    const timer = setTimeout(() => {
      this.#held.delete(close);
      close();
    }, REFUSED_HOLD_MS);
    this.#held.set(close, timer);
    return () => {
      clearTimeout(timer);
      this.#held.delete(close);
    };
  }

  /** Closes every connection held (a shutdown). */
  closeAll(): void {
    const held = [...this.#held];
    this.#held.clear();
    for (const [close, timer] of held) {
      clearTimeout(timer);
      close();
    }
  }
}

/**
 * One connection as the guard reads it, whatever tells it what happens on
 * the connection: its bytes ({@linkcode GuardedConnection}) or only its
 * requests (`request_tracker.ts`).
 */
export interface Guarded {
  /** When the current head's clock started; null when no head is awaited against the head timeout. */
  readonly headStartMs: number | null;
  /** Since when the connection has been waiting on its client (meaningless while {@linkcode waitingForApplication}). */
  readonly lastActivityMs: number;
  /** Whether only the application holds it up: the idle clock stops. */
  readonly waitingForApplication: boolean;
  /** Whether nothing is in progress on it: it may be evicted at the cap. */
  readonly waitingForRequest: boolean;
  /** Since when it has had nothing in progress: the order of eviction. */
  readonly waitingSinceMs: number;
  /** Asks for the connection to be closed. */
  close(reason: CloseReason): void;
}

/**
 * The connections of one server and their limits. Feed it what happens on
 * each connection; it calls a connection's `close` when a limit is passed.
 *
 * @example A head that never ends is closed
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { ConnectionGuard } from "./guard.ts";
 *
 * let now = 0;
 * const guard = new ConnectionGuard(
 *   { idleTimeoutMs: 1_000, headersTimeoutMs: 500, maxConnections: 10 },
 *   () => now,
 * );
 * const closed: string[] = [];
 * const connection = guard.admit((reason) => closed.push(reason));
 * connection?.received(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a"));
 * now = 500;
 * guard.sweep();
 * deepStrictEqual(closed, ["headers"]);
 * ```
 */
export class ConnectionGuard {
  /** The limits it applies. */
  readonly limits: ConnectionLimits;
  readonly #now: () => number;
  readonly #open = new Set<Guarded>();

  /**
   * Creates a guard with no connection.
   *
   * @param limits The limits.
   * @param now The clock, ms (monotonic); a fake one in tests.
   */
  constructor(limits: ConnectionLimits, now: () => number = () => performance.now()) {
    this.limits = limits;
    this.#now = now;
  }

  /** Open connections, not counting those it asked to close. */
  get size(): number {
    return this.#open.size;
  }

  /**
   * Takes a new connection, making room at the cap when it can.
   *
   * @param close Called when the connection must be destroyed, once; or,
   *   for `too_large`, first to answer and end it, and once more (`idle`)
   *   should the client not take that answer within the idle timeout.
   * @returns The connection's record, or null when it must be refused: the
   *   cap is reached and no connection is waiting for a request.
   */
  admit(close: (reason: CloseReason) => void): GuardedConnection | null {
    return this.admitWith(() => new GuardedConnection(this, close, this.#now));
  }

  /**
   * Takes a new connection whose record is made by `make`, making room at
   * the cap when it can.
   *
   * @param make Makes the record, with the guard's clock; it must call
   *   {@linkcode forget} once it is closed.
   * @returns The record, or null when the connection must be refused.
   */
  admitWith<T extends Guarded>(make: (now: () => number) => T): T | null {
    const max = this.limits.maxConnections;
    if (max > 0 && this.#open.size >= max) {
      const waitedSince = this.#now() - evictableAfterMs(this.limits);
      let victim: Guarded | null = null;
      for (const connection of this.#open) {
        if (!connection.waitingForRequest || connection.waitingSinceMs > waitedSince) continue;
        if (victim === null || connection.waitingSinceMs < victim.waitingSinceMs) {
          victim = connection;
        }
      }
      if (victim === null) return null;
      victim.close("evicted");
    }
    const connection = make(this.#now);
    this.#open.add(connection);
    return connection;
  }

  /** Closes every connection past a timeout; call it every {@linkcode checkIntervalMs}. */
  sweep(): void {
    const now = this.#now();
    const { idleTimeoutMs, headersTimeoutMs } = this.limits;
    for (const connection of [...this.#open]) {
      const headStart = connection.headStartMs;
      if (headersTimeoutMs > 0 && headStart !== null && now - headStart >= headersTimeoutMs) {
        connection.close("headers");
      } else if (
        idleTimeoutMs > 0 && !connection.waitingForApplication &&
        now - connection.lastActivityMs >= idleTimeoutMs
      ) {
        connection.close("idle");
      }
    }
  }

  /** Forgets a connection that is closed or being closed: it no longer counts. */
  forget(connection: Guarded): void {
    this.#open.delete(connection);
  }
}

/**
 * One connection as the guard sees it: the bytes each way, framed into
 * HTTP/1.1 messages, and whether its client's writes are blocked.
 */
export class GuardedConnection implements Guarded {
  /** Requests whose head arrived on this connection. */
  headsReceived = 0;
  /** When the current head's first byte arrived (or the connection, for the first); null outside a head. */
  headStartMs: number | null;
  /** When a byte last moved to or from the client. */
  lastActivityMs: number;
  /** Since when it has had nothing in progress: the order of eviction. */
  waitingSinceMs: number;

  readonly #guard: ConnectionGuard;
  readonly #close: (reason: CloseReason) => void;
  readonly #now: () => number;
  readonly #requests: MessageFramer;
  readonly #responses: MessageFramer;
  /** One entry per request still owed its final response: whether it was a HEAD. */
  #owed: boolean[] = [];
  #writeBlocked = false;
  #closeReason: CloseReason | null = null;
  /** Its sockets are closed: nothing more is framed. */
  #closed = false;

  /** @internal Created by {@linkcode ConnectionGuard.admit}. */
  constructor(guard: ConnectionGuard, close: (reason: CloseReason) => void, now: () => number) {
    this.#guard = guard;
    this.#close = close;
    this.#now = now;
    const at = now();
    this.headStartMs = at;
    this.lastActivityMs = at;
    this.waitingSinceMs = at;
    this.#requests = new MessageFramer("request", {
      headStart: () => {
        this.headStartMs ??= this.#now();
      },
      head: (head) => {
        this.headStartMs = null;
        this.headsReceived++;
        this.#owed.push(head.method === "HEAD");
        if (this.#owed.length > PIPELINED_MAX) this.close("pipelined");
      },
      end: () => {},
    });
    this.#responses = new MessageFramer("response", {
      headStart: () => {},
      head: (head) => {
        // 101: the connection is a tunnel now (a WebSocket, say); only the
        // idle timeout applies to it from here on.
        if (head.status === 101) {
          this.#requests.makeOpaque();
          this.#owed = [];
        }
      },
      end: (interim) => {
        if (interim) return;
        this.#owed.shift();
        if (this.#owed.length === 0 && this.#requests.state === "idle") {
          this.waitingSinceMs = this.#now();
        }
      },
      answersHead: () => this.#owed[0] ?? false,
    });
  }

  /** Whether nothing is in progress on it: it may be evicted at the cap. */
  get waitingForRequest(): boolean {
    const state = this.#requests.state;
    return this.#closeReason === null && this.#owed.length === 0 &&
      (state === "idle" || state === "head");
  }

  /** Whether the server owes an answer that the client is not holding up: the idle clock stops. */
  get waitingForApplication(): boolean {
    return this.#closeReason === null && this.#owed.length > 0 &&
      this.#requests.state === "idle" && !this.#writeBlocked;
  }

  /** Requests whose final response has not been passed on yet. */
  get owed(): number {
    return this.#owed.length;
  }

  /**
   * Notes bytes from the client.
   *
   * @param bytes The bytes, in order.
   * @returns Whether to pass them on; false once the connection is being closed.
   */
  received(bytes: Uint8Array): boolean {
    if (this.#closeReason !== null || this.#closed) return false;
    this.lastActivityMs = this.#now();
    try {
      this.#requests.push(bytes);
    } catch (error) {
      if (!(error instanceof HeadTooLargeError)) throw error;
      this.close("too_large");
    }
    return this.#closeReason === null;
  }

  /**
   * Notes bytes from the server, handed to the client's socket.
   *
   * @param bytes The bytes, in order.
   */
  sent(bytes: Uint8Array): void {
    this.lastActivityMs = this.#now();
    try {
      this.#responses.push(bytes);
    } catch (error) {
      if (!(error instanceof HeadTooLargeError)) throw error;
      // The server's own head: stop framing rather than fail the connection.
      this.#responses.makeOpaque();
    }
  }

  /**
   * Notes whether the client's socket holds bytes it has not taken.
   *
   * @param blocked True when a write was buffered; false once it drained.
   */
  writeBlocked(blocked: boolean): void {
    this.#writeBlocked = blocked;
    this.lastActivityMs = this.#now();
  }

  /**
   * Asks for the connection to be closed, once: calls the `close` given to
   * {@linkcode ConnectionGuard.admit} and stops counting it (except after
   * `too_large`, whose answer may still leave: it counts until
   * {@linkcode closed}, and the idle timeout still applies to it).
   *
   * @param reason Why.
   */
  close(reason: CloseReason): void {
    if (this.#closeReason !== null && this.#closeReason !== "too_large") return;
    if (this.#closeReason === "too_large" && reason === "too_large") return;
    this.#closeReason = reason;
    this.headStartMs = null;
    this.lastActivityMs = this.#now();
    if (reason !== "too_large") this.#guard.forget(this);
    this.#close(reason);
  }

  /** Notes that the connection's sockets are closed; safe to call twice. */
  closed(): void {
    this.#closed = true;
    this.#guard.forget(this);
  }
}
