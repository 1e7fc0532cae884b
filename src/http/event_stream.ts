/**
 * Server-Sent Events from an async iterator, with the two things every
 * long-lived answer needs: a comment line now and then, so that proxies and
 * load balancers do not take a quiet stream for a dead one, and an end to
 * the iterator the moment the client goes away.
 *
 * Backpressure is the stream's own: the next event is taken from the
 * iterator only once the last one was written, so a client that reads
 * slowly holds the iterator back instead of filling a buffer.
 *
 * @module
 */

import type { Context } from "hono";
import { streamSSE } from "hono/streaming";

/** One event on the wire. */
export interface SseEvent {
  /** The event's name (`event:`). */
  readonly event: string;
  /** Its data, sent as one JSON line. */
  readonly data: unknown;
  /** Its id (`id:`): what a reconnecting client sends back in `Last-Event-ID`. */
  readonly id?: string;
}

/** A comment line this often keeps a quiet stream open. */
const KEEPALIVE_MS = 15_000;

/**
 * Answers with an event stream.
 *
 * @param c The request's context.
 * @param events What to send; ended (`return()`) when the client leaves.
 * @param render Turns each item into an event, or null to skip it.
 * @returns The streaming response.
 */
export function eventStream<T>(
  c: Context,
  events: AsyncIterableIterator<T>,
  render: (item: T) => SseEvent | null,
): Response {
  return streamSSE(c, async (stream) => {
    const keepalive = setInterval(() => {
      stream.write(": keepalive\n\n").catch(() => {});
    }, KEEPALIVE_MS);
    stream.onAbort(() => {
      events.return?.();
    });
    try {
      for await (const item of events) {
        if (stream.aborted) break;
        const event = render(item);
        if (event === null) continue;
        await stream.writeSSE({
          event: event.event,
          data: JSON.stringify(event.data),
          ...(event.id === undefined ? {} : { id: event.id }),
        });
      }
    } finally {
      clearInterval(keepalive);
      await events.return?.();
    }
  });
}
