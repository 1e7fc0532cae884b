/**
 * Storage in memory: for tests, examples and nodes that may forget
 * everything when the process ends.
 *
 * @module
 */

import type { Entry } from "../core/entry.ts";
import type { HardState } from "../core/types.ts";
import type { PersistedState, Snapshot, Storage } from "./storage.ts";

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
  let snapshot: Snapshot | null = null;
  let entries: Entry[] = [];
  const first = () => (snapshot?.meta.index ?? 0) + 1;
  return {
    load(): Promise<PersistedState> {
      return Promise.resolve({ hardState, snapshot, entries: [...entries] });
    },
    save(hard: HardState | null, batch: readonly Entry[]): Promise<void> {
      const head = batch[0];
      if (head !== undefined) {
        const at = head.index - first();
        if (at < 0 || at > entries.length) {
          return Promise.reject(
            new RangeError(
              `Cannot save entry ${head.index}: the log holds ${first()}..${
                first() + entries.length - 1
              }`,
            ),
          );
        }
        entries.length = at;
        entries.push(...batch);
      }
      if (hard !== null) hardState = hard;
      return Promise.resolve();
    },
    saveSnapshot(next: Snapshot): Promise<void> {
      const current = snapshot?.meta;
      if (current !== undefined && next.meta.index < current.index) {
        return Promise.reject(
          new RangeError(`Cannot save snapshot ${next.meta.index} over the newer ${current.index}`),
        );
      }
      // Entries after the snapshot stay when they continue its chain.
      const at = next.meta.index - first();
      const continues = at === -1
        ? current?.hash === next.meta.hash
        : at >= 0 && entries[at]?.hash === next.meta.hash;
      entries = continues ? entries.slice(at + 1) : [];
      snapshot = next;
      return Promise.resolve();
    },
    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}
