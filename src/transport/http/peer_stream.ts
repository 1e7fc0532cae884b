/**
 * One long-lived stream of frames to a peer: a `POST /raft/stream` whose
 * body never ends while the stream lives. Frames written to it leave at
 * once, with no request per batch and no answer to wait for (Raft's answers
 * come back on the peer's own stream to us). Only `fetch` and Web streams
 * are used, so it runs on Deno, Bun and Node alike, over HTTP or HTTPS.
 *
 * A stream ends when the peer closes it, the connection breaks, or the
 * sender closes it; the sender then opens a new one after a back-off.
 * Frames written into a stream that breaks are lost, which Raft tolerates.
 *
 * In a secured cluster each frame is followed by its seal
 * (`stream_seal.ts`), keyed by the signed request that opened the stream.
 *
 * @module
 */

import type { FrameSealer } from "./stream_seal.ts";

/** Path of the stream route. */
export const STREAM_PATH = "/raft/stream";

/** What opening a stream needs. */
export interface PeerStreamOptions {
  /** The peer's base URL. */
  readonly url: string;
  /** The fetch to call it with. */
  readonly fetch: typeof fetch;
  /** The headers that open the stream (sender id, proof of the secret). */
  readonly headers: Record<string, string>;
  /** Seals each frame written, in a secured cluster; null in an open one. */
  readonly sealer: FrameSealer | null;
  /**
   * Bytes the stream may hold unsent before {@linkcode PeerStream.writable}
   * turns false: past it the sender keeps frames in its own bounded queue.
   */
  readonly bufferBytes: number;
  /**
   * Writes `keepalive` when nothing else was written for this long, ms, so
   * that servers which close idle requests (Bun's default is 10 s) keep the
   * stream, and a broken connection is noticed.
   */
  readonly keepaliveMs: number;
  /** The frame written to keep the stream alive (an empty batch). */
  readonly keepalive: Uint8Array;
  /** Called once when the stream can take frames again after being full. */
  readonly onDrain: () => void;
  /**
   * Called once when the stream ends, with why (null when closed by us),
   * and the peer's answer when it ended the stream by answering.
   */
  readonly onEnd: (problem: unknown, answer: Response | null) => void;
}

/** An open stream of frames to one peer. */
export class PeerStream {
  readonly #controller: ReadableStreamDefaultController<Uint8Array>;
  readonly #abort = new AbortController();
  readonly #options: PeerStreamOptions;
  #ended = false;
  #full = false;
  #resolveEnding!: () => void;
  /** Settles when the stream ends, however it ends. */
  readonly ending: Promise<void> = new Promise((resolve) => this.#resolveEnding = resolve);
  #wrote = false;
  readonly #keepalive: ReturnType<typeof setInterval>;

  /**
   * Opens a stream: the request starts at once and stays open.
   *
   * @param options Where to, and whom to tell when it drains or ends.
   */
  constructor(options: PeerStreamOptions) {
    this.#options = options;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          controller = c;
        },
        pull: () => {
          if (!this.#full) return;
          this.#full = false;
          options.onDrain();
        },
        // The request failed or the peer stopped reading: the fetch settles
        // with the reason (a refused certificate, a reset), which ends the stream.
        cancel: () => {
          this.#full = true;
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: options.bufferBytes }),
    );
    this.#controller = controller;
    this.#keepalive = setInterval(() => {
      if (!this.#wrote && !this.#full) this.write(options.keepalive);
      this.#wrote = false;
    }, options.keepaliveMs);
    // Through a promise, so that a fetch that throws at once ends the stream
    // like one that fails later.
    Promise.resolve().then(() =>
      options.fetch(options.url + STREAM_PATH, {
        method: "POST",
        headers: { ...options.headers, "content-type": "application/octet-stream" },
        body,
        signal: this.#abort.signal,
        // A request body that is a stream must say so (fetch standard).
        duplex: "half",
      } as RequestInit)
    ).then(
      async (response) => {
        // The peer answers only when it ends the stream: refused, or closing.
        const text = await response.text().catch(() => "");
        this.#end(
          new Error(`The peer ended the stream: ${response.status} ${text.slice(0, 300)}`),
          response,
        );
      },
      (error) => this.#end(error),
    );
  }

  /** Whether frames written now leave without waiting behind others. */
  get writable(): boolean {
    return !this.#ended && !this.#full;
  }

  /** Whether the stream has ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Writes one frame.
   *
   * @param frame A whole frame.
   * @returns False when the stream has ended (the frame is not sent).
   */
  write(frame: Uint8Array): boolean {
    if (this.#ended) return false;
    this.#wrote = true;
    try {
      this.#controller.enqueue(frame);
      if (this.#options.sealer !== null) this.#controller.enqueue(this.#options.sealer.seal(frame));
    } catch {
      // Cancelled: the fetch is settling and will end the stream.
      return false;
    }
    if ((this.#controller.desiredSize ?? 0) <= 0) this.#full = true;
    return true;
  }

  /** Ends the stream from our side. */
  close(): void {
    if (this.#ended) return;
    try {
      this.#controller.close();
    } catch {
      // Already closed by the runtime.
    }
    this.#abort.abort(new DOMException("The stream was closed", "AbortError"));
    this.#end(null);
  }

  #end(problem: unknown, answer: Response | null = null): void {
    if (this.#ended) return;
    this.#ended = true;
    clearInterval(this.#keepalive);
    this.#resolveEnding();
    try {
      this.#controller.error(problem ?? new Error("closed"));
    } catch {
      // Already closed.
    }
    this.#options.onEnd(problem, answer);
  }
}
