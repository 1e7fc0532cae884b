/**
 * `deno run -A bench/slow_clients.ts`: what slow and idle clients cost a
 * node. One CLI node (memory storage, so that a PUT is mostly HTTP and the
 * driver) takes PUTs from a few closed-loop clients, first alone, then while
 * N slow connections are held open against it, and its resident memory is
 * sampled throughout. The slow connections come in four kinds, a quarter
 * each:
 *
 * - **trickle**: sends a request head one byte at a time, a byte every
 *   `--trickle-ms`, and never ends it (slowloris);
 * - **fat-trickle**: the same after 15 KiB of header lines at once (what
 *   a server must hold for it);
 * - **silent**: connects and sends nothing;
 * - **kept-alive**: sends one request, reads its answer, then idles.
 *
 * Whenever the node closes one, it is opened again at once, so N stay open
 * for as long as the node lets them (a sustained attack, not one wave).
 * The node runs twice, with its connection limits at their defaults (`on`)
 * and with all of them off (`off`, how every node behaved on Deno before
 * the limits), unless `--limits` picks one.
 *
 * ```sh
 * deno run -A bench/slow_clients.ts                       # Deno, 1,000 slow connections
 * deno run -A bench/slow_clients.ts --runtime bun --slow 3000
 * deno run -A bench/slow_clients.ts --smoke               # a few seconds: for tests
 * ```
 *
 * Flags: `--runtime deno|bun|node` (deno), `--slow N` (1000), `--clients C`
 * PUT clients (4), `--seconds S` of PUTs per measure (5), `--soak-seconds S`
 * that the slow connections are held before the PUTs are measured (15),
 * `--trickle-ms T` (1000), `--limits on|off|both` (both), and the node's own
 * `--idle-timeout-ms`, `--headers-timeout-ms`, `--max-connections` for the
 * `on` run. Progress goes to stderr; stdout gets a table and, last, one JSON
 * line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { cliCommand, type Launchers, type Runtime } from "../tests/process/harness.ts";
import { ensureTools } from "../tests/process/tools.ts";
import { fetchJson } from "./cluster/cluster.ts";
import { type LoadResult, runLoad } from "./cluster/load.ts";
import {
  freePort,
  GiveUp,
  killAll,
  onInterrupt,
  Proc,
  rssMiB,
  runtimePid,
  sleep,
  waitFor,
} from "./cluster/procs.ts";

/** The three kinds of slow connection. */
const KINDS = ["trickle", "fat-trickle", "silent", "kept-alive"] as const;
type Kind = typeof KINDS[number];

/** What one kind of slow connection went through. */
interface KindStats {
  /** Connections opened. */
  opened: number;
  /** Connections the node closed. */
  closedByNode: number;
  /** How long each connection the node closed had been open, ms. */
  lifetimesMs: number[];
  /** Open right now. */
  open: number;
}

/** One run of the node (limits on or off). */
interface RunResult {
  readonly limits: "on" | "off";
  readonly nodeFlags: readonly string[];
  readonly alone: LoadResult;
  readonly withSlow: LoadResult & { slowOpenAtStart: number };
  /** After the PUTs alone, before the slow connections. */
  readonly rssBeforeSlowMiB: number;
  /** The peak while the slow connections were held, before the PUTs with them. */
  readonly rssSoakPeakMiB: number;
  /** The peak during the PUTs with the slow connections. */
  readonly rssLoadPeakMiB: number;
  /** Once the slow connections were let go. */
  readonly rssAfterMiB: number;
  /** The node's CPU use (user + system, % of one core) while the slow connections were held, without PUTs. */
  readonly soakCpuPercent: number;
  readonly slow: Record<Kind, Omit<KindStats, "lifetimesMs"> & { medianLifetimeMs: number | null }>;
}

