/**
 * Requests the front answers in its own process instead of relaying them to
 * the runtime's server: long-lived streaming requests (the peer stream,
 * `POST /raft/stream`), each of whose chunks would otherwise cross the
 * relay, a socket and the runtime's HTTP server on its way to the handler.
 * With the sender's own socket for each stream (`socket_carrier.ts`), one
 * client's write took some 9 % less time and 64 writers wrote some 18 % more
 * (measured in `bench/README.md`).
 *
 * Only a connection's first request is taken, and only when its head is
 * plain: `POST` to an origin-form target whose path is one of the given
 * ones, `HTTP/1.1`, CRLF line ends, header lines of `name: value`. Anything
 * else is relayed as before, so the runtime's server still answers every
 * request this module does not understand. The body (with a length, or
 * chunked) reaches the handler as a stream, read from the socket no faster
 * than the handler takes it; the answer is written with its length, and the
 * connection is closed after it.
 *
 * @module
 */

import { concatBytes } from "@noble/hashes/utils.js";
import { headerFields, MessageFramer } from "./http1_framing.ts";

/** The requests a front answers itself, and who answers them. */
export interface DirectRoutes {
  /** The paths (without a query) of the `POST` requests taken. */
  readonly paths: ReadonlySet<string>;
  /** Answers them, in this process. */
  readonly handler: (request: Request) => Response | Promise<Response>;
}

/** A head the front answers itself. */
export interface DirectHead {
  /** The request-target, in origin form. */
  readonly target: string;
  /** The header fields, in order. */
  readonly headers: Headers;
}

/** What an exchange needs of the connection it runs on. */
export interface DirectConnection {
  /** Stops reading from the client until {@linkcode resume}. */
  pause(): void;
  /** Reads from the client again. */
  resume(): void;
  /** Writes the whole answer and ends the connection. */
  answer(bytes: Uint8Array): void;
}

/** Body bytes held for a handler that reads slower than they arrive, before the socket pauses. */
const BODY_BUFFER_BYTES = 1 << 20;

const CRLF_CRLF = [0x0d, 0x0a, 0x0d, 0x0a];
const LATIN1 = new TextDecoder("latin1");
const ENCODER = new TextEncoder();
/** Fields of an answer that describe the connection or the body's framing: written by the front. */
const FRAMING_FIELDS = new Set(["connection", "content-length", "keep-alive", "transfer-encoding"]);

/**
 * Reads a connection's first head, to tell whether the front answers it.
 *
 * @param bytes The connection's first bytes, a whole head among them.
 * @param paths The paths taken.
 * @returns The head, or null when the request is to be relayed.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { directHead } from "./direct_request.ts";
 *
 * const bytes = new TextEncoder().encode("POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
 * strictEqual(directHead(bytes, new Set(["/s"]))?.target, "/s");
 * strictEqual(directHead(bytes, new Set(["/t"])), null);
 * ```
 */
export function directHead(bytes: Uint8Array, paths: ReadonlySet<string>): DirectHead | null {
  const end = indexOfHeadEnd(bytes);
  if (end < 0) return null;
  const lines = LATIN1.decode(bytes.subarray(0, end)).split("\r\n");
  const [method, target, version, ...extra] = lines[0]!.split(" ");
  if (method !== "POST" || version !== "HTTP/1.1" || extra.length > 0) return null;
  if (target === undefined || !target.startsWith("/")) return null;
  const query = target.indexOf("?");
  if (!paths.has(query < 0 ? target : target.slice(0, query))) return null;
  const headers = headerFields(lines.slice(1), "refuse");
  return headers === null ? null : { target, headers };
}

/** One request the front answers itself, from its head to its answer. */
export class DirectExchange {
  readonly #connection: DirectConnection;
  readonly #framer: MessageFramer;
  readonly #abort = new AbortController();
  #body!: ReadableStreamDefaultController<Uint8Array>;
  /** The body ended (in full, or with an error): later bytes are not read. */
  #bodyDone = false;
  #answered = false;

