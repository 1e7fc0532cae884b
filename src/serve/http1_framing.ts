/**
 * Finds where HTTP/1.1 messages begin and end in a byte stream: enough for
 * the connection guard to know whether a connection is waiting for a
 * request's head, inside a body, or owed an answer, while the server behind
 * it still parses every byte itself (RFC 9112 §6.3, message body length).
 * It can also hand over a body's bytes, without the chunked coding, for the
 * requests the front answers itself (`direct_request.ts`).
 *
 * Anything it cannot frame (conflicting lengths, an unknown transfer coding,
 * a malformed chunk) turns the stream opaque rather than failing: the server
 * behind answers such a request with an error and closes the connection, and
 * the guard keeps only its byte-level idle limit on an opaque one.
 *
 * @module
 */

/** The longest head (request or status line, header lines, blank line) accepted, bytes; Node's default too. */
export const HEAD_BYTES_MAX = 16_384;

/** The longest chunk-size line (size and extensions), bytes. */
const CHUNK_LINE_BYTES_MAX = 1_024;
/** 13 hex digits reach 2^52: every length stays a safe integer. */
const CHUNK_SIZE_DIGITS_MAX = 13;

const CR = 0x0d;
const LF = 0x0a;

/** Whether a message is a request (client to server) or a response. */
export type MessageKind = "request" | "response";

/** Where a framer is in its stream. */
export type FramerState =
  /** Between messages: the next byte starts a head. */
  | "idle"
  /** Inside a head. */
  | "head"
  /** Inside a body whose end is known (a length or chunked coding). */
  | "body"
  /** No longer framed: a tunnel, a body read until close, or bytes it could not frame. */
  | "opaque";

/** What a framer learns from a head. */
export interface MessageHead {
  /** The request's method as sent; `""` for a response. */
  readonly method: string;
  /** The response's status code; 0 for a request. */
  readonly status: number;
}

/** What a framer reports, in stream order, while it is not opaque. */
export interface FramerHooks {
  /** The first byte of a head arrived. */
  headStart(): void;
  /** A head arrived in full. */
  head(head: MessageHead): void;
  /**
   * A message ended, its body included.
   *
   * @param interim True for a 1xx response, which another response follows.
   */
  end(interim: boolean): void;
  /**
   * For responses only: whether the response about to be framed answers a
   * HEAD request (it then has no body whatever its headers say).
   */
  answersHead?(): boolean;
  /**
   * Bytes of a message's body, in order, without the chunked coding's
   * framing: for a reader of bodies. A view into the bytes pushed, which it
   * may keep as long as the pusher does not reuse them.
   */
  data?(bytes: Uint8Array): void;
}

/** A head longer than {@linkcode HEAD_BYTES_MAX}: the stream cannot go on. */
export class HeadTooLargeError extends Error {
  /**
   * Creates the error.
   *
   * @param bytes How many bytes of head had arrived.
   */
  constructor(bytes: number) {
    super(`Cannot read a head over ${HEAD_BYTES_MAX} bytes: ${bytes} arrived without its end`);
    this.name = "HeadTooLargeError";
  }
}

/** The steps of chunked decoding (RFC 9112 §7.1). */
const Chunk = {
  Size: 0,
  Extension: 1,
  SizeLf: 2,
  Data: 3,
  DataCr: 4,
  DataLf: 5,
  TrailerStart: 6,
  TrailerLine: 7,
  TrailerLf: 8,
} as const;

/** One step of chunked decoding. */
type ChunkStep = typeof Chunk[keyof typeof Chunk];

const LATIN1 = new TextDecoder("latin1");

/**
 * Frames one direction of an HTTP/1.1 connection. Push every byte of that
 * direction, in order; the hooks fire as messages start and end.
 *
 * @example A request with a body, then one without
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { MessageFramer } from "./http1_framing.ts";
 *
 * const seen: string[] = [];
 * const framer = new MessageFramer("request", {
 *   headStart: () => seen.push("start"),
 *   head: (head) => seen.push(head.method),
 *   end: () => seen.push("end"),
 * });
 * framer.push(new TextEncoder().encode("PUT /a HTTP/1.1\r\ncontent-length: 2\r\n\r\nhiGET / HTTP/1.1\r\n\r\n"));
 * deepStrictEqual(seen, ["start", "PUT", "end", "start", "GET", "end"]);
 * ```
 */
