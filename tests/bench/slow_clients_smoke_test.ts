/**
 * `bench/slow_clients.ts --smoke` runs its two nodes (limits on and off)
 * for a moment, with a head timeout of 500 ms on the first, and ends with
 * one JSON line: with the limits on, the node closed slow connections;
 * with them off, none. It checks that the benchmark works, not how fast
 * anything is.
 *
 * @module
 */

import { ok, strictEqual } from "node:assert/strict";
import { runSmoke } from "./_smoke.ts";

/** The run takes about 7 s; the deadline leaves room for a busy machine. */
const DEADLINE_MS = 90_000;

interface Run {
  limits: "on" | "off";
  alone: { ok: number; errors: number };
  withSlow: { ok: number; errors: number; slowOpenAtStart: number };
  slow: Record<string, { opened: number; closedByNode: number }>;
}

Deno.test("bench/slow_clients.ts --smoke ends with one JSON line: limits on close slow connections, off do not", async () => {
  const smoke = await runSmoke(["bench/slow_clients.ts", "--smoke"], DEADLINE_MS);
  const { context } = smoke;
  const report = smoke.report as { smoke: boolean; runs: Run[] };
  strictEqual(report.smoke, true);
  const [on, off] = report.runs;
  strictEqual(on?.limits, "on", context);
  strictEqual(off?.limits, "off", context);
  for (const run of [on, off]) {
    ok(run.alone.ok > 0 && run.withSlow.ok > 0, `${run.limits}: no PUT succeeded\n${context}`);
    strictEqual(run.alone.errors + run.withSlow.errors, 0, context);
  }
  ok(on.slow.trickle!.closedByNode > 0, `limits on closed no trickling connection\n${context}`);
  ok(on.slow.silent!.closedByNode > 0, `limits on closed no silent connection\n${context}`);
  for (const kind of Object.values(off.slow)) strictEqual(kind.closedByNode, 0, context);
});
