/**
 * The pid lock that keeps two nodes off one file storage directory.
 *
 * `LOCK` is created with the exclusive `wx` flag and removed on release. A
 * second open, from this process or another, fails while the owner runs. After
 * a crash the file stays behind: it is stale when its pid is not running
 * (`process.kill(pid, 0)` fails with `ESRCH`) or is this process's own pid
 * while this process does not hold it (a restarted container is often pid 1
 * again); a stale lock is taken over with a warning. If an unrelated process
 * has since reused the pid, the directory looks locked: delete `LOCK` by hand
 * once sure no node runs on it.
 *
 * @module
 */

import { type FileHandle, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";

/** Name of the lock file inside the directory. */
export const LOCK_FILE = "LOCK";

/**
 * Directories this process holds the lock of: the pid in their `LOCK` is
 * ours, so only this set tells a second open here from a stale lock.
 */
const heldLocks = new Set<string>();

/**
 * Takes the lock of `dir`, which must exist, taking over a stale one.
 *
 * @param dir The directory, as an absolute path (the key of the held set).
 * @param warn Told when a stale lock is taken over.
 * @returns When this process holds the lock.
 * @throws {Error} When this process already holds it, or a running process does.
 */
export async function acquireLock(dir: string, warn: (message: string) => void): Promise<void> {
  const path = join(dir, LOCK_FILE);
  if (heldLocks.has(dir)) {
    throw new Error(`Cannot open storage in ${dir}: this process already has it open`);
  }
  // Two attempts: the second follows the removal of a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await tryCreateLock(path)) {
      heldLocks.add(dir);
      return;
    }
    const owner = await lockOwner(path);
    if (owner !== null && owner !== process.pid && await pidAlive(owner)) {
      throw new Error(
        `Cannot open storage in ${dir}: it is locked by running process ${owner} (${path})`,
      );
    }
    warn(
      `Taking over the stale lock ${path} of process ${owner ?? "unknown"}, which is not running`,
    );
    await rm(path, { force: true });
  }
  throw new Error(`Cannot open storage in ${dir}: another process keeps taking ${path}`);
}

/**
 * Gives up the lock of `dir` if this process holds it; does nothing if not.
 *
 * @param dir The directory, as passed to {@linkcode acquireLock}.
 * @returns When the lock file is gone.
 */
export async function releaseLock(dir: string): Promise<void> {
  if (heldLocks.delete(dir)) await rm(join(dir, LOCK_FILE), { force: true });
}

async function tryCreateLock(path: string): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(path, "wx");
  } catch (error) {
    if (errorCode(error) === "EEXIST") return false;
    throw error;
  }
  try {
    await handle.writeFile(`${process.pid}\n`);
  } finally {
    await handle.close();
  }
  return true;
}

/** The pid in a lock file; null if unreadable (a crash between create and write). */
async function lockOwner(path: string): Promise<number | null> {
  try {
    const pid = Number.parseInt(await readFile(path, "utf8"), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch (error) {
    if (errorCode(error) === "ENOENT") return null;
    throw error;
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

/**
 * Whether process `pid` runs (EPERM: it exists but belongs to someone else).
 * A zombie, dead but not yet reaped by its parent (as a runtime killed under
 * `npx` is for a moment), does not.
 */
async function pidAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return errorCode(error) === "EPERM";
  }
  return !isZombie(await readFile(`/proc/${pid}/stat`, "utf8").catch(() => null));
}

/**
 * Whether a Linux `/proc/PID/stat` line describes a zombie: its state, the
 * field after the parenthesised command name, is `Z`.
 *
 * @param stat The line, or null where there is no `/proc` (not Linux).
 * @returns True only for a zombie.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { isZombie } from "./lock.ts";
 *
 * strictEqual(isZombie("4242 (deno) Z 1 4242 4242 0 -1"), true);
 * strictEqual(isZombie("4242 (a) b) S 1 4242"), false);
 * strictEqual(isZombie(null), false);
 * ```
 */
export function isZombie(stat: string | null): boolean {
  if (stat === null) return false;
  // The command name may hold spaces and parentheses: the state follows the last ")".
  return stat.slice(stat.lastIndexOf(")") + 1).trimStart().startsWith("Z");
}
