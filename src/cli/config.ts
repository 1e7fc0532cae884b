/**
 * Where a command's settings come from besides its flags: environment
 * variables `WATERCRAFT_<FLAG>` and an optional JSON file (`--config FILE`
 * or `WATERCRAFT_CONFIG`). Precedence: flag, then environment, then file,
 * then default.
 *
 * The layers are turned into flags, so that one parser checks every value
 * the same way wherever it came from: a flag missing from the command line
 * is taken from the environment, else from the file.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import { oneLine, UsageError } from "./flags.ts";

/** Where a setting came from. */
export type SettingSource = "flag" | "env" | "file" | "default";

/** The command line with the environment's and the file's settings added. */
export interface LayeredArgs {
  /** The arguments to parse: the given ones, then those from the environment and the file. */
  readonly args: readonly string[];
  /** The source of each flag that is set, by flag name. */
  readonly sources: ReadonlyMap<string, SettingSource>;
}

/** Flags that configure the layering itself, or act at once: never read from a layer. */
const NOT_LAYERED = new Set(["help", "config", "print-config"]);

/**
 * The environment variable of a flag.
 *
 * @param flag The flag's name without `--`.
 * @returns E.g. `WATERCRAFT_HEARTBEAT_MS` for `heartbeat-ms`.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { envName } from "./config.ts";
 *
 * strictEqual(envName("heartbeat-ms"), "WATERCRAFT_HEARTBEAT_MS");
 * ```
 */
export function envName(flag: string): string {
  return `WATERCRAFT_${flag.toUpperCase().replaceAll("-", "_")}`;
}

/**
 * Adds to `args` every flag it lacks that the environment or the file sets.
 *
 * @param args The command line.
 * @param flags The command's flags.
 * @param env Environment variables; an empty one counts as unset.
 * @param file The config file's object (flag names as keys), or null.
 * @returns The layered arguments and each setting's source.
 * @throws {UsageError} On a file key that is no flag, or a value of the wrong type.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { layerSettings } from "./config.ts";
 *
 * const flags = { port: { type: "string" }, "read-only": { type: "boolean" } } as const;
 * const { args } = layerSettings(["--port", "1"], flags, { WATERCRAFT_PORT: "2", WATERCRAFT_READ_ONLY: "true" }, null);
 * deepStrictEqual(args, ["--port", "1", "--read-only"]);
 * ```
 */
export function layerSettings(
  args: readonly string[],
  flags: Readonly<Record<string, ParseArgsOptionsConfig[string]>>,
  env: Readonly<Record<string, string | undefined>>,
  file: Readonly<Record<string, unknown>> | null,
): LayeredArgs {
  const given = givenFlags(args);
  const sources = new Map<string, SettingSource>();
  for (const name of given) sources.set(name, "flag");
  const added: string[] = [];
  if (file !== null) {
    for (const key of Object.keys(file)) {
      if (!Object.hasOwn(flags, key) || NOT_LAYERED.has(key)) {
        throw new UsageError(`The config file sets ${JSON.stringify(key)}, which is no flag`);
      }
    }
  }
  for (const [name, flag] of Object.entries(flags)) {
    if (NOT_LAYERED.has(name) || given.has(name)) continue;
    const fromEnv = env[envName(name)];
    if (fromEnv !== undefined && fromEnv !== "") {
      added.push(...asArgs(name, flag, fromEnv, envName(name)));
      sources.set(name, "env");
      continue;
    }
    if (file !== null && Object.hasOwn(file, name)) {
      added.push(...asArgs(name, flag, file[name], `the config file's ${JSON.stringify(name)}`));
      sources.set(name, "file");
    }
  }
  return { args: [...args, ...added], sources };
}

/**
 * Reads a JSON config file: one object whose keys are flag names.
 *
 * @param path The file.
 * @returns Its object.
 * @throws {UsageError} When it cannot be read or is not a JSON object.
 */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  const { readFile } = await import("node:fs/promises");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new UsageError(`--config ${path}: cannot read it: ${oneLine(error)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--config ${path}: not JSON: ${oneLine(error)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UsageError(`--config ${path}: must hold a JSON object of flags`);
  }
  return value as Record<string, unknown>;
}

/**
 * The config file a command line names: `--config FILE` (or `--config=FILE`),
 * else `WATERCRAFT_CONFIG`.
 *
 * @param args The command line.
 * @param env Environment variables.
 * @returns The path, or null.
 */
export function configPath(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): string | null {
  for (const [i, arg] of args.entries()) {
    if (arg === "--config") return args[i + 1] ?? null;
    if (arg.startsWith("--config=")) return arg.slice("--config=".length);
  }
  const fromEnv = env.WATERCRAFT_CONFIG;
  return fromEnv === undefined || fromEnv === "" ? null : fromEnv;
}

/** The names of the flags on a command line (`--name` or `--name=value`). */
function givenFlags(args: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const arg of args) {
    if (arg === "--") break;
    if (arg.startsWith("--")) names.add(arg.slice(2).split("=", 1)[0]!);
  }
  return names;
}

/** One layer's value of a flag, as the arguments that set it. */
function asArgs(
  name: string,
  flag: ParseArgsOptionsConfig[string],
  value: unknown,
  where: string,
): string[] {
  if (flag.type === "boolean") {
    const on = typeof value === "boolean" ? value : switchValue(String(value));
    if (on === null) throw new UsageError(`${where} must be true or false, got ${String(value)}`);
    return on ? [`--${name}`] : [];
  }
  const values = Array.isArray(value) && flag.multiple === true ? value : [value];
  return values.flatMap((v) => {
    if (typeof v !== "string" && typeof v !== "number") {
      throw new UsageError(`${where} must be a string or a number, got ${JSON.stringify(v)}`);
    }
    return [`--${name}=${v}`];
  });
}

function switchValue(text: string): boolean | null {
  const lower = text.toLowerCase();
  if (["1", "true", "yes", "on"].includes(lower)) return true;
  if (["0", "false", "no", "off"].includes(lower)) return false;
  return null;
}
