/**
 * A connection as the guard (`guard.ts`) sees it when only its requests are
 * visible, not its bytes: Deno's HTTP server serving a connection this
 * process accepted itself (`deno_connections.ts`). The rules are the
 * guard's, read at the level of requests:
 *
 * - **Head**: until its first request begins, a connection is held to the
 *   head timeout from the moment it was accepted (a TLS handshake counts).
 *   Later heads are not seen until they are whole, so between requests the
 *   idle timeout is what bounds a head that never ends.
 * - **Idle**: with no request in progress, the clock runs from the last
 *   request's end (or the accept); a request whose answer is in memory ends
 *   when the runtime has it, so a client that does not take it is closed
 *   at the idle timeout. During a request the clock runs only while the
 *   request waits on its client: while the handler waits for the next bytes
 *   of the body, and while a chunk of a streamed answer waits for the next
 *   to be asked for (the runtime asks once it has written one). The
 *   handler's own time is not counted.
 * - **Cap**: a connection with no request in progress may be evicted.
 *
 * The server reports what happens through {@linkcode TrackedConnection}'s
 * methods and wraps the streams with {@linkcode observedBody} and
 * {@linkcode observedAnswer}.
 *
 * @module
 */

import type { CloseReason, Guarded } from "./guard.ts";

/** A wait on the client, begun at `sinceMs`; a connection waits on its client while it has one. */
export interface ClientWait {
  /** When it began. */
  readonly sinceMs: number;
}

/**
 * One connection's requests, as the guard reads them.
 *
 * @example A connection idle after its answer is closed at the idle timeout
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { ConnectionGuard } from "./guard.ts";
 * import { TrackedConnection } from "./request_tracker.ts";
 *
 * let now = 0;
 * const guard = new ConnectionGuard(
 *   { idleTimeoutMs: 1_000, headersTimeoutMs: 500, maxConnections: 10 },
 *   () => now,
 * );
 * const closed: string[] = [];
 * const connection = guard.admitWith((clock) =>
 *   new TrackedConnection((reason) => closed.push(reason), (c) => guard.forget(c), clock)
 * )!;
 * connection.requestBegan();
 * now = 400;
 * connection.requestEnded();
 * now = 1_399;
 * guard.sweep();
 * deepStrictEqual(closed, []);
 * now = 1_400;
 * guard.sweep();
 * deepStrictEqual(closed, ["idle"]);
 * ```
 */
export class TrackedConnection implements Guarded {
  /** When it was accepted, until its first request begins; then null. */
  headStartMs: number | null;
  /** Since when it has had no request in progress. */
  waitingSinceMs: number;

  readonly #close: (reason: CloseReason) => void;
  readonly #forget: (connection: TrackedConnection) => void;
  readonly #now: () => number;
  /** Requests begun and not ended. */
  #requests = 0;
  readonly #waits = new Set<ClientWait>();
  #closing = false;

  /**
   * Starts the record of a connection just accepted.
   *
   * @param close Closes the connection; called once, by the guard.
   * @param forget Tells the guard the connection no longer counts.
   * @param now The guard's clock, ms.
   */
  constructor(
    close: (reason: CloseReason) => void,
    forget: (connection: TrackedConnection) => void,
    now: () => number,
  ) {
    this.#close = close;
    this.#forget = forget;
    this.#now = now;
    const at = now();
    this.headStartMs = at;
    this.waitingSinceMs = at;
  }

  /** Whether nothing is in progress on it. */
  get waitingForRequest(): boolean {
    return !this.#closing && this.#requests === 0;
  }

  /** Whether it has requests in progress, none of which waits on the client. */
  get waitingForApplication(): boolean {
    return !this.#closing && this.#requests > 0 && this.#waits.size === 0;
  }

  /** Since when it has waited on its client: the oldest wait, or the last answer's end. */
  get lastActivityMs(): number {
    if (this.#requests === 0) return this.waitingSinceMs;
    let oldest = Infinity;
    for (const wait of this.#waits) oldest = Math.min(oldest, wait.sinceMs);
    return oldest === Infinity ? this.#now() : oldest;
  }

  /** A request's head has arrived whole and its handler is called. */
  requestBegan(): void {
    this.headStartMs = null;
    this.#requests++;
  }

  /** A request is over: its answer is written, or it failed. */
  requestEnded(): void {
    this.#requests = Math.max(0, this.#requests - 1);
    if (this.#requests === 0) this.waitingSinceMs = this.#now();
  }

  /**
   * A wait on the client begins.
   *
   * @returns The wait, to end with {@linkcode waitEnded}.
   */
  waitBegan(): ClientWait {
    const wait = { sinceMs: this.#now() };
    this.#waits.add(wait);
    return wait;
  }

  /**
   * A wait on the client is over; ending one twice, or one already ended, is harmless.
   *
   * @param wait The wait.
   */
  waitEnded(wait: ClientWait | null): void {
    if (wait !== null) this.#waits.delete(wait);
  }

  /**
   * Closes the connection, once.
   *
   * @param reason Why.
   */
  close(reason: CloseReason): void {
    if (this.#closing) return;
    this.closed();
    this.#close(reason);
  }

  /** The connection is closed, whoever closed it; safe to call twice. */
  closed(): void {
    this.#closing = true;
    this.headStartMs = null;
    this.#forget(this);
  }
}

/**
 * Wraps a request's body so that the handler's waits for its next bytes
 * count as waits on the client.
 *
 * @param body The body as the runtime gives it.
 * @param connection The connection it arrives on.
 * @returns The body to hand the handler.
 */
export function observedBody(
  body: ReadableStream<Uint8Array>,
  connection: TrackedConnection,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const wait = connection.waitBegan();
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } finally {
        connection.waitEnded(wait);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/**
 * Wraps a streamed answer's body so that a chunk handed to the runtime
 * counts as a wait on the client until the runtime asks for the next one,
 * which it does once the chunk is written. The end of the stream leaves
 * the last wait open, for the request's end to close.
 *
 * @param body The handler's stream.
 * @param connection The connection it goes out on.
 * @param waiting Told of each wait, so the request can end the last.
 * @returns The stream to hand the runtime.
 */
export function observedAnswer(
  body: ReadableStream<Uint8Array>,
  connection: TrackedConnection,
  waiting: (wait: ClientWait | null) => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let wait: ClientWait | null = null;
  const settle = (next: ClientWait | null) => {
    connection.waitEnded(wait);
    wait = next;
    waiting(next);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      settle(null);
      const { done, value } = await reader.read();
      settle(connection.waitBegan());
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      settle(null);
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
