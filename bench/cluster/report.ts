/**
 * Turns the rounds' measurements into the medians, the Markdown table and
 * the one JSON line the benchmark ends with.
 *
 * @module
 */

import type { SystemName } from "./cluster.ts";

/** How a case loads the cluster. */
export interface CaseSpec {
  /** Short id, e.g. `put-64`. */
  readonly id: string;
  /** What the table calls it. */
  readonly title: string;
  /** The kind of measurement. */
  readonly kind: "put" | "get" | "failover" | "memory";
  /** Concurrent clients. */
  readonly clients: number;
  /** Whom the clients send to. */
  readonly target: "leader" | "spread";
}

/** One round of one case on one system: the numbers that apply to its kind. */
export interface Sample {
  opsPerSec?: number;
  p50Ms?: number;
  p99Ms?: number;
  p999Ms?: number;
  errors?: number;
  failoverMs?: number | null;
  retries?: number;
  timeouts?: number;
  electedMs?: number | null;
  rssRestMiB?: number;
  rssLoadMiB?: number;
  /** CPU time the 3 members used per successful request, µs. */
  cpuUsPerOp?: number;
  /** Failover: write throughput before the kill. */
  opsPerSecBeforeKill?: number;
  /** The first request that failed (in the failover case: the first failure after the kill). */
  firstFailure?: string;
  /** Failover: why the killed member could not be brought back afterwards. */
  restartError?: string;
  /** Why the case itself could not be measured. */
  error?: string;
}

/** The median of each number over the rounds of one case on one system. */
export type Summary = Record<string, number | null | string | Sample[]> & { rounds: Sample[] };

/** Everything measured, by case and system. */
export type Results = Map<string, Record<SystemName, Sample[]>>;

/** Numbers summarised by their median over the rounds. */
const NUMERIC: (keyof Sample)[] = [
  "opsPerSec",
  "p50Ms",
  "p99Ms",
  "p999Ms",
  "failoverMs",
  "retries",
  "timeouts",
  "electedMs",
  "opsPerSecBeforeKill",
  "rssRestMiB",
  "rssLoadMiB",
  "cpuUsPerOp",
];

/**
 * The median of the values that are finite numbers.
 *
 * @param values The values.
 * @returns The median, or null when there is none.
 */
export function median(values: readonly (number | null | undefined)[]): number | null {
  const xs = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v))
    .sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 === 1 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
}

/**
 * Summarises the rounds of one case on one system.
 *
 * @param samples One per round.
 * @returns Medians, error totals, and the rounds themselves.
 */
export function summarise(samples: readonly Sample[]): Summary {
  const out: Summary = { rounds: samples.map(round) };
  for (const key of NUMERIC) {
    if (samples.some((s) => s[key] !== undefined)) {
      const m = median(samples.map((s) => s[key] as number | null | undefined));
      out[key] = m === null ? null : Math.round(m * 1000) / 1000;
    }
  }
  if (samples.some((s) => s.errors !== undefined)) {
    out.errors = samples.reduce((sum, s) => sum + (s.errors ?? 0), 0);
  }
  // A round whose failover never completed makes the median meaningless: say so.
  if (samples.some((s) => s.failoverMs === null)) out.failoverMs = null;
  for (const key of ["firstFailure", "restartError", "error"] as const) {
    const first = samples.find((s) => s[key] !== undefined)?.[key];
    if (first !== undefined) out[key] = first;
  }
  return out;
}

function round(s: Sample): Sample {
  const out: Sample = {};
  for (const [k, v] of Object.entries(s)) {
    (out as Record<string, unknown>)[k] = typeof v === "number" ? Math.round(v * 1000) / 1000 : v;
  }
  return out;
}

