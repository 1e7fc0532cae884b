/**
 * Storage in memory: for tests, examples and nodes that may forget
 * everything when the process ends.
 *
 * @module
 */

import type { Entry } from "../core/entry.ts";
import type { HardState } from "../core/types.ts";
import {
  checkBatch,
  checkSnapshot,
  type LogBounds,
  type PersistedState,
  type Snapshot,
  type Storage,
} from "./storage.ts";

/**
 * Creates a storage that keeps everything in memory. "Durable" here means
 * "until the process exits": a node on it loses its log when it stops. The
 * same object may be handed to a new node in the same process to simulate a
 * restart. It refuses the batches and snapshots the durable adapters refuse
 * (see {@linkcode checkBatch}), but not their call protocol: calls may come
 * before `load` and after `close`, as a simulated restart needs.
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
  const log: LogBounds = {
    get snapshotIndex() {
      return snapshot?.meta.index ?? 0;
    },
    get lastIndex() {
      return (snapshot?.meta.index ?? 0) + entries.length;
    },
  };
  const first = () => log.snapshotIndex + 1;
  return {
    load(): Promise<PersistedState> {
      return Promise.resolve({ hardState, snapshot, entries: [...entries] });
    },
    save(hard: HardState | null, batch: readonly Entry[]): Promise<void> {
      try {
        checkBatch(batch, log);
      } catch (error) {
        return Promise.reject(error);
      }
      const head = batch[0];
      if (head !== undefined) {
        entries.length = head.index - first();
        entries.push(...batch);
      }
      if (hard !== null) hardState = hard;
      return Promise.resolve();
    },
    saveSnapshot(next: Snapshot): Promise<void> {
      try {
        checkSnapshot(next, log);
      } catch (error) {
        return Promise.reject(error);
      }
      // Entries after the snapshot stay when they continue its chain.
      const current = snapshot?.meta;
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
