/**
 * `deno task bench:cluster`: a 3-node WaterCraft cluster (the CLI, file
 * storage with fsync) against a 3-member etcd cluster on the same machine,
 * driven by the same closed-loop load generator, rounds alternating between
 * the two; prints a Markdown table of the medians and one JSON line.
 *
 * ```sh
 * deno task bench:cluster                          # Deno, 3 rounds of 5 s per case
 * deno task bench:cluster --runtime node --rounds 2
 * deno task bench:cluster --smoke --only watercraft
 * ```
 *
 * Flags: `--runtime deno|bun|node` (default deno), `--rounds N` (3),
 * `--seconds S` per case (5), `--warmup-seconds S` (1), `--only
 * watercraft|etcd|both` (both), `--cases put-1,failover` (all), `--put-keys
 * N` (10,000: how many keys writes spread over, so how large the state and
 * its snapshots grow), `--runtime-flags="..."` (the nodes' runtime flags,
 * e.g. `--smol` for Bun; by default, on Deno, those of `deno task start`, so
 * that the nodes run as a user's would; `--runtime-flags=` for none),
 * `--node-flags="..."` (more flags for the WaterCraft CLI, e.g. the
 * connection limits at 0 to measure a node without its front), `--smoke`
 * (every case for about 2 s in all, one round: for tests). Progress goes to
 * stderr; stdout gets the table and, last, the JSON line. See
 * bench/README.md.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { defaultRuntimeFlags, type Launchers, type Runtime } from "../../tests/process/harness.ts";
import { ensureTools } from "../../tests/process/tools.ts";
import type { Cluster, SystemName } from "./cluster.ts";
import { etcdVersion, prepareEtcdBodies, startEtcd } from "./etcd.ts";
import { type LoadResult, runFailover, runLoad } from "./load.ts";
import { cpuSeconds, killAll, onInterrupt, REPO_ROOT, rssMiB, sleep } from "./procs.ts";
import { buildReport, type CaseSpec, type Results, type RunInfo, type Sample } from "./report.ts";
import { RawHttpClient } from "./raw_client.ts";
import { startWaterCraft } from "./watercraft.ts";

const HEARTBEAT_MS = 50;
const ELECTION_MS = 500;
/** Writes go to random keys among this many, by default. */
const PUT_KEYS = 10_000;
/** Reads go to random keys among these, all written before the first round (fewer in a smoke run). */
const GET_KEYS = 1_000;
const SMOKE_GET_KEYS = 100;
/** Longest wait for one answer in the throughput cases. */
const REQUEST_TIMEOUT_MS = 10_000;
/**
 * In the failover case a write sent after the kill and unanswered after two
 * heartbeats is given up and retried at the next member (see load.ts).
 */
const FAILOVER_RETRY_TIMEOUT_MS = 2 * HEARTBEAT_MS;
/** After the kill, give up on the failover after this long. */
const FAILOVER_MAX_WAIT_MS = 30_000;

const CASES: readonly CaseSpec[] = [
  { id: "put-1", title: "put, 1 client, at the leader", kind: "put", clients: 1, target: "leader" },
  {
    id: "put-64",
    title: "put, 64 clients, at the leader",
    kind: "put",
    clients: 64,
    target: "leader",
  },
  {
    id: "put-256",
    title: "put, 256 clients, at the leader",
    kind: "put",
    clients: 256,
    target: "leader",
  },
  {
    id: "get-64-leader",
    title: "linearizable get, 64 clients, at the leader",
    kind: "get",
    clients: 64,
    target: "leader",
  },
  {
    id: "get-64-spread",
    title: "linearizable get, 64 clients, spread over the 3 members",
    kind: "get",
    clients: 64,
    target: "spread",
  },
  {
    id: "memory",
    title: "RSS under put load (64 clients), peak sum of the 3 processes",
    kind: "memory",
    clients: 64,
    target: "leader",
  },
  {
    id: "failover",
    title: "failover: SIGKILL the leader under 16 put clients",
    kind: "failover",
    clients: 16,
    target: "leader",
  },
];

