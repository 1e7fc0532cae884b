/**
 * A join that keeps failing says why on every attempt, so an operator
 * watching a node that cannot join sees the reason at once, not after the
 * join's deadline.
 *
 * @module
 */

import { match, ok, rejects } from "node:assert/strict";
import { systemClock } from "../../../src/clock.ts";
import { WaterCraftError } from "../../../src/errors.ts";
import { PeerCredentials } from "../../../src/transport/http/credentials.ts";
import { joinCluster, joinRetryLine } from "../../../src/transport/http/join.ts";

/** A loopback port nothing listens on. */
function deadPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

const request = (seed: string) => ({
  id: "n9",
  url: "http://127.0.0.1:9",
  readOnly: false,
  seeds: [seed],
  timeoutMs: 400,
  clock: systemClock(),
  credentials: new PeerCredentials("s3cret"),
});

Deno.test("joinCluster() reports each failed attempt with its reason", async () => {
  const lines: string[] = [];
  await rejects(
    joinCluster({
      ...request(`http://127.0.0.1:${deadPort()}`),
      onRetry: (retry) => {
        ok(retry.delayMs >= 0 && retry.delayMs <= 2000, `delay ${retry.delayMs}`);
        lines.push(joinRetryLine(retry));
      },
    }),
    (e: unknown) => e instanceof WaterCraftError && e.code === "unavailable",
  );
  ok(lines.length >= 2, `only ${lines.length} attempts reported`);
  for (const [i, line] of lines.entries()) {
    match(
      line,
      new RegExp(
        `^watercraft: join attempt ${
          i + 1
        } failed \\(.*(refused|ECONNREFUSED|connect).*\\); retrying$`,
        "i",
      ),
    );
  }
});

Deno.test("joinCluster() reports on stderr when given no log", async () => {
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (line: string) => warned.push(line);
  try {
    await rejects(joinCluster(request(`http://127.0.0.1:${deadPort()}`)));
  } finally {
    console.warn = warn;
  }
  ok(warned.length >= 1);
  match(warned[0]!, /^watercraft: join attempt 1 failed/);
});
