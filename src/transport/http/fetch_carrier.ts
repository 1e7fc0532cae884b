/**
 * Carries a peer stream as a `fetch` request whose body is a stream: only
 * `fetch` and Web streams, so it runs on Deno, Bun, Node and edge runtimes,
 * over HTTP or HTTPS, with whatever `fetch` the transport was given (one
 * trusting a private CA, say).
 *
 * @module
 */

import type { CarrierEvents, OpenCarrier, StreamCarrier, StreamRequest } from "./peer_stream.ts";

/**
 * Opens stream carriers with `fetchFn`.
 *
 * @param fetchFn The fetch to call.
 * @returns The opener.
 */
export function fetchCarrier(fetchFn: typeof fetch): OpenCarrier {
  return (request, events) => new FetchCarrier(fetchFn, request, events);
}

class FetchCarrier implements StreamCarrier {
  readonly #controller: ReadableStreamDefaultController<Uint8Array>;
  readonly #abort = new AbortController();
  /** The request failed or the peer stopped reading: nothing more is taken. */
  #cancelled = false;
  /** Closed by us: the fetch's end is not reported. */
  #closed = false;

  constructor(fetchFn: typeof fetch, request: StreamRequest, events: CarrierEvents) {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          controller = c;
        },
        pull: () => events.drained(),
        // The fetch settles with the reason (a refused certificate, a
        // reset), which ends the stream.
        cancel: () => {
          this.#cancelled = true;
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: request.bufferBytes }),
    );
    this.#controller = controller;
    const ended = (problem: unknown, answer: Response | null) => {
      this.#cancelled = true;
      try {
        controller.error(problem);
      } catch {
        // Already closed.
      }
      if (!this.#closed) events.ended(problem, answer);
    };
    // Through a promise, so that a fetch that throws at once ends the stream
    // like one that fails later.
    Promise.resolve().then(() =>
      fetchFn(request.url, {
        method: "POST",
        headers: request.headers,
        body,
        signal: this.#abort.signal,
        // A request body that is a stream must say so (fetch standard).
        duplex: "half",
      } as RequestInit)
    ).then(
      async (response) => {
        // The peer answers only when it ends the stream: refused, or closing.
        const text = await response.text().catch(() => "");
        ended(
          new Error(`The peer ended the stream: ${response.status} ${text.slice(0, 300)}`),
          response,
        );
      },
      (error) => ended(error, null),
    );
  }

  write(frame: Uint8Array, seal: Uint8Array | null): boolean {
    if (this.#cancelled) return false;
    try {
      this.#controller.enqueue(frame);
      if (seal !== null) this.#controller.enqueue(seal);
    } catch {
      // Cancelled: the fetch is settling and will end the stream.
      return false;
    }
    return (this.#controller.desiredSize ?? 0) > 0;
  }

  close(): void {
    this.#closed = true;
    this.#cancelled = true;
    try {
      this.#controller.close();
    } catch {
      // Already closed by the runtime.
    }
    this.#abort.abort(new DOMException("The stream was closed", "AbortError"));
  }
}
