/**
 * Raw-socket probes of a server's connection limits, shared by the test of
 * `serve()` on Deno (in-process) and the tests of Bun and Node servers
 * (processes running `limits_server.ts`). Each probe talks HTTP/1.1 by hand
 * over loopback TCP, so that it can stop half-way through a head or a body.
 *
 * Every read has a deadline, and every connection a probe opens is closed
 * before it returns.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { REFUSED_HOLD_MS } from "../../src/serve/guard.ts";

/** The limits the probes expect the server to have. */
export const PROBE_LIMITS = {
  headersTimeoutMs: 400,
  idleTimeoutMs: 800,
  maxConnections: 3,
} as const;

/** Slack for a loaded machine: a limit fires within this long after its time. */
const LATE_MS_MAX = 1_500;
/** Node closes a kept-alive connection 1 s after its keepAliveTimeout. */
const NODE_KEEP_ALIVE_EXTRA_MS = 1_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What {@linkcode readUntilClosed} saw. */
export interface ReadResult {
  /** Whether the server closed the connection before the deadline. */
  readonly closed: boolean;
  /** Everything that arrived. */
  readonly text: string;
  /** How long it took, ms. */
  readonly ms: number;
}

/**
 * Opens a loopback TCP connection.
 *
 * @param port The server's port.
 * @returns The connection; the caller closes it.
 */
export function connect(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

/**
 * Sends text.
 *
 * @param conn The connection.
 * @param text What to send.
 */
export async function send(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  for (let written = 0, turns = 0; written < bytes.length && turns < 10_000; turns++) {
    written += await conn.write(bytes.subarray(written));
  }
}

/**
 * Reads until the server closes the connection, or until the deadline, and
 * then closes it.
 *
 * @param conn The connection.
 * @param timeoutMs The deadline.
 * @returns Whether it was closed in time, what arrived, and when.
 */
export async function readUntilClosed(conn: Deno.Conn, timeoutMs: number): Promise<ReadResult> {
  const start = performance.now();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(conn);
  }, timeoutMs);
  let text = "";
  const buffer = new Uint8Array(16_384);
  try {
    for (let turn = 0; turn < 100_000; turn++) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n));
    }
  } catch {
    // A reset is a close too; after the deadline, our own close.
  } finally {
    clearTimeout(timer);
  }
  closeQuietly(conn);
  return { closed: !timedOut, text, ms: performance.now() - start };
}

/**
 * Reads one response with a `content-length` body.
 *
 * @param conn The connection.
 * @param timeoutMs The deadline.
 * @returns The status and the body.
 * @throws {Error} When the connection closes first or the deadline passes.
 */
export async function readResponse(
  conn: Deno.Conn,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  const deadline = AbortSignal.timeout(timeoutMs);
  let text = "";
  const buffer = new Uint8Array(16_384);
  for (let turn = 0; turn < 100_000; turn++) {
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const length = Number(/content-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? "0");
      if (text.length >= end + 4 + length) {
        return {
          status: Number(text.slice(9, 12)),
          body: text.slice(end + 4, end + 4 + length),
        };
      }
    }
    const n = await Promise.race([
      conn.read(buffer),
      new Promise<never>((_, reject) =>
        deadline.addEventListener("abort", () => reject(new Error("no response in time")), {
          once: true,
        })
      ),
    ]);
    if (n === null) throw new Error(`The connection closed after ${JSON.stringify(text)}`);
    text += decoder.decode(buffer.subarray(0, n));
  }
  throw new Error("Too many reads for one response");
}

/** Closes a connection that may be closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}

/**
 * Waits `ms`: the pace of a client that trickles its bytes. It paces the
 * probe's own sending; nothing waits on the server with it.
 */