/** Ratio WaterCraft/etcd, or null. */
function ratio(a: unknown, b: unknown): number | null {
  if (typeof a !== "number" || typeof b !== "number" || !(a > 0) || !(b > 0)) return null;
  return Math.round((a / b) * 1000) / 1000;
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function fmtOps(v: unknown): string {
  const n = num(v);
  return n === null ? "—" : Math.round(n).toLocaleString("en-US");
}

function fmtMs(v: unknown): string {
  const n = num(v);
  if (n === null) return "—";
  return n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString("en-US");
}

function fmtUs(v: unknown): string {
  const n = num(v);
  return n === null ? "—" : `${Math.round(n)} µs`;
}

function fmtMiB(v: unknown): string {
  const n = num(v);
  return n === null ? "—" : `${Math.round(n)} MiB`;
}

/** "p50 WaterCraft better (1.60×)": which system has the lower number, and by what factor. */
function lowerIsBetter(label: string, wc: unknown, etcd: unknown, noun = "better"): string {
  const a = num(wc);
  const b = num(etcd);
  if (a === null || b === null || a <= 0 || b <= 0) return `${label} n/a`.trim();
  if (a === b) return `${label} equal`.trim();
  const better = a < b ? "WaterCraft" : "etcd";
  const factor = a < b ? b / a : a / b;
  return `${label} ${better} ${noun} (${factor.toFixed(2)}×)`.trim();
}

/** The whole report: the Markdown table, and the JSON object. */
export interface Report {
  /** Lines of Markdown. */
  readonly markdown: string;
  /** The object printed as the last line. */
  readonly json: Record<string, unknown>;
}

/** What the header says about the run. */
export interface RunInfo {
  readonly runtime: string;
  readonly runtimeVersion: string;
  readonly cpu: string;
  readonly cores: number;
  readonly date: string;
  readonly etcdVersion: string | null;
  readonly systems: readonly SystemName[];
  readonly rounds: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** How many keys writes spread over. */
  readonly putKeys: number;
  /** The WaterCraft nodes' runtime flags, if any. */
  readonly runtimeFlags: string;
  /** More flags given to the WaterCraft CLI, if any. */
  readonly nodeFlags: string;
  readonly smoke: boolean;
  readonly heartbeatMs: number;
  readonly electionMs: number;
}

/**
 * Builds the table and the JSON from the samples of every round.
 *
 * @param info The run's settings and machine.
 * @param cases The cases, in order.
 * @param results Samples by case and system.
 * @returns Markdown and JSON.
 */
export function buildReport(info: RunInfo, cases: readonly CaseSpec[], results: Results): Report {
  const has = (s: SystemName) => info.systems.includes(s);
  const jsonCases: Record<string, unknown>[] = [];
  const rows: string[] = [];
  const cpuRows: string[] = [];
  const etcdName = info.etcdVersion === null ? "etcd" : `etcd ${info.etcdVersion}`;
  for (const spec of cases) {
    const byName = results.get(spec.id);
    const wc = has("watercraft") && byName ? summarise(byName.watercraft) : null;
    const et = has("etcd") && byName ? summarise(byName.etcd) : null;
    const entry: Record<string, unknown> = {
      name: spec.id,
      kind: spec.kind,
      clients: spec.clients,
      target: spec.target,
      watercraft: wc,
      etcd: et,
    };
    const cell = (s: Summary | null, f: (s: Summary) => string) => s === null ? "n/a" : f(s);
    const errs = (s: Summary) =>
      typeof s.errors === "number" && s.errors > 0 ? ` (${s.errors} failed)` : "";
    // Every round of the case failed: there is no number to show.
    const failed = (s: Summary) => typeof s.error === "string" && s.rounds.every((r) => r.error);
    if (spec.kind === "put" || spec.kind === "get") {
      const r = wc && et
        ? {
          opsPerSec: ratio(wc.opsPerSec, et.opsPerSec),
          p50Ms: ratio(wc.p50Ms, et.p50Ms),
          p99Ms: ratio(wc.p99Ms, et.p99Ms),
        }
        : null;
      entry.ratio = r;
      cpuRows.push(
        `| ${spec.title} | ${cell(wc, (s) => fmtUs(s.cpuUsPerOp))} | ${
          cell(et, (s) => fmtUs(s.cpuUsPerOp))
        } | ${wc && et ? lowerIsBetter("", wc.cpuUsPerOp, et.cpuUsPerOp, "cheaper") : "n/a"} |`,
      );
      const ratioCell = r === null ? "n/a" : [
        `ops/s ${r.opsPerSec === null ? "n/a" : `${r.opsPerSec.toFixed(2)}×`}`,
        lowerIsBetter("p50", wc!.p50Ms, et!.p50Ms),
        lowerIsBetter("p99", wc!.p99Ms, et!.p99Ms),
      ].join("; ");
      rows.push(
        `| ${spec.title} | ${
          cell(wc, (s) => failed(s) ? "failed" : fmtOps(s.opsPerSec) + errs(s))
        } | ${cell(wc, (s) => fmtMs(s.p50Ms))} | ${cell(wc, (s) => fmtMs(s.p99Ms))} | ${
          cell(et, (s) => failed(s) ? "failed" : fmtOps(s.opsPerSec) + errs(s))
        } | ${cell(et, (s) => fmtMs(s.p50Ms))} | ${
          cell(et, (s) => fmtMs(s.p99Ms))
        } | ${ratioCell} |`,
      );
    } else if (spec.kind === "failover") {
      const r = wc && et
        ? {
          failoverMs: ratio(wc.failoverMs, et.failoverMs),
          electedMs: ratio(wc.electedMs, et.electedMs),
        }
        : null;
      entry.ratio = r;
      const show = (s: Summary) =>
        failed(s)
          ? "failed"
          : num(s.failoverMs) === null
          ? "no write succeeded"
          : `${fmtMs(s.failoverMs)} ms to a write (${fmtOps(s.retries)} retries, ${
            fmtOps(s.timeouts)
          } timed out); leader after ${fmtMs(s.electedMs)} ms${
            typeof s.restartError === "string" ? "; the killed member did not come back" : ""
          }`;
      rows.push(
        `| ${spec.title} | ${cell(wc, show)} | | | ${cell(et, show)} | | | ${
          r === null ? "n/a" : lowerIsBetter("", wc!.failoverMs, et!.failoverMs, "faster")
        } |`,
      );
    } else {
      const r = wc && et
        ? {
          rssRestMiB: ratio(wc.rssRestMiB, et.rssRestMiB),
          rssLoadMiB: ratio(wc.rssLoadMiB, et.rssLoadMiB),
        }
        : null;
      entry.ratio = r;
      rows.push(
        `| RSS at rest, sum of the 3 processes | ${cell(wc, (s) => fmtMiB(s.rssRestMiB))} | | | ${
          cell(et, (s) => fmtMiB(s.rssRestMiB))
        } | | | ${
          r === null ? "n/a" : lowerIsBetter("", wc!.rssRestMiB, et!.rssRestMiB, "smaller")
        } |`,
      );
      rows.push(
        `| ${spec.title} | ${cell(wc, (s) => fmtMiB(s.rssLoadMiB))} | | | ${
          cell(et, (s) => fmtMiB(s.rssLoadMiB))
        } | | | ${
          r === null ? "n/a" : lowerIsBetter("", wc!.rssLoadMiB, et!.rssLoadMiB, "smaller")
        } |`,
      );
    }
    jsonCases.push(entry);
  }
  const systems = info.systems.length === 2
    ? `WaterCraft vs ${etcdName}`
    : info.systems[0] === "watercraft"
    ? `WaterCraft alone (${
      info.etcdVersion === null ? "no etcd on the PATH" : "--only watercraft"
    })`
    : `${etcdName} alone`;
  const header =
    `${systems} on loopback, 3 members each. WaterCraft on ${info.runtime} ${info.runtimeVersion}` +
    `${info.runtimeFlags === "" ? "" : ` ${info.runtimeFlags}`}` +
    `${info.nodeFlags === "" ? "" : `, nodes started with ${info.nodeFlags}`}; CPU ${info.cpu}, ` +
    `${info.cores} cores; ${info.date}; median of ${info.rounds} round(s) of ` +
    `${info.seconds} s per case after ${info.warmupSeconds} s warm-up; heartbeat ${info.heartbeatMs} ms, ` +
    `election timeout ${info.electionMs} ms; writes over ${info.putKeys} keys; fsync on${
      info.smoke ? "; SMOKE RUN, numbers meaningless" : ""
    }.`;
  const markdown = [
    header,
    "",
    `| case | WaterCraft ops/s | p50 ms | p99 ms | ${etcdName} ops/s | p50 ms | p99 ms | ratio WaterCraft/etcd |`,
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ...rows,
    "",
    "CPU time per successful request, summed over the 3 members (user and system, all threads):",
    "",
    `| case | WaterCraft | ${etcdName} | which costs less |`,
    "| --- | ---: | ---: | --- |",
    ...cpuRows,
  ].join("\n");
  const json = { ...info, cases: jsonCases };
  return { markdown, json };
}