const VALUE = JSON.stringify({ value: "v".repeat(256) });
/** Keys written, all of them before the first measure: every measured PUT replaces a value. */
const PUT_KEYS = 1_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** A slow client that cannot connect waits this long before it tries again. */
const RECONNECT_PAUSE_MS = 100;
/** No slow slot opens more connections than this in one run. */
const OPENS_PER_SLOT_MAX = 100_000;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runtime: { type: "string", default: "deno" },
      slow: { type: "string", default: "1000" },
      clients: { type: "string", default: "4" },
      seconds: { type: "string", default: "5" },
      "soak-seconds": { type: "string", default: "15" },
      "trickle-ms": { type: "string", default: "1000" },
      limits: { type: "string", default: "both" },
      "idle-timeout-ms": { type: "string" },
      "headers-timeout-ms": { type: "string" },
      "max-connections": { type: "string" },
      smoke: { type: "boolean", default: false },
    },
  });
  const runtime = values.runtime as Runtime;
  if (!["deno", "bun", "node"].includes(runtime)) throw new Error("--runtime: deno, bun or node");
  const smoke = values.smoke;
  const slow = smoke ? 30 : positive("slow", values.slow);
  const clients = positive("clients", values.clients);
  const seconds = smoke ? 0.5 : positive("seconds", values.seconds);
  const soakSeconds = smoke ? 1.5 : positive("soak-seconds", values["soak-seconds"]);
  const trickleMs = smoke ? 100 : positive("trickle-ms", values["trickle-ms"]);
  const runs = values.limits === "both" ? ["on", "off"] as const : [values.limits as "on" | "off"];
  if (!runs.every((r) => r === "on" || r === "off")) throw new Error("--limits: on, off or both");
  const onFlags = [
    ...(smoke ? ["--headers-timeout-ms", "500"] : []),
    ...(["idle-timeout-ms", "headers-timeout-ms", "max-connections"] as const).flatMap((name) =>
      values[name] === undefined ? [] : [`--${name}`, values[name]!]
    ),
  ];
  const launchers = runtime === "deno" ? {} : await ensureTools();
  const results: RunResult[] = [];
  const removeInterrupt = onInterrupt(() => Promise.resolve());
  try {
    for (const limits of runs) {
      const nodeFlags = limits === "on"
        ? onFlags
        : ["--idle-timeout-ms", "0", "--headers-timeout-ms", "0", "--max-connections", "0"];
      results.push(
        await runOnce({
          runtime,
          launchers,
          limits,
          nodeFlags,
          slow,
          clients,
          seconds,
          soakSeconds,
          trickleMs,
        }),
      );
    }
  } finally {
    removeInterrupt();
    await killAll();
  }
  console.log(report(results, { runtime, slow, clients, seconds, soakSeconds, trickleMs }));
  console.log(JSON.stringify({
    runtime,
    runtimeVersion: await runtimeVersion(runtime, launchers),
    date: new Date().toISOString().slice(0, 10),
    cores: navigator.hardwareConcurrency,
    slow,
    clients,
    seconds,
    soakSeconds,
    trickleMs,
    smoke,
    runs: results,
  }));
  return 0;
}

function positive(name: string, raw: string | undefined): number {
  const n = Number(raw);
  if (!(n > 0)) throw new Error(`--${name} must be a positive number, got ${raw}`);
  return n;
}

interface RunOptions {
  readonly runtime: Runtime;
  readonly launchers: Launchers;
  readonly limits: "on" | "off";
  readonly nodeFlags: readonly string[];
  readonly slow: number;
  readonly clients: number;
  readonly seconds: number;
  readonly soakSeconds: number;
  readonly trickleMs: number;
}

