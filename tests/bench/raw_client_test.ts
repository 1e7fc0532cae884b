/**
 * The load generator's raw HTTP/1.1 client against real loopback servers:
 * `Deno.serve` for answers with a length or chunked, and raw TCP servers for
 * what `Deno.serve` never sends.
 */

import { deepStrictEqual, match, strictEqual } from "node:assert/strict";
import { RawHttpClient } from "../../bench/cluster/raw_client.ts";

/** Serves `handler` on a free loopback port for `body`, then stops. */
async function withServer(
  handler: (
    request: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ) => Response | Promise<Response>,
  body: (base: string) => Promise<void>,
): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  try {
    await body(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    await server.shutdown();
  }
}

/** A TCP server that writes `answer` to each connection once a request head has arrived. */
async function withRawServer(
  answer: Uint8Array | null,
  body: (base: string) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      const buffer = new Uint8Array(4096);
      let text = "";
      while (!text.includes("\r\n\r\n")) {
        const n = await conn.read(buffer).catch(() => null);
        if (n === null) break;
        text += new TextDecoder().decode(buffer.subarray(0, n));
      }
      if (answer !== null) {
        await conn.write(answer);
        conn.close();
        conns.pop();
      }
    }
  })();
  try {
    await body(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`);
  } finally {
    listener.close();
    for (const conn of conns) conn.close();
    await serving.catch(() => {});
  }
}

/** Runs `body` with a new client, closed after. */
async function withClient(body: (client: RawHttpClient) => Promise<void>): Promise<void> {
  const client = new RawHttpClient();
  try {
    await body(client);
  } finally {
    client.close();
  }
}

/** A GET of `url`, waiting at most `timeoutMs`. */
function get(client: RawHttpClient, url: string, timeoutMs = 5000): Promise<string | null> {
  return client.send({ url, method: "GET" }, timeoutMs);
}

Deno.test("raw client: a 2xx answer is a success, and its connection is used again", async () => {
  const ports: number[] = [];
  const seen: string[] = [];
  await withServer(async (request, info) => {
    ports.push(info.remoteAddr.port);
    seen.push(
      `${request.method} ${new URL(request.url).pathname}${new URL(request.url).search} ${
        request.headers.get("content-type")
      } ${await request.text()}`,
    );
    return new Response("{}", { status: request.method === "PUT" ? 201 : 200 });
  }, async (base) => {
    await withClient(async (client) => {
      strictEqual(
        await client.send({ url: `${base}/v1/kv/a`, method: "PUT", body: '{"v":"é"}' }, 5000),
        null,
      );
      strictEqual(await get(client, `${base}/v1/kv/a?x=1`), null);
      strictEqual(await client.send({ url: `${base}/b`, method: "POST", body: "" }, 5000), null);
    });
  });
  deepStrictEqual(seen, [
    'PUT /v1/kv/a application/json {"v":"é"}',
    "GET /v1/kv/a?x=1 null ",
    "POST /b application/json ",
  ]);
  strictEqual(new Set(ports).size, 1);
});

Deno.test("raw client: another status is a failure that carries the start of the body", async () => {
  await withServer(
    () => new Response("x".repeat(300), { status: 503 }),
    async (base) => {
      await withClient(async (client) => {
        strictEqual(
          await get(client, `${base}/`),
          `503 ${"x".repeat(200)}`,
        );
      });
    },
  );
});

Deno.test("raw client: a chunked answer ends at its last chunk", async () => {
  await withServer(() => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("not "));
        controller.enqueue(new TextEncoder().encode("found"));
        controller.close();
      },
    });
    return new Response(body, { status: 404 });
  }, async (base) => {
    await withClient(async (client) => {
      strictEqual(await get(client, `${base}/`), "404 not found");
      strictEqual(await get(client, `${base}/`), "404 not found");
    });
  });
});

Deno.test("raw client: an answer whose body runs until the connection closes", async () => {
  const answer = new TextEncoder().encode("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it");
  await withRawServer(answer, async (base) => {
    await withClient(async (client) => {
      strictEqual(await get(client, `${base}/`), null);
      strictEqual(await get(client, `${base}/`), null);
    });
  });
});

Deno.test("raw client: a server that closes before answering, one that never answers, none at all", async () => {
  await withRawServer(new TextEncoder().encode(""), async (base) => {
    await withClient(async (client) => {
      match(
        (await get(client, `${base}/`))!,
        /closed the connection before answering/,
      );
    });
  });
  await withRawServer(null, async (base) => {
    await withClient(async (client) => {
      strictEqual(
        await get(client, `${base}/`, 50),
        "TimeoutError: no answer within 50 ms",
      );
    });
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await withClient(async (client) => {
    match(
      (await get(client, `http://127.0.0.1:${port}/`))!,
      /^ConnectionRefused/,
    );
  });
});

Deno.test("raw client: a pooled connection the server closed is replaced, not a failure", async () => {
  // The server answers each connection once, with a length, and closes it.
  const answer = new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  await withRawServer(answer, async (base) => {
    await withClient(async (client) => {
      for (let i = 0; i < 3; i++) {
        strictEqual(await get(client, `${base}/`), null);
      }
    });
  });
});
