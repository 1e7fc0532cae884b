/**
 * The command line of the WaterCraft node (API.md section 1): its flags,
 * their defaults and checks, the `--help` text and the exit codes. Pure: it
 * reads no file and no environment except the one it is handed; the files
 * the flags name are read by `tls.ts` and `storage.ts`.
 *
 * @module
 */

import { CLIENT_TOKEN_PATTERN, CLIENT_TOKEN_RULE } from "../http/schemas.ts";
import { bytesToHex } from "@noble/hashes/utils.js";
import { parseArgs as tokenize, type ParseArgsOptionsConfig } from "node:util";
import { isNodeId, NODE_ID_RULE } from "../core/config.ts";
import { READY_APPLY_LAG_MAX } from "../http/readiness.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "./log.ts";
import {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
} from "../serve/guard.ts";

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
  /** Shared cluster secret, when given. */
  readonly secret: string | null;
  /** Run an open cluster: no secret, peers prove nothing. */
  readonly insecure: boolean;
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
  /** Closes a connection that waits this long on its client, ms; 0: never. */
  readonly idleTimeoutMs: number;
  /** Closes a connection whose request head takes longer than this, ms; 0: never. */
  readonly headersTimeoutMs: number;
  /** Open connections at most; 0: no cap. */
  readonly maxConnections: number;
  /** Whether `--data` was given (else a stable default is settled, see `default_id.ts`). */
  readonly dataGiven: boolean;
  /** How long a join keeps trying before the node gives up, ms. */
  readonly joinTimeoutMs: number;
  /** How long a leader stopped by a signal tries to hand leadership over first, ms; 0: it does not. */
  readonly shutdownTransferMs: number;
  /** `/readyz` answers 503 while more committed entries than this wait to be applied. */
  readonly readyLagMax: number;
  /** A snapshot is taken, and the log compacted, after this many entries applied. */
  readonly snapshotEvery: number;
  /** Log lines as text or JSON. */
  readonly logFormat: LogFormat;
  /** The least severe level logged. */
  readonly logLevel: LogLevel;
  /** The `--config` file the settings were read from, if any. */
  readonly configFile: string | null;
  /** Print the settings and exit (`--print-config`). */
  readonly printConfig: boolean;
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

/** Default of `--join-timeout-ms`. */
export const JOIN_TIMEOUT_MS_DEFAULT = 60_000;
/** Default of `--shutdown-transfer-ms`: two election timeouts at the default 500 ms. */
export const SHUTDOWN_TRANSFER_MS_DEFAULT = 2_000;
/** Default of `--ready-lag-max`. */
export const READY_LAG_MAX_DEFAULT: number = READY_APPLY_LAG_MAX;
/**
 * Default of `--snapshot-every`, the library's. Snapshots no longer hold up
 * the batches behind them (the built-in state machine's is taken in the
 * background and the file storage writes it beside the log), so what a
 * larger value buys is less CPU and disk spent on them, at about 60 MiB more
 * per node for 50,000 (bench/README.md): the operator's call.
 */
export const SNAPSHOT_EVERY_DEFAULT = 10_000;