export class MessageFramer {
  readonly #kind: MessageKind;
  readonly #hooks: FramerHooks;
  #state: FramerState = "idle";
  /** Head bytes of earlier pushes, while a head spans several. */
  #headParts: Uint8Array[] = [];
  #headBytes = 0;
  /** 1 after a LF, 2 after a LF and a CR: one more LF ends the head. */
  #headEol = 0;
  /** Body bytes still to come (a length body, or the current chunk's data). */
  #remaining = 0;
  /** Null: a length body; else the chunked decoding step. */
  #chunk: ChunkStep | null = null;
  #chunkLineBytes = 0;
  #chunkDigits = 0;
  #trailerBytes = 0;

  /**
   * Creates a framer in the idle state.
   *
   * @param kind Which direction it frames.
   * @param hooks Whom to tell.
   */
  constructor(kind: MessageKind, hooks: FramerHooks) {
    this.#kind = kind;
    this.#hooks = hooks;
  }

  /** Where it is in the stream. */
  get state(): FramerState {
    return this.#state;
  }

  /** Stops framing: every later byte is passed over (a tunnel after `101 Switching Protocols`). */
  makeOpaque(): void {
    this.#state = "opaque";
    this.#headParts = [];
  }

  /**
   * Frames the next bytes of the stream.
   *
   * @param bytes The bytes, in stream order; not kept beyond the call.
   * @throws {HeadTooLargeError} When a head grows past {@linkcode HEAD_BYTES_MAX};
   *   the framer is unusable after.
   */
  push(bytes: Uint8Array): void {
    let at = 0;
    // Every turn consumes at least one byte or ends the loop.
    while (at < bytes.length) {
      switch (this.#state) {
        case "opaque":
          return;
        case "idle":
          // A client may send a blank line after a body (RFC 9112 §2.2):
          // it does not start a request.
          if (this.#kind === "request" && (bytes[at] === CR || bytes[at] === LF)) {
            at++;
            continue;
          }
          this.#state = "head";
          this.#headEol = 0;
          this.#hooks.headStart();
          at = this.#pushHead(bytes, at);
          break;
        case "head":
          at = this.#pushHead(bytes, at);
          break;
        case "body":
          at = this.#chunk === null ? this.#pushLength(bytes, at) : this.#pushChunked(bytes, at);
          break;
      }
    }
  }

