/**
 * Tests for the requests a front answers itself (src/serve/direct_request.ts
 * and its use in src/serve/front.ts), over real loopback connections: a
 * connection's first `POST` to a direct path reaches the handler in this
 * process with its body streamed, and the answer closes the connection;
 * everything else is relayed to the server behind, byte for byte.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { directHead } from "../../src/serve/direct_request.ts";
import { startFront } from "../../src/serve/front.ts";
import { connectionLimits } from "../../src/serve/guard.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const DEADLINE_MS = 5_000;

/** What the direct handler saw of one request. */
interface Seen {
  url: string;
  headers: Record<string, string>;
  chunks: string[];
  ending: "done" | "error" | "cancelled" | "pending";
  aborted: boolean;
}

/**
 * A front with `/stream` as a direct path before a server that answers
 * `relayed <path>`; the direct handler reads the whole body (unless told to
 * answer first) and answers `201 got N bytes`.
 */
async function setup(options: { answerFirst?: boolean } = {}) {
  const seen: Seen[] = [];
  const bodyRead: Promise<void>[] = [];
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    async (request) => {
      await request.arrayBuffer().catch(() => {});
      return new Response(`relayed ${new URL(request.url).pathname}`);
    },
  );
  const front = await startFront({
    port: 0,
    hostname: "127.0.0.1",
    limits: connectionLimits({}),
    inner: { port: server.addr.port },
    direct: {
      paths: new Set(["/stream"]),
      handler: (request) => {
        const s: Seen = {
          url: request.url,
          headers: Object.fromEntries(request.headers),
          chunks: [],
          ending: "pending",
          aborted: false,
        };
        request.signal.addEventListener("abort", () => s.aborted = true);
        seen.push(s);
        const reader = request.body!.getReader();
        const read = (async () => {
          try {
            for (;;) {
              const { done, value } = await reader.read();
              if (done) break;
              s.chunks.push(decoder.decode(value));
            }
            s.ending = "done";
          } catch {
            s.ending = "error";
          }
        })();
        bodyRead.push(read);
        if (options.answerFirst) {
          return new Response("refused", { status: 401, headers: { "x-why": "test" } });
        }
        return read.then(() =>
          new Response(`got ${s.chunks.join("").length} bytes`, {
            status: 201,
            headers: { "x-seen": "yes", "content-length": "999" },
          })
        );
      },
    },
  });
  const close = async () => {
    await front.close();
    await server.shutdown();
  };
  return { port: front.port, seen, bodyRead, close };
}

/** Runs `body` against a fresh front from {@linkcode setup}, closed afterwards. */
async function withFront(
  options: { answerFirst?: boolean },
  body: (front: Awaited<ReturnType<typeof setup>>) => Promise<void>,
): Promise<void> {
  const front = await setup(options);
  try {
    await body(front);
  } finally {
    await front.close();
  }
}

/** Opens a connection to the front. */
async function connect(port: number): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: "127.0.0.1", port });
}

/** Reads until the connection closes or the deadline passes. */
async function readAll(conn: Deno.Conn): Promise<string> {
  const parts: Uint8Array[] = [];
  const deadline = Date.now() + DEADLINE_MS;
  const buf = new Uint8Array(16_384);
  while (Date.now() < deadline) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    parts.push(buf.slice(0, n));
  }
  return decoder.decode(new Uint8Array(parts.flatMap((p) => [...p])));
}

