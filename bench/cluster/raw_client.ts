/**
 * The load generator's HTTP/1.1 client: keep-alive connections over plain
 * TCP (`Deno.connect`), each request written as bytes and each answer framed
 * by the project's own HTTP/1.1 framer, one request at a time per
 * connection.
 *
 * Why not `fetch`: on this 2-core machine the load generator shares the CPU
 * with the systems it measures, and `fetch` (a `Request`, `Headers`, an
 * abort signal, a body stream per request) cost it about 40 µs of CPU per
 * read, three quarters of a core at 20,000 reads/s. That CPU is taken from
 * both systems alike, which squeezes their ratio towards 1 and measures the
 * generator as much as the servers. Tools such as `wrk` write raw requests
 * for the same reason. See bench/README.md for the numbers.
 *
 * @module
 */

import { MessageFramer } from "../../src/serve/http1_framing.ts";

/** Bytes read from a socket at once. */
const READ_BYTES = 64 * 1024;
/** How much of a failed answer's body the report keeps. */
const ERROR_BODY_CHARS = 200;
const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

/** One HTTP request to send. */
export interface RequestSpec {
  /** The full URL (`http:`). */
  readonly url: string;
  /** The method. */
  readonly method: "GET" | "POST" | "PUT";
  /** The body, when there is one (JSON). */
  readonly body?: string;
}

/** A pool of keep-alive connections per origin; close it after the run. */
export class RawHttpClient {
  readonly #idle = new Map<string, RawConnection[]>();
  readonly #open = new Set<RawConnection>();
  #closed = false;

  /**
   * Sends one request and reads its whole answer.
   *
   * @param spec The request (an `http:` URL).
   * @param timeoutMs Longest wait for the answer, connecting included.
   * @returns null on a 2xx answer, else what went wrong: `"<status> <body>"`,
   *   `"TimeoutError: ..."` or the network error's name and message.
   */
  async send(spec: RequestSpec, timeoutMs: number): Promise<string | null> {
    if (this.#closed) return "Error: the client is closed";
    const url = new URL(spec.url);
    if (url.protocol !== "http:") return `Error: only http: URLs, not ${url.protocol}`;
    const origin = url.host;
    const request = requestBytes(spec, url);
    let connection: RawConnection | undefined;
    const timer = setTimeout(() => connection?.timeOut(), timeoutMs);
    try {
      // A pooled connection that the server closed while it sat idle fails
      // before any byte of an answer: the request goes again on a new one,
      // as `fetch` does. Each turn takes a pooled connection or ends.
      for (;;) {
        const pooled = this.#idle.get(origin)?.pop();
        connection = pooled ?? await this.#connect(url);
        let answer: Answer;
        try {
          answer = await connection.exchange(request);
        } catch (error) {
          this.#drop(connection);
          if (pooled === undefined || connection.timedOut || connection.answering) throw error;
          continue;
        }
        if (connection.reusable && !this.#closed) {
          let idle = this.#idle.get(origin);
          if (idle === undefined) this.#idle.set(origin, idle = []);
          idle.push(connection);
        } else {
          this.#drop(connection);
        }
        if (answer.status >= 200 && answer.status < 300) return null;
        return `${answer.status} ${answer.body}`;
      }
    } catch (error) {
      if (connection?.timedOut) return `TimeoutError: no answer within ${timeoutMs} ms`;
      return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    } finally {
      clearTimeout(timer);
    }
  }

  async #connect(url: URL): Promise<RawConnection> {
    const conn = await Deno.connect({
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: Number(url.port || 80),
    });
    conn.setNoDelay(true);
    const connection = new RawConnection(conn);
    this.#open.add(connection);
    return connection;
  }

  /** Closes every connection. */
  close(): void {
    this.#closed = true;
    for (const connection of this.#open) connection.close();
    this.#open.clear();
    this.#idle.clear();
  }

  #drop(connection: RawConnection): void {
    connection.close();
    this.#open.delete(connection);
  }
}

/** What came back. */
interface Answer {
  readonly status: number;
  /** The start of the body, kept only for a status other than 2xx. */
  readonly body: string;
}

/** One keep-alive connection, one exchange at a time. */
class RawConnection {
  readonly #conn: Deno.TcpConn;
  readonly #framer: MessageFramer;
  readonly #buffer = new Uint8Array(READ_BYTES);
  #status = 0;
  #body = "";
  #ended = false;
  #closed = false;
  /** Whether the connection can carry another request. */
  reusable = true;
  /** Whether the exchange's time ran out (the connection was closed for it). */
  timedOut = false;
  /** Whether any byte of the exchange's answer has arrived. */
  answering = false;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    this.#framer = new MessageFramer("response", {
      headStart: () => {},
      head: (head) => this.#status = head.status,
      end: (interim) => {
        if (!interim) this.#ended = true;
      },
      data: (bytes) => {
        if (this.#status >= 300 && this.#body.length < ERROR_BODY_CHARS) {
          this.#body += DECODER.decode(bytes).slice(0, ERROR_BODY_CHARS - this.#body.length);
        }
      },
    });
  }

  /** Writes the request, then reads until its answer has ended. */
  async exchange(request: Uint8Array): Promise<Answer> {
    this.#status = 0;
    this.#body = "";
    this.#ended = false;
    this.answering = false;
    for (let at = 0; at < request.length;) at += await this.#conn.write(request.subarray(at));
    while (!this.#ended) {
      const n = await this.#conn.read(this.#buffer);
      if (n === null) {
        this.reusable = false;
        // An answer whose body runs until the connection closes.
        if (this.#framer.state === "opaque" && this.#status !== 0) break;
        throw new Error("the server closed the connection before answering");
      }
      this.answering = true;
      this.#framer.push(this.#buffer.subarray(0, n));
    }
    if (this.#framer.state !== "idle") this.reusable = false;
    return { status: this.#status, body: this.#body };
  }

  /** Ends the exchange in progress: its read fails. */
  timeOut(): void {
    this.timedOut = true;
    this.close();
  }

  /** Closes the socket (once). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.reusable = false;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the runtime.
    }
  }
}

/** The request's bytes: a JSON body gets its type and length. */
function requestBytes(spec: RequestSpec, url: URL): Uint8Array {
  const target = url.pathname + url.search;
  let head = `${spec.method} ${target} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  if (spec.body === undefined) return ENCODER.encode(head + "\r\n");
  const body = ENCODER.encode(spec.body);
  head += `content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
  const headBytes = ENCODER.encode(head);
  const bytes = new Uint8Array(headBytes.length + body.length);
  bytes.set(headBytes);
  bytes.set(body, headBytes.length);
  return bytes;
}