  /** Consumes head bytes from `at`; returns where the head ended, or `bytes.length`. */
  #pushHead(bytes: Uint8Array, at: number): number {
    let eol = this.#headEol;
    let end = -1;
    const limit = Math.min(bytes.length, at + HEAD_BYTES_MAX - this.#headBytes + 1);
    // Jumps from line feed to line feed (a head has a few lines of many
    // bytes); the head ends at a LF that follows a LF, or a LF and a CR.
    let i = at;
    while (i < limit) {
      if (eol !== 0) {
        const byte = bytes[i];
        if (byte === LF) {
          end = i + 1;
          break;
        }
        if (byte === CR && eol === 1) {
          eol = 2;
          i++;
          continue;
        }
        eol = 0;
      }
      const lf = bytes.indexOf(LF, i);
      if (lf === -1 || lf >= limit) {
        i = limit;
        break;
      }
      eol = 1;
      i = lf + 1;
    }
    if (end === -1) {
      this.#headEol = eol;
      const taken = bytes.length - at;
      if (this.#headBytes + taken > HEAD_BYTES_MAX) {
        throw new HeadTooLargeError(this.#headBytes + taken);
      }
      this.#headParts.push(bytes.slice(at));
      this.#headBytes += taken;
      return bytes.length;
    }
    let head = bytes.subarray(at, end);
    if (this.#headParts.length > 0) {
      const whole = new Uint8Array(this.#headBytes + head.length);
      let offset = 0;
      for (const part of this.#headParts) {
        whole.set(part, offset);
        offset += part.length;
      }
      whole.set(head, offset);
      head = whole;
      this.#headParts = [];
    }
    this.#headBytes = 0;
    this.#afterHead(LATIN1.decode(head));
    return end;
  }

  /** Decides, from a whole head, how its body is framed (RFC 9112 §6.3). */
  #afterHead(text: string): void {
    // Leading blank lines before a request line are ignored (RFC 9112 §2.2).
    let from = 0;
    while (text.charCodeAt(from) === CR || text.charCodeAt(from) === LF) from++;
    let lineEnd = text.indexOf("\n", from);
    const startLine = trimCr(text.slice(from, lineEnd === -1 ? text.length : lineEnd));
    const contentLengths: string[] = [];
    const transferEncodings: string[] = [];
    // Bounded by the head's length: every turn moves past one line feed.
    // Lines are read in place: only the two that matter become strings.
    while (lineEnd !== -1) {
      const start = lineEnd + 1;
      lineEnd = text.indexOf("\n", start);
      let stop = lineEnd === -1 ? text.length : lineEnd;
      if (stop > start && text.charCodeAt(stop - 1) === CR) stop--;
      if (stop === start) break;
      // Obsolete line folding, or a line without a name: the server refuses
      // it, so its framing is not ours to guess.
      const colon = text.indexOf(":", start);
      const first = text.charCodeAt(start);
      if (first === 0x20 || first === 0x09 || colon <= start || colon >= stop) {
        return this.makeOpaque();
      }
      // Only two names matter; most lines are told apart by their first letter.
      const lower = first | 0x20;
      if (lower !== 0x63 && lower !== 0x74) continue;
      const name = text.slice(start, colon).toLowerCase();
      if (name === "content-length") contentLengths.push(text.slice(colon + 1, stop));
      else if (name === "transfer-encoding") transferEncodings.push(text.slice(colon + 1, stop));
    }
    if (this.#kind === "request") {
      const space = startLine.indexOf(" ");
      if (space <= 0) return this.makeOpaque();
      this.#hooks.head({ method: startLine.slice(0, space), status: 0 });
      if (transferEncodings.length > 0) {
        // Both at once is a smuggling attempt (RFC 9112 §6.1); the server refuses it.
        if (contentLengths.length > 0 || !endsChunked(transferEncodings)) return this.makeOpaque();
        return this.#startChunked();
      }
      return this.#startLength(contentLengths);
    }
    const status = statusCode(startLine);
    if (status === 0) return this.makeOpaque();
    const answersHead = this.#hooks.answersHead?.() ?? false;
    this.#hooks.head({ method: "", status });
    if (status === 101) return this.makeOpaque();
    if (status < 200) return this.#endMessage(true);
    if (answersHead || status === 204 || status === 304) return this.#endMessage(false);
    if (transferEncodings.length > 0) {
      // Any other coding runs until the connection closes.
      return endsChunked(transferEncodings) ? this.#startChunked() : this.makeOpaque();
    }
    // A response with no length runs until the connection closes.
    if (contentLengths.length === 0) return this.makeOpaque();
    return this.#startLength(contentLengths);
  }

  #startLength(values: readonly string[]): void {
    if (values.length === 0) return this.#endMessage(false);
    // One plain value is the usual case: read without splitting.
    const lengths = values.length === 1 && !values[0]!.includes(",")
      ? [values[0]!.trim()]
      : values.join(",").split(",").map((v) => v.trim());
    const length = lengths[0]!;
    if (!/^\d{1,15}$/.test(length) || lengths.some((v) => v !== length)) return this.makeOpaque();
    const bytes = Number(length);
    if (bytes === 0) return this.#endMessage(false);
    this.#state = "body";
    this.#chunk = null;
    this.#remaining = bytes;
  }

