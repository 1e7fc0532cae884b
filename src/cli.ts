/**
 * The WaterCraft command-line node (API.md section 1): a node running the
 * built-in key-value state machine behind the HTTP API, on Deno, Bun or
 * Node.
 *
 * ```sh
 * deno run -A src/cli.ts --id n1 --port 6969
 * deno run -A src/cli.ts --id n2 --port 6970 --join http://localhost:6969
 * bun src/cli.ts --help
 * npx tsx src/cli.ts --help
 * ```
 *
 * Bad flags print one line on stderr and exit with code 2; a failed join
 * exits with code 1; SIGINT or SIGTERM stops the node and exits with 0.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { hostname as machineHostname } from "node:os";
import { resolve as resolvePath } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { createApp } from "./http/app.ts";
import { kvStateMachine } from "./kv.ts";
import { createNode, type WaterCraftNode } from "./node.ts";
import { type FetchHandler, serve, type Server } from "./serve.ts";
import { fileStorage } from "./storage/file/storage.ts";
import { memoryStorage } from "./storage/memory.ts";
import type { PersistedState, Storage } from "./storage/storage.ts";
import { httpTransport, type PeerFailure } from "./transport/http.ts";
import { trustingFetch } from "./transport/tls_fetch.ts";

/** Exit code of a run stopped by a signal (and of `--help`). */
export const EXIT_OK = 0;
/** Exit code when the node cannot join its cluster or fails while running. */
export const EXIT_FAILURE = 1;
/** Exit code of bad flags or unusable files. */
export const EXIT_USAGE = 2;

/** The storage adapters the CLI knows of. */
export type StorageKind = "memory" | "file" | "kv";

/** The CLI's settings, once the flags are parsed and checked. */
export interface CliOptions {
  /** Node id: `[A-Za-z0-9._-]{1,64}`. */
  readonly id: string;
  /** Port to listen on; 0 picks a free one. */
  readonly port: number;
  /** Address to bind. */
  readonly host: string;
  /** URL other nodes use to reach this one, without a trailing slash; null: derive it from the machine's hostname and the port. */
  readonly advertise: string | null;
  /** Storage directory (file storage, Deno KV's file, the persisted id). */
  readonly data: string;
  /** Whether `--id` was given (else the data dir's persisted id wins over the random one). */
  readonly idGiven: boolean;
  /** Disaster recovery: make this node's configuration just itself, keeping its log. */
  readonly forceNewCluster: boolean;
  /** Storage adapter. */
  readonly storage: StorageKind;
  /** Members to contact to join a cluster; empty: bootstrap a new one. */
  readonly join: readonly string[];
  /** Join as a read-only member. */
  readonly readOnly: boolean;
  /** Shared cluster secret. */
  readonly secret: string | null;
  /** Bearer token required on client endpoints. */
  readonly clientToken: string | null;
  /** PEM certificate chain file, to serve HTTPS (set with `tlsKey`). */
  readonly tlsCert: string | null;
  /** PEM private key file. */
  readonly tlsKey: string | null;
  /** Extra CA file to trust when calling peers over HTTPS. */
  readonly ca: string | null;
  /** Leader heartbeat interval, ms. */
  readonly heartbeatMs: number;
  /** Base election timeout, ms. */
  readonly electionMs: number;
}

