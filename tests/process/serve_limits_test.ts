/**
 * The connection-limit probes of `tests/serve/probes.ts` against `serve()`
 * on Bun (through the front, before `Bun.serve`) and on Node (its own
 * server's timeouts, with the cap and the idle rule added), each in a real
 * process running `tests/serve/limits_server.ts`; and the CLI's flags
 * reaching its server.
 *
 * @module
 */

import { ok } from "node:assert/strict";
import { CliProcess, type Launchers, startNode } from "./harness.ts";
import { ensureTools } from "./tools.ts";
import {
  closeQuietly,
  connect,
  PROBE_LIMITS,
  readUntilClosed,
  runLimitProbes,
  send,
} from "../serve/probes.ts";

const SERVER = "tests/serve/limits_server.ts";

/** Starts the limits server on `runtime`; returns it and its port. */
async function startServer(
  runtime: "bun" | "node",
  launchers: Launchers,
): Promise<{ process: CliProcess; port: number }> {
  const limits = JSON.stringify(PROBE_LIMITS);
  const process = runtime === "bun"
    ? new CliProcess(launchers.bun!, [SERVER, limits], { label: "limits@bun" })
    : new CliProcess(launchers.node ?? "node", ["--import", launchers.tsxLoader!, SERVER, limits], {
      label: "limits@node",
    });
  try {
    const match = await process.waitForLine(/^listening (\d+)$/, 30_000);
    return { process, port: Number(match[1]) };
  } catch (error) {
    await process.close();
    throw error;
  }
}

for (const runtime of ["bun", "node"] as const) {
  Deno.test(`serve() on ${runtime} bounds its connections: head and idle timeouts, a cap`, async (t) => {
    const launchers = await ensureTools();
    const server = await startServer(runtime, launchers);
    try {
      await runLimitProbes(t, server.port, runtime);
    } finally {
      await server.process.close();
    }
  });
}

Deno.test("cli passes --headers-timeout-ms and --max-connections to its server", async () => {
  const node = await startNode({
    id: "limits",
    args: ["--headers-timeout-ms", "400", "--max-connections", "2"],
  });
  const opened: Deno.Conn[] = [];
  try {
    const port = Number(new URL(node.url).port);
    const half = await connect(port);
    opened.push(half);
    await send(half, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: abc");
    const timedOut = await readUntilClosed(half, 5_000);
    ok(timedOut.closed && timedOut.ms >= 350, `closed after ${timedOut.ms} ms`);

    // Two writes whose bodies never come keep both places busy; the node
    // asks for each body (100 Continue) once it has the request.
    for (let i = 0; i < 2; i++) {
      const busy = await connect(port);
      opened.push(busy);
      await send(
        busy,
        "PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nexpect: 100-continue\r\ncontent-length: 40\r\n\r\n",
      );
      const buffer = new Uint8Array(256);
      const n = await busy.read(buffer);
      ok(n !== null && new TextDecoder().decode(buffer.subarray(0, n)).startsWith("HTTP/1.1 100"));
    }
    const third = await connect(port);
    opened.push(third);
    const refused = await readUntilClosed(third, 5_000);
    ok(refused.closed && refused.text === "", `not refused: ${JSON.stringify(refused)}`);
    // Held a second, unread, then closed: not admitted (its head timeout
    // would have closed it at 400 ms).
    ok(refused.ms >= 950, `closed after ${refused.ms} ms: not refused`);
  } finally {
    opened.forEach(closeQuietly);
    await node.process.close();
  }
});
