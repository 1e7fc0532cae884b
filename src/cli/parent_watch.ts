/**
 * Stopping with a wrapper that died without passing its signal on. `npx`,
 * `tsx`, `bunx` and `deno task` run the node as their child; SIGTERM or
 * SIGKILL to the wrapper alone ends it and leaves the node running, its port
 * and data directory taken, with nobody left to stop it. So, while the
 * process that started the node is such a wrapper, its exit is a request to
 * stop.
 *
 * Any other parent is left alone: a node that a script or a shell starts in
 * the background and leaves running (`watercraft serve … &`, an init script)
 * must outlive it, as every server does. No runtime tells a process that its
 * parent went away, so the parent is polled; which program the parent is
 * comes from Linux's `/proc`, and where there is none nothing is watched.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import process from "node:process";

/** How often the parent is checked, ms. */
const CHECK_MS = 1_000;

/**
 * Program names (as `/proc/PID/comm` gives them, at most 15 bytes) of the
 * runtimes and package runners that start the node as their child. npm
 * renames its process `npm exec …`.
 */
const WRAPPER_NAME = /^(node|nodejs|deno|bun|bunx|npm|npx|pnpm|yarn|tsx)(\s|$)/;

/**
 * The program name of process `pid`, or null where it cannot be read (no
 * `/proc`, or the process is gone).
 *
 * @param pid The process.
 * @returns Its name.
 */
export function programName(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return null;
  }
}

/**
 * Whether a parent named `name` is a wrapper whose exit should stop the node.
 *
 * @param name The parent's program name, or null when unknown.
 * @returns True for a JavaScript runtime or package runner.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { isWrapper } from "./parent_watch.ts";
 *
 * strictEqual(isWrapper("npm exec waterc"), true);
 * strictEqual(isWrapper("bash"), false);
 * strictEqual(isWrapper(null), false);
 * ```
 */
export function isWrapper(name: string | null): boolean {
  return name !== null && WRAPPER_NAME.test(name);
}

/**
 * Calls `onExit` once when the wrapper that started this process exits.
 *
 * @param onExit Called with no argument, at most once.
 * @returns A function that stops watching; null when the parent is not a
 *   wrapper (or cannot be known) and nothing is watched.
 */
export function watchWrapperExit(onExit: () => void): (() => void) | null {
  const parent = process.ppid;
  if (!isWrapper(programName(parent))) return null;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onExit();
  }, CHECK_MS);
  (timer as { unref?: () => void }).unref?.();
  return () => clearInterval(timer);
}