/** The `--help` text of `watercraft serve` (the default command). */
export const HELP: string = `Usage: watercraft [serve] [options]

Runs a WaterCraft Raft node with the built-in key-value store (HTTP API).
  deno run -A src/cli.ts [options]   bun src/cli.ts [options]   npx tsx src/cli.ts [options]
Other commands: watercraft status|members|leader|kv|snapshot --help; watercraft --version

Options:
  --id ID                  node id, ${NODE_ID_RULE} (default: random)
  --port N                 port to listen on (default 6969)
  --host ADDR              address to bind (default 0.0.0.0)
  --advertise URL          URL other nodes use to reach this node (default
                           http(s)://<host>:<port> when --host is an address,
                           else http(s)://<hostname>:<port>)
  --data DIR               storage directory (default ./watercraft-data/<id>)
  --storage KIND           file | memory | kv (default file; kv = Deno KV, Deno only)
  --join URL[,URL...]      contact an existing member and join its cluster
  --read-only              join as a read-only (non-voting) member
  --secret S               shared cluster secret (env WATERCRAFT_SECRET); default:
                           the one kept in the data dir, else generated by the
                           node that starts a cluster (printed with the join command)
  --insecure               open cluster: peers prove nothing (experiments only)
  --client-token T         bearer token required on client endpoints
                           (env WATERCRAFT_CLIENT_TOKEN)
  --tls-cert FILE          PEM certificate chain: serve HTTPS (with --tls-key)
  --tls-key FILE           PEM private key
  --ca FILE                extra CA to trust when calling peers over HTTPS
  --heartbeat-ms N         leader heartbeat interval (default 50)
  --election-ms N          base election timeout (default 500)
  --idle-timeout-ms N      close a connection that waits this long on its client
                           (default ${DEFAULT_IDLE_TIMEOUT_MS}; 0: never; else at least 10000)
  --headers-timeout-ms N   close a connection whose request head takes longer
                           (default ${DEFAULT_HEADERS_TIMEOUT_MS}; 0: never)
  --max-connections N      open connections at most; at the cap, the one waiting
                           longest for a request makes room (default ${DEFAULT_MAX_CONNECTIONS}; 0: no cap)
  --force-new-cluster      DANGEROUS recovery after losing a majority for good:
                           restart this node as a cluster of itself, keeping its
                           log (entries never committed become committed)
  --join-timeout-ms N      give up joining after this long (default ${JOIN_TIMEOUT_MS_DEFAULT})
  --shutdown-transfer-ms N a leader stopped by SIGINT/SIGTERM first hands leadership
                           to the most caught-up voter, waiting at most this long
                           (default ${SHUTDOWN_TRANSFER_MS_DEFAULT}; 0: stop at once)
  --ready-lag-max N        /readyz answers 503 while more committed entries than
                           this wait to be applied (default ${READY_LAG_MAX_DEFAULT})
  --snapshot-every N       snapshot the state and compact the log after this many
                           entries (default ${SNAPSHOT_EVERY_DEFAULT}; more: less CPU
                           and disk, more memory, a longer log to replay)
  --log-format F           text | json (default text)
  --log-level L            debug | info | warn | error (default info)
  --config FILE            JSON object of flags ({"port": 6970, "join": ["http://..."]})
                           (env WATERCRAFT_CONFIG)
  --print-config           print the settings and where each came from, and exit
  -h, --help               print this help and exit

Every flag can also be set as an environment variable WATERCRAFT_<FLAG>
(--heartbeat-ms: WATERCRAFT_HEARTBEAT_MS; switches take 1/true or 0/false).
Precedence: flag, then environment, then --config file, then default.

Without --join, a node with empty storage starts a new cluster and leads it.
Bad flags exit with code 2; SIGINT/SIGTERM stop the node and exit with 0.
`;

const PORT_MAX = 65_535;
/**
 * The shortest idle timeout: a peer stream may go 8 s between keepalives
 * (one every 4 s when nothing else is sent), and must not be cut.
 */
const IDLE_TIMEOUT_MS_MIN = 10_000;
/** More open connections than this is a typo, not a setting. */
const CONNECTIONS_MAX = 1_000_000;
/** Timings above a day are typos, not settings. */
const TIMING_MS_MAX = 86_400_000;

