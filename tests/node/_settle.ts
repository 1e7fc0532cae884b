/**
 * Helpers for tests of the driver's modules: watch how a promise settles
 * without awaiting it, so a test can advance a manual clock in between.
 *
 * @module
 */

/** What a watched promise came to, as far as is known. */
export type Seen<T> =
  | { state: "pending" }
  | { state: "fulfilled"; value: T }
  | { state: "rejected"; reason: unknown };

/**
 * Records how `promise` settles; handlers are attached at once, so no rejection goes unhandled.
 *
 * @param promise The promise to watch.
 * @returns A view of what it came to so far.
 */
export function watch<T>(promise: Promise<T>): { seen(): Seen<T> } {
  let seen: Seen<T> = { state: "pending" };
  promise.then(
    (value) => seen = { state: "fulfilled", value },
    (reason) => seen = { state: "rejected", reason },
  );
  return { seen: () => seen };
}

/** Lets settled promises run their handlers (no time passes). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await Promise.resolve();
}

/**
 * Returns what a watched promise was fulfilled with.
 *
 * @param seen What it came to.
 * @returns The value.
 * @throws {Error} When it was not fulfilled.
 */
export function fulfilled<T>(seen: Seen<T>): T {
  if (seen.state !== "fulfilled") throw new Error(`Expected fulfilled, got ${seen.state}`);
  return seen.value;
}

/**
 * Returns why a watched promise was rejected.
 *
 * @param seen What it came to.
 * @returns The reason.
 * @throws {Error} When it was not rejected.
 */
export function rejected<T>(seen: Seen<T>): unknown {
  if (seen.state !== "rejected") throw new Error(`Expected rejected, got ${seen.state}`);
  return seen.reason;
}
