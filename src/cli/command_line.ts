/**
 * The command line of the operator commands (`status`, `members`,
 * `leader`, `kv`, `snapshot`): their shared flags (where the cluster is,
 * its credentials, the deadline, `--json`), each also read from a
 * `WATERCRAFT_*` variable, and one parser for all of them.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { parseArgs as tokenize, type ParseArgsOptionsConfig } from "node:util";
import { trustingFetch } from "../transport/http/tls.ts";
import { ClusterClient } from "./client.ts";
import { layerSettings } from "./config.ts";
import { oneLine, UsageError } from "./flags.ts";

/** The flags every operator command takes. */
export const CLIENT_FLAGS = {
  endpoints: { type: "string" },
  "client-token": { type: "string" },
  secret: { type: "string" },
  "timeout-ms": { type: "string" },
  ca: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsOptionsConfig;

/** Where the operator commands look when told nowhere. */
export const DEFAULT_ENDPOINT = "http://127.0.0.1:6969";

/** The help lines of {@linkcode CLIENT_FLAGS}. */
export const CLIENT_FLAGS_HELP =
  `Cluster flags (each also as WATERCRAFT_<FLAG>, e.g. WATERCRAFT_ENDPOINTS):
  --endpoints URL[,URL...] members to ask; any will do, the leader is found
                           (default ${DEFAULT_ENDPOINT})
  --client-token T         bearer token, when the cluster requires one
  --secret S               cluster secret, for membership changes
  --timeout-ms N           give up after this long (default 10000)
  --ca FILE                extra CA (PEM) to trust for https:// endpoints
  --json                   print the API's JSON answer
  -h, --help               print this help and exit
`;

/** A parsed operator command line. */
export interface CommandLine {
  /** Flag values. */
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  /** The arguments that are not flags (the subcommand's words). */
  readonly positionals: readonly string[];
  /** Whether `--json` was given. */
  readonly json: boolean;
  /** Whether `--help` was given. */
  readonly help: boolean;
}

/**
 * Parses an operator command's arguments: its own flags and the shared
 * ones, from the command line, else from `WATERCRAFT_*` variables.
 *
 * @param args The arguments after the command name.
 * @param env Environment variables.
 * @param flags The command's own flags.
 * @returns The values and the positionals.
 * @throws {UsageError} On an unknown flag or a missing value.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { parseCommandLine } from "./command_line.ts";
 *
 * const line = parseCommandLine(["get", "a", "--json"], { WATERCRAFT_ENDPOINTS: "http://127.0.0.1:1" });
 * deepStrictEqual([line.positionals, line.json, line.values.endpoints], [["get", "a"], true, "http://127.0.0.1:1"]);
 * ```
 */
export function parseCommandLine(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  flags: ParseArgsOptionsConfig = {},
): CommandLine {
  const all: ParseArgsOptionsConfig = { ...CLIENT_FLAGS, ...flags };
  const layered = layerSettings(args, all, env, null);
  let parsed;
  try {
    parsed = tokenize({ args: [...layered.args], options: all, allowPositionals: true });
  } catch (error) {
    throw new UsageError(`${oneLine(error).split(". ")[0]} (see --help)`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  return {
    values,
    positionals: parsed.positionals,
    json: values.json === true,
    help: values.help === true,
  };
}

/**
 * The client a parsed command line describes.
 *
 * @param line The parsed command line.
 * @returns A client of the cluster.
 * @throws {UsageError} On a malformed endpoint or timeout.
 */
export function clientOf(line: CommandLine): ClusterClient {
  const endpoints = endpointsOf(line);
  return new ClusterClient({
    endpoints,
    clientToken: stringValue(line, "client-token") ?? null,
    secret: stringValue(line, "secret") ?? null,
    timeoutMs: wholeNumber(line, "timeout-ms", 10_000, 1),
    ...fetchOption(line),
  });
}

/**
 * The `fetch` of the operator commands: the runtime's own, or (`--ca`) one
 * that also trusts the CA in that file for `https:` endpoints. The command
 * exits when done, which releases it.
 *
 * @param line The parsed command line.
 * @returns `{ fetch }` with `--ca`, else an empty object.
 * @throws {UsageError} When the file cannot be read or holds no certificate.
 */
export function fetchOption(line: CommandLine): { fetch?: typeof fetch } {
  const file = stringValue(line, "ca");
  if (file === undefined) return {};
  let pem: string;
  try {
    pem = readFileSync(file, "utf8");
  } catch (error) {
    throw new UsageError(`--ca: cannot read ${file}: ${oneLine(String(error))}`);
  }
  try {
    return { fetch: trustingFetch(pem).fetch };
  } catch (error) {
    throw new UsageError(`--ca: ${file}: ${(error as Error).message}`);
  }
}

/**
 * The members the command line names (`--endpoints`), checked.
 *
 * @param line The parsed command line.
 * @returns Their base URLs.
 * @throws {UsageError} When one is not an http(s) URL, or none is given.
 */
export function endpointsOf(line: CommandLine): string[] {
  const raw = stringValue(line, "endpoints") ?? DEFAULT_ENDPOINT;
  const endpoints = raw.split(",").filter((url) => url !== "").map((url) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`--endpoints must hold http(s) URLs, got ${JSON.stringify(url)}`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new UsageError(`--endpoints must hold http(s) URLs, got ${JSON.stringify(url)}`);
    }
    return parsed.href.replace(/\/+$/, "");
  });
  if (endpoints.length === 0) throw new UsageError("--endpoints must name at least one member");
  return endpoints;
}

/**
 * A flag's string value.
 *
 * @param line The parsed command line.
 * @param name The flag.
 * @returns Its value, or undefined when unset (or empty).
 */
export function stringValue(line: CommandLine, name: string): string | undefined {
  const value = line.values[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * A flag's whole-number value.
 *
 * @param line The parsed command line.
 * @param name The flag.
 * @param fallback The value when unset.
 * @param min The smallest allowed.
 * @returns The number.
 * @throws {UsageError} When it is not a whole number of at least `min`.
 */
export function wholeNumber(line: CommandLine, name: string, fallback: number, min = 0): number {
  const raw = stringValue(line, name);
  if (raw === undefined) return fallback;
  const n = /^[0-9]{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min)) {
    throw new UsageError(`--${name} must be a whole number of at least ${min}, got ${raw}`);
  }
  return n;
}

/**
 * Checks the number of positionals of a subcommand.
 *
 * @param line The parsed command line.
 * @param usage The subcommand's usage line, for the error.
 * @param min The fewest allowed.
 * @param max The most allowed.
 * @returns The positionals.
 * @throws {UsageError} When there are fewer or more.
 */
export function expectWords(
  line: CommandLine,
  usage: string,
  min: number,
  max = min,
): readonly string[] {
  const words = line.positionals;
  if (words.length < min || words.length > max) throw new UsageError(`Usage: ${usage}`);
  return words;
}