/** Polls `check` until it holds or the deadline passes. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const STREAM_HEAD = "POST /stream?x=1 HTTP/1.1\r\nHost: peer\r\nX-Sender: n2\r\n" +
  "Transfer-Encoding: chunked\r\n\r\n";

Deno.test("a connection's first POST to a direct path reaches the handler with its chunked body streamed", async () => {
  await withFront({}, async (t) => {
    const conn = await connect(t.port);
    await conn.write(encoder.encode(STREAM_HEAD + "5\r\nhello\r\n"));
    await until(() => t.seen[0]?.chunks.length === 1, "the first chunk");
    strictEqual(t.seen[0]!.ending, "pending", "the body goes on");
    // A chunk split across writes, then the end.
    await conn.write(encoder.encode("6\r\n wo"));
    await conn.write(encoder.encode("rld\r\n0\r\n\r\n"));
    const answer = await readAll(conn);
    conn.close();
    const s = t.seen[0]!;
    strictEqual(s.url, `http://127.0.0.1:${t.port}/stream?x=1`);
    strictEqual(s.headers["x-sender"], "n2");
    strictEqual(s.chunks.join(""), "hello world");
    strictEqual(s.ending, "done");
    match(answer, /^HTTP\/1\.1 201 /);
    match(answer, /\r\nx-seen: yes\r\n/);
    match(answer, /\r\ncontent-length: 12\r\nconnection: close\r\n\r\ngot 11 bytes$/);
    ok(!answer.includes("999"), "the front writes the length itself");
  });
});

Deno.test("a direct path's body with a length is read to its end", async () => {
  await withFront({}, async (t) => {
    const conn = await connect(t.port);
    await conn.write(encoder.encode("POST /stream HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"));
    const answer = await readAll(conn);
    conn.close();
    strictEqual(t.seen[0]!.chunks.join(""), "abc");
    match(answer, /got 3 bytes$/);
  });
});

Deno.test("other requests are relayed: another path, another method, a later request, an unusual head", async (t) => {
  const cases = [
    {
      name: "another path",
      request: "POST /other HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
      path: "/other",
    },
    { name: "a GET", request: "GET /stream HTTP/1.1\r\n\r\n", path: "/stream" },
    {
      name: "a direct path as the second request of a connection",
      request: "GET /a HTTP/1.1\r\n\r\nPOST /stream HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
      path: "/stream",
    },
    {
      name: "a head with bare line feeds",
      request: "POST /stream HTTP/1.1\nContent-Length: 0\n\n",
      path: "/stream",
    },
    {
      name: "HTTP/1.0",
      request: "POST /stream HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
      path: "/stream",
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      await withFront({}, async (s) => {
        const conn = await connect(s.port);
        await conn.write(encoder.encode(c.request));
        const deadline = Date.now() + DEADLINE_MS;
        let text = "";
        const buf = new Uint8Array(4096);
        while (!text.includes(`relayed ${c.path}`) && Date.now() < deadline) {
          const n = await conn.read(buf);
          if (n === null) break;
          text += decoder.decode(buf.subarray(0, n));
        }
        conn.close();
        ok(text.includes(`relayed ${c.path}`), text);
        deepStrictEqual(s.seen, [], "the direct handler saw nothing");
      });
    });
  }
});

Deno.test("a client that goes away mid-body errors the body and aborts the request", async () => {
  await withFront({}, async (t) => {
    const conn = await connect(t.port);
    await conn.write(encoder.encode(STREAM_HEAD + "3\r\nabc\r\n"));
    await until(() => t.seen[0]?.chunks.length === 1, "the first chunk");
    conn.close();
    await t.bodyRead[0];
    strictEqual(t.seen[0]!.ending, "error");
    await until(() => t.seen[0]!.aborted, "the abort");
  });
});

Deno.test("a malformed chunk errors the body", async () => {
  await withFront({}, async (t) => {
    const conn = await connect(t.port);
    await conn.write(encoder.encode(STREAM_HEAD + "zz\r\nabc\r\n"));
    await until(() => t.seen[0]?.ending === "error", "the body's error");
    const answer = await readAll(conn);
    conn.close();
    match(answer, /got 0 bytes$/);
  });
});

Deno.test("a handler that answers before reading the body closes the connection after its answer", async () => {
  await withFront({ answerFirst: true }, async (t) => {
    const conn = await connect(t.port);
    await conn.write(encoder.encode(STREAM_HEAD + "3\r\nabc\r\n"));
    const answer = await readAll(conn);
    conn.close();
    match(answer, /^HTTP\/1\.1 401 /);
    match(answer, /\r\nx-why: test\r\n/);
    match(answer, /refused$/);
  });
});

Deno.test("directHead() takes only a plain POST to a listed path", () => {
  const paths = new Set(["/s"]);
  const head = (text: string) => directHead(encoder.encode(text), paths);
  strictEqual(head("POST /s HTTP/1.1\r\nA: b\r\n\r\n")?.headers.get("a"), "b");
  strictEqual(head("POST /s?q HTTP/1.1\r\n\r\n")?.target, "/s?q");
  for (
    const refused of [
      "POST /s HTTP/1.1\r\nA: b\r\n", // no end of head
      "POST /s  HTTP/1.1\r\n\r\n",
      "POST http://x/s HTTP/1.1\r\n\r\n",
      "PUT /s HTTP/1.1\r\n\r\n",
      "POST /s/ HTTP/1.1\r\n\r\n",
      "POST /s HTTP/1.1\r\nA b\r\n\r\n",
      "POST /s HTTP/1.1\r\n A: b\r\n\r\n",
      "POST /s HTTP/1.1\r\nA: b\u0001\r\n\r\n",
    ]
  ) {
    strictEqual(head(refused), null, JSON.stringify(refused));
  }
});