  #startChunked(): void {
    this.#state = "body";
    this.#chunk = Chunk.Size;
    this.#remaining = 0;
    this.#chunkLineBytes = 0;
    this.#chunkDigits = 0;
    this.#trailerBytes = 0;
  }

  #endMessage(interim: boolean): void {
    this.#state = "idle";
    this.#chunk = null;
    this.#hooks.end(interim);
  }

  #pushLength(bytes: Uint8Array, at: number): number {
    const taken = Math.min(this.#remaining, bytes.length - at);
    this.#hooks.data?.(bytes.subarray(at, at + taken));
    this.#remaining -= taken;
    if (this.#remaining === 0) this.#endMessage(false);
    return at + taken;
  }

  /** Consumes chunked body bytes from `at`; returns where it stopped. */
  #pushChunked(bytes: Uint8Array, at: number): number {
    let i = at;
    while (i < bytes.length && this.#state === "body") {
      if (this.#chunk === Chunk.Data) {
        const taken = Math.min(this.#remaining, bytes.length - i);
        this.#hooks.data?.(bytes.subarray(i, i + taken));
        this.#remaining -= taken;
        i += taken;
        if (this.#remaining === 0) this.#chunk = Chunk.DataCr;
        continue;
      }
      const byte = bytes[i++]!;
      switch (this.#chunk) {
        case Chunk.Size: {
          const digit = hexValue(byte);
          if (digit >= 0) {
            if (++this.#chunkDigits > CHUNK_SIZE_DIGITS_MAX) return this.#malformed(i);
            this.#remaining = this.#remaining * 16 + digit;
            break;
          }
          if (this.#chunkDigits === 0) return this.#malformed(i);
          if (byte === CR) this.#chunk = Chunk.SizeLf;
          else if (byte === LF) this.#endSizeLine();
          else if (byte === 0x3b || byte === 0x20 || byte === 0x09) this.#chunk = Chunk.Extension;
          else return this.#malformed(i);
          break;
        }
        case Chunk.Extension:
          if (++this.#chunkLineBytes > CHUNK_LINE_BYTES_MAX) return this.#malformed(i);
          if (byte === LF) this.#endSizeLine();
          break;
        case Chunk.SizeLf:
          if (byte !== LF) return this.#malformed(i);
          this.#endSizeLine();
          break;
        case Chunk.DataCr:
          if (byte === CR) this.#chunk = Chunk.DataLf;
          else if (byte === LF) this.#nextChunk();
          else return this.#malformed(i);
          break;
        case Chunk.DataLf:
          if (byte !== LF) return this.#malformed(i);
          this.#nextChunk();
          break;
        case Chunk.TrailerStart:
          if (byte === LF) this.#endMessage(false);
          else if (byte === CR) this.#chunk = Chunk.TrailerLf;
          else this.#chunk = Chunk.TrailerLine;
          break;
        case Chunk.TrailerLine:
          if (++this.#trailerBytes > HEAD_BYTES_MAX) return this.#malformed(i);
          if (byte === LF) this.#chunk = Chunk.TrailerStart;
          break;
        case Chunk.TrailerLf:
          if (byte !== LF) return this.#malformed(i);
          this.#endMessage(false);
          break;
      }
    }
    return i;
  }

  #endSizeLine(): void {
    this.#chunkLineBytes = 0;
    this.#chunkDigits = 0;
    this.#chunk = this.#remaining === 0 ? Chunk.TrailerStart : Chunk.Data;
  }

  #nextChunk(): void {
    this.#chunk = Chunk.Size;
    this.#remaining = 0;
  }

  #malformed(at: number): number {
    this.makeOpaque();
    return at;
  }
}

function trimCr(line: string): string {
  return line.charCodeAt(line.length - 1) === CR ? line.slice(0, -1) : line;
}

/**
 * The status code of a status line `HTTP/d.d NNN[ reason]`, read in place.
 *
 * @param line The status line.
 * @returns The code (100 to 999), or 0 when the line is not one.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { statusCode } from "./http1_framing.ts";
 *
 * strictEqual(statusCode("HTTP/1.1 401 Unauthorized"), 401);
 * strictEqual(statusCode("HTTP/1.1 2000 OK"), 0);
 * ```
 */
export function statusCode(line: string): number {
  if (!line.startsWith("HTTP/") || line.length < 12) return 0;
  if (!isDigit(line, 5) || line.charCodeAt(6) !== 0x2e || !isDigit(line, 7)) return 0;
  if (line.charCodeAt(8) !== 0x20 || line.charCodeAt(9) === 0x30) return 0;
  if (!isDigit(line, 9) || !isDigit(line, 10) || !isDigit(line, 11)) return 0;
  if (line.length > 12 && line.charCodeAt(12) !== 0x20) return 0;
  return (line.charCodeAt(9) - 0x30) * 100 + (line.charCodeAt(10) - 0x30) * 10 +
    line.charCodeAt(11) - 0x30;
}

function isDigit(text: string, at: number): boolean {
  const c = text.charCodeAt(at);
  return c >= 0x30 && c <= 0x39;
}

/** Whether the last transfer coding is `chunked` (RFC 9112 §6.3, rule 4). */
function endsChunked(values: readonly string[]): boolean {
  const codings = values.join(",").split(",").map((v) => v.trim().toLowerCase()).filter((v) =>
    v !== ""
  );
  return codings.at(-1) === "chunked";
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  return -1;
}

/** A field name (RFC 9110 §5.1: a token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Reads a head's field lines (`name: value`) into Headers.
 *
 * @param lines The lines after the start line, without their line ends.
 * @param bad What a line that is no field does (a name that is not a
 *   token, a control character in the value): `refuse` the whole head, or
 *   `skip` the line.
 * @returns The fields; null when a line refused them.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { headerFields } from "./http1_framing.ts";
 *
 * strictEqual(headerFields(["A: b", "C:d "], "refuse")?.get("c"), "d");
 * strictEqual(headerFields(["A b"], "refuse"), null);
 * strictEqual(headerFields(["A b", "C: d"], "skip")?.get("c"), "d");
 * ```
 */
export function headerFields(lines: readonly string[], bad: "refuse" | "skip"): Headers | null {
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1);
    if (colon > 0 && TOKEN.test(name) && !hasControl(value)) headers.append(name, value.trim());
    else if (bad === "refuse") return null;
  }
  return headers;
}

/** Whether a field value holds a control character other than a tab, which none may (RFC 9110 §5.5). */
function hasControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}
