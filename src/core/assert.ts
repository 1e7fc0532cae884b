/**
 * Invariant checks for the core. A failed assertion is a bug (or corrupted
 * durable state), never an expected condition: callers must not catch it and
 * carry on.
 *
 * @module
 */

/** Thrown when an invariant of the Raft core does not hold. */
export class AssertionError extends Error {
  /**
   * Creates the error.
   *
   * @param message What invariant was broken.
   */
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

/**
 * Throws an {@linkcode AssertionError} unless `condition` holds.
 *
 * @param condition The invariant.
 * @param message What it means when the invariant is broken.
 * @throws {AssertionError} When `condition` is false.
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
