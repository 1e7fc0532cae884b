import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import {
  type FramerState,
  HEAD_BYTES_MAX,
  HeadTooLargeError,
  MessageFramer,
  type MessageKind,
} from "../../src/serve/http1_framing.ts";

const encoder = new TextEncoder();

/** Frames `input` split at every `splitAt` bytes; returns the events and the final state. */
function frame(
  kind: MessageKind,
  input: string,
  options: { splitAt?: number; answersHead?: boolean[] } = {},
): { events: string[]; state: FramerState } {
  const events: string[] = [];
  const heads = [...(options.answersHead ?? [])];
  const framer = new MessageFramer(kind, {
    headStart: () => events.push("start"),
    head: (head) => events.push(kind === "request" ? head.method : String(head.status)),
    end: (interim) => events.push(interim ? "interim" : "end"),
    answersHead: () => heads.shift() ?? false,
  });
  const bytes = encoder.encode(input);
  const step = options.splitAt ?? bytes.length;
  for (let at = 0; at < bytes.length; at += step) framer.push(bytes.subarray(at, at + step));
  return { events, state: framer.state };
}

const PUT = 'PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{"value":1}';
const CHUNKED =
  "POST /raft/stream HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";

Deno.test("MessageFramer frames requests, whatever the chunk boundaries", async (t) => {
  const rows: { name: string; input: string; want: string[]; state: FramerState }[] = [
    {
      name: "GET, no body",
      input: "GET / HTTP/1.1\r\n\r\n",
      want: ["start", "GET", "end"],
      state: "idle",
    },
    {
      name: "bare LF line ends",
      input: "GET / HTTP/1.1\nHost: x\n\n",
      want: ["start", "GET", "end"],
      state: "idle",
    },
    { name: "a length body", input: PUT, want: ["start", "PUT", "end"], state: "idle" },
    {
      name: "a chunked body with extension and trailer",
      input: CHUNKED,
      want: ["start", "POST", "end"],
      state: "idle",
    },
    {
      name: "pipelined, with a blank line between",
      input: `${PUT}\r\nGET / HTTP/1.1\r\n\r\n`,
      want: ["start", "PUT", "end", "start", "GET", "end"],
      state: "idle",
    },
    { name: "half a head", input: "GET / HTTP/1.1\r\nHost: x", want: ["start"], state: "head" },
    { name: "half a body", input: PUT.slice(0, -3), want: ["start", "PUT"], state: "body" },
    {
      name: "a chunked body that never ends (a peer stream)",
      input: "POST /raft/stream HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n",
      want: ["start", "POST"],
      state: "body",
    },
    {
      name: "content-length and transfer-encoding at once",
      input: "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
      want: ["start", "POST"],
      state: "opaque",
    },
    {
      name: "conflicting lengths",
      input: "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
      want: ["start", "POST"],
      state: "opaque",
    },
    {
      name: "an unknown last coding",
      input: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      want: ["start", "POST"],
      state: "opaque",
    },
    {
      name: "a malformed chunk size",
      input: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      want: ["start", "POST"],
      state: "opaque",
    },
    {
      name: "a folded header line",
      input: "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
      want: ["start"],
      state: "opaque",
    },
    {
      name: "a header line without a colon, before one with a colon",
      input: "GET / HTTP/1.1\r\nHost x\r\nContent-Length: 3\r\n\r\nabc",
      want: ["start"],
      state: "opaque",
    },
    {
      name: "a header line that starts with a colon",
      input: "GET / HTTP/1.1\r\n: x\r\n\r\n",
      want: ["start"],
      state: "opaque",
    },
    { name: "only blank lines", input: "\r\n\r\n", want: [], state: "idle" },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      for (const splitAt of [undefined, 1, 7]) {
        const got = frame("request", row.input, splitAt === undefined ? {} : { splitAt });
        deepStrictEqual(got, { events: row.want, state: row.state }, `split at ${splitAt}`);
      }
    });
  }
});

Deno.test("MessageFramer frames responses: interim, bodiless and HEAD answers, tunnels", async (t) => {
  const rows: {
    name: string;
    input: string;
    answersHead?: boolean[];
    want: string[];
    state: FramerState;
  }[] = [
    {
      name: "100 Continue, then the answer",
      input: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
      want: ["start", "100", "interim", "start", "200", "end"],
      state: "idle",
    },
    {
      name: "204 and 304 have no body",
      input:
        "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n",
      want: ["start", "204", "end", "start", "304", "end"],
      state: "idle",
    },
    {
      name: "the answer to a HEAD has no body",
      input:
        "HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx",
      answersHead: [true, false],
      want: ["start", "200", "end", "start", "200", "end"],
      state: "idle",
    },
    {
      name: "chunked",
      input: "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
      want: ["start", "200", "end"],
      state: "idle",
    },
    {
      name: "no length: until the connection closes",
      input: "HTTP/1.1 200 OK\r\n\r\nabc",
      want: ["start", "200"],
      state: "opaque",
    },
    {
      name: "101 makes a tunnel",
      input: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00",
      want: ["start", "101"],
      state: "opaque",
    },
    { name: "not HTTP", input: "SSH-2.0-x\r\n\r\n", want: ["start"], state: "opaque" },
    {
      name: "a status line without a reason",
      input: "HTTP/1.0 503\r\ncontent-length: 0\r\n\r\n",
      want: ["start", "503", "end"],
      state: "idle",
    },
    ...["HTTP/1.1 2000 OK", "HTTP/1.1 099 x", "HTTP/1.1 20 OK", "HTTP/11 200 OK", "HTTP/1.1  200"]
      .map((line) => ({
        name: `a malformed status line: ${line}`,
        input: `${line}\r\ncontent-length: 0\r\n\r\n`,
        want: ["start"],
        state: "opaque" as const,
      })),
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      for (const splitAt of [undefined, 1, 5]) {
        const got = frame("response", row.input, {
          ...(splitAt === undefined ? {} : { splitAt }),
          ...(row.answersHead ? { answersHead: row.answersHead } : {}),
        });
        deepStrictEqual(got, { events: row.want, state: row.state }, `split at ${splitAt}`);
      }
    });
  }
});

Deno.test("MessageFramer.push() throws HeadTooLargeError past HEAD_BYTES_MAX, in one push or many", () => {
  const long = `GET / HTTP/1.1\r\nX: ${"a".repeat(HEAD_BYTES_MAX)}`;
  throws(() => frame("request", long), HeadTooLargeError);
  throws(() => frame("request", long, { splitAt: 1000 }), HeadTooLargeError);
  // Just under the limit, the head is framed.
  const fits = `GET / HTTP/1.1\r\nX: ${"a".repeat(HEAD_BYTES_MAX - 24)}\r\n\r\n`;
  strictEqual(fits.length <= HEAD_BYTES_MAX, true);
  deepStrictEqual(frame("request", fits, { splitAt: 999 }).events, ["start", "GET", "end"]);
});

Deno.test("MessageFramer frames a 1 MiB body without holding it", () => {
  const events: string[] = [];
  const framer = new MessageFramer("request", {
    headStart: () => events.push("start"),
    head: () => events.push("head"),
    end: () => events.push("end"),
  });
  framer.push(encoder.encode("PUT / HTTP/1.1\r\ncontent-length: 1048576\r\n\r\n"));
  const chunk = new Uint8Array(65_536);
  for (let i = 0; i < 16; i++) framer.push(chunk);
  deepStrictEqual(events, ["start", "head", "end"]);
  strictEqual(framer.state, "idle");
});
