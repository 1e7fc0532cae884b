/**
 * The storage the CLI's flags name (`--storage`, `--data`), and the node id
 * its data directory remembers: a restart with `--data` alone comes back as
 * the same node, and another `--id` on it is refused.
 *
 * @module
 */

import { fileStorage } from "../storage/file/storage.ts";
import { memoryStorage } from "../storage/memory.ts";
import type { PersistedState, Storage } from "../storage/storage.ts";
import { type CliOptions, oneLine, UsageError } from "./flags.ts";

/**
 * Opens the storage and settles the node id (file `node-id` in the data
 * directory). The log is loaded here, so that a locked or corrupt data dir
 * is a usage error; the node's first `load()` then gets that state without
 * reading the log again.
 *
 * @param options The parsed settings.
 * @returns The node's id (the persisted one unless `--id` was given), its
 *   storage, which the caller closes, and whether that storage is empty
 *   (the node never ran).
 * @throws {UsageError} When the data dir is unusable, belongs to another
 *   node, is locked by a running node, or holds a corrupt log, or when
 *   `--storage kv` runs outside Deno.
 *
 * @example Memory storage keeps the id it is given
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { parseArgs } from "./flags.ts";
 * import { openStorage } from "./storage.ts";
 *
 * const options = parseArgs(["--id", "n1", "--storage", "memory"], {});
 * if (options === "help") throw new Error("unreachable");
 * const { id, storage } = await openStorage(options);
 * strictEqual(id, "n1");
 * await storage.close();
 * ```
 */
export async function openStorage(
  options: CliOptions,
): Promise<{ id: string; storage: Storage; fresh: boolean }> {
  if (options.storage === "memory") {
    return { id: options.id, storage: memoryStorage(), fresh: true };
  }
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
    const { denoKvStorage } = await import("../storage/deno_kv.ts");
    const kv = await deno.openKv(join(options.data, "kv.sqlite"));
    closeKv = () => kv.close();
    inner = denoKvStorage(kv);
  } else {
    inner = fileStorage(options.data);
  }
  let first: PersistedState | null;
  try {
    first = await inner.load();
  } catch (error) {
    await inner.close().catch(() => {});
    closeKv();
    throw new UsageError(`--data ${options.data} is unusable: ${oneLine(error)}`);
  }
  const fresh = first === null ||
    (first.entries.length === 0 && first.snapshot === null && first.hardState.term === 0);
  // Only what differs is replaced, on the adapter itself: the state read
  // here serves the first load, and closing closes the KV handle too.
  // Everything else (and whatever the adapter can do besides, such as
  // writing a snapshot beside its log) stays the adapter's own.
  const load = inner.load.bind(inner);
  const close = inner.close.bind(inner);
  const storage: Storage = Object.assign(inner, {
    load: () => {
      const state = first;
      first = null;
      return state === null ? load() : Promise.resolve(state);
    },
    close: async () => {
      await close();
      closeKv();
    },
  });
  return { id, storage, fresh };
}
