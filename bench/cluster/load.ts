/**
 * The closed-loop load generator that drives both systems: C clients, each
 * sending its next request as soon as its previous one is answered, over
 * keep-alive HTTP/1.1 connections (one pooled {@linkcode RawHttpClient} per
 * run, so each client in flight holds one connection). A warm-up period is
 * not counted; then every request that completes within the fixed measuring
 * window is counted, and its latency (`performance.now()` around the whole
 * exchange, body read included) goes into a {@linkcode Histogram}.
 *
 * The generator knows nothing of either system: it is given a function that
 * builds the request for a member and a key.
 *
 * @module
 */

import { Histogram } from "./histogram.ts";
import { sleep } from "./procs.ts";
import { RawHttpClient, type RequestSpec } from "./raw_client.ts";

/** Builds the request for key number `key` at the member whose client URL is `base`. */
export type MakeRequest = (base: string, key: number) => RequestSpec;

/** What one run measured. */
export interface LoadResult {
  /** Successful requests per second in the measuring window. */
  readonly opsPerSec: number;
  /** Median latency of the successful requests, ms. */
  readonly p50Ms: number;
  /** 99th percentile latency, ms. */
  readonly p99Ms: number;
  /** 99.9th percentile latency, ms: where rare stalls (a snapshot, a major GC) show. */
  readonly p999Ms: number;
  /** Successful requests counted. */
  readonly ok: number;
  /** Failed requests in the measuring window (non-2xx answers and network errors). */
  readonly errors: number;
  /** The first failure seen, for the report. */
  readonly firstError: string | null;
  /**
   * CPU time the servers used per successful request in the measuring window,
   * µs (from {@linkcode LoadOptions.cpuSeconds}); null when not measured.
   */
  readonly cpuUsPerOp: number | null;
}

/** A client pauses this long after a failure, so that a down member is not hammered in a spin. */
const ERROR_PAUSE_MS = 5;
/** A window that has not counted `minOk` successes yet is extended by at most this much. */
const MAX_EXTEND_MS = 15_000;
/** No client sends more than this many requests in one run, whatever the duration. */
const MAX_REQUESTS_PER_CLIENT = 5_000_000;

/** Options of {@linkcode runLoad}. */
export interface LoadOptions {
  /** Concurrent clients. */
  readonly clients: number;
  /** Client URL that client `i` sends to. */
  readonly memberOf: (client: number) => string;
  /** Builds each request. */
  readonly request: MakeRequest;
  /** Keys are drawn uniformly from `[0, keys)`. */
  readonly keys: number;
  /** Not counted: the time the clients run before measuring starts. */
  readonly warmupMs: number;
  /** The measuring window. */
  readonly durationMs: number;
  /** Longest wait for one answer. */
  readonly timeoutMs: number;
  /**
   * Keep measuring past `durationMs` until this many requests succeeded (at
   * most 15 s more; the throughput is then over the longer window). Default 1:
   * a window too short for one answer (a smoke run on a busy machine) is not
   * reported as zero throughput.
   */
  readonly minOk?: number;
  /** Called every `sampleEveryMs` during the measuring window (e.g. to read RSS). */
  readonly sample?: () => void;
  /** Pace of `sample`; default 200 ms. */
  readonly sampleEveryMs?: number;
  /**
   * The CPU time the servers have used so far, seconds: read when measuring
   * starts and once every client is done (the requests still in flight when
   * the window closes count too, a small excess).
   */
  readonly cpuSeconds?: () => number;
}

/**
 * Runs the closed loop for warm-up plus duration and reports the window.
 *
 * @param options Clients, targets, request builder and times.
 * @returns Throughput, latency percentiles and failures.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const client = new RawHttpClient();
  const histogram = new Histogram();
  let errors = 0;
  let firstError: string | null = null;
  const begin = performance.now();
  const measureFrom = begin + options.warmupMs;
  const plannedEnd = measureFrom + options.durationMs;
  const minOk = options.minOk ?? 1;
  const hardEnd = plannedEnd + MAX_EXTEND_MS;
  let windowEnd = plannedEnd;
  const extending = () => histogram.count < minOk;
  const running = () => {
    const now = performance.now();
    return now < plannedEnd || (extending() && now < hardEnd);
  };
  const worker = async (i: number) => {
    const base = options.memberOf(i);
    for (let n = 0; n < MAX_REQUESTS_PER_CLIENT && running(); n++) {
      const spec = options.request(base, Math.floor(Math.random() * options.keys));
      const t0 = performance.now();
      const failure = await client.send(spec, options.timeoutMs);
      const t1 = performance.now();
      const counted = t1 >= measureFrom && (t1 <= plannedEnd || extending());
      if (counted && t1 > windowEnd) windowEnd = t1;
      if (failure === null) {
        if (counted) histogram.record(t1 - t0);
      } else {
        if (counted) errors++;
        firstError ??= failure;
        await sleep(ERROR_PAUSE_MS);
      }
    }
  };
  let sampler: ReturnType<typeof setInterval> | undefined;
  let cpuAtStart = NaN;
  const cpuClock = options.cpuSeconds;
  const markCpu = cpuClock === undefined
    ? undefined
    : setTimeout(() => cpuAtStart = cpuClock(), options.warmupMs);
  try {
    if (options.sample) {
      const sample = options.sample;
      const every = options.sampleEveryMs ?? 200;
      const startSampling = setTimeout(() => {
        sample();
        sampler = setInterval(() => {
          if (performance.now() <= windowEnd) sample();
        }, every);
      }, options.warmupMs);
      await Promise.all(Array.from({ length: options.clients }, (_, i) => worker(i)));
      clearTimeout(startSampling);
    } else {
      await Promise.all(Array.from({ length: options.clients }, (_, i) => worker(i)));
    }
  } finally {
    if (sampler !== undefined) clearInterval(sampler);
    clearTimeout(markCpu);
    client.close();
  }
  const cpuUsed = cpuClock === undefined ? NaN : cpuClock() - cpuAtStart;
  return {
    opsPerSec: histogram.count / ((windowEnd - measureFrom) / 1000),
    p50Ms: histogram.percentileMs(0.5),
    p99Ms: histogram.percentileMs(0.99),
    p999Ms: histogram.percentileMs(0.999),
    ok: histogram.count,
    errors,
    firstError,
    cpuUsPerOp: Number.isFinite(cpuUsed) && histogram.count > 0
      ? cpuUsed * 1e6 / histogram.count
      : null,
  };
}

/** Options of {@linkcode runFailover}. */
export interface FailoverOptions {
  /** Concurrent writers. */
  readonly clients: number;
  /** The members' client URLs. */
  readonly urls: readonly string[];
  /** The index of the leader in `urls`: every writer starts there. */
  readonly leader: number;
  /** Builds a write. */
  readonly request: MakeRequest;
  /** Keys are drawn uniformly from `[0, keys)`. */
  readonly keys: number;
  /** Writes before the kill, not counted. */
  readonly warmupMs: number;
  /** Steady writes before the kill, measured as the "before" throughput. */
  readonly beforeMs: number;
  /** Kills the leader (SIGKILL); called once. */
  readonly kill: () => void;
  /** Give up waiting for a write to succeed after the kill after this long. */
  readonly maxWaitMs: number;
  /** Keep writing this long after the first success (so the new leader is loaded too). */
  readonly afterMs: number;
  /** Longest wait for one answer to a write sent before the kill. */
  readonly timeoutMs: number;
  /**
   * Longest wait for one answer to a write sent after the kill, before it is
   * given up and retried at the next member: a member that still believes in
   * the dead leader may hold a write until its own, much longer, timeout.
   */
  readonly retryTimeoutMs: number;
}

