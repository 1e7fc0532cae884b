/**
 * Tests for the socket carrier of peer streams
 * (src/transport/http/socket_carrier.ts), against a raw TCP server on
 * loopback that sees the exact bytes: the head, each frame and its seal as
 * one chunk, the peer's answer read whatever its framing, and the ends that
 * are not answers.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { CarrierEvents } from "../../../src/transport/http/peer_stream.ts";
import { socketCarrier } from "../../../src/transport/http/socket_carrier.ts";
import { isCertificateError } from "../../../src/transport/http/tls.ts";
import { createTestPki } from "../../process/tls/pki.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Polls `cond` every 5 ms for at most 5 s. */
async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!cond()) throw new Error(`Timed out waiting for ${what}`);
}

/** A TCP (or TLS) server that records what one connection sends, and can answer it. */
function rawServer(tls?: { cert: string; key: string }) {
  const listener = tls === undefined
    ? Deno.listen({ hostname: "127.0.0.1", port: 0 })
    : Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...tls });
  const state = { received: "", conn: null as Deno.Conn | null };
  (async () => {
    for await (const conn of listener) {
      state.conn = conn;
      const buf = new Uint8Array(65_536);
      for (;;) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) break;
        state.received += decoder.decode(buf.subarray(0, n));
      }
    }
  })();
  return {
    url: `${tls === undefined ? "http" : "https"}://127.0.0.1:${
      (listener.addr as Deno.NetAddr).port
    }`,
    state,
    answer: async (text: string, close: boolean) => {
      await state.conn!.write(encoder.encode(text));
      if (close) state.conn!.close();
    },
    close: () => {
      try {
        state.conn?.close();
      } catch {
        // Closed already.
      }
      listener.close();
    },
  };
}

/** Events that record what a carrier reports. */
function recorder() {
  const seen = { drained: 0, ended: [] as { problem: unknown; answer: Response | null }[] };
  const events: CarrierEvents = {
    drained: () => seen.drained++,
    ended: (problem, answer) => seen.ended.push({ problem, answer }),
  };
  return { seen, events };
}

const { open } = socketCarrier()!;

Deno.test("the socket carrier writes the head, then each frame and its seal as one chunk", async () => {
  const server = rawServer();
  const { seen, events } = recorder();
  const carrier = open({
    url: server.url + "/raft/stream",
    headers: { "x-from": "n1" },
    bufferBytes: 1 << 20,
  }, events);
  try {
    ok(carrier.write(encoder.encode("frame-1"), encoder.encode("seal")));
    ok(carrier.write(encoder.encode("frame-two"), null));
    const host = new URL(server.url).host;
    const want = `POST /raft/stream HTTP/1.1\r\nhost: ${host}\r\nx-from: n1\r\n` +
      "transfer-encoding: chunked\r\n\r\nb\r\nframe-1seal\r\n9\r\nframe-two\r\n";
    await waitFor(() => server.state.received === want, "the head and two chunks");
    deepStrictEqual(seen.ended, []);
  } finally {
    carrier.close();
    server.close();
  }
  strictEqual(seen.ended.length, 0, "closed by us: no end is reported");
});

Deno.test("the socket carrier ends with the peer's answer: a length, chunked, or until the connection closes", async (t) => {
  const answers = [
    {
      name: "with a length",
      text: "HTTP/1.1 401 Unauthorized\r\nx-challenge: abc\r\ncontent-length: 6\r\n\r\nrefuse",
      close: false,
    },
    {
      name: "chunked, after a 100 Continue",
      text: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 Unauthorized\r\nx-challenge: abc\r\n" +
        "transfer-encoding: chunked\r\n\r\n3\r\nref\r\n3\r\nuse\r\n0\r\n\r\n",
      close: false,
    },
    {
      name: "until the connection closes",
      text: "HTTP/1.1 401 Unauthorized\r\nx-challenge: abc\r\n\r\nrefuse",
      close: true,
    },
  ];
  for (const a of answers) {
    await t.step(a.name, async () => {
      const server = rawServer();
      const { seen, events } = recorder();
      open({ url: server.url + "/raft/stream", headers: {}, bufferBytes: 1 << 20 }, events);
      try {
        await waitFor(() => server.state.conn !== null, "the connection");
        await server.answer(a.text, a.close);
        await waitFor(() => seen.ended.length === 1, "the end");
        const { problem, answer } = seen.ended[0]!;
        match(String(problem), /The peer ended the stream: 401 refuse/);
        strictEqual(answer?.status, 401);
        strictEqual(answer?.headers.get("x-challenge"), "abc");
        strictEqual(await answer?.text(), "refuse");
      } finally {
        server.close();
      }
    });
  }
});

Deno.test("the socket carrier ends without an answer when the connection fails or closes", async () => {
  // A port with nothing on it: refused.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const refused = recorder();
  open(
    { url: `http://127.0.0.1:${port}/raft/stream`, headers: {}, bufferBytes: 1 },
    refused.events,
  );
  await waitFor(() => refused.seen.ended.length === 1, "the refusal");
  match(String(refused.seen.ended[0]!.problem), /ECONNREFUSED|refused/i);
  strictEqual(refused.seen.ended[0]!.answer, null);

  const server = rawServer();
  const closed = recorder();
  open({ url: server.url + "/raft/stream", headers: {}, bufferBytes: 1 << 20 }, closed.events);
  await waitFor(() => server.state.conn !== null, "the connection");
  server.close();
  await waitFor(() => closed.seen.ended.length === 1, "the end");
  strictEqual(closed.seen.ended[0]!.answer, null);
});

Deno.test("the socket carrier reports itself full past its buffer, and drained once it has sent", async () => {
  const server = rawServer();
  const { seen, events } = recorder();
  const carrier = open({ url: server.url + "/raft/stream", headers: {}, bufferBytes: 64 }, events);
  try {
    strictEqual(carrier.write(new Uint8Array(100), null), false, "100 bytes held over 64");
    await waitFor(() => seen.drained > 0, "drained");
    await waitFor(
      () => server.state.received.endsWith("\r\n64\r\n" + "\0".repeat(100) + "\r\n"),
      "the chunk",
    );
  } finally {
    carrier.close();
    server.close();
  }
});

Deno.test("the socket carrier reaches an https: peer whose certificate comes from its CAs, and refuses one that does not", async () => {
  const pki = createTestPki("socket-carrier");
  const server = rawServer({
    cert: readFileSync(pki.cert.cert, "utf8"),
    key: readFileSync(pki.cert.key, "utf8"),
  });
  try {
    const trusting = socketCarrier([pki.ca.pem])!;
    ok(trusting.carries(server.url));
    const { seen, events } = recorder();
    const carrier = trusting.open(
      { url: server.url + "/raft/stream", headers: {}, bufferBytes: 1 << 20 },
      events,
    );
    carrier.write(encoder.encode("over-tls"), null);
    await waitFor(() => server.state.received.endsWith("\r\n8\r\nover-tls\r\n"), "the chunk");
    carrier.close();
    deepStrictEqual(seen.ended, []);

    const refused = recorder();
    socketCarrier([pki.otherCa.pem])!.open(
      { url: server.url + "/raft/stream", headers: {}, bufferBytes: 1 << 20 },
      refused.events,
    );
    await waitFor(() => refused.seen.ended.length === 1, "the refusal");
    ok(isCertificateError(refused.seen.ended[0]!.problem), String(refused.seen.ended[0]!.problem));
  } finally {
    server.close();
    pki.remove();
  }
});