  /**
   * Starts the exchange: hands the request to the handler at once, its
   * body to follow as it arrives.
   *
   * @param head The request's head, from {@linkcode directHead}.
   * @param origin The front's origin, `http://host:port` or `https://...`.
   * @param routes Who answers.
   * @param connection The connection it runs on.
   */
  constructor(
    head: DirectHead,
    origin: string,
    routes: DirectRoutes,
    connection: DirectConnection,
  ) {
    this.#connection = connection;
    this.#framer = new MessageFramer("request", {
      headStart: () => {},
      head: () => {},
      data: (bytes) => this.#enqueue(bytes),
      end: () => this.#endBody(null),
    });
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#body = controller;
      },
      pull: () => connection.resume(),
      // The handler stopped reading (a newer stream replaced this one):
      // nothing more is read; its answer still ends the connection.
      cancel: () => {
        this.#bodyDone = true;
        connection.resume();
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: BODY_BUFFER_BYTES }));
    const request = new Request(origin + head.target, {
      method: "POST",
      headers: head.headers,
      body,
      signal: this.#abort.signal,
      // A request body that is a stream must say so (fetch standard).
      duplex: "half",
    } as RequestInit);
    Promise.resolve()
      .then(() => routes.handler(request))
      .then((response) => this.#answer(response))
      .catch(() => this.#answerBytes(INTERNAL_ERROR));
  }

  /**
   * Takes the client's next bytes: at first the whole head and what came
   * with it, then each chunk as it arrives.
   *
   * @param bytes The bytes, not reused by the caller.
   */
  push(bytes: Uint8Array): void {
    if (this.#bodyDone) return;
    this.#framer.push(bytes);
    if (this.#framer.state === "opaque") {
      this.#endBody(new Error("The request's body is not framed as HTTP/1.1 allows"));
    }
  }

  /** The client ended its side: a body not yet whole never will be. */
  clientEnded(): void {
    this.#endBody(new Error("The client ended the connection before the request's body"));
  }

  /** The connection is gone: the body ends with an error and the request is aborted. */
  close(): void {
    this.#endBody(new Error("The connection closed"));
    this.#answered = true;
    this.#abort.abort(new DOMException("The connection closed", "AbortError"));
  }

  #enqueue(bytes: Uint8Array): void {
    if (this.#bodyDone || bytes.length === 0) return;
    this.#body.enqueue(bytes);
    if ((this.#body.desiredSize ?? 1) <= 0) this.#connection.pause();
  }

  #endBody(error: Error | null): void {
    if (this.#bodyDone) return;
    this.#bodyDone = true;
    try {
      if (error === null) this.#body.close();
      else this.#body.error(error);
    } catch {
      // Cancelled by the handler already.
    }
  }

  async #answer(response: Response): Promise<void> {
    const body = new Uint8Array(await response.arrayBuffer());
    let head = `HTTP/1.1 ${response.status} ${response.statusText}\r\n`;
    for (const [name, value] of response.headers) {
      if (!FRAMING_FIELDS.has(name)) head += `${name}: ${value}\r\n`;
    }
    head += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
    this.#answerBytes(concatBytes(ENCODER.encode(head), body));
  }

  #answerBytes(bytes: Uint8Array): void {
    if (this.#answered) return;
    this.#answered = true;
    this.#endBody(new Error("The request was answered before its body ended"));
    this.#connection.answer(bytes);
  }
}

/** The answer when the handler throws: it answers errors itself, so this is a bug. */
const INTERNAL_ERROR = ENCODER.encode(
  "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
);

/** Where the first `\r\n\r\n` ends, or -1. */
function indexOfHeadEnd(bytes: Uint8Array): number {
  for (
    let at = bytes.indexOf(0x0d);
    at >= 0 && at + 3 < bytes.length;
    at = bytes.indexOf(0x0d, at + 1)
  ) {
    if (CRLF_CRLF.every((byte, i) => bytes[at + i] === byte)) return at;
  }
  return -1;
}
