/**
 * A stable default node id. Without `--id` the CLI picks a random id, and
 * without `--data` the data directory is named after the id: left at that,
 * every start of `deno task start` would be a new node with an empty
 * directory, the previous run's data lost from sight. So the random id of a
 * node started without either flag is kept in
 * `./watercraft-data/default-id-<port>` and reused by the next start on
 * that port: the same flags give the same node and the same data.
 *
 * @module
 */

import { join } from "node:path";
import { type CliOptions, oneLine, UsageError } from "./flags.ts";
import { isNodeId } from "../core/config.ts";

/** Where the data directories of nodes started without `--data` live. */
export const DEFAULT_DATA_ROOT = "./watercraft-data";

/**
 * Settles the id (and with it the data directory) of a node started with
 * neither `--id` nor `--data`: the one kept for its port, else the random
 * one just drawn, which is kept for the next start.
 *
 * @param options The parsed settings.
 * @returns The settings, with the kept id and its directory when they apply.
 * @throws {UsageError} When the file cannot be read or written.
 */
export async function settleDefaultId(options: CliOptions): Promise<CliOptions> {
  // --port 0 picks a new port each run: there is nothing to be stable with.
  if (options.idGiven || options.dataGiven || options.storage === "memory" || options.port === 0) {
    return options;
  }
  const { mkdir, readFile, writeFile } = await import("node:fs/promises");
  const file = join(DEFAULT_DATA_ROOT, `default-id-${options.port}`);
  try {
    const kept = await readFile(file, "utf8").then((text) => text.trim(), () => null);
    if (kept !== null && isNodeId(kept)) {
      return { ...options, id: kept, data: `${DEFAULT_DATA_ROOT}/${kept}` };
    }
    await mkdir(DEFAULT_DATA_ROOT, { recursive: true });
    await writeFile(file, options.id + "\n");
    return options;
  } catch (error) {
    throw new UsageError(`Cannot keep the default node id in ${file}: ${oneLine(error)}`);
  }
}