/** Starts a node, measures it alone and under slow connections, and stops it. */
async function runOnce(options: RunOptions): Promise<RunResult> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const [command, prefix] = cliCommand(options.runtime, options.launchers);
  const proc = new Proc(`slow-bench@${options.runtime}`, command, [
    ...prefix,
    "--id",
    "slow-bench",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--advertise",
    url,
    "--storage",
    "memory",
    ...options.nodeFlags,
  ], { WATERCRAFT_SECRET: "", WATERCRAFT_CLIENT_TOKEN: "" });
  try {
    await waitFor("the node to listen", () => {
      if (proc.exited !== null) throw new GiveUp(proc.describe());
      return /^watercraft listening on /m.test(proc.stdout);
    }, 60_000);
    await waitFor("the node to lead", async () => {
      const status = await fetchJson(`${url}/v1/status`) as { role?: string };
      return status.role === "leader";
    }, 30_000);
    const pid = runtimePid(proc.pid);
    const rss = () => rssMiB(pid);
    progress(
      `${options.limits}: node pid ${pid}, flags ${options.nodeFlags.join(" ") || "(defaults)"}`,
    );

    // Every key exists before anything is measured: both measures replace values.
    for (let key = 0; key < PUT_KEYS; key += 50) {
      await Promise.all(
        Array.from(
          { length: 50 },
          (_, i) =>
            fetch(`${url}/v1/kv/k${key + i}`, { method: "PUT", body: VALUE }).then((r) => r.text()),
        ),
      );
    }

    const load = async (label: string) => {
      let peak = rss();
      const result = await runLoad({
        clients: options.clients,
        memberOf: () => url,
        request: (base, key) => ({ url: `${base}/v1/kv/k${key}`, method: "PUT", body: VALUE }),
        keys: PUT_KEYS,
        warmupMs: Math.min(2_000, options.seconds * 400),
        durationMs: options.seconds * 1_000,
        timeoutMs: REQUEST_TIMEOUT_MS,
        sample: () => peak = Math.max(peak, rss()),
      });
      progress(
        `${options.limits}: ${label}: ${result.opsPerSec.toFixed(0)} PUT/s, p50 ${
          result.p50Ms.toFixed(2)
        } ms, p99 ${result.p99Ms.toFixed(2)} ms, ${result.errors} failed, RSS peak ${
          peak.toFixed(0)
        } MiB`,
      );
      return { result, peak };
    };

    const alone = await load("alone");
    const rssBeforeSlowMiB = rss();

    const stats = Object.fromEntries(
      KINDS.map((kind) => [kind, { opened: 0, closedByNode: 0, lifetimesMs: [], open: 0 }]),
    ) as unknown as Record<Kind, KindStats>;
    let holding = true;
    let cpuFrom = { cpuMs: cpuMs(pid), at: performance.now() };
    let soakCpuPercent = NaN;
    let rssSoakPeak = rss();
    const sampler = setInterval(() => rssSoakPeak = Math.max(rssSoakPeak, rss()), 250);
    const slots = Array.from(
      { length: options.slow },
      (_, i) => holdSlot(port, KINDS[i % KINDS.length]!, stats, () => holding, options.trickleMs),
    );
    let withSlow: { result: LoadResult; peak: number };
    let slowOpenAtStart = 0;
    try {
      await waitFor(
        `${options.slow} slow connections to open`,
        () => KINDS.reduce((sum, kind) => sum + stats[kind].opened, 0) >= options.slow,
        30_000,
        50,
      );
      progress(`${options.limits}: ${options.slow} slow connections open; holding them`);
      cpuFrom = { cpuMs: cpuMs(pid), at: performance.now() };
      await sleep(options.soakSeconds * 1_000);
      soakCpuPercent = (cpuMs(pid) - cpuFrom.cpuMs) / (performance.now() - cpuFrom.at) * 100;
      progress(`${options.limits}: node CPU while holding them: ${soakCpuPercent.toFixed(1)} %`);
      clearInterval(sampler);
      slowOpenAtStart = KINDS.reduce((sum, kind) => sum + stats[kind].open, 0);
      withSlow = await load(`with ${slowOpenAtStart} slow connections open`);
    } finally {
      holding = false;
      await Promise.all(slots);
      clearInterval(sampler);
    }
    const rssAfterMiB = rss();
    return {
      limits: options.limits,
      nodeFlags: options.nodeFlags,
      alone: alone.result,
      withSlow: { ...withSlow.result, slowOpenAtStart },
      rssBeforeSlowMiB,
      rssSoakPeakMiB: rssSoakPeak,
      rssLoadPeakMiB: withSlow.peak,
      rssAfterMiB,
      soakCpuPercent,
      slow: Object.fromEntries(KINDS.map((kind) => {
        const { lifetimesMs, ...rest } = stats[kind];
        return [kind, { ...rest, medianLifetimeMs: median(lifetimesMs) }];
      })) as RunResult["slow"],
    };
  } finally {
    await proc.close();
  }
}

const encoder = new TextEncoder();
const TRICKLE_HEAD = encoder.encode("GET /v1/kv/slow HTTP/1.1\r\nHost: x\r\nX-Slow: ");
/** 15 KiB of head: under the front's 16 KiB limit, and what a server holds for each such client. */
const FAT_HEAD = encoder.encode(
  `GET /v1/kv/slow HTTP/1.1\r\nHost: x\r\n${
    Array.from({ length: 150 }, (_, i) => `X-Fill-${i}: ${"f".repeat(90)}\r\n`).join("")
  }X-Slow: `,
);

/**
 * Keeps one slow connection of `kind` open while `holding()`, opening it
 * again whenever the node closes it.
 */
