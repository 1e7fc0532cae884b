/**
 * `watercraft serve`, the default command: the node's process wiring. It
 * builds the storage, the transport, the node and its HTTP app from the
 * settings (flags, `WATERCRAFT_*` variables, a `--config` file), serves
 * them, announces itself, joins when asked, logs the node's events, and
 * turns signals and failures into exit codes. A leader stopped by a signal
 * first hands leadership over, so that the cluster need not wait out an
 * election timeout.
 *
 * @module
 */

import { hostname as machineHostname } from "node:os";
import process from "node:process";
import { createApp } from "../http/app.ts";
import { VERSION } from "../http/build_info.ts";
import { RETRY_AFTER_S } from "../http/errors.ts";
import { kvStateMachine } from "../kv/mod.ts";
import { createNode } from "../node/create_node.ts";
import type { WaterCraftNode } from "../node/node.ts";
import { type FetchHandler, runtime, serve, type Server } from "../serve.ts";
import { joinRetryMessage } from "../transport/http/join.ts";
import { httpTransport, type PeerFailure } from "../transport/http/sender.ts";
import { configPath, layerSettings, readConfigFile, type SettingSource } from "./config.ts";
import { settleDefaultId } from "./default_id.ts";
import { fail } from "./fail.ts";
import {
  type CliOptions,
  EXIT_FAILURE,
  EXIT_OK,
  HELP,
  oneLine,
  parseArgs,
  SERVE_FLAGS,
  UsageError,
} from "./flags.ts";
import { Logger } from "./log.ts";
import { watchNodeEvents } from "./node_events.ts";
import { watchWrapperExit } from "./parent_watch.ts";
import { watchRemoval } from "./removal_watch.ts";
import { INSECURE_WARNING, joinHint, type SettledSecret, settleSecret } from "./secret.ts";
import { openStorage } from "./storage.ts";
import { loadTls } from "./tls.ts";

/** Longest a shutdown may take before the process exits anyway. */
const SHUTDOWN_MS_MAX = 15_000;

/** What {@linkcode start} returns: a running CLI node. */
interface RunningNode {
  /** The node. */
  readonly node: WaterCraftNode;
  /** The HTTP server. */
  readonly server: Server;
  /** The URL it advertises. */
  readonly url: string;
  /** The cluster secret it runs with, and where it came from. */
  readonly secret: SettledSecret;
  /** Stops the server and the node; safe to call twice. */
  stop(): Promise<void>;
}

/** A repeat of a signal this soon after the first is the same request (see {@linkcode onSignals}). */
const SIGNAL_ECHO_MS = 1_000;

/**
 * Runs `watercraft serve`: settles the settings, starts the node, joins
 * when asked, and serves until SIGINT or SIGTERM.
 *
 * @param args The arguments after the command name.
 * @param env Environment variables.
 * @returns The exit code: {@linkcode EXIT_OK} after a signal, `--help` or
 *   `--print-config`, 2 on bad flags,
 *   {@linkcode EXIT_FAILURE} when the join or the node fails.
 *
 * @example Bad flags exit with code 2
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { EXIT_USAGE } from "./flags.ts";
 * import { serveCommand } from "./serve.ts";
 *
 * strictEqual(await serveCommand(["--port", "http"], {}), EXIT_USAGE);
 * ```
 */
