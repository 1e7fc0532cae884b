/**
 * The connection-limit probes of `tests/serve/probes.ts` against `serve()`
 * on Bun (through the front, before `Bun.serve`) and on Node (its own
 * server's timeouts, with the cap and the idle rule added), each in a real
 * process running `tests/serve/limits_server.ts`.
 *
 * @module
 */

import { CliProcess, type Launchers } from "./harness.ts";
import { ensureTools } from "./tools.ts";
import { PROBE_LIMITS, runLimitProbes } from "../serve/probes.ts";

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