/** What a failover run measured. */
export interface FailoverResult {
  /** From the SIGKILL to the first write, sent after it, that succeeded; null if none did. */
  readonly failoverMs: number | null;
  /** Failed attempts after the kill (each one is followed by a retry at the next member). */
  readonly retries: number;
  /** How many of those were given up after `retryTimeoutMs` without an answer. */
  readonly timeouts: number;
  /** Write throughput before the kill. */
  readonly opsPerSecBefore: number;
  /** Failed writes before the kill. */
  readonly errorsBefore: number;
  /** The first failure after the kill, for the report. */
  readonly firstError: string | null;
}

/**
 * Writes with `clients` writers at the leader, SIGKILLs it, and measures the
 * time until a write succeeds again. A writer whose write fails (refused,
 * reset, timed out, or a non-2xx answer) retries at the next member in turn.
 *
 * @param options The cluster, the writers and the kill.
 * @returns The failover time and the retries it took.
 */
export async function runFailover(options: FailoverOptions): Promise<FailoverResult> {
  const client = new RawHttpClient();
  const n = options.urls.length;
  const begin = performance.now();
  const measureFrom = begin + options.warmupMs;
  const killAt = measureFrom + options.beforeMs;
  let killedAt: number | null = null;
  let recoveredAt: number | null = null;
  let retries = 0;
  let timeouts = 0;
  let errorsBefore = 0;
  let okBefore = 0;
  let firstError: string | null = null;
  const hardEnd = killAt + options.maxWaitMs;
  const stopAt = () =>
    recoveredAt === null ? hardEnd : Math.min(hardEnd, recoveredAt + options.afterMs);
  const worker = async () => {
    let member = options.leader;
    for (let i = 0; i < MAX_REQUESTS_PER_CLIENT && performance.now() < stopAt(); i++) {
      if (killedAt === null && performance.now() >= killAt) {
        killedAt = performance.now();
        options.kill();
      }
      const spec = options.request(options.urls[member]!, Math.floor(Math.random() * options.keys));
      const t0 = performance.now();
      const afterKill = killedAt !== null && t0 >= killedAt;
      const failure = await client.send(
        spec,
        afterKill ? options.retryTimeoutMs : options.timeoutMs,
      );
      const t1 = performance.now();
      if (failure === null) {
        if (afterKill) {
          if (recoveredAt === null) recoveredAt = t1;
        } else if (killedAt === null && t1 >= measureFrom) {
          okBefore++;
        }
        continue;
      }
      if (afterKill) {
        retries++;
        if (failure.startsWith("TimeoutError")) timeouts++;
        firstError ??= failure;
      } else if (killedAt === null && t1 >= measureFrom) {
        errorsBefore++;
      }
      member = (member + 1) % n;
      await sleep(ERROR_PAUSE_MS);
    }
  };
  // The kill happens on time even if every writer is blocked in a request.
  const timer = setTimeout(() => {
    if (killedAt === null) {
      killedAt = performance.now();
      options.kill();
    }
  }, killAt - performance.now());
  try {
    await Promise.all(Array.from({ length: options.clients }, () => worker()));
  } finally {
    clearTimeout(timer);
    client.close();
  }
  const killed = killedAt as number | null;
  const recovered = recoveredAt as number | null;
  return {
    failoverMs: killed === null || recovered === null ? null : recovered - killed,
    retries,
    timeouts,
    opsPerSecBefore: okBefore / (options.beforeMs / 1000),
    errorsBefore,
    firstError,
  };
}