/** Every flag, as `node:util`'s `parseArgs` takes them. */
const FLAGS = {
  id: { type: "string" },
  port: { type: "string" },
  host: { type: "string" },
  advertise: { type: "string" },
  data: { type: "string" },
  storage: { type: "string" },
  join: { type: "string", multiple: true },
  secret: { type: "string" },
  "client-token": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  ca: { type: "string" },
  "heartbeat-ms": { type: "string" },
  "election-ms": { type: "string" },
  "idle-timeout-ms": { type: "string" },
  "headers-timeout-ms": { type: "string" },
  "max-connections": { type: "string" },
  "read-only": { type: "boolean" },
  insecure: { type: "boolean" },
  "force-new-cluster": { type: "boolean" },
  "join-timeout-ms": { type: "string" },
  "shutdown-transfer-ms": { type: "string" },
  "ready-lag-max": { type: "string" },
  "snapshot-every": { type: "string" },
  "log-format": { type: "string" },
  "log-level": { type: "string" },
  config: { type: "string" },
  "print-config": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsOptionsConfig;

/**
 * Every flag of `watercraft serve`, as `node:util`'s `parseArgs` takes them
 * (`config.ts` reads the same names from the environment and files).
 */
export const SERVE_FLAGS: Readonly<Record<string, ParseArgsOptionsConfig[string]>> = FLAGS;

/** The name of a flag without its leading `--`. */
type FlagName = keyof typeof FLAGS;

/** A flag that takes a value and may be given at most once. */
type ValueFlag = Exclude<
  FlagName,
  "join" | "read-only" | "force-new-cluster" | "help" | "print-config"
>;

/** What `node:util`'s `parseArgs` reports for each argument. */
type Token = NonNullable<ReturnType<typeof tokenize>["tokens"]>[number];

/**
 * Parses and checks the CLI's flags. Pure: reads no file and no
 * environment except through `env`.
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
 * import { parseArgs, UsageError } from "./flags.ts";
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
  // Not strict: node:util's own errors are several sentences long and name
  // no fix, and it keeps the last of a flag given twice. The tokens let
  // checkTokens() refuse what the strict mode would, in our words.
  const { values, tokens } = tokenize({
    args: [...args],
    options: FLAGS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  checkTokens(args, tokens);
  if (values.help !== undefined) return "help";
  const value = (name: ValueFlag): string | undefined => {
    const raw = values[name];
    return typeof raw === "string" ? raw : undefined;
  };

  const id = value("id") ?? randomId();
  if (!isNodeId(id)) {
    throw new UsageError(`--id must match ${NODE_ID_RULE}, got ${JSON.stringify(id)}`);
  }
  const port = integer("port", value("port"), 6969, 0, PORT_MAX);
  const host = value("host") ?? "0.0.0.0";
  if (host === "") throw new UsageError("--host must not be empty");
  const advertiseFlag = value("advertise");
  const advertise = advertiseFlag === undefined ? null : httpUrl("--advertise", advertiseFlag);
  const data = value("data") ?? `./watercraft-data/${id}`;
  if (data === "") throw new UsageError("--data must not be empty");
  const storage = value("storage") ?? "file";
  if (storage !== "memory" && storage !== "file" && storage !== "kv") {
    throw new UsageError(`--storage must be memory, file or kv, got ${JSON.stringify(storage)}`);
  }
  const joinUrls = (values.join ?? [])
    .flatMap((list) => typeof list === "string" ? list.split(",") : [])
    .map((url) => httpUrl("--join", url));
  const readOnly = values["read-only"] !== undefined;
  if (readOnly && joinUrls.length === 0) {
    throw new UsageError("--read-only needs --join: a read-only member cannot start a cluster");
  }
  const secret = secretValue("--secret", value("secret"), "WATERCRAFT_SECRET", env);
  if (secret !== null && secret.trim() !== secret) {
    // The data dir keeps it trimmed: a restart without the flag would differ.
    throw new UsageError("The cluster secret must not start or end with white space");
  }
  const insecure = values.insecure !== undefined;
  if (insecure && secret !== null) {
    throw new UsageError(
      "--insecure runs an open cluster, without a secret: drop --secret (or WATERCRAFT_SECRET) or --insecure",
    );
  }
  const clientToken = secretValue(
    "--client-token",
    value("client-token"),
    "WATERCRAFT_CLIENT_TOKEN",
    env,
  );
  if (clientToken !== null && !CLIENT_TOKEN_PATTERN.test(clientToken)) {
    throw new UsageError(`--client-token must hold ${CLIENT_TOKEN_RULE}`);
  }
  const tlsCert = nonEmpty("tls-cert", value("tls-cert"));
  const tlsKey = nonEmpty("tls-key", value("tls-key"));
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
  const ca = nonEmpty("ca", value("ca"));
  const heartbeatMs = integer("heartbeat-ms", value("heartbeat-ms"), 50, 1, TIMING_MS_MAX);
  const electionMs = integer("election-ms", value("election-ms"), 500, 1, TIMING_MS_MAX);
  if (electionMs < 2 * heartbeatMs) {
    throw new UsageError(
      `--election-ms (${electionMs}) must be at least twice --heartbeat-ms (${heartbeatMs})`,
    );
  }
  const idleTimeoutMs = integer(
    "idle-timeout-ms",
    value("idle-timeout-ms"),
    DEFAULT_IDLE_TIMEOUT_MS,
    0,
    TIMING_MS_MAX,
  );
  if (idleTimeoutMs > 0 && idleTimeoutMs < IDLE_TIMEOUT_MS_MIN) {
    throw new UsageError(
      `--idle-timeout-ms must be 0 (never) or at least ${IDLE_TIMEOUT_MS_MIN}: peer streams may go 8 s between keepalives, got ${idleTimeoutMs}`,
    );
  }
  const headersTimeoutMs = integer(
    "headers-timeout-ms",
    value("headers-timeout-ms"),
    DEFAULT_HEADERS_TIMEOUT_MS,
    0,
    TIMING_MS_MAX,
  );
  const maxConnections = integer(
    "max-connections",
    value("max-connections"),
    DEFAULT_MAX_CONNECTIONS,
    0,
    CONNECTIONS_MAX,
  );
  const joinTimeoutMs = integer(
    "join-timeout-ms",
    value("join-timeout-ms"),
    JOIN_TIMEOUT_MS_DEFAULT,
    1,
    TIMING_MS_MAX,
  );
  const shutdownTransferMs = integer(
    "shutdown-transfer-ms",
    value("shutdown-transfer-ms"),
    SHUTDOWN_TRANSFER_MS_DEFAULT,
    0,
    TIMING_MS_MAX,
  );
  const readyLagMax = integer(
    "ready-lag-max",
    value("ready-lag-max"),
    READY_LAG_MAX_DEFAULT,
    0,
    Number.MAX_SAFE_INTEGER,
  );
  const snapshotEvery = integer(
    "snapshot-every",
    value("snapshot-every"),
    SNAPSHOT_EVERY_DEFAULT,
    1,
    Number.MAX_SAFE_INTEGER,
  );
  const logFormat = oneOf("log-format", value("log-format"), LOG_FORMATS, "text");
  const logLevel = oneOf("log-level", value("log-level"), LOG_LEVELS, "info");
  return {
    id,
    port,
    host,
    advertise,
    data,
    storage,
    join: joinUrls,
    readOnly,
    idGiven: value("id") !== undefined,
    forceNewCluster: values["force-new-cluster"] !== undefined,
    secret,
    insecure,
    clientToken,
    tlsCert,
    tlsKey,
    ca,
    heartbeatMs,
    electionMs,
    idleTimeoutMs,
    headersTimeoutMs,
    maxConnections,
    dataGiven: value("data") !== undefined,
    joinTimeoutMs,
    shutdownTransferMs,
    readyLagMax,
    snapshotEvery,
    logFormat,
    logLevel,
    configFile: nonEmpty("config", value("config")),
    printConfig: values["print-config"] !== undefined,
  };
}

function oneOf<T extends string>(
  name: string,
  raw: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new UsageError(`--${name} must be ${allowed.join(" or ")}, got ${JSON.stringify(raw)}`);
  }
  return raw as T;
}

/**
 * Refuses, in argument order, what `FLAGS` does not describe: the first
 * bad argument is the one reported.
 */
function checkTokens(args: readonly string[], tokens: readonly Token[]): void {
  const given = new Set<string>();
  for (const token of tokens) {
    if (token.kind === "option-terminator") throw unexpected("--");
    if (token.kind === "positional") throw unexpected(token.value);
    // Only -h has a short form, and only alone: "-hx" or "-1" is no flag.
    // token.index points at the whole argument, not at one letter of it.
    if (!token.rawName.startsWith("--")) {
      const arg = args[token.index] ?? token.rawName;
      if (arg !== "-h") throw unexpected(arg);
      continue;
    }
    const name = token.name;
    if (!Object.hasOwn(FLAGS, name)) throw new UsageError(`Unknown flag --${name} (see --help)`);
    const flag: ParseArgsOptionsConfig[string] = FLAGS[name as FlagName];
    if (flag.type === "boolean") {
      if (token.inlineValue !== undefined) throw new UsageError(`Flag --${name} takes no value`);
      continue;
    }
    // parseArgs takes whatever follows as the value; one that starts with
    // -- is the next flag, so this one's value was forgotten.
    if (
      token.value === undefined || (token.inlineValue === false && token.value.startsWith("--"))
    ) {
      throw new UsageError(`Flag --${name} needs a value`);
    }
    if (flag.multiple === true) continue;
    if (given.has(name)) throw new UsageError(`Flag --${name} is given twice`);
    given.add(name);
  }
}

function unexpected(arg: string): UsageError {
  return new UsageError(
    `Unexpected argument ${JSON.stringify(arg)}: flags start with -- (see --help)`,
  );
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
  return `n-${bytesToHex(crypto.getRandomValues(new Uint8Array(6)))}`;
}

/**
 * Flattens an error's message to one line: every line the CLI prints on
 * stderr is one line, so that logs keep one event per line.
 *
 * @param error Whatever was thrown.
 * @returns Its message (or its text), newlines and their indentation turned into one space.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { oneLine } from "./flags.ts";
 *
 * strictEqual(oneLine(new Error("Cannot bind:\n  port taken")), "Cannot bind: port taken");
 * ```
 */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s*\n\s*/g, " ");
}