/** Bad flags or an unusable file: the CLI prints the message and exits with {@linkcode EXIT_USAGE}. */
export class UsageError extends Error {
  /**
   * Creates the error.
   *
   * @param message One line saying what is wrong and how to fix it.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The `--help` text. */
export const HELP: string = `Usage: watercraft [options]

Runs a WaterCraft Raft node with the built-in key-value store (HTTP API).
  deno run -A src/cli.ts [options]   bun src/cli.ts [options]   npx tsx src/cli.ts [options]

Options:
  --id ID                  node id, [A-Za-z0-9._-]{1,64} (default: random)
  --port N                 port to listen on (default 6969)
  --host ADDR              address to bind (default 0.0.0.0)
  --advertise URL          URL other nodes use to reach this node
                           (default http(s)://<hostname>:<port>)
  --data DIR               storage directory (default ./watercraft-data/<id>)
  --storage KIND           file | memory | kv (default file; kv = Deno KV, Deno only)
  --join URL[,URL...]      contact an existing member and join its cluster
  --read-only              join as a read-only (non-voting) member
  --secret S               shared cluster secret (env WATERCRAFT_SECRET)
  --client-token T         bearer token required on client endpoints
                           (env WATERCRAFT_CLIENT_TOKEN)
  --tls-cert FILE          PEM certificate chain: serve HTTPS (with --tls-key)
  --tls-key FILE           PEM private key
  --ca FILE                extra CA to trust when calling peers over HTTPS
  --heartbeat-ms N         leader heartbeat interval (default 50)
  --election-ms N          base election timeout (default 500)
  --force-new-cluster      DANGEROUS recovery after losing a majority for good:
                           restart this node as a cluster of itself, keeping its
                           log (entries never committed become committed)
  -h, --help               print this help and exit

Without --join, a node with empty storage starts a new cluster and leads it.
Bad flags exit with code 2; SIGINT/SIGTERM stop the node and exit with 0.
`;

const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const PORT_MAX = 65_535;
/** Longest a shutdown may take before the process exits anyway. */
const SHUTDOWN_MS_MAX = 15_000;
/** Timings above a day are typos, not settings. */
const TIMING_MS_MAX = 86_400_000;

/** Flags that take a value, by name. */
const VALUE_FLAGS = new Set([
  "id",
  "port",
  "host",
  "advertise",
  "data",
  "storage",
  "join",
  "secret",
  "client-token",
  "tls-cert",
  "tls-key",
  "ca",
  "heartbeat-ms",
  "election-ms",
]);
/** Flags that take no value. */
const SWITCH_FLAGS = new Set(["read-only", "help", "force-new-cluster"]);

/**
 * Parses and checks the CLI's flags. Pure: reads no file (see
 * {@linkcode loadTls}) and no environment except through `env`.
 *
 * Flags take their value as `--flag value` or `--flag=value`; a value that
 * starts with `--` must use the second form. `--join` may be repeated and
 * takes comma-separated URLs; any other flag given twice is an error.
 *
 * @param args The arguments after the script name.
 * @param env Environment variables (`WATERCRAFT_SECRET`, `WATERCRAFT_CLIENT_TOKEN`).
 * @returns The settings, or `"help"` when `--help` was asked.
 * @throws {UsageError} On an unknown flag, a missing or malformed value, or
 *   flags that do not go together; the message is one line.
 *
 * @example
 * ```ts
 * import { strictEqual, throws } from "node:assert/strict";
 * import { parseArgs, UsageError } from "./cli.ts";
 *
 * const options = parseArgs(["--id", "n1", "--port=7000"], {});
 * if (options === "help") throw new Error("unreachable");
 * strictEqual(options.port, 7000);
 * strictEqual(options.data, "./watercraft-data/n1");
 * throws(() => parseArgs(["--port", "http"], {}), UsageError);
 * ```
 */
export function parseArgs(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): CliOptions | "help" {
  const values = new Map<string, string>();
  const join: string[] = [];
  const switches = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "-h") {
      switches.add("help");
      continue;
    }
    if (!arg.startsWith("--") || arg === "--") {
      throw new UsageError(
        `Unexpected argument ${JSON.stringify(arg)}: flags start with -- (see --help)`,
      );
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (SWITCH_FLAGS.has(name)) {
      if (eq >= 0) throw new UsageError(`Flag --${name} takes no value`);
      switches.add(name);
      continue;
    }
    if (!VALUE_FLAGS.has(name)) throw new UsageError(`Unknown flag --${name} (see --help)`);
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) {
        throw new UsageError(`Flag --${name} needs a value`);
      }
      value = next;
      i++;
    }
    if (name === "join") {
      join.push(...value.split(","));
      continue;
    }
    if (values.has(name)) throw new UsageError(`Flag --${name} is given twice`);
    values.set(name, value);
  }
  if (switches.has("help")) return "help";

  const id = values.get("id") ?? randomId();
  if (!ID_PATTERN.test(id)) {
    throw new UsageError(`--id must match [A-Za-z0-9._-]{1,64}, got ${JSON.stringify(id)}`);
  }
  const port = integer("port", values.get("port"), 6969, 0, PORT_MAX);
  const host = values.get("host") ?? "0.0.0.0";
  if (host === "") throw new UsageError("--host must not be empty");
  const advertiseFlag = values.get("advertise");
  const advertise = advertiseFlag === undefined ? null : httpUrl("--advertise", advertiseFlag);
  const data = values.get("data") ?? `./watercraft-data/${id}`;
  if (data === "") throw new UsageError("--data must not be empty");
  const storage = values.get("storage") ?? "file";
  if (storage !== "memory" && storage !== "file" && storage !== "kv") {
    throw new UsageError(`--storage must be memory, file or kv, got ${JSON.stringify(storage)}`);
  }
  const joinUrls = join.map((url) => httpUrl("--join", url));
  const readOnly = switches.has("read-only");
  if (readOnly && joinUrls.length === 0) {
    throw new UsageError("--read-only needs --join: a read-only member cannot start a cluster");
  }
  const secret = secretValue("--secret", values.get("secret"), "WATERCRAFT_SECRET", env);
  const clientToken = secretValue(
    "--client-token",
    values.get("client-token"),
    "WATERCRAFT_CLIENT_TOKEN",
    env,
  );
  const tlsCert = nonEmpty("tls-cert", values.get("tls-cert"));
  const tlsKey = nonEmpty("tls-key", values.get("tls-key"));
  if ((tlsCert === null) !== (tlsKey === null)) {
    throw new UsageError(
      "--tls-cert and --tls-key go together: give both to serve HTTPS, or neither",
    );
  }
  if (tlsCert !== null && advertise?.startsWith("http:")) {
    throw new UsageError(`--advertise must be an https: URL when serving HTTPS, got ${advertise}`);
  }
  if (tlsCert === null && advertise?.startsWith("https:")) {
    throw new UsageError("--advertise is an https: URL, but HTTPS needs --tls-cert and --tls-key");
  }
  const ca = nonEmpty("ca", values.get("ca"));
  const heartbeatMs = integer("heartbeat-ms", values.get("heartbeat-ms"), 50, 1, TIMING_MS_MAX);
  const electionMs = integer("election-ms", values.get("election-ms"), 500, 1, TIMING_MS_MAX);
  if (electionMs < 2 * heartbeatMs) {
    throw new UsageError(
      `--election-ms (${electionMs}) must be at least twice --heartbeat-ms (${heartbeatMs})`,
    );
  }
  return {
    id,
    port,
    host,
    advertise,
    data,
    storage,
    join: joinUrls,
    readOnly,
    idGiven: values.has("id"),
    forceNewCluster: switches.has("force-new-cluster"),
    secret,
    clientToken,
    tlsCert,
    tlsKey,
    ca,
    heartbeatMs,
    electionMs,
  };
}

