/**
 * Where a node keeps what must survive a restart: its hard state (term,
 * vote, commit), its log, and the latest snapshot of its state machine.
 *
 * @module
 */

import type { Entry } from "../core/entry.ts";
import type { SnapshotMeta } from "../core/log.ts";
import type { HardState } from "../core/types.ts";

/** A state machine snapshot and the log position it stands for. */
export interface Snapshot {
  /** Index, term and hash of the last entry the snapshot covers, and the configuration then. */
  readonly meta: SnapshotMeta;
  /** The state machine's serialised state (plus anything the node adds). */
  readonly data: Uint8Array;
}

/** Everything a node recovers at start-up. */
export interface PersistedState {
  /** The last hard state saved (term 0, no vote, commit 0 when empty). */
  readonly hardState: HardState;
  /** The latest snapshot saved, or null. */
  readonly snapshot: Snapshot | null;
  /**
   * Every entry saved after the snapshot (from index 1 without one),
   * consecutive.
   */
  readonly entries: readonly Entry[];
}

/**
 * Durable storage for one node.
 *
 * Contract:
 * - When a promise resolves, what the call wrote is durable: it survives a
 *   crash of the process (and, for adapters that say so, of the machine),
 *   and `load` returns it. A torn write that never resolved may be lost but
 *   must never be read back as data.
 * - Calls are not concurrent: the node awaits each before the next.
 * - A rejected promise leaves the node unable to continue safely: the node
 *   stops. An adapter must not report success for a write it is unsure of.
 * - `load` fails loudly (naming the file/key and offset) on corruption other
 *   than a torn tail, rather than return a log with a hole.
 */
export interface Storage {
  /** Reads the recovered state. Called once, before any write. */
  load(): Promise<PersistedState>;
  /**
   * Saves a hard state (when not null) and entries (may be empty). When
   * `entries[0].index` is at or below the last saved index, every saved entry
   * from that index on is replaced. Hard state and entries of one call are
   * durable together when it resolves.
   */
  save(hardState: HardState | null, entries: readonly Entry[]): Promise<void>;
  /**
   * Saves a snapshot, replacing the previous one, and drops every saved
   * entry at or below `snapshot.meta.index`; entries after it are kept when
   * they continue the snapshot's chain, else all entries are dropped.
   */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /** Releases the storage (files, locks, handles). */
  close(): Promise<void>;
}
