/**
 * How a command that fails ends: one line on stderr, and an exit code
 * that says whose fault it was.
 *
 * @module
 */

import { ClientError } from "./client.ts";
import { EXIT_FAILURE, EXIT_USAGE, oneLine, UsageError } from "./flags.ts";

/**
 * Prints the one stderr line for an error that ends a command; returns its
 * exit code.
 *
 * @param error What was thrown.
 * @returns {@linkcode EXIT_USAGE} for a usage error, else {@linkcode EXIT_FAILURE}.
 */
export function fail(error: unknown): number {
  if (error instanceof UsageError) {
    console.error(`watercraft: ${error.message}`);
    return EXIT_USAGE;
  }
  if (error instanceof ClientError) {
    console.error(`watercraft: ${error.code}: ${oneLine(error)}`);
    return EXIT_FAILURE;
  }
  console.error(`watercraft: ${oneLine(error)}`);
  return EXIT_FAILURE;
}
