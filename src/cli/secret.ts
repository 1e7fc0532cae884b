/**
 * The cluster secret of a CLI node: secured by default. The secret comes
 * from `--secret` / `WATERCRAFT_SECRET`, else from the data directory
 * (file `secret`, mode 0600, where every node keeps the secret it runs
 * with, so that a restart needs no flag), else the node that bootstraps a
 * new cluster generates one and prints, once, how to join. `--insecure`
 * runs an open cluster, and says so on every start.
 *
 * @module
 */

import { bytesToHex } from "@noble/hashes/utils.js";
import { type CliOptions, oneLine, UsageError } from "./flags.ts";

/** The secret a node runs with, and where it came from. */
export interface SettledSecret {
  /** The secret; null for an open cluster (`--insecure`). */
  readonly secret: string | null;
  /** True when this start generated it: print how to join, once. */
  readonly generated: boolean;
  /** The file that keeps it, or null with memory storage. */
  readonly file: string | null;
}

/** Name of the file in the data directory that keeps the secret. */
const SECRET_FILE = "secret";

/**
 * Settles the secret a node starts with, and keeps it in the data
 * directory.
 *
 * @param options The parsed settings.
 * @param fresh Whether the node's storage is empty (it never ran).
 * @returns The secret and where it came from.
 * @throws {UsageError} When the node must join or rejoin a secured
 *   cluster and no secret was given or kept, or the data dir is unusable.
 *
 * @example An open cluster has no secret
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { parseArgs } from "./flags.ts";
 * import { settleSecret } from "./secret.ts";
 *
 * const options = parseArgs(["--storage", "memory", "--insecure"], {});
 * if (options === "help") throw new Error("unreachable");
 * deepStrictEqual(await settleSecret(options, true), { secret: null, generated: false, file: null });
 * ```
 */
export async function settleSecret(options: CliOptions, fresh: boolean): Promise<SettledSecret> {
  if (options.insecure) return { secret: null, generated: false, file: null };
  const file = options.storage === "memory" ? null : await secretPath(options.data);
  const kept = file === null ? null : await readSecret(file);
  if (options.secret !== null) {
    if (file !== null && kept !== options.secret) await writeSecret(file, options.secret);
    return { secret: options.secret, generated: false, file };
  }
  if (kept !== null) return { secret: kept, generated: false, file };
  if (options.join.length > 0) {
    throw new UsageError(
      "Joining a secured cluster needs its secret: give --secret S or WATERCRAFT_SECRET " +
        "(the node that started the cluster printed it), or --insecure to join an open cluster",
    );
  }
  if (!fresh) {
    throw new UsageError(
      `--data ${options.data} holds a cluster but no secret: give the cluster's --secret S ` +
        "(or WATERCRAFT_SECRET), or --insecure if it is an open cluster",
    );
  }
  const secret = bytesToHex(crypto.getRandomValues(new Uint8Array(32)));
  if (file !== null) await writeSecret(file, secret);
  return { secret, generated: true, file };
}

/**
 * The lines that tell how to add a node to a cluster whose secret was just
 * generated.
 *
 * @param settled The generated secret.
 * @param url This node's advertised URL.
 * @param launcher How this runtime starts the CLI, e.g. `deno run -A src/cli.ts`.
 * @returns The lines to print.
 */
export function joinHint(settled: SettledSecret, url: string, launcher: string): string {
  const where = settled.file === null ? "not kept: memory storage" : `kept in ${settled.file}`;
  return `watercraft generated the cluster secret (${where}); to add a node, run:\n` +
    `  WATERCRAFT_SECRET=${settled.secret} ${launcher} --join ${url}\n` +
    "  (on this machine, add --port N with a free port)";
}

/** The warning printed on every start of an open cluster. */
export const INSECURE_WARNING =
  "watercraft: WARNING: --insecure: peers prove nothing; anyone who reaches this port can act " +
  "as a member (rewrite the log, take leadership). For experiments on a trusted network only.";

async function secretPath(data: string): Promise<string> {
  const { join } = await import("node:path");
  return join(data, SECRET_FILE);
}

async function readSecret(file: string): Promise<string | null> {
  const { readFile } = await import("node:fs/promises");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return null;
    throw new UsageError(`Cannot read the cluster secret in ${file}: ${oneLine(error)}`);
  }
  const secret = text.trim();
  if (secret === "") throw new UsageError(`${file} is empty: remove it, or write the secret in it`);
  return secret;
}

async function writeSecret(file: string, secret: string): Promise<void> {
  const { chmod, mkdir, open } = await import("node:fs/promises");
  const { dirname } = await import("node:path");
  try {
    await mkdir(dirname(file), { recursive: true });
    // Created owner-only; chmod too, in case it existed with a wider mode.
    const handle = await open(file, "w", 0o600);
    try {
      await handle.writeFile(secret + "\n");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(file, 0o600);
  } catch (error) {
    throw new UsageError(`Cannot keep the cluster secret in ${file}: ${oneLine(error)}`);
  }
}