export async function serveCommand(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  let options: CliOptions;
  let sources: ReadonlyMap<string, SettingSource>;
  try {
    const file = configPath(args, env);
    const layered = layerSettings(
      args,
      SERVE_FLAGS,
      env,
      file === null ? null : await readConfigFile(file),
    );
    const parsed = parseArgs(layered.args, env);
    if (parsed === "help") {
      process.stdout.write(HELP);
      return EXIT_OK;
    }
    options = parsed;
    sources = layered.sources;
  } catch (error) {
    return fail(error);
  }
  if (options.printConfig) {
    try {
      options = await settleDefaultId(options);
    } catch (error) {
      return fail(error);
    }
    process.stdout.write(printedConfig(options, sources) + "\n");
    return EXIT_OK;
  }
  const log = new Logger({ format: options.logFormat, level: options.logLevel });

  let resolveExit!: (code: number) => void;
  const exit = new Promise<number>((resolve) => resolveExit = resolve);
  /** Set once the node is on its way out (signal, failed join, fatal error). */
  let ending = false;
  let running: RunningNode | null = null;
  const end = (code: number) => {
    ending = true;
    // Bounded: a peer that never answers must not keep the process alive.
    const timer = setTimeout(() => {
      log.error("node.stop_timeout", {
        msg: `could not stop within ${SHUTDOWN_MS_MAX} ms, exiting anyway`,
      });
      process.exit(EXIT_FAILURE);
    }, SHUTDOWN_MS_MAX);
    (running?.stop() ?? Promise.resolve()).then(
      () => resolveExit(code),
      (error) => {
        log.error("node.stop_failed", { msg: `error while stopping: ${oneLine(error)}` });
        resolveExit(EXIT_FAILURE);
      },
    ).finally(() => clearTimeout(timer));
  };
  const onFatal = (error: unknown) => {
    // Reported, but the node carries on; or a broken invariant or a failed
    // storage write stopped the node for good: exit so that a supervisor
    // restarts it, rather than serve 503 forever.
    const carriesOn = running !== null && running.node.failure === null;
    reportError(log, carriesOn ? "node.error" : "node.failed", error, carriesOn);
    if (!carriesOn && !ending) end(EXIT_FAILURE);
  };
  let signalledEarly = false;
  const removeSignals = onSignals((signal) => {
    if (ending || signalledEarly) {
      // A second signal: the user does not want to wait for the drain.
      log.error("node.killed", { msg: `${signal} again, exiting without waiting` });
      process.exit(EXIT_FAILURE);
    }
    log.info("node.stopping", { signal });
    if (running === null) signalledEarly = true;
    else end(EXIT_OK);
  });
  let stopEvents = () => {};
  try {
    try {
      running = await start(options, log, onFatal);
    } catch (error) {
      return fail(error, log);
    }
    if (signalledEarly) end(EXIT_OK);
    else {
      announce(running, options, log, end, () => ending);
      const stopWatch = watchNodeEvents(running.node, log, options.heartbeatMs);
      const stopRemoval = watchRemoval(running.node, {
        everyMs: 2 * options.electionMs,
        clientToken: options.clientToken,
      });
      stopEvents = () => {
        stopWatch();
        stopRemoval();
      };
    }
    return await exit;
  } finally {
    stopEvents();
    removeSignals();
  }
}

/**
 * Reports an error of a running node. In text, with its stack (what a bug
 * report needs); in JSON, one object on one line, the stack a field of it.
 */
function reportError(log: Logger, event: string, error: unknown, carriesOn: boolean): void {
  if (log.format === "text") {
    console.error(
      carriesOn ? "watercraft:" : "watercraft: the node stopped after an error:",
      error,
    );
    return;
  }
  const msg = (carriesOn ? "" : "the node stopped after an error: ") + oneLine(error);
  const stack = error instanceof Error ? error.stack : undefined;
  log.error(event, { msg, ...(stack === undefined ? {} : { stack }) });
}

/**
 * The settings as `--print-config` shows them: each with its value and
 * where it came from; secrets are masked.
 */
function printedConfig(
  options: CliOptions,
  sources: ReadonlyMap<string, SettingSource>,
): string {
  const settings: Record<string, { value: unknown; source: SettingSource }> = {};
  const flagOf = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  for (const [key, value] of Object.entries(options)) {
    if (key === "idGiven" || key === "dataGiven" || key === "printConfig") continue;
    const flag = flagOf(key);
    const masked = (key === "secret" || key === "clientToken") && value !== null ? "***" : value;
    settings[flag] = { value: masked, source: sources.get(flag) ?? "default" };
  }
  return JSON.stringify(settings, null, 2);
}

/**
 * Starts a node from parsed settings: binds the port, creates the node with
 * the key-value state machine and the HTTP transport, and serves its app.
 * It does not join: call `node.join()` for that.
 *
 * @param options The settings.
 * @param onFatal Called when the node stops after an error it cannot
 *   recover from (a storage failure, a broken invariant). Default: log it.
 * @returns The running node.
 * @throws {UsageError} When an adapter is missing or a TLS file is unusable.
 * @throws {Error} When the port cannot be bound.
 */
