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
 * - `load` fails loudly with a {@linkcode CorruptLogError} (naming the
 *   file/key and offset) on corruption other than a torn tail, rather than
 *   return a log with a hole.
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

/**
 * Thrown by `load` when the stored state is damaged in a way a crash cannot
 * explain (a bad record before the tail, a missing segment or key, a broken
 * hash chain). The node must not start: repair or restore the storage, or
 * wipe it and let the node catch up from its peers.
 *
 * @example Telling damage from other failures
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { CorruptLogError } from "./storage.ts";
 *
 * const error: unknown = new CorruptLogError("log-0000000000000001.wal", 12, "bad checksum");
 * ok(error instanceof CorruptLogError && error.offset === 12);
 * ```
 */
export class CorruptLogError extends Error {
  /**
   * The damaged file or KV key (or the directory or key prefix, for a missing
   * segment or a broken chain).
   */
  readonly path: string;
  /** Byte offset of the bad record in `path`, or null when no one record is at fault. */
  readonly offset: number | null;

  /**
   * Creates the error.
   *
   * @param path The file, directory or KV key at fault.
   * @param offset The byte offset of the bad record, or null.
   * @param reason What is wrong.
   */
  constructor(path: string, offset: number | null, reason: string) {
    super(
      offset === null
        ? `Cannot load ${path}: ${reason}`
        : `Cannot load ${path}: bad record at offset ${offset}: ${reason}`,
    );
    this.name = "CorruptLogError";
    this.path = path;
    this.offset = offset;
  }
}
