/**
 * `bench/cluster/main.ts --smoke --only watercraft` runs every case of the
 * cluster benchmark for a moment on a real 3-process WaterCraft cluster and
 * ends with a JSON line that holds a positive throughput for every put and
 * get case and a finite failover time. It checks that the benchmark works,
 * not how fast anything is.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { startTaskFlags } from "../process/harness.ts";
import { runBench, runSmoke } from "./_smoke.ts";

/** The whole run takes about 10 s; the deadline leaves room for a busy machine. */
const DEADLINE_MS = 90_000;

interface CaseJson {
  name: string;
  kind: string;
  watercraft: Record<string, unknown> | null;
  etcd: Record<string, unknown> | null;
}

Deno.test("bench:cluster --smoke --only watercraft ends with one JSON line of sound numbers", async () => {
  const smoke = await runSmoke(
    ["bench/cluster/main.ts", "--smoke", "--only", "watercraft"],
    DEADLINE_MS,
  );
  const { lines, context } = smoke;
  const report = smoke.report as {
    runtime: string;
    runtimeFlags: string;
    systems: string[];
    smoke: boolean;
    cases: CaseJson[];
  };
  strictEqual(report.runtime, "deno");
  // The nodes run as `deno task start` runs them.
  strictEqual(report.runtimeFlags, startTaskFlags().join(" "));
  strictEqual(report.smoke, true);
  deepStrictEqual(report.systems, ["watercraft"]);
  ok(lines.some((line) => line.startsWith("| case |")), `no Markdown table\n${context}`);

  const names = report.cases.map((c) => c.name);
  deepStrictEqual(names, [
    "put-1",
    "put-64",
    "put-256",
    "get-64-leader",
    "get-64-spread",
    "memory",
    "failover",
  ]);
  for (const c of report.cases) {
    strictEqual(c.etcd, null, c.name);
    ok(c.watercraft !== null, c.name);
    const wc = c.watercraft;
    if (c.kind === "put" || c.kind === "get") {
      const ops = wc.opsPerSec;
      ok(typeof ops === "number" && ops > 0, `${c.name}: ops/s ${ops}\n${context}`);
      ok(typeof wc.p50Ms === "number" && wc.p50Ms > 0, `${c.name}: p50 ${wc.p50Ms}`);
      ok(typeof wc.p99Ms === "number" && wc.p99Ms >= wc.p50Ms, `${c.name}: p99 ${wc.p99Ms}`);
      // CPU is counted in ticks of 10 ms: a smoke run's share may round to 0.
      ok(
        typeof wc.cpuUsPerOp === "number" && wc.cpuUsPerOp >= 0,
        `${c.name}: CPU ${wc.cpuUsPerOp}`,
      );
    }
  }
  const failover = report.cases.find((c) => c.name === "failover")!.watercraft!;
  ok(
    typeof failover.failoverMs === "number" && Number.isFinite(failover.failoverMs) &&
      failover.failoverMs > 0,
    `failover ${failover.failoverMs}\n${context}`,
  );
  const memory = report.cases.find((c) => c.name === "memory")!.watercraft!;
  ok(typeof memory.rssLoadMiB === "number" && memory.rssLoadMiB > 0, `RSS ${memory.rssLoadMiB}`);
});

Deno.test("bench:cluster --node-flags reaches the WaterCraft nodes and the report", async () => {
  const onePut = (nodeFlags: string) => [
    "bench/cluster/main.ts",
    "--smoke",
    "--only",
    "watercraft",
    "--cases",
    "put-1",
    `--node-flags=${nodeFlags}`,
  ];
  const noFront = "--idle-timeout-ms 0 --headers-timeout-ms 0 --max-connections 0";
  const smoke = await runSmoke(onePut(noFront), DEADLINE_MS);
  strictEqual((smoke.report as { nodeFlags: string }).nodeFlags, noFront);
  ok(smoke.lines[0]!.includes(`nodes started with ${noFront}`), smoke.context);

  // A value the CLI refuses: the nodes do not start, so the flags got to them.
  const refused = await runBench(onePut("--max-connections -1"), DEADLINE_MS);
  ok(refused.code !== 0, refused.stderr);
  ok(refused.stderr.includes("--max-connections"), refused.stderr);
});
