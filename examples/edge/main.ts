/**
 * A WaterCraft node as an edge function: an `export default { fetch }`
 * handler for Deno Deploy (or `deno serve`), keeping its log in Deno KV,
 * talking to its peers over the HTTP transport, running the built-in
 * key-value state machine, and serving the Hono app of `createApp` (client
 * routes and peer routes) for every request.
 *
 * - The node is created on the first request (an edge isolate may start on
 *   any request), once: concurrent first requests share one start. A node
 *   that stopped after an error (such as a storage write refused because
 *   another isolate wrote under the same KV prefix, see README.md) is
 *   restarted from Deno KV by a later request.
 * - Its timers run on the {@linkcode edgeClock}: `setTimeout` where it runs,
 *   plus `runDue()` on every request and every `Deno.cron` run (once a
 *   minute, registered at top level where `Deno.cron` exists) for whatever
 *   came due while the isolate was frozen.
 * - Settings come from environment variables (`./config.ts`, README.md).
 *
 * Run locally:
 *
 * ```sh
 * WATERCRAFT_ID=edge WATERCRAFT_ADVERTISE=http://127.0.0.1:8000 \
 *   WATERCRAFT_JOIN=http://127.0.0.1:6969 WATERCRAFT_KV_PATH=./edge-kv.sqlite \
 *   deno serve -A --unstable-kv --unstable-cron --host 127.0.0.1 --port 8000 examples/edge/main.ts
 * ```
 *
 * @module
 */

import type { WaterCraftNode } from "../../mod.ts";
import { denoKvStorage } from "../../src/storage/deno_kv.ts";
import { type EdgeClock, edgeClock } from "./clock.ts";
import { type EdgeConfig, readConfig } from "./config.ts";
import { startEdgeNode } from "./edge_node.ts";

/** A started node and what serves it. */
interface Edge {
  readonly node: WaterCraftNode;
  readonly app: { fetch(request: Request): Response | Promise<Response> };
  readonly clock: EdgeClock;
  readonly config: EdgeConfig;
  /** The join in flight, if any. */
  joining: Promise<void> | null;
  /** Set once the join succeeded, or when none is needed. */
  joined: boolean;
}

/**
 * Least time between two starts of the node, ms: a node that keeps failing
 * (two isolates fighting over one KV prefix, KV unreachable) must not reload
 * its log on every request.
 */
const RESTART_DELAY_MS = 2000;
/** How long one join may take before a later request tries again, ms. */
const JOIN_TIMEOUT_MS = 20_000;
/** How long stopping on SIGINT/SIGTERM may take, ms. */
const SHUTDOWN_MS_MAX = 5000;

// ------------------------------------------------------------ the one node

let kvOpening: Promise<Deno.Kv> | null = null;
/** This isolate's node: at most one start at a time. */
let current: Promise<Edge> | null = null;
/** No start before this time. */
let notBeforeMs = 0;

function openKv(path: string | null): Promise<Deno.Kv> {
  if (kvOpening === null) {
    const opening = path === null ? Deno.openKv() : Deno.openKv(path);
    kvOpening = opening;
    opening.catch(() => {
      if (kvOpening === opening) kvOpening = null;
    });
  }
  return kvOpening;
}

async function startEdge(origin: string | null, previous: Edge | null): Promise<Edge> {
  // The failed node lets go of its storage before the new one loads it.
  if (previous !== null) await previous.node.stop().catch(() => {});
  const config = readConfig((name) => Deno.env.get(name));
  const kv = await openKv(config.kvPath);
  const clock = edgeClock();
  const { node, app, url } = await startEdgeNode(config, origin, {
    storage: denoKvStorage(kv, { prefix: ["watercraft", config.id] }),
    clock,
  });
  const st = node.status();
  console.log(
    `watercraft edge node ${node.id} at ${url}: ${node.readOnly ? "read-only" : "voter"}, ` +
      `Deno KV ${config.kvPath ?? "(default)"}, log ${st.lastIndex} entries, term ${st.term}`,
  );
  return { node, app, clock, config, joining: null, joined: config.join.length === 0 };
}

function launch(origin: string | null, previous: Edge | null): Promise<Edge> {
  const waitMs = notBeforeMs - Date.now();
  if (waitMs > 0) {
    const why = previous === null ? "" : ` after an error (${String(previous.node.failure)})`;
    return Promise.reject(
      new Error(`The node is not running${why}; it starts again in ${waitMs} ms`),
    );
  }
  notBeforeMs = Date.now() + RESTART_DELAY_MS;
  const starting = startEdge(origin, previous);
  current = starting;
  starting.catch((error) => {
    console.error("watercraft: cannot start the edge node:", error);
    if (current === starting) current = null;
  });
  return starting;
}

