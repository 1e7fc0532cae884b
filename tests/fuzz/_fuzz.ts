/**
 * What every fuzz test shares: one seed for all of fast-check's draws, read
 * from `FUZZ_SEED` (default {@linkcode DEFAULT_FUZZ_SEED}), so that a failure
 * in CI replays exactly on a developer's machine, and a bounded number of
 * runs per property, which `FUZZ_RUNS` may raise for a longer hunt.
 *
 * A failure names the seed and the command that replays it; fast-check's own
 * report below it holds the shrunk counterexample and its `path`.
 *
 * @module
 */

import fc from "fast-check";

/** The seed when `FUZZ_SEED` is not set: fixed, so CI runs the same cases every time. */
export const DEFAULT_FUZZ_SEED = 12_012;

/** The seed of this run: `FUZZ_SEED` or the default. */
export const FUZZ_SEED: number = readInteger("FUZZ_SEED") ?? DEFAULT_FUZZ_SEED;

/** Runs per property when `FUZZ_RUNS` is set (it replaces every property's default). */
const RUNS_OVERRIDE: number | undefined = readInteger("FUZZ_RUNS");

function readInteger(name: string): number | undefined {
  let text: string | undefined;
  try {
    text = Deno.env.get(name);
  } catch {
    // Without env permission the defaults stand: the run is still seeded.
    return undefined;
  }
  if (text === undefined || text.trim() === "") return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`${name} must be an integer, not ${JSON.stringify(text)}`);
  }
  return value;
}

/** Where a property lives, for the replay command in its failure. */
export interface FuzzOptions {
  /** Runs of the property in the test suite; `FUZZ_RUNS` replaces it. */
  readonly numRuns: number;
  /** The test file, relative to the repository root, for the replay command. */
  readonly file: string;
}

function parameters(options: FuzzOptions): fc.Parameters<unknown> {
  return { seed: FUZZ_SEED, numRuns: RUNS_OVERRIDE ?? options.numRuns };
}

function withSeed(error: unknown, options: FuzzOptions): Error {
  const message = error instanceof Error ? error.message : String(error);
  return new Error(
    `Fuzzing failed with FUZZ_SEED=${FUZZ_SEED}; replay it with ` +
      `FUZZ_SEED=${FUZZ_SEED} deno test -A ${options.file}\n${message}`,
    { cause: error },
  );
}

/**
 * Checks a synchronous property with the run's seed.
 *
 * @param property The property.
 * @param options Runs and the file, for the replay command.
 * @throws {Error} Naming the seed and the replay command, when a case fails.
 */
export function checkProperty<T>(property: fc.IProperty<T>, options: FuzzOptions): void {
  try {
    fc.assert(property, parameters(options) as fc.Parameters<T>);
  } catch (error) {
    throw withSeed(error, options);
  }
}

/**
 * Checks an asynchronous property with the run's seed.
 *
 * @param property The property.
 * @param options Runs and the file, for the replay command.
 * @throws {Error} Naming the seed and the replay command, when a case fails.
 */
export async function checkAsyncProperty<T>(
  property: fc.IAsyncProperty<T>,
  options: FuzzOptions,
): Promise<void> {
  try {
    await fc.assert(property, parameters(options) as fc.Parameters<T>);
  } catch (error) {
    throw withSeed(error, options);
  }
}
