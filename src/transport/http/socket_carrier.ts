/**
 * Carries a peer stream over a socket of its own (`node:net`, or `node:tls`
 * for an `https:` peer, trusting the transport's CAs besides the runtime's
 * roots): the request's head, then each frame as one HTTP/1.1 chunk, written
 * at once with no `fetch` body to pump. A new connection for every stream,
 * so that the peer's front takes the stream itself instead of relaying it
 * (`serve/direct_request.ts`): `fetch` would reuse the connection of an
 * earlier request, and a front relays every request after a connection's
 * first. Measured in `bench/README.md`.
 *
 * `node:net` and `node:tls` are reached through `process.getBuiltinModule`,
 * which Deno, Bun and Node have; where they are missing (an edge runtime)
 * there is no socket carrier and streams go by `fetch`.
 *
 * The peer answers only when it ends the stream (a refusal, its shutdown):
 * the answer is read as HTTP/1.1, whatever its framing, and handed over as
 * a `Response`.
 *
 * @module
 */

import { concatBytes } from "@noble/hashes/utils.js";
import type { Socket } from "node:net";
import { headerFields, MessageFramer, statusCode } from "../../serve/http1_framing.ts";
import { builtinModule } from "./builtin_module.ts";
import type { CarrierEvents, OpenCarrier, StreamCarrier, StreamRequest } from "./peer_stream.ts";

/** The part of `node:net` used here. */
interface NodeNet {
  connect(options: { host: string; port: number; noDelay?: boolean }): Socket;
  isIP(input: string): number;
}

/** The part of `node:tls` used here. */
interface NodeTls {
  connect(options: {
    host: string;
    port: number;
    servername?: string;
    ca?: string[];
    ALPNProtocols: string[];
  }): Socket;
  readonly rootCertificates: readonly string[];
}

const net: NodeNet | null = builtinModule<NodeNet>(
  "node:net",
  (module) => typeof module.connect === "function",
);
const tls: NodeTls | null = builtinModule<NodeTls>(
  "node:tls",
  (module) => typeof module.connect === "function",
);

/** The longest answer read from a peer that ends a stream; its refusals are short. */
const ANSWER_BYTES_MAX = 64 * 1024;

const ENCODER = new TextEncoder();
const LATIN1 = new TextDecoder("latin1");
const CRLF = ENCODER.encode("\r\n");

/**
 * The socket carrier, where the runtime has `node:net` (and `node:tls`).
 *
 * @param ca PEM certificates of the CAs that `https:` peers' certificates
 *   may also come from; none: the runtime's roots only.
 * @returns Whether it carries streams to a URL, and the opener; null where
 *   there are no sockets.
 */
export function socketCarrier(
  ca: readonly string[] = [],
): { carries(url: string): boolean; open: OpenCarrier } | null {
  if (net === null) return null;
  const connect = (url: URL): Socket => {
    // `[::1]` in a URL is `::1` to connect to.
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    if (url.protocol === "http:") {
      return net.connect({ host, port: Number(url.port || 80), noDelay: true });
    }
    const socket = tls!.connect({
      host,
      port: Number(url.port || 443),
      // A name, not an address, is what the certificate is checked against by SNI.
      ...(net.isIP(host) === 0 ? { servername: host } : {}),
      // `ca` replaces the roots: they are passed along.
      ...(ca.length === 0 ? {} : { ca: [...ca, ...tls!.rootCertificates] }),
      ALPNProtocols: ["http/1.1"],
    });
    socket.setNoDelay(true);
    return socket;
  };
  return {
    carries: (url) => url.startsWith("http:") || (url.startsWith("https:") && tls !== null),
    open: (request, events) => new SocketCarrier(connect(new URL(request.url)), request, events),
  };
}

class SocketCarrier implements StreamCarrier {
  readonly #socket: Socket;
  readonly #bufferBytes: number;
  readonly #events: CarrierEvents;
  #done = false;
  /** The answer's bytes so far. */
  #answer: Uint8Array[] = [];
  #answerBytes = 0;
  readonly #framer: MessageFramer;
  #body: Uint8Array[] = [];
  /** The answer has no length: it runs until the peer ends the connection. */
  #untilEnd = false;

