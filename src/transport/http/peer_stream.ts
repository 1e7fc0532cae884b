/**
 * One long-lived stream of frames to a peer: a `POST /raft/stream` whose
 * body never ends while the stream lives. Frames written to it leave at
 * once, with no request per batch and no answer to wait for (Raft's answers
 * come back on the peer's own stream to us).
 *
 * What carries the request is a {@linkcode StreamCarrier}: `fetch` with a
 * streaming body (`fetch_carrier.ts`), which runs everywhere, over HTTP or
 * HTTPS; or, where the runtime has `node:net` and `node:tls`, a socket of
 * its own (`socket_carrier.ts`), which spares each frame the runtime's
 * HTTP client and always opens a new connection, so that the peer's front
 * takes the stream itself rather than relaying it (`serve/direct_request.ts`).
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

/** The request that opens a stream. */
export interface StreamRequest {
  /** The whole URL, the stream route's path included. */
  readonly url: string;
  /** Its headers. */
  readonly headers: Record<string, string>;
  /** Bytes the carrier may hold unsent before it reports itself full. */
  readonly bufferBytes: number;
}

/** What a carrier tells its stream. */
export interface CarrierEvents {
  /** It can take frames again after it reported itself full (it may say so when it was not). */
  drained(): void;
  /** It ended, with why, and the peer's answer when the peer ended it by answering. Once. */
  ended(problem: unknown, answer: Response | null): void;
}

/** What carries a stream's bytes to the peer. */
export interface StreamCarrier {
  /**
   * Writes one frame and, in a secured cluster, its seal.
   *
   * @returns False when it holds `bufferBytes` or more unsent after this
   *   (or can take nothing more): wait for `drained`.
   */
  write(frame: Uint8Array, seal: Uint8Array | null): boolean;
  /** Ends it from our side; `ended` is not called after. */
  close(): void;
}

/** Opens a carrier for a stream's request. */
export type OpenCarrier = (request: StreamRequest, events: CarrierEvents) => StreamCarrier;

/** What opening a stream needs. */
export interface PeerStreamOptions {
  /** The peer's base URL. */
  readonly url: string;
  /** What carries the stream. */
  readonly open: OpenCarrier;
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
  readonly #carrier: StreamCarrier;
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
    this.#keepalive = setInterval(() => {
      if (!this.#wrote && !this.#full) this.write(options.keepalive);
      this.#wrote = false;
    }, options.keepaliveMs);
    this.#carrier = options.open({
      url: options.url + STREAM_PATH,
      headers: { ...options.headers, "content-type": "application/octet-stream" },
      bufferBytes: options.bufferBytes,
    }, {
      drained: () => {
        if (!this.#full || this.#ended) return;
        this.#full = false;
        options.onDrain();
      },
      ended: (problem, answer) => this.#end(problem, answer),
    });
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
   * @returns False when the stream has ended (the frame is not sent). A
   *   frame written into a stream that is about to end may be lost too, as
   *   any frame of a stream that breaks.
   */
  write(frame: Uint8Array): boolean {
    if (this.#ended) return false;
    this.#wrote = true;
    const seal = this.#options.sealer?.seal(frame) ?? null;
    if (!this.#carrier.write(frame, seal)) this.#full = true;
    return true;
  }

  /** Ends the stream from our side. */
  close(): void {
    if (this.#ended) return;
    this.#carrier.close();
    this.#end(null);
  }

  #end(problem: unknown, answer: Response | null = null): void {
    if (this.#ended) return;
    this.#ended = true;
    clearInterval(this.#keepalive);
    this.#resolveEnding();
    this.#options.onEnd(problem, answer);
  }
}
