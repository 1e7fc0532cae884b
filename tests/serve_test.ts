/**
 * `serve()` on Deno over loopback: the connection limits hold on real
 * sockets (the same probes run against Bun and Node processes in
 * `tests/process/serve_limits_test.ts`), the requests in between are served
 * as before, over HTTP and HTTPS, and a server with every limit off is the
 * runtime's own.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { readFileSync } from "node:fs";
import { serve } from "../src/serve.ts";
import { limitsHandler } from "./serve/limits_handler.ts";
import {
  closeQuietly,
  connect,
  PROBE_LIMITS,
  readUntilClosed,
  runLimitProbes,
  send,
} from "./serve/probes.ts";
import { createTestPki } from "./process/tls/pki.ts";

Deno.test("serve() on Deno bounds its connections: head and idle timeouts, a cap", async (t) => {
  const server = await serve(limitsHandler, { port: 0, hostname: "127.0.0.1", ...PROBE_LIMITS });
  try {
    await runLimitProbes(t, server.port, "deno");
  } finally {
    await server.shutdown();
  }
});

Deno.test("serve() on Deno relays HTTPS, and bounds a connection that never completes its handshake", async () => {
  const pki = createTestPki("serve-test");
  const client = Deno.createHttpClient({ caCerts: [readFileSync(pki.ca.cert, "utf8")] });
  const server = await serve(limitsHandler, {
    port: 0,
    hostname: "127.0.0.1",
    tls: { cert: readFileSync(pki.cert.cert, "utf8"), key: readFileSync(pki.cert.key, "utf8") },
    ...PROBE_LIMITS,
  });
  try {
    strictEqual(server.protocol, "https");
    const url = `https://127.0.0.1:${server.port}`;
    const put = await fetch(`${url}/v1/kv/a`, { method: "PUT", body: "hello", client });
    deepStrictEqual(await put.json(), { bytes: 5 });
    const get = await fetch(url, { client });
    deepStrictEqual(await get.json(), { ok: true });

    const conn = await connect(server.port);
    await send(conn, "\x16\x03\x01"); // the first bytes of a ClientHello, and no more
    const got = await readUntilClosed(conn, PROBE_LIMITS.headersTimeoutMs + 3_000);
    ok(got.closed, `still open after ${got.ms} ms`);
  } finally {
    client.close();
    await server.shutdown();
    pki.remove();
  }
});

Deno.test("serve() with every limit off is Deno.serve itself: nothing is closed", async () => {
  const server = await serve(limitsHandler, {
    port: 0,
    hostname: "127.0.0.1",
    idleTimeoutMs: 0,
    headersTimeoutMs: 0,
    maxConnections: 0,
  });
  const conn = await connect(server.port);
  try {
    await send(conn, "GET / HTTP/1.1\r\nHost: x\r\nX-Half: abc");
    const got = await readUntilClosed(conn, 600);
    strictEqual(got.closed, false);
  } finally {
    closeQuietly(conn);
    await server.shutdown();
  }
});