function pace(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A chunk of a chunked body. */
function chunk(text: string): string {
  return `${text.length.toString(16)}\r\n${text}\r\n`;
}

/**
 * A long-lived streaming request, as a peer stream is: `POST /stream` with a
 * chunked body that lasts until {@linkcode StreamClient.finish}. The
 * server's answer starts at once (`open`), so the client knows its request
 * is in progress.
 */
class StreamClient {
  readonly conn: Deno.Conn;
  /** Body bytes sent so far. */
  sent = 0;
  #text = "";

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  /** Opens a stream and waits until the server's answer has begun. */
  static async open(port: number): Promise<StreamClient> {
    return await StreamClient.over(await connect(port));
  }

  /** Starts a stream on an open connection and waits until the server's answer has begun. */
  static async over(conn: Deno.Conn): Promise<StreamClient> {
    const client = new StreamClient(conn);
    try {
      await send(
        client.conn,
        "POST /stream HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n\r\n",
      );
      await client.tick();
      await client.#readUntil("open\n", 5_000);
    } catch (error) {
      closeQuietly(client.conn);
      throw error;
    }
    return client;
  }

  /** Sends one more byte of body. */
  async tick(): Promise<void> {
    await send(this.conn, chunk("x"));
    this.sent++;
  }

  /** Ends the body and checks that the server counted every byte. */
  async finish(): Promise<void> {
    await send(this.conn, "0\r\n\r\n");
    await this.#readUntil(`bytes ${this.sent}\n`, 5_000);
  }

  async #readUntil(needle: string, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    const buffer = new Uint8Array(16_384);
    for (let turn = 0; turn < 10_000 && !this.#text.includes(needle); turn++) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        this.conn.read(buffer),
        new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), left)),
      ]).finally(() => clearTimeout(timer));
      if (n === "late") break;
      if (n === null) throw new Error(`The stream closed after ${JSON.stringify(this.#text)}`);
      this.#text += decoder.decode(buffer.subarray(0, n));
    }
    if (!this.#text.includes(needle)) {
      throw new Error(
        `No ${JSON.stringify(needle)} within ${timeoutMs} ms: ${JSON.stringify(this.#text)}`,
      );
    }
  }
}

/**
 * Runs every probe as a step of `t` against a server on `port` that has
 * {@linkcode PROBE_LIMITS} and the handler of `limits_server.ts`.
 *
 * @param t The test context.
 * @param port The server's port.
 * @param runtime What the server runs on (Node closes kept-alive connections 1 s late).
 */
