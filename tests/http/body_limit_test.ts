/**
 * The client routes' body limit: a declared length is checked from its
 * header, a body of unknown length is counted as it streams, and on Node
 * (a request that says it came over HTTP/1.1) a request that declares no
 * length passes without its body being touched.
 *
 * @module
 */

import { strictEqual } from "node:assert/strict";
import { Hono } from "hono";
import { bodyLimit } from "../../src/http/body_limit.ts";

const LIMIT = 16;

function app(): Hono {
  const app = new Hono();
  app.use(bodyLimit(LIMIT, (c) => c.text("too large", 413)));
  app.all("/", async (c) => c.text(`read ${(await c.req.text()).length}`));
  return app;
}

/** What `@hono/node-server` passes as `env` for an HTTP/1.1 request. */
const NODE_ENV = { incoming: { httpVersionMajor: 1 } };

function streamOf(bytes: number): ReadableStream<Uint8Array> {
  let left = bytes;
  return new ReadableStream({
    pull(controller) {
      if (left === 0) return controller.close();
      const n = Math.min(left, 5);
      left -= n;
      controller.enqueue(new Uint8Array(n).fill(120));
    },
  });
}

Deno.test("bodyLimit() checks a declared length from its header", async () => {
  const put = (body: string, length: number) =>
    app().request("/", { method: "PUT", body, headers: { "content-length": String(length) } });
  strictEqual((await put("x".repeat(LIMIT), LIMIT)).status, 200);
  strictEqual((await put("x".repeat(LIMIT + 1), LIMIT + 1)).status, 413);
});

Deno.test("bodyLimit() counts a body of unknown length as it streams", async () => {
  const put = (bytes: number, env?: unknown) =>
    app().request(
      "/",
      { method: "PUT", body: streamOf(bytes), duplex: "half" } as RequestInit,
      env,
    );
  strictEqual(await (await put(LIMIT)).text(), `read ${LIMIT}`);
  strictEqual((await put(LIMIT + 1)).status, 413);
  // Chunked on Node: Transfer-Encoding says the length is unknown.
  const chunked = (bytes: number) =>
    app().request("/", {
      method: "PUT",
      body: streamOf(bytes),
      duplex: "half",
      headers: { "transfer-encoding": "chunked" },
    } as RequestInit, NODE_ENV);
  strictEqual((await chunked(LIMIT + 1)).status, 413);
  strictEqual((await chunked(LIMIT)).status, 200);
});

/** A request whose `body` may not be read: on Node, reading it builds a Web stream. */
class Untouchable extends Request {
  override get body(): ReadableStream<Uint8Array<ArrayBuffer>> | null {
    throw new Error("request.body was read");
  }
}

Deno.test("bodyLimit() lets an HTTP/1.1 request that declares no length pass untouched", async () => {
  const res = await app().request(new Untouchable("http://localhost/"), undefined, NODE_ENV);
  strictEqual(await res.text(), "read 0");
  const declared = new Untouchable("http://localhost/", {
    method: "PUT",
    body: "xy",
    headers: { "content-length": "2" },
  });
  strictEqual(await (await app().request(declared, undefined, NODE_ENV)).text(), "read 2");
  // Elsewhere the same request goes through the streaming check, which finds no body.
  strictEqual(await (await app().request("/", { method: "GET" })).text(), "read 0");
});
