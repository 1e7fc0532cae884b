/**
 * How a command that fails ends: one line on stderr, and an exit code
 * that says whose fault it was.
 *
 * @module
 */

import { ClientError } from "./client.ts";
import { EXIT_FAILURE, EXIT_USAGE, oneLine, UsageError } from "./flags.ts";
import type { Logger } from "./log.ts";

/**
 * Prints the one stderr line for an error that ends a command; returns its
 * exit code.
 *
 * @param error What was thrown.
 * @param log The node's logger, once its format is known: the line is then
 *   its `node.start_failed` error event (`watercraft: <msg>` in text, a
 *   JSON object in JSON). Before that, the plain line.
 * @returns {@linkcode EXIT_USAGE} for a usage error, else {@linkcode EXIT_FAILURE}.
 */
export function fail(error: unknown, log?: Logger): number {
  const msg = error instanceof UsageError
    ? error.message
    : error instanceof ClientError
    ? `${error.code}: ${oneLine(error)}`
    : oneLine(error);
  if (log === undefined) console.error(`watercraft: ${msg}`);
  else log.error("node.start_failed", { msg });
  return error instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
}
