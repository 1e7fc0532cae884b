/**
 * The command-line node's process wiring: it builds the storage, the
 * transport, the node and its HTTP app from parsed flags, serves them,
 * announces itself, joins when asked, and turns signals and failures into
 * exit codes and one-line messages on stderr.
 *
 * @module
 */

import { hostname as machineHostname } from "node:os";
import { resolve as resolvePath } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { createApp } from "../http/app.ts";
import { kvStateMachine } from "../kv/mod.ts";
import { createNode, type WaterCraftNode } from "../node/node.ts";
import { type FetchHandler, runtime, serve, type Server } from "../serve.ts";
import { httpTransport, type PeerFailure } from "../transport/http/sender.ts";
import {
  type CliOptions,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  HELP,
  oneLine,
  parseArgs,
  UsageError,
} from "./flags.ts";
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

/**
 * Runs the CLI: parses `args`, starts the node, joins when asked, and
 * serves until SIGINT or SIGTERM.
 *
 * @param args The arguments after the script name.
 * @param env Environment variables.
 * @returns The exit code: {@linkcode EXIT_OK} after a signal or `--help`,
 *   {@linkcode EXIT_USAGE} on bad flags, {@linkcode EXIT_FAILURE} when the
 *   join or the node fails.
 *
 * @example Bad flags exit with code 2
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { EXIT_USAGE } from "./flags.ts";
 * import { main } from "./main.ts";
 *
 * strictEqual(await main(["--port", "http"], {}), EXIT_USAGE);
 * ```
 */