export async function runLimitProbes(
  t: Deno.TestContext,
  port: number,
  runtime: "deno" | "bun" | "node",
): Promise<void> {
  const { headersTimeoutMs, idleTimeoutMs } = PROBE_LIMITS;

  await t.step(
    "a connection that sends half a header line is closed at the head timeout",
    async () => {
      const conn = await connect(port);
      await send(conn, "GET / HTTP/1.1\r\nHost: x\r\nX-Half: abc");
      const got = await readUntilClosed(conn, headersTimeoutMs + LATE_MS_MAX * 2);
      ok(got.closed, `still open after ${got.ms} ms`);
      ok(got.ms >= headersTimeoutMs - 50, `closed after ${got.ms} ms`);
      ok(!got.text.startsWith("HTTP/1.1 200"), got.text);
    },
  );

  await t.step(
    "a head trickling in, a byte every 100 ms, is closed at the head timeout",
    async () => {
      const conn = await connect(port);
      const start = performance.now();
      const trickle = (async () => {
        for (
          const char of "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        ) {
          try {
            await send(conn, char);
          } catch {
            return;
          }
          await pace(100);
        }
      })();
      const got = await readUntilClosed(conn, headersTimeoutMs + LATE_MS_MAX * 2);
      await trickle;
      ok(got.closed, `still open after ${got.ms} ms`);
      ok(performance.now() - start < headersTimeoutMs + LATE_MS_MAX, `closed after ${got.ms} ms`);
    },
  );

  await t.step("an idle kept-alive connection is closed at the idle timeout", async () => {
    const conn = await connect(port);
    await send(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    deepStrictEqual(await readResponse(conn, 5_000), { status: 200, body: '{"ok":true}' });
    const extra = runtime === "node" ? NODE_KEEP_ALIVE_EXTRA_MS : 0;
    const got = await readUntilClosed(conn, idleTimeoutMs + extra + LATE_MS_MAX * 2);
    ok(got.closed, `still open after ${got.ms} ms`);
    ok(got.ms >= idleTimeoutMs - 50, `closed after ${got.ms} ms`);
    ok(got.ms < idleTimeoutMs + extra + LATE_MS_MAX, `closed after ${got.ms} ms`);
  });

  await t.step("a client that ends its side after its request still gets the answer", async () => {
    const conn = await connect(port);
    await send(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await conn.closeWrite();
    const got = await readUntilClosed(conn, 5_000);
    ok(got.text.startsWith("HTTP/1.1 200") && got.text.endsWith('{"ok":true}'), got.text);
  });

  await t.step("an answer that takes longer than the idle timeout still arrives", async () => {
    const conn = await connect(port);
    try {
      const ms = idleTimeoutMs + 400;
      await send(conn, `GET /slow?ms=${ms} HTTP/1.1\r\nHost: x\r\n\r\n`);
      deepStrictEqual(await readResponse(conn, ms + 5_000), {
        status: 200,
        body: `{"slow":${ms}}`,
      });
    } finally {
      closeQuietly(conn);
    }
  });

  await t.step(
    "a body that keeps arriving is not cut, however long it lasts (a peer stream)",
    async () => {
      const stream = await StreamClient.open(port);
      try {
        const start = performance.now();
        // Twice the idle timeout, a byte every quarter of it.
        for (let i = 0; i < 9 && performance.now() - start < idleTimeoutMs * 2; i++) {
          await pace(idleTimeoutMs / 4);
          await stream.tick();
        }
        ok(
          performance.now() - start >= idleTimeoutMs * 1.5,
          "the stream did not outlast the timeout",
        );
        await stream.finish();
      } finally {
        closeQuietly(stream.conn);
      }
    },
  );

  await t.step(
    "at the cap, a new connection takes an idle one's place; when all are busy it is refused",
    async () => {
      strictEqual(PROBE_LIMITS.maxConnections, 3);
      const streams: StreamClient[] = [];
      const opened: Deno.Conn[] = [];
      // The streams stay busy meanwhile, as peer streams do with their keepalives.
      let ticking = true;
      const keepalives = (async () => {
        for (let turn = 0; turn < 1_000 && ticking; turn++) {
          await pace(idleTimeoutMs / 4);
          for (const stream of [...streams]) await stream.tick().catch(() => {});
        }
      })();
      try {
        for (let i = 0; i < 2; i++) streams.push(await StreamClient.open(port));
        // The third place: a kept-alive connection, idle since its answer.
        const idle = await connect(port);
        opened.push(idle);
        await send(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        deepStrictEqual(await readResponse(idle, 5_000), { status: 200, body: '{"ok":true}' });
        const idleSince = performance.now();
        // A place changes hands only once its holder has waited a quarter
        // of the shorter timeout: let the idle one wait that long.
        await pace(Math.min(headersTimeoutMs, idleTimeoutMs) / 4 + 50);
        const newcomer = await connect(port);
        await send(newcomer, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        deepStrictEqual(await readResponse(newcomer, 5_000), { status: 200, body: '{"ok":true}' });
        opened.push(newcomer);
        const evicted = await readUntilClosed(idle, LATE_MS_MAX);
        const idleMs = performance.now() - idleSince;
        ok(evicted.closed, "the idle connection was not closed");
        // Its idle timeout would have closed it later than this.
        ok(idleMs < idleTimeoutMs - 100, `the idle one closed after ${idleMs} ms: not evicted`);

        // The newcomer streams too: every connection is busy.
        streams.push(await StreamClient.over(newcomer));
        const refused = await connect(port);
        opened.push(refused);
        const got = await readUntilClosed(refused, REFUSED_HOLD_MS + LATE_MS_MAX * 2);
        ok(got.closed && got.text === "", `not refused: ${JSON.stringify(got)}`);
        // Node closes it at once; the front of Deno and Bun holds it a
        // second first. Either way not at the head timeout, as an admitted
        // connection would be.
        const held = runtime === "node"
          ? got.ms < headersTimeoutMs / 2
          : got.ms >= REFUSED_HOLD_MS - 50;
        ok(held, `closed after ${got.ms} ms: not refused`);

        // The busy ones were never touched.
        ticking = false;
        await keepalives;
        for (const stream of streams) await stream.finish();
      } finally {
        ticking = false;
        await keepalives;
        streams.forEach((stream) => closeQuietly(stream.conn));
        opened.forEach(closeQuietly);
      }
    },
  );
}