  constructor(socket: Socket, request: StreamRequest, events: CarrierEvents) {
    this.#bufferBytes = request.bufferBytes;
    this.#events = events;
    const url = new URL(request.url);
    this.#socket = socket;
    this.#framer = new MessageFramer("response", {
      headStart: () => {},
      head: () => {},
      data: (bytes) => this.#body.push(bytes.slice()),
      // A `100 Continue` and the like: the answer follows.
      end: (interim) => {
        if (!interim) this.#answered();
      },
    });
    let head = `POST ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
    for (const [name, value] of Object.entries(request.headers)) head += `${name}: ${value}\r\n`;
    head += "transfer-encoding: chunked\r\n\r\n";
    // Written before the connection opens: the socket holds it until then.
    socket.write(ENCODER.encode(head));
    socket.on("data", (chunk: Uint8Array) => this.#read(chunk));
    socket.on("error", (error: unknown) => this.#end(error, null));
    socket.on("close", () => this.#end(new Error("The peer closed the stream's connection"), null));
  }

  write(frame: Uint8Array, seal: Uint8Array | null): boolean {
    if (this.#done) return false;
    const length = frame.length + (seal?.length ?? 0);
    const socket = this.#socket;
    // Full past the buffer: drained once this chunk, the last, has left.
    const full = socket.writableLength + length >= this.#bufferBytes;
    // One chunk, handed to the socket in one go.
    socket.cork();
    socket.write(ENCODER.encode(`${length.toString(16)}\r\n`));
    socket.write(frame);
    if (seal !== null) socket.write(seal);
    socket.write(CRLF, full ? () => this.#events.drained() : undefined);
    socket.uncork();
    return !full;
  }

  close(): void {
    this.#done = true;
    this.#socket.destroy();
  }

  #read(chunk: Uint8Array): void {
    if (this.#done) return;
    this.#answer.push(chunk);
    this.#answerBytes += chunk.length;
    if (this.#answerBytes > ANSWER_BYTES_MAX) {
      return this.#end(new Error(`The peer's answer is over ${ANSWER_BYTES_MAX} bytes`), null);
    }
    if (this.#untilEnd) return;
    this.#framer.push(chunk);
    if (this.#framer.state === "opaque" && !this.#done) {
      this.#untilEnd = true;
      this.#socket.once("end", () => this.#answered());
    }
  }

  /** The whole answer arrived: the stream ends with it. */
  #answered(): void {
    if (this.#done) return;
    let bytes: Uint8Array = concatBytes(...this.#answer);
    let text = LATIN1.decode(bytes);
    let end = text.indexOf("\r\n\r\n");
    let status = statusCode(firstLine(text));
    // Interim answers (`100 Continue`) before the answer have no body.
    for (let i = 0; i < 16 && status >= 100 && status < 200 && end >= 0; i++) {
      bytes = bytes.subarray(end + 4);
      text = text.slice(end + 4);
      end = text.indexOf("\r\n\r\n");
      status = statusCode(firstLine(text));
    }
    const lines = text.slice(0, end < 0 ? text.length : end).split("\r\n");
    // A line that is no field is not one the transport reads: skipped.
    const headers = headerFields(lines.slice(1), "skip")!;
    const body = this.#untilEnd && end >= 0 ? bytes.subarray(end + 4) : concatBytes(...this.#body);
    let answer: Response | null = null;
    try {
      answer = new Response(body.length === 0 ? null : body.slice(), { status, headers });
    } catch {
      // A status a Response cannot have: the stream ends without it.
    }
    const said = new TextDecoder().decode(body).slice(0, 300);
    this.#end(new Error(`The peer ended the stream: ${status} ${said}`), answer);
  }

  #end(problem: unknown, answer: Response | null): void {
    if (this.#done) return;
    this.#done = true;
    this.#socket.destroy();
    this.#events.ended(problem, answer);
  }
}

/** The first line of `text`, without its line end. */
function firstLine(text: string): string {
  const end = text.indexOf("\r\n");
  return end < 0 ? text : text.slice(0, end);
}
