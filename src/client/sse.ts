/**
 * A reader of Server-Sent Events (the WHATWG HTML event stream format) over
 * a fetch body: what `EventSource` does, for runtimes that lack it and for
 * clients that need headers (a bearer token) `EventSource` cannot send.
 *
 * @module
 */

/** One event. */
export interface ServerSentEvent {
  /** `event:`; "message" when absent. */
  readonly event: string;
  /** `data:`, its lines joined by "\n". */
  readonly data: string;
  /** `id:`, when the event had one. */
  readonly id?: string;
}

/** Lines longer than this end the stream: a server that never ends a line is not an event stream. */
const LINE_CHARS_MAX = 16 << 20;

/**
 * Reads events until the stream ends.
 *
 * @param body The response body.
 * @returns The events, in order; comments and events without data are skipped.
 * @throws {Error} When a line grows past 16 Mi characters.
 */
export async function* readEvents(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<ServerSentEvent> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  let event = "";
  let data: string[] = [];
  let id: string | undefined;
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      pending += value;
      let newline;
      while ((newline = pending.search(/\r\n|\r|\n/)) !== -1) {
        // A CR at the end may be the first half of a CRLF: wait for more.
        if (newline === pending.length - 1 && pending[newline] === "\r") break;
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + (pending.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (data.length > 0) {
            yield {
              event: event || "message",
              data: data.join("\n"),
              ...(id === undefined ? {} : { id }),
            };
          }
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        const text = colon === -1 ? "" : line.slice(colon + (line[colon + 1] === " " ? 2 : 1));
        if (field === "event") event = text;
        else if (field === "data") data.push(text);
        else if (field === "id" && !text.includes("\0")) id = text;
      }
      if (pending.length > LINE_CHARS_MAX) throw new Error("Event stream line too long");
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
