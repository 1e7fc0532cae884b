/**
 * Storage in memory: for tests, examples and nodes that may forget
 * everything when the process ends.
 *
 * @module
 */

import type { Entry } from "../core/entry.ts";
import type { HardState } from "../core/raft.ts";
import type { PersistedState, Storage } from "./storage.ts";

/**
 * Creates a storage that keeps everything in memory. "Durable" here means
 * "until the process exits": a node on it loses its log when it stops. The
 * same object may be handed to a new node in the same process to simulate a
 * restart.
 *
 * @returns The storage.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { memoryStorage } from "./memory.ts";
 *
 * const storage = memoryStorage();
 * await storage.save({ term: 2, vote: "n1", commit: 0 }, []);
 * strictEqual((await storage.load()).hardState.term, 2);
 * ```
 */
export function memoryStorage(): Storage {
  let hardState: HardState = { term: 0, vote: null, commit: 0 };
  const entries: Entry[] = [];
  return {
    load(): Promise<PersistedState> {
      return Promise.resolve({ hardState, entries: [...entries] });
    },
    save(hard: HardState | null, batch: readonly Entry[]): Promise<void> {
      if (hard !== null) hardState = hard;
      const first = batch[0];
      if (first !== undefined) {
        if (first.index > entries.length + 1) {
          return Promise.reject(
            new RangeError(`Gap in the log: saving ${first.index} after ${entries.length}`),
          );
        }
        entries.length = first.index - 1;
        entries.push(...batch);
      }
      return Promise.resolve();
    },
    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}