async function start(
  options: CliOptions,
  log: Logger,
  onFatal: (error: unknown) => void = (error) => console.error("watercraft:", error),
): Promise<RunningNode> {
  if (options.forceNewCluster && options.storage === "memory") {
    throw new UsageError(
      "--force-new-cluster needs the node's durable state: use --storage file or kv",
    );
  }
  const tls = loadTls(options);
  // After the cheap checks: a start refused for a bad file keeps no id.
  options = await settleDefaultId(options);
  const { id, storage, fresh } = await openStorage(options);
  let secret: SettledSecret;
  try {
    secret = await settleSecret(options, fresh);
  } catch (error) {
    await storage.close().catch(() => {});
    throw error;
  }
  // Binds first: with --port 0 the advertised URL needs the real port, and a
  // taken port fails before anything else starts. Requests that arrive
  // before the node exists are told to retry.
  // What the runtime passes besides the request (Node's `incoming`) reaches
  // the app as Hono's `env`, which spares Node's request a conversion.
  let handler: FetchHandler = () =>
    Response.json({ error: { code: "unavailable", message: "The node is starting" } }, {
      status: 503,
      headers: { "retry-after": RETRY_AFTER_S },
    });
  let server: Server;
  try {
    server = await serve((request, env) => handler(request, env), {
      port: options.port,
      hostname: options.host,
      ...(tls.serve === null ? {} : { tls: tls.serve }),
      idleTimeoutMs: options.idleTimeoutMs,
      headersTimeoutMs: options.headersTimeoutMs,
      maxConnections: options.maxConnections,
    });
  } catch (error) {
    // Nothing of a failed start may stay behind: the storage's lock included.
    await storage.close().catch(() => {});
    throw new Error(`Cannot listen on ${options.host}:${options.port}: ${oneLine(error)}`, {
      cause: error,
    });
  }
  const url = options.advertise ??
    `${server.protocol}://${advertisedHost(options.host)}:${server.port}`;
  let node: WaterCraftNode;
  try {
    node = await createNode({
      id,
      url,
      stateMachine: kvStateMachine(),
      ...(secret.secret === null ? { insecure: true } : { secret: secret.secret }),
      transport: httpTransport({
        // Joining calls the members' client API, which takes the token this
        // node requires of its own clients.
        ...(options.clientToken === null ? {} : { clientToken: options.clientToken }),
        ...(tls.ca === null ? {} : { ca: tls.ca }),
        onPeerError: (failure) =>
          log.warn("peer.unreachable", {
            peer: failure.id,
            url: failure.url,
            msg: peerFailureLine(failure),
          }),
        onJoinRetry: (retry) =>
          log.warn("join.retry", {
            attempt: retry.attempt,
            problem: retry.problem,
            delayMs: retry.delayMs,
            msg: joinRetryMessage(retry),
          }),
      }),
      storage,
      ...(options.forceNewCluster ? { forceNewCluster: true } : {}),
      bootstrap: options.join.length === 0,
      readOnly: options.readOnly,
      heartbeatMs: options.heartbeatMs,
      electionMs: options.electionMs,
      snapshotEvery: options.snapshotEvery,
      onError: (error) => onFatal(error),
    });
  } catch (error) {
    await server.shutdown();
    await storage.close().catch(() => {});
    throw error;
  }
  const app = createApp(node, {
    ...(options.clientToken === null ? {} : { clientToken: options.clientToken }),
    readyApplyLagMax: options.readyLagMax,
  });
  handler = (request, env) => app.fetch(request, env);
  let stopping: Promise<void> | null = null;
  return {
    node,
    server,
    url,
    secret,
    stop() {
      stopping ??= (async () => {
        // A leader hands over first, while it still serves: the others
        // need not wait out an election timeout to go on.
        await handOff(node, options.shutdownTransferMs, log);
        // Stops accepting, then ends the node (which fails waiting
        // requests at once, so the server's drain is short).
        const closed = server.shutdown();
        await node.stop();
        await closed;
      })();
      return stopping;
    },
  };
}