interface Settings {
  runtime: Runtime;
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  only: "watercraft" | "etcd" | "both";
  /** The cases to run, in the table's order unless named otherwise. */
  cases: readonly CaseSpec[];
  /** Writes go to random keys among this many. */
  putKeys: number;
  /** The WaterCraft nodes' runtime flags. */
  runtimeFlags: string[];
  /** More flags for the WaterCraft CLI. */
  nodeFlags: string[];
  smoke: boolean;
}

const USAGE = "usage: deno run -A bench/cluster/main.ts [--runtime deno|bun|node] [--rounds N] " +
  "[--seconds S] [--warmup-seconds S] [--only watercraft|etcd|both] [--cases ID,...] " +
  '[--put-keys N] [--runtime-flags="..."] [--node-flags="..."] [--smoke]';

/** A flag's value split at white space. */
function words(value: string | undefined): string[] {
  return (value ?? "").split(/\s+/).filter((f) => f !== "");
}

function settings(args: string[]): Settings {
  const { values } = parseArgs({
    args,
    options: {
      runtime: { type: "string", default: "deno" },
      rounds: { type: "string" },
      seconds: { type: "string" },
      "warmup-seconds": { type: "string" },
      only: { type: "string", default: "both" },
      cases: { type: "string" },
      "put-keys": { type: "string" },
      "runtime-flags": { type: "string" },
      "node-flags": { type: "string" },
      smoke: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const runtime = values.runtime;
  if (runtime !== "deno" && runtime !== "bun" && runtime !== "node") {
    throw new UsageError(`--runtime must be deno, bun or node, got ${runtime}`);
  }
  const only = values.only;
  if (only !== "watercraft" && only !== "etcd" && only !== "both") {
    throw new UsageError(`--only must be watercraft, etcd or both, got ${only}`);
  }
  const number = (
    name: string,
    raw: string | undefined,
    fallback: number,
    min: number,
    max: number,
  ) => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new UsageError(`--${name} must be a number in [${min}, ${max}], got ${raw}`);
    }
    return n;
  };
  const cases = values.cases === undefined ? CASES : values.cases.split(",").map((id) => {
    const spec = CASES.find((c) => c.id === id.trim());
    if (spec === undefined) {
      throw new UsageError(
        `--cases: no case ${id}; the cases: ${CASES.map((c) => c.id).join(", ")}`,
      );
    }
    return spec;
  });
  const smoke = values.smoke;
  return {
    runtime,
    only,
    cases,
    smoke,
    rounds: Math.round(number("rounds", values.rounds, smoke ? 1 : 3, 1, 100)),
    seconds: number("seconds", values.seconds, smoke ? 0.25 : 5, 0.05, 3600),
    warmupSeconds: number("warmup-seconds", values["warmup-seconds"], smoke ? 0.05 : 1, 0, 600),
    putKeys: Math.round(number("put-keys", values["put-keys"], PUT_KEYS, 1, 10_000_000)),
    runtimeFlags: values["runtime-flags"] === undefined
      ? defaultRuntimeFlags(runtime)
      : words(values["runtime-flags"]),
    nodeFlags: words(values["node-flags"]),
  };
}

class UsageError extends Error {}

function log(line: string): void {
  console.error(`bench: ${line}`);
}

function cpuModel(): string {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    return info.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

async function runtimeVersion(runtime: Runtime, launchers: Launchers): Promise<string> {
  if (runtime === "deno") return Deno.version.deno;
  const command = runtime === "bun" ? launchers.bun! : launchers.node ?? "node";
  try {
    const out = await new Deno.Command(command, {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(10_000),
    }).output();
    const v = new TextDecoder().decode(out.stdout).trim().replace(/^v/, "");
    return runtime === "node" ? `${v} (tsx)` : v;
  } catch {
    return "unknown";
  }
}

/** Writes every key that the reads will ask for, 16 at a time; each key gets 5 tries. */
async function preload(cluster: Cluster, keys: number): Promise<void> {
  const leader = cluster.urls[await cluster.leader()]!;
  const client = new RawHttpClient();
  try {
    let next = 0;
    const worker = async () => {
      while (next < keys) {
        const key = next++;
        let failure: string | null = "not tried";
        for (let attempt = 0; attempt < 5 && failure !== null; attempt++) {
          failure = await client.send(cluster.put(leader, key), REQUEST_TIMEOUT_MS);
          if (failure !== null) await sleep(100);
        }
        if (failure !== null) throw new Error(`${cluster.name}: preloading key ${key}: ${failure}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  } finally {
    client.close();
  }
}

function fromLoad(r: LoadResult): Sample {
  return {
    opsPerSec: r.opsPerSec,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    p999Ms: r.p999Ms,
    errors: r.errors,
    ...(r.cpuUsPerOp === null ? {} : { cpuUsPerOp: r.cpuUsPerOp }),
    ...(r.firstError === null ? {} : { firstFailure: r.firstError }),
  };
}

function sumRss(cluster: Cluster): number {
  const pids = cluster.pids();
  const values = pids.map(rssMiB);
  return values.length === 3 && values.every(Number.isFinite)
    ? values.reduce((a, b) => a + b, 0)
    : NaN;
}

/** CPU seconds the 3 members have used so far; NaN unless all 3 can be read. */
function sumCpu(cluster: Cluster): number {
  const values = cluster.pids().map(cpuSeconds);
  return values.length === 3 ? values.reduce((a, b) => a + b, 0) : NaN;
}

async function runCase(cluster: Cluster, spec: CaseSpec, s: Settings): Promise<Sample> {
  const warmupMs = s.warmupSeconds * 1000;
  const durationMs = s.seconds * 1000;
  const leader = await cluster.leader();
  const urls = cluster.urls;
  const memberOf = spec.target === "leader"
    ? () => urls[leader]!
    : (i: number) => urls[(leader + i) % urls.length]!;
  switch (spec.kind) {
    case "put":
    case "get":
      return fromLoad(
        await runLoad({
          clients: spec.clients,
          memberOf,
          request: spec.kind === "put" ? cluster.put : cluster.get,
          keys: spec.kind === "put" ? s.putKeys : s.smoke ? SMOKE_GET_KEYS : GET_KEYS,
          warmupMs,
          durationMs,
          timeoutMs: REQUEST_TIMEOUT_MS,
          cpuSeconds: () => sumCpu(cluster),
        }),
      );
    case "memory": {
      const rssRestMiB = sumRss(cluster);
      let peak = NaN;
      const r = await runLoad({
        clients: spec.clients,
        memberOf,
        request: cluster.put,
        keys: s.putKeys,
        warmupMs,
        durationMs,
        timeoutMs: REQUEST_TIMEOUT_MS,
        sample: () => {
          const now = sumRss(cluster);
          if (Number.isFinite(now) && !(now <= peak)) peak = now;
        },
        sampleEveryMs: Math.max(20, Math.min(250, durationMs / 10)),
      });
      return { ...fromLoad(r), rssRestMiB, rssLoadMiB: peak };
    }
    case "failover": {
      let killed = -1;
      let elected: Promise<number | null> = Promise.resolve(null);
      const r = await runFailover({
        clients: spec.clients,
        urls,
        leader,
        request: cluster.put,
        keys: s.putKeys,
        warmupMs,
        beforeMs: durationMs / 2,
        afterMs: Math.min(1000, durationMs / 2),
        maxWaitMs: FAILOVER_MAX_WAIT_MS,
        timeoutMs: REQUEST_TIMEOUT_MS,
        retryTimeoutMs: FAILOVER_RETRY_TIMEOUT_MS,
        kill: () => {
          const at = performance.now();
          killed = leader;
          cluster.kill(leader);
          // How long the survivors take to elect a leader, whatever the clients do.
          elected = cluster.leader({
            exclude: leader,
            intervalMs: 10,
            timeoutMs: FAILOVER_MAX_WAIT_MS,
          })
            .then(() => performance.now() - at, () => null);
        },
      });
      const electedMs = await elected;
      // Back to three members for the next round. If that fails, the failover
      // was still measured: keep its numbers and say what went wrong after.
      let restartError: string | undefined;
      if (killed >= 0) {
        try {
          await cluster.restart(killed);
        } catch (error) {
          restartError = (error as Error).message.split("\n")[0]!;
          log(
            `${cluster.name}: the killed member did not come back: ${
              (error as Error).message
            }\n${cluster.describe()}`,
          );
        }
      }
      return {
        ...(restartError === undefined ? {} : { restartError }),
        failoverMs: r.failoverMs,
        retries: r.retries,
        timeouts: r.timeouts,
        electedMs,
        opsPerSecBeforeKill: r.opsPerSecBefore,
        errors: r.errorsBefore,
        ...(r.firstError === null ? {} : { firstFailure: r.firstError }),
      };
    }
  }
}

/**
 * Starts one system's cluster in a fresh folder of `dir`; tries again (at
 * most three times in all) when a port picked free was taken meanwhile.
 */
async function startCluster(
  name: SystemName,
  s: Settings,
  launchers: Launchers,
  dir: string,
): Promise<Cluster> {
  for (let attempt = 1;; attempt++) {
    const options = {
      dir: `${dir}/${name}-${attempt}`,
      heartbeatMs: HEARTBEAT_MS,
      electionMs: ELECTION_MS,
    };
    await Deno.mkdir(options.dir);
    try {
      return name === "watercraft"
        ? await startWaterCraft({
          ...options,
          runtime: s.runtime,
          launchers,
          runtimeFlags: s.runtimeFlags,
          nodeFlags: s.nodeFlags,
        })
        : await startEtcd(options);
    } catch (error) {
      const message = (error as Error).message;
      if (attempt >= 3 || !/in use|EADDRINUSE/i.test(message)) throw error;
      log(`${name}: a port was taken, starting again: ${message.split("\n")[0]}`);
    }
  }
}

function describeSample(s: Sample): string {
  const parts: string[] = [];
  const f = (n: number | null | undefined, d = 2) => typeof n === "number" ? n.toFixed(d) : "—";
  if (s.failoverMs !== undefined) {
    parts.push(
      `failover ${f(s.failoverMs, 0)} ms, ${s.retries} retries (${s.timeouts} timed out), ` +
        `leader after ${f(s.electedMs, 0)} ms`,
    );
  } else if (s.rssLoadMiB !== undefined) {
    parts.push(`RSS rest ${f(s.rssRestMiB, 0)} MiB, load ${f(s.rssLoadMiB, 0)} MiB`);
  }
  if (s.opsPerSec !== undefined) {
    parts.push(
      `${f(s.opsPerSec, 0)} ops/s, p50 ${f(s.p50Ms)} ms, p99 ${f(s.p99Ms)} ms, ` +
        `p99.9 ${f(s.p999Ms)} ms`,
    );
  }
  if (s.opsPerSecBeforeKill !== undefined) {
    parts.push(`${f(s.opsPerSecBeforeKill, 0)} ops/s before the kill`);
  }
  if (s.errors) parts.push(`${s.errors} failed`);
  if (s.firstFailure !== undefined) parts.push(`first failure: ${s.firstFailure}`);
  if (s.restartError !== undefined) parts.push(`restart failed: ${s.restartError}`);
  if (s.error !== undefined) parts.push(`case failed: ${s.error}`);
  return parts.join("; ");
}

async function main(): Promise<number> {
  let s: Settings;
  try {
    s = settings(Deno.args);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const etcd = s.only === "watercraft" ? null : await etcdVersion();
  if (s.only === "etcd" && etcd === null) {
    console.error(
      "bench: --only etcd, but there is no etcd on the PATH (apt-get install etcd-server etcd-client)",
    );
    return 2;
  }
  if (s.only === "both" && etcd === null) {
    console.log(
      "Note: no `etcd` on the PATH: WaterCraft runs alone and the ratios are n/a " +
        "(on Debian/Ubuntu: apt-get install etcd-server etcd-client).\n",
    );
  }
  const systems: SystemName[] = [
    ...(s.only === "etcd" ? [] : ["watercraft" as const]),
    ...(etcd !== null && s.only !== "watercraft" ? ["etcd" as const] : []),
  ];
  const launchers: Launchers = s.runtime === "deno" || !systems.includes("watercraft")
    ? {}
    : await ensureTools();
  const info: RunInfo = {
    runtime: s.runtime,
    runtimeVersion: await runtimeVersion(s.runtime, launchers),
    cpu: cpuModel(),
    cores: navigator.hardwareConcurrency,
    date: new Date().toISOString().slice(0, 10),
    etcdVersion: etcd,
    systems,
    rounds: s.rounds,
    seconds: s.seconds,
    warmupSeconds: s.warmupSeconds,
    putKeys: s.putKeys,
    runtimeFlags: s.runtimeFlags.join(" "),
    nodeFlags: s.nodeFlags.join(" "),
    smoke: s.smoke,
    heartbeatMs: HEARTBEAT_MS,
    electionMs: ELECTION_MS,
  };
  const dir = await Deno.makeTempDir({ prefix: "watercraft-bench-" });
  const removeDir = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  const stopListening = onInterrupt(removeDir);
  const clusters = new Map<SystemName, Cluster>();
  const results: Results = new Map();
  let failed = false;
  try {
    prepareEtcdBodies(s.putKeys);
    for (const name of systems) {
      const t0 = performance.now();
      const cluster = await startCluster(name, s, launchers, dir);
      clusters.set(name, cluster);
      log(
        `${name}: 3 members up in ${Math.round(performance.now() - t0)} ms at ${
          cluster.urls.join(" ")
        }`,
      );
      await preload(cluster, s.smoke ? SMOKE_GET_KEYS : GET_KEYS);
    }
    for (let round = 1; round <= s.rounds; round++) {
      for (const spec of s.cases) {
        for (const name of systems) {
          const cluster = clusters.get(name)!;
          let sample: Sample;
          try {
            sample = await runCase(cluster, spec, s);
          } catch (error) {
            failed = true;
            sample = { error: (error as Error).message.split("\n")[0]! };
            log(`${name} ${spec.id} failed: ${(error as Error).message}\n${cluster.describe()}`);
            // The next case needs a healthy cluster; give it a chance to recover.
            await cluster.healthy(30_000).catch(() => {});
          }
          const entry = results.get(spec.id) ?? { watercraft: [], etcd: [] };
          entry[name].push(sample);
          results.set(spec.id, entry);
          log(`round ${round}/${s.rounds} ${name} ${spec.id}: ${describeSample(sample)}`);
        }
      }
    }
  } catch (error) {
    console.error(`bench: ${(error as Error).message}`);
    return 1;
  } finally {
    await Promise.all([...clusters.values()].map((c) => c.close()));
    await killAll();
    await removeDir();
    stopListening();
  }
  const report = buildReport(info, s.cases, results);
  console.log(report.markdown);
  console.log();
  console.log(JSON.stringify(report.json));
  return failed ? 1 : 0;
}

if (import.meta.main) {
  Deno.chdir(REPO_ROOT);
  Deno.exit(await main());
}