/**
 * This isolate's node, started on first use; however many requests ask at
 * once, one start. A node stopped by an error is replaced (from Deno KV) at
 * most once per {@linkcode RESTART_DELAY_MS}.
 *
 * @param origin The asking request's origin: the advertised URL when none is configured.
 * @returns The running node.
 * @throws {Error} While it cannot run (misconfiguration, KV unavailable, a restart pending).
 */
async function liveEdge(origin: string | null): Promise<Edge> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const starting = current ?? launch(origin, null);
    const edge = await starting;
    if (edge.node.failure === null) return edge;
    // Only the first request to see the failure restarts the node.
    if (current === starting) await launch(origin, edge);
  }
  throw new Error("The node stopped after an error and is restarting");
}

/** Starts the join unless it succeeded or is under way; a failed join is retried by a later call. */
function ensureJoined(edge: Edge): void {
  if (edge.joined || edge.joining !== null) return;
  const { config, node } = edge;
  const via = config.join.join(",");
  edge.joining = node.join(config.join, { timeoutMs: JOIN_TIMEOUT_MS }).then(
    (added) => {
      edge.joined = true;
      const leader = node.status().leader;
      console.log(
        added
          ? `watercraft joined the cluster via ${via} as ${node.id}` +
            (leader === null ? "" : ` (leader ${leader.id})`)
          : `watercraft has state already: ${node.id} rejoins its cluster from Deno KV`,
      );
    },
    (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      console.error(`watercraft: cannot join via ${via}: ${message} (a later request retries)`);
    },
  ).finally(() => edge.joining = null);
}

/** Fires the timers that came due while the isolate was idle, and makes sure the node joins. */
function drive(edge: Edge): void {
  edge.clock.runDue();
  ensureJoined(edge);
}

function unavailable(error: unknown): Response {
  const message = error instanceof Error ? error.message : String(error);
  return Response.json({ error: { code: "unavailable", message } }, { status: 503 });
}

/**
 * Serves one request: starts the node if this isolate has none, fires the
 * timers that came due meanwhile, then hands the request to the node's app.
 *
 * @param request The request.
 * @returns The app's answer, or `503 unavailable` while the node cannot run.
 */
async function fetchHandler(request: Request): Promise<Response> {
  let edge: Edge;
  try {
    edge = await liveEdge(new URL(request.url).origin);
  } catch (error) {
    return unavailable(error);
  }
  drive(edge);
  return await edge.app.fetch(request);
}

// ------------------------------------------------------------ top level

// Deno Deploy collects cron definitions while it evaluates the module, so
// this runs at top level. Without Deno.cron (`deno serve` without
// --unstable-cron, other runtimes) it is skipped. Cron runs at most once a
// minute: a floor under the node's timers when no request comes, never a
// heartbeat.
if (typeof Deno.cron === "function") {
  Deno.cron("watercraft edge node timers", "* * * * *", async () => {
    const advertise = Deno.env.get("WATERCRAFT_ADVERTISE")?.trim() || null;
    // Without a configured URL, only a request can tell a new node where it lives.
    if (current === null && advertise === null) return;
    try {
      drive(await liveEdge(advertise));
    } catch (error) {
      console.error("watercraft: cron run:", error instanceof Error ? error.message : error);
    }
  });
}

/**
 * Under `deno serve` a signal stops the server, but the node's timers would
 * keep the process alive: stop the node (its last batch is flushed to KV)
 * and exit. Where signals cannot be listened to (Deno Deploy) this is skipped.
 */
async function shutdown(): Promise<void> {
  const timer = setTimeout(() => {
    console.error(`watercraft: could not stop within ${SHUTDOWN_MS_MAX} ms, exiting anyway`);
    Deno.exit(1);
  }, SHUTDOWN_MS_MAX);
  let code = 0;
  try {
    const edge = await current?.catch(() => null);
    await edge?.node.stop();
    (await kvOpening?.catch(() => null))?.close();
  } catch (error) {
    console.error("watercraft: error while stopping:", error);
    code = 1;
  }
  clearTimeout(timer);
  Deno.exit(code);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  try {
    Deno.addSignalListener(signal, () => void shutdown());
  } catch {
    // No signals here (Deno Deploy; SIGTERM on Windows).
  }
}

export default { fetch: fetchHandler } satisfies Deno.ServeDefaultExport;