/** Prints the listening line, then joins when asked (ending the run if that fails). */
function announce(
  running: RunningNode,
  options: CliOptions,
  log: Logger,
  end: (code: number) => void,
  ending: () => boolean,
): void {
  const { node, url } = running;
  if (options.insecure) {
    log.warn("insecure", { msg: INSECURE_WARNING.replace(/^watercraft: /, "") });
  }
  log.announce("listening", `watercraft listening on ${url} as ${node.id}`, {
    url,
    id: node.id,
    version: VERSION,
  });
  if (running.secret.generated) {
    log.announce("secret.generated", joinHint(running.secret, url, launcher()));
  }

  if (options.join.length > 0) {
    const via = options.join.join(",");
    log.info("join.started", { via, timeoutMs: options.joinTimeoutMs });
    node.join([...options.join], { timeoutMs: options.joinTimeoutMs }).then(
      (added) => {
        if (ending()) return;
        if (!added) {
          log.announce(
            "join.skipped",
            `watercraft has state already: --join ignored, ${node.id} rejoins its cluster`,
          );
          return;
        }
        const leader = node.status().leader;
        log.announce(
          "join.done",
          `watercraft joined the cluster via ${via} as ${node.id}` +
            (leader === null ? "" : ` (leader ${leader.id})`),
          { via, leader: leader?.id ?? null },
        );
      },
      (error: unknown) => {
        if (ending()) return;
        log.error("join.failed", { via, msg: `cannot join via ${via}: ${oneLine(error)}` });
        end(EXIT_FAILURE);
      },
    );
  }
}

/**
 * On a leader with another voter, moves leadership to the most caught-up
 * voter, waiting at most `limitMs`; elsewhere does nothing. Never throws:
 * a hand-off that fails only means the others elect a leader as they would
 * after a crash.
 */
async function handOff(node: WaterCraftNode, limitMs: number, log: Logger): Promise<void> {
  if (limitMs <= 0 || node.failure !== null) return;
  const status = node.status();
  const otherVoters = status.members.filter((m) => m.voter && m.id !== node.id);
  if (status.role !== "leader" || otherVoters.length === 0) return;
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      node.transferLeader(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no new leader within ${limitMs} ms`)), limitMs);
      }),
    ]);
    log.info("shutdown.handed_off", {
      leader: node.status().leader?.id ?? "unknown",
      ms: Date.now() - started,
    });
  } catch (error) {
    log.warn("shutdown.hand_off_failed", {
      msg: `could not hand leadership over before stopping: ${oneLine(error)}`,
    });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The host of the default advertised URL: the bound address when it is a
 * specific one, else the machine's name (bound to every address).
 *
 * @param host The address bound (`--host`).
 * @returns The host part of the URL, IPv6 addresses in brackets.
 */
export function advertisedHost(host: string): string {
  if (host === "0.0.0.0" || host === "::" || host === "[::]") return machineHostname();
  const bare = host.replace(/^\[(.*)\]$/, "$1");
  return bare.includes(":") ? `[${bare}]` : bare;
}

/** How this runtime starts the CLI, for the join command a new cluster prints. */
function launcher(): string {
  switch (runtime()) {
    case "deno":
      return "deno run -A src/cli.ts";
    case "bun":
      return "bun src/cli.ts";
    case "node":
      return "npx tsx src/cli.ts";
  }
}

/** The message of the stderr line for a peer that this node's messages fail to reach. */
function peerFailureLine(failure: PeerFailure): string {
  const hint = failure.certificate ? " (its certificate is not trusted: check --ca)" : "";
  return `cannot send to peer ${failure.id} at ${failure.url}: ${oneLine(failure.message)}${hint}`;
}

/**
 * Listens for SIGINT and SIGTERM, and for the exit of the wrapper that
 * started this process (`parent_watch.ts`); returns a function that stops
 * listening.
 * A signal that repeats within {@linkcode SIGNAL_ECHO_MS} of the first is
 * one request, not two: a Ctrl-C reaches both `deno task` (or `npx`) and
 * the node, and the wrapper forwards its copy, so the node gets two.
 */
function onSignals(handler: (signal: string) => void): () => void {
  const removers: (() => void)[] = [];
  let firstAt = -Infinity;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const listener = () => {
      const now = Date.now();
      if (now - firstAt < SIGNAL_ECHO_MS) return;
      if (firstAt === -Infinity) firstAt = now;
      handler(signal);
    };
    try {
      process.on(signal, listener);
      removers.push(() => process.off(signal, listener));
    } catch {
      // Windows has no SIGTERM on some runtimes; SIGINT still works.
    }
  }
  const stopWatching = watchWrapperExit(() => {
    if (firstAt !== -Infinity) return;
    firstAt = Date.now();
    handler("parent exit");
  });
  if (stopWatching !== null) removers.push(stopWatching);
  return () => removers.forEach((remove) => remove());
}
