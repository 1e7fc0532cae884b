/**
 * `deno_connections.ts` on real loopback sockets: what the probes of
 * `tests/serve_test.ts` do not reach. Answers held up by clients that do
 * not read, streamed or in memory; a stream that keeps flowing; a shutdown;
 * and the relay that stays for a Deno without the runtime's server for one
 * connection.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { serve } from "../../src/serve.ts";
import { denoConnectionServing } from "../../src/serve/deno_connections.ts";
import { limitsHandler } from "./limits_handler.ts";
import {
  closeQuietly,
  connect,
  PROBE_LIMITS,
  readResponse,
  readUntilClosed,
  runLimitProbes,
  send,
} from "./probes.ts";

const LIMITS = { idleTimeoutMs: 600, headersTimeoutMs: 300, maxConnections: 16 } as const;
/** Slack for a loaded machine. */
const LATE_MS = 3_000;
const CHUNK = new Uint8Array(64 * 1024);

/** Polls `done` until it holds or `ms` pass. */
async function until(done: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  for (let turn = 0; turn < 10_000 && !done() && performance.now() < deadline; turn++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return done();
}

Deno.test("this Deno has the runtime's server for one connection, as serve() uses it", async () => {
  strictEqual(typeof await denoConnectionServing(), "function");
});

Deno.test("serve() on Deno closes a connection whose client stops reading its answer", async (t) => {
  /** What each answer's source saw, by path. */
  const seen = new Map<string, { produced: number; ended: string | null; at: number }>();
  const server = await serve((request, info) => {
    const path = new URL(request.url).pathname;
    const record = { produced: 0, ended: null as string | null, at: 0 };
    seen.set(path, record);
    if (path === "/memory") {
      (info as Deno.ServeHandlerInfo).completed.then(
        () => record.ended = "written",
        () => record.ended = "failed",
      );
      return new Response(new Uint8Array(64 << 20));
    }
    const paced = path === "/paced";
    return new Response(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (paced) await new Promise((resolve) => setTimeout(resolve, 150));
          if (record.produced >= (paced ? 14 : 1_024)) {
            record.ended = "done";
            controller.close();
            return;
          }
          record.produced++;
          controller.enqueue(paced ? new Uint8Array([46]) : CHUNK);
        },
        cancel() {
          record.ended = "cancelled";
          record.at = performance.now();
        },
      }, { highWaterMark: 0 }),
    );
  }, { port: 0, hostname: "127.0.0.1", ...LIMITS });
  try {
    await t.step("a stream the client does not read is cut at the idle timeout", async () => {
      const conn = await connect(server.port);
      try {
        const start = performance.now();
        await send(conn, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
        ok(await until(() => Boolean(seen.get("/stream")?.ended), LIMITS.idleTimeoutMs + LATE_MS));
        const stream = seen.get("/stream")!;
        strictEqual(stream.ended, "cancelled");
        ok(stream.produced < 1_024, "the whole stream was taken");
        ok(stream.at - start >= LIMITS.idleTimeoutMs - 50, `cut after ${stream.at - start} ms`);
      } finally {
        closeQuietly(conn);
      }
    });
    await t.step("a stream that keeps flowing outlasts the idle timeout", async () => {
      const conn = await connect(server.port);
      await send(conn, "GET /paced HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      const got = await readUntilClosed(conn, 2_100 + LATE_MS);
      ok(got.ms > LIMITS.idleTimeoutMs * 2, `over in ${got.ms} ms`);
      strictEqual(seen.get("/paced")!.ended, "done");
      ok(got.text.startsWith("HTTP/1.1 200"), got.text.slice(0, 80));
      strictEqual(got.text.split("\r\n.\r\n").length - 1, 14, got.text);
    });
    await t.step(
      "an answer in memory the client does not read is cut at the idle timeout",
      async () => {
        const conn = await connect(server.port);
        try {
          await send(conn, "GET /memory HTTP/1.1\r\nHost: x\r\n\r\n");
          // The runtime holds the answer from here: the request is over.
          ok(await until(() => seen.get("/memory")?.ended === "written", LATE_MS));
          await new Promise((resolve) => setTimeout(resolve, LIMITS.idleTimeoutMs + 500));
          const got = await readUntilClosed(conn, LATE_MS);
          ok(got.closed, `still open after ${got.ms} ms`);
          ok(got.text.length < 64 << 20, "the whole answer was taken");
        } finally {
          closeQuietly(conn);
        }
      },
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("serve() on Deno closes a connection whose body stops arriving, at the idle timeout", async () => {
  const server = await serve(limitsHandler, { port: 0, hostname: "127.0.0.1", ...LIMITS });
  const conn = await connect(server.port);
  try {
    await send(conn, "PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
    const got = await readUntilClosed(conn, LIMITS.idleTimeoutMs + LATE_MS);
    ok(got.closed, `still open after ${got.ms} ms`);
    ok(got.ms >= LIMITS.idleTimeoutMs - 50, `closed after ${got.ms} ms`);
    ok(!got.text.startsWith("HTTP/1.1 200"), got.text);
  } finally {
    closeQuietly(conn);
    await server.shutdown();
  }
});

Deno.test("serve() on Deno shuts down: idle connections and long-lived requests at once, others once answered", async () => {
  let streamEnded = false;
  const server = await serve(async (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/raft/stream" && request.body !== null) {
      try {
        for await (const _ of request.body) {
          // A peer stream: read as long as it lasts.
        }
      } catch {
        // Closed under it.
      }
      streamEnded = true;
      return new Response(null, { status: 204 });
    }
    return await limitsHandler(request);
  }, { port: 0, hostname: "127.0.0.1", ...LIMITS, idleTimeoutMs: 10_000 });
  const idle = await connect(server.port);
  const stream = await connect(server.port);
  const slow = await connect(server.port);
  try {
    await send(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    deepStrictEqual(await readResponse(idle, 5_000), { status: 200, body: '{"ok":true}' });
    await send(
      stream,
      "POST /raft/stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n",
    );
    await send(slow, "GET /slow?ms=800 HTTP/1.1\r\nHost: x\r\n\r\n");
    await new Promise((resolve) => setTimeout(resolve, 100));
    const start = performance.now();
    const stopped = server.shutdown();
    const idleEnd = await readUntilClosed(idle, LATE_MS);
    ok(idleEnd.closed && idleEnd.ms < 1_000, `the idle one closed after ${idleEnd.ms} ms`);
    const streamEnd = await readUntilClosed(stream, LATE_MS);
    ok(streamEnd.closed && streamEnd.ms < 1_000, `the stream closed after ${streamEnd.ms} ms`);
    deepStrictEqual(await readResponse(slow, 5_000), { status: 200, body: '{"slow":800}' });
    await stopped;
    ok(performance.now() - start >= 600, "the shutdown did not wait for the slow answer");
    ok(await until(() => streamEnded, LATE_MS), "the stream's handler did not end");
    // A connection made after the shutdown finds nothing listening.
    let refused = false;
    try {
      closeQuietly(await connect(server.port));
    } catch {
      refused = true;
    }
    ok(refused, "still accepting after the shutdown");
  } finally {
    for (const conn of [idle, stream, slow]) closeQuietly(conn);
  }
});

Deno.test('serve() on Deno with denoLimits "relay" bounds its connections through the front', async (t) => {
  const server = await serve(limitsHandler, {
    port: 0,
    hostname: "127.0.0.1",
    ...PROBE_LIMITS,
    denoLimits: "relay",
  });
  try {
    await runLimitProbes(t, server.port, "deno");
  } finally {
    await server.shutdown();
  }
});

Deno.test("serve() on Deno serves a WebSocket through the front, and says the default cannot", async (t) => {
  const wsHandler = (request: Request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onmessage = (event) => socket.send(`echo ${event.data}`);
    return response;
  };
  /** A longer idle timeout than the others: a loaded machine may stall a message for a while. */
  const limits = { ...LIMITS, idleTimeoutMs: 1_000 };
  /**
   * Opens a WebSocket and sends a message every 200 ms for twice the idle
   * timeout: whether it stayed open all along, and the echoes.
   */
  const exchange = async (port: number): Promise<{ open: boolean; echoes: string[] }> => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/`);
    const echoes: string[] = [];
    let open = true;
    const closed = new Promise((resolve) => socket.onclose = resolve);
    try {
      await new Promise((resolve, reject) => {
        socket.onopen = resolve;
        socket.onerror = reject;
      });
      socket.onmessage = (event) => echoes.push(String(event.data));
      for (let i = 0; i < (limits.idleTimeoutMs * 2) / 200; i++) {
        if (socket.readyState !== WebSocket.OPEN) {
          open = false;
          break;
        }
        socket.send(String(i));
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    } finally {
      socket.close();
      await closed;
    }
    return { open, echoes };
  };
  await t.step(
    "with the front, it outlasts the idle timeout while it carries messages",
    async () => {
      const server = await serve(wsHandler, {
        port: 0,
        hostname: "127.0.0.1",
        ...limits,
        denoLimits: "relay",
      });
      try {
        const { open, echoes } = await exchange(server.port);
        ok(open, "closed while it carried messages");
        ok(echoes.length >= 5, JSON.stringify(echoes));
        deepStrictEqual(echoes, echoes.map((_, i) => `echo ${i}`), "in order");
      } finally {
        await server.shutdown();
      }
    },
  );
  await t.step("without it, the upgrade is logged as needing the front", async () => {
    const logged: string[] = [];
    const error = console.error;
    console.error = (...args: unknown[]) => void logged.push(args.join(" "));
    const server = await serve(wsHandler, { port: 0, hostname: "127.0.0.1", ...limits });
    try {
      await exchange(server.port).catch(() => null);
    } finally {
      console.error = error;
      await server.shutdown();
    }
    ok(logged.some((line) => line.includes('denoLimits: "relay"')), JSON.stringify(logged));
  });
});