async function holdSlot(
  port: number,
  kind: Kind,
  stats: Record<Kind, KindStats>,
  holding: () => boolean,
  trickleMs: number,
): Promise<void> {
  const mine = stats[kind];
  for (let opens = 0; opens < OPENS_PER_SLOT_MAX && holding(); opens++) {
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname: "127.0.0.1", port });
    } catch {
      await sleep(RECONNECT_PAUSE_MS);
      continue;
    }
    const openedAt = performance.now();
    mine.opened++;
    mine.open++;
    let closedByNode = false;
    const ended = drainUntilClosed(conn).then(() => closedByNode = holding());
    try {
      if (kind === "kept-alive") {
        await conn.write(encoder.encode("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
      } else if (kind === "trickle") {
        await conn.write(TRICKLE_HEAD.subarray(0, 1));
      } else if (kind === "fat-trickle") {
        for (let at = 0; at < FAT_HEAD.length;) at += await conn.write(FAT_HEAD.subarray(at));
      }
      // Bounded by the holding phase: one turn per trickled byte, or per
      // check for the silent ones.
      for (let turn = 1; holding() && !closedByNode && turn < 1_000_000; turn++) {
        await Promise.race([ended, sleep(trickleMs)]);
        if (closedByNode || !holding()) break;
        if (kind === "fat-trickle") await conn.write(encoder.encode("a"));
        if (kind === "trickle") {
          const byte = turn < TRICKLE_HEAD.length
            ? TRICKLE_HEAD.subarray(turn, turn + 1)
            : encoder.encode("a");
          await conn.write(byte);
        }
      }
    } catch {
      // Written into a connection the node had just closed.
      await ended;
    } finally {
      try {
        conn.close();
      } catch {
        // The node closed it.
      }
      await ended;
      mine.open--;
    }
    if (closedByNode) {
      mine.closedByNode++;
      mine.lifetimesMs.push(performance.now() - openedAt);
    }
  }
}

/** Reads (and drops) what arrives until the connection closes, from either end. */
async function drainUntilClosed(conn: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(4_096);
  try {
    for (let turn = 0; turn < 1_000_000; turn++) {
      if (await conn.read(buffer) === null) return;
    }
  } catch {
    // Reset, or closed by us.
  }
}

/** CPU time a process has used (user + system), ms, from `/proc/PID/stat`; NaN when unreadable. */
function cpuMs(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    // Linux reports in clock ticks of 1/100 s on every common configuration.
    return ticks * 10;
  } catch {
    return NaN;
  }
}

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = values.toSorted((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function progress(line: string): void {
  console.error(`slow_clients: ${line}`);
}

async function runtimeVersion(runtime: Runtime, launchers: Launchers): Promise<string> {
  if (runtime === "deno") return Deno.version.deno;
  const [command] = cliCommand(runtime, launchers);
  const output = await new Deno.Command(command, { args: ["--version"], stdout: "piped" }).output();
  return new TextDecoder().decode(output.stdout).trim();
}

/** The Markdown table of the runs. */
function report(
  results: readonly RunResult[],
  o: {
    runtime: string;
    slow: number;
    clients: number;
    seconds: number;
    soakSeconds: number;
    trickleMs: number;
  },
): string {
  const mib = (v: number) => `${v.toFixed(0)} MiB`;
  const ms = (v: number | null) => v === null ? "never" : `${(v / 1000).toFixed(1)} s`;
  const latency = (r: LoadResult) => `${r.p50Ms.toFixed(2)} / ${r.p99Ms.toFixed(2)} ms`;
  const rows: [string, (r: RunResult) => string][] = [
    ["PUT/s alone", (r) => r.alone.opsPerSec.toFixed(0)],
    ["PUT p50 / p99 alone", (r) => latency(r.alone)],
    ["PUT/s with the slow connections", (r) => r.withSlow.opsPerSec.toFixed(0)],
    ["PUT p50 / p99 with them", (r) => latency(r.withSlow)],
    ["failed PUTs (alone, with)", (r) => `${r.alone.errors}, ${r.withSlow.errors}`],
    ["slow connections open when the PUTs began", (r) => String(r.withSlow.slowOpenAtStart)],
    ["node CPU while holding them", (r) => `${r.soakCpuPercent.toFixed(1)} %`],
    ["RSS before them", (r) => mib(r.rssBeforeSlowMiB)],
    ["RSS peak while holding them", (r) => mib(r.rssSoakPeakMiB)],
    ["RSS peak, holding them and PUTs", (r) => mib(r.rssLoadPeakMiB)],
    ["RSS after letting them go", (r) => mib(r.rssAfterMiB)],
    ...KINDS.map((kind): [string, (r: RunResult) => string] => [
      `${kind}: closed by the node / opened, median life`,
      (r) =>
        `${r.slow[kind].closedByNode} / ${r.slow[kind].opened}, ${
          ms(r.slow[kind].medianLifetimeMs)
        }`,
    ]),
  ];
  const lines = [
    `${o.runtime}: ${o.clients} PUT clients for ${o.seconds} s, alone, then with ${o.slow} slow connections held ${o.soakSeconds} s first (trickle: a byte every ${o.trickleMs} ms)`,
    "",
    `| | ${results.map((r) => r.limits === "on" ? "limits on" : "limits off").join(" | ")} |`,
    `| --- | ${results.map(() => "---:").join(" | ")} |`,
    ...rows.map(([name, cell]) => `| ${name} | ${results.map(cell).join(" | ")} |`),
  ];
  return lines.join("\n");
}

if (import.meta.main) Deno.exit(await main());