function integer(
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  const n = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) {
    throw new UsageError(
      `--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

function nonEmpty(name: string, raw: string | undefined): string | null {
  if (raw === undefined) return null;
  if (raw === "") throw new UsageError(`--${name} must not be empty`);
  return raw;
}

function secretValue(
  flag: string,
  raw: string | undefined,
  variable: string,
  env: Readonly<Record<string, string | undefined>>,
): string | null {
  if (raw !== undefined) {
    if (raw === "") throw new UsageError(`${flag} must not be empty`);
    return raw;
  }
  // An empty variable is how shells unset one for a single command.
  const fromEnv = env[variable];
  return fromEnv === undefined || fromEnv === "" ? null : fromEnv;
}

/** Checks an http(s) base URL and drops its trailing slash. */
function httpUrl(flag: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${flag} must be an http:// or https:// URL, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`${flag} must be an http:// or https:// URL, got ${JSON.stringify(raw)}`);
  }
  if (url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    throw new UsageError(
      `${flag} must be a base URL without query, fragment or credentials, got ${
        JSON.stringify(raw)
      }`,
    );
  }
  return url.href.replace(/\/+$/, "");
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return `n-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The TLS material named by the flags. */
interface TlsFiles {
  /** PEM certificate and key to serve HTTPS with, or null for plain HTTP. */
  readonly serve: { cert: string; key: string } | null;
  /** PEM of the extra CA to trust when calling peers (`--ca`), or null. */
  readonly ca: string | null;
}

/**
 * Reads the TLS files named by the options.
 *
 * @param options The parsed settings.
 * @returns The PEM texts.
 * @throws {UsageError} When a file cannot be read or is not PEM.
 */
function loadTls(options: CliOptions): TlsFiles {
  const ca = options.ca === null ? null : readPem("--ca", options.ca, "CERTIFICATE");
  if (options.tlsCert === null || options.tlsKey === null) return { serve: null, ca };
  return {
    serve: {
      cert: readPem("--tls-cert", options.tlsCert, "CERTIFICATE"),
      key: readPem("--tls-key", options.tlsKey, "PRIVATE KEY"),
    },
    ca,
  };
}

/** The stderr line for a peer that this node's messages fail to reach. */
function peerFailureLine(failure: PeerFailure): string {
  const hint = failure.certificate ? " (its certificate is not trusted: check --ca)" : "";
  return `watercraft: cannot send to peer ${failure.id} at ${failure.url}: ${
    oneLine(failure.message)
  }${hint}`;
}

function readPem(flag: string, path: string, kind: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new UsageError(`${flag}: cannot read ${path}${code ? ` (${code})` : ""}`);
  }
  if (!new RegExp(`-----BEGIN [A-Z ]*${kind}-----`).test(text)) {
    throw new UsageError(`${flag}: ${path} holds no PEM ${kind.toLowerCase()}`);
  }
  return text;
}

/** What {@linkcode start} returns: a running CLI node. */
interface RunningNode {
  /** The node. */
  readonly node: WaterCraftNode;
  /** The HTTP server. */
  readonly server: Server;
  /** The URL it advertises. */
  readonly url: string;
  /** The fetch that trusts `--ca`, for joining; absent without it. */
  readonly joinFetch?: typeof fetch;
  /** Stops the server and the node; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Opens the storage and settles the node id: a data directory remembers the
 * id it belongs to (file `node-id`), so a restart with `--data` alone comes
 * back as the same node, and another `--id` on it is refused.
 *
 * @throws {UsageError} When the data dir is unusable, belongs to another
 *   node, is locked by a running node, or holds a corrupt log.
 */
async function openStorage(options: CliOptions): Promise<{ id: string; storage: Storage }> {
  if (options.storage === "memory") return { id: options.id, storage: memoryStorage() };
  const { mkdir, readFile, writeFile } = await import("node:fs/promises");
  const { join } = await import("node:path");
  let id = options.id;
  try {
    await mkdir(options.data, { recursive: true });
    const idFile = join(options.data, "node-id");
    const stored = await readFile(idFile, "utf8").then((t) => t.trim(), () => null);
    if (stored !== null && stored !== id) {
      if (options.idGiven) {
        throw new UsageError(`--data ${options.data} belongs to node ${stored}, not ${id}`);
      }
      id = stored;
    }
    if (stored === null) await writeFile(idFile, id + "\n");
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`--data ${options.data} is unusable: ${oneLine(error)}`);
  }
  let inner: Storage;
  let closeKv = () => {};
  if (options.storage === "kv") {
    const deno = (globalThis as { Deno?: { openKv?: (path: string) => Promise<Deno.Kv> } }).Deno;
    if (deno?.openKv === undefined) {
      throw new UsageError("--storage kv needs Deno (Deno KV); use --storage file");
    }
    const { denoKvStorage } = await import("./storage/deno_kv.ts");
    const kv = await deno.openKv(join(options.data, "kv.sqlite"));
    closeKv = () => kv.close();
    inner = denoKvStorage(kv);
  } else {
    inner = fileStorage(options.data);
  }
  // Load now, so a locked or corrupt data dir is a usage error (exit 2); the
  // node then gets this first load without replaying the log again.
  let first: PersistedState | null;
  try {
    first = await inner.load();
  } catch (error) {
    await inner.close().catch(() => {});
    closeKv();
    throw new UsageError(`--data ${options.data} is unusable: ${oneLine(error)}`);
  }
  const storage: Storage = {
    load: () => {
      const state = first;
      first = null;
      return state === null ? inner.load() : Promise.resolve(state);
    },
    save: (hardState, entries) => inner.save(hardState, entries),
    saveSnapshot: (snapshot) => inner.saveSnapshot(snapshot),
    close: async () => {
      await inner.close();
      closeKv();
    },
  };
  return { id, storage };
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
  const { id, storage } = await openStorage(options);
  // Joining calls the members' client API with its own fetch: it must trust
  // --ca as the transport does.
  const joinFetch = tls.ca === null ? null : trustingFetch(tls.ca);
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
    });
  } catch (error) {
    await joinFetch?.close();
    throw new Error(`Cannot listen on ${options.host}:${options.port}: ${oneLine(error)}`, {
      cause: error,
    });
  }
  const url = options.advertise ?? `${server.protocol}://${machineHostname()}:${server.port}`;
  let node: WaterCraftNode;
  try {
    node = await createNode({
      id,
      url,
      stateMachine: kvStateMachine(),
      transport: httpTransport({
        ...(options.secret === null ? {} : { secret: options.secret }),
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
    await joinFetch?.close();
    throw error;
  }
  const app = createApp(node, {
    ...(options.secret === null ? {} : { secret: options.secret }),
    ...(options.clientToken === null ? {} : { clientToken: options.clientToken }),
  });
  handler = (request) => app.fetch(request);
  let stopping: Promise<void> | null = null;
  return {
    node,
    server,
    url,
    ...(joinFetch === null ? {} : { joinFetch: joinFetch.fetch }),
    stop() {
      stopping ??= (async () => {
        // Stops accepting first, then ends the node (which fails waiting
        // requests at once, so the server's drain is short).
        const closed = server.shutdown();
        await node.stop();
        await closed;
        await joinFetch?.close();
      })();
      return stopping;
    },
  };
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
 * import { EXIT_USAGE, main } from "./cli.ts";
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

/** Prints the listening line, then joins when asked (ending the run if that fails). */
function announce(
  running: RunningNode,
  options: CliOptions,
  end: (code: number) => void,
  ending: () => boolean,
): void {
  const { node, url } = running;
  console.log(`watercraft listening on ${url} as ${node.id}`);

  if (options.join.length > 0) {
    const via = options.join.join(",");
    node.join([...options.join], {
      ...(options.secret === null ? {} : { secret: options.secret }),
      // The joining node speaks to the members' client API (/v1/members),
      // so it carries the token it requires of its own clients.
      ...(options.clientToken === null ? {} : { clientToken: options.clientToken }),
      ...(running.joinFetch === undefined ? {} : { fetch: running.joinFetch }),
    }).then(
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

function fail(error: unknown): number {
  if (error instanceof UsageError) {
    console.error(`watercraft: ${error.message}`);
    return EXIT_USAGE;
  }
  console.error(`watercraft: ${oneLine(error)}`);
  return EXIT_FAILURE;
}

function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s*\n\s*/g, " ");
}

/** The arguments after the script name, on any runtime. */
function commandLineArgs(): string[] {
  const deno = (globalThis as { Deno?: { args: string[] } }).Deno;
  return deno !== undefined ? [...deno.args] : process.argv.slice(2);
}

/** Whether this module is the program (not imported by a test or a user). */
function isMain(): boolean {
  const meta = import.meta as ImportMeta & { main?: boolean };
  if (typeof meta.main === "boolean") return meta.main;
  // Node 20 has no import.meta.main: compare with the script it was started with.
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(resolvePath(script)).href === import.meta.url;
}

if (isMain()) {
  const code = await main(commandLineArgs(), process.env);
  process.exit(code);
}
