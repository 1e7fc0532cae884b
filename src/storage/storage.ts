/**
 * Where a node keeps what must survive a restart: its hard state (term,
 * vote, commit) and its log.
 *
 * @module
 */

import type { Entry } from "../core/entry.ts";
import type { HardState } from "../core/raft.ts";

/** Everything a node recovers at start-up. */
export interface PersistedState {
  /** The last hard state saved (term 0, no vote, commit 0 when empty). */
  readonly hardState: HardState;
  /** Every entry saved, consecutive from index 1. */
  readonly entries: readonly Entry[];
}

/**
 * Durable storage for one node.
 *
 * Contract: when a `save` promise resolves, what it wrote is durable: it
 * survives a crash of the process (and, for adapters that promise it, of the
 * machine) and `load` returns it. Calls are not concurrent: the node awaits
 * each `save` before the next. A `save` that rejects leaves the node unable
 * to continue safely; the node stops.
 */
export interface Storage {
  /** Reads the recovered state. Called once, before any `save`. */
  load(): Promise<PersistedState>;
  /**
   * Saves a hard state (when not null) and entries. When `entries[0].index`
   * is at or below the last saved index, every saved entry from that index
   * on is replaced.
   */
  save(hardState: HardState | null, entries: readonly Entry[]): Promise<void>;
  /** Releases the storage (files, locks, handles). */
  close(): Promise<void>;
}