export async function main(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  let options: CliOptions;
  try {
    const parsed = parseArgs(args, env);
    if (parsed === "help") {
      process.stdout.write(HELP);
      return EXIT_OK;
    }
    options = parsed;
  } catch (error) {
    return fail(error);
  }

  let resolveExit!: (code: number) => void;
  const exit = new Promise<number>((resolve) => resolveExit = resolve);
  /** Set once the node is on its way out (signal, failed join, fatal error). */
  let ending = false;
  let running: RunningNode | null = null;
  const end = (code: number) => {
    ending = true;
    // Bounded: a peer that never answers must not keep the process alive.
    const timer = setTimeout(() => {
      console.error(`watercraft: could not stop within ${SHUTDOWN_MS_MAX} ms, exiting anyway`);
      process.exit(EXIT_FAILURE);
    }, SHUTDOWN_MS_MAX);
    (running?.stop() ?? Promise.resolve()).then(
      () => resolveExit(code),
      (error) => {
        console.error(`watercraft: error while stopping: ${oneLine(error)}`);
        resolveExit(EXIT_FAILURE);
      },
    ).finally(() => clearTimeout(timer));
  };
  const onFatal = (error: unknown) => {
    if (running !== null && running.node.failure === null) {
      // Reported, but the node carries on.
      console.error("watercraft:", error);
      return;
    }
    // A broken invariant or a failed storage write stops the node for good:
    // exit so that a supervisor restarts it, rather than serve 503 forever.
    console.error("watercraft: the node stopped after an error:", error);
    if (!ending) end(EXIT_FAILURE);
  };
  let signalledEarly = false;
  const removeSignals = onSignals((signal) => {
    if (ending || signalledEarly) {
      // A second signal: the user does not want to wait for the drain.
      console.error(`watercraft: ${signal} again, exiting without waiting`);
      process.exit(EXIT_FAILURE);
    }
    if (running === null) signalledEarly = true;
    else end(EXIT_OK);
  });
  try {
    try {
      running = await start(options, onFatal);
    } catch (error) {
      return fail(error);
    }
    if (signalledEarly) end(EXIT_OK);
    else announce(running, options, end, () => ending);
    return await exit;
  } finally {
    removeSignals();
  }
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
  onFatal: (error: unknown) => void = (error) => console.error("watercraft:", error),
): Promise<RunningNode> {
  if (options.forceNewCluster && options.storage === "memory") {
    throw new UsageError(
      "--force-new-cluster needs the node's durable state: use --storage file or kv",
    );
  }
  const tls = loadTls(options);
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
  let handler: FetchHandler = () =>
    Response.json({ error: { code: "unavailable", message: "The node is starting" } }, {
      status: 503,
    });
  let server: Server;
  try {
    server = await serve((request) => handler(request), {
      port: options.port,
      hostname: options.host,
      ...(tls.serve === null ? {} : { tls: tls.serve }),
      idleTimeoutMs: options.idleTimeoutMs,
      headersTimeoutMs: options.headersTimeoutMs,
      maxConnections: options.maxConnections,
    });
  } catch (error) {
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
        onPeerError: (failure) => console.error(peerFailureLine(failure)),
      }),
      storage,
      ...(options.forceNewCluster ? { forceNewCluster: true } : {}),
      bootstrap: options.join.length === 0,
      readOnly: options.readOnly,
      heartbeatMs: options.heartbeatMs,
      electionMs: options.electionMs,
      onError: (error) => onFatal(error),
    });
  } catch (error) {
    await server.shutdown();
    throw error;
  }
  const app = createApp(node, {
    ...(options.clientToken === null ? {} : { clientToken: options.clientToken }),
  });
  handler = (request) => app.fetch(request);
  let stopping: Promise<void> | null = null;
  return {
    node,
    server,
    url,
    secret,
    stop() {
      stopping ??= (async () => {
        // Stops accepting first, then ends the node (which fails waiting
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
  end: (code: number) => void,
  ending: () => boolean,
): void {
  const { node, url } = running;
  if (options.insecure) console.error(INSECURE_WARNING);
  console.log(`watercraft listening on ${url} as ${node.id}`);
  if (running.secret.generated) console.log(joinHint(running.secret, url, launcher()));

  if (options.join.length > 0) {
    const via = options.join.join(",");
    node.join([...options.join]).then(
      (added) => {
        if (ending()) return;
        if (!added) {
          console.log(
            `watercraft has state already: --join ignored, ${node.id} rejoins its cluster`,
          );
          return;
        }
        const leader = node.status().leader;
        console.log(
          `watercraft joined the cluster via ${via} as ${node.id}` +
            (leader === null ? "" : ` (leader ${leader.id})`),
        );
      },
      (error: unknown) => {
        if (ending()) return;
        console.error(`watercraft: cannot join via ${via}: ${oneLine(error)}`);
        end(EXIT_FAILURE);
      },
    );
  }
}

/**
 * The host of the default advertised URL: the bound address when it is a
 * specific one, else the machine's name (bound to every address).
 */
function advertisedHost(host: string): string {
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

/** The stderr line for a peer that this node's messages fail to reach. */
function peerFailureLine(failure: PeerFailure): string {
  const hint = failure.certificate ? " (its certificate is not trusted: check --ca)" : "";
  return `watercraft: cannot send to peer ${failure.id} at ${failure.url}: ${
    oneLine(failure.message)
  }${hint}`;
}

/** Listens for SIGINT and SIGTERM; returns a function that stops listening. */
function onSignals(handler: (signal: string) => void): () => void {
  const removers: (() => void)[] = [];
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const listener = () => handler(signal);
    try {
      process.on(signal, listener);
      removers.push(() => process.off(signal, listener));
    } catch {
      // Windows has no SIGTERM on some runtimes; SIGINT still works.
    }
  }
  return () => removers.forEach((remove) => remove());
}

/** Prints the one stderr line for an error that ends the run; returns its exit code. */
function fail(error: unknown): number {
  if (error instanceof UsageError) {
    console.error(`watercraft: ${error.message}`);
    return EXIT_USAGE;
  }
  console.error(`watercraft: ${oneLine(error)}`);
  return EXIT_FAILURE;
}

/**
 * Returns the arguments after the script name, on any runtime.
 *
 * @returns `Deno.args` on Deno, else `process.argv` without the runtime and the script.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { commandLineArgs } from "./main.ts";
 *
 * ok(Array.isArray(commandLineArgs()));
 * ```
 */
export function commandLineArgs(): string[] {
  const deno = (globalThis as { Deno?: { args: string[] } }).Deno;
  return deno !== undefined ? [...deno.args] : process.argv.slice(2);
}

/**
 * Returns whether a module is the program that was started, not one a test
 * or a user imported.
 *
 * @param meta The module's `import.meta`.
 * @returns `import.meta.main` where the runtime has it; on Node 20, which
 *   has not, whether the module is the script the process was started with.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { isMainModule } from "./main.ts";
 *
 * strictEqual(isMainModule(import.meta), import.meta.main);
 * ```
 */
export function isMainModule(meta: ImportMeta): boolean {
  const flag = (meta as ImportMeta & { main?: boolean }).main;
  if (typeof flag === "boolean") return flag;
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(resolvePath(script)).href === meta.url;
}
