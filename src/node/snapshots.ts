/**
 * Snapshots on one node: installing the one a leader sent (durable first,
 * then the state machine), and taking one, which compacts the log, once
 * `snapshotEvery` entries were applied since the last.
 *
 * @module
 */

import type { Raft } from "../core/raft.ts";
import type { Snapshot, Storage } from "../storage/storage.ts";
import type { Applier } from "./apply.ts";
import type { NodeStats } from "./metrics.ts";
import type { NodeSettings } from "./options.ts";

/** What {@linkcode Snapshots} works with. */
export interface SnapshotHost {
  /** The core. */
  raft(): Raft;
  /** Where snapshots are kept. */
  readonly storage: Storage;
  /** The state machine and the kept results. */
  readonly applier: Applier;
  /** How often, and how many entries to keep behind one. */
  readonly settings: Pick<NodeSettings, "snapshotEvery" | "snapshotKeepEntries">;
  /** Where they are counted. */
  readonly stats: NodeStats;
}

/** Installs and takes a node's snapshots. */
export class Snapshots {
  readonly #host: SnapshotHost;

  /**
   * Creates the snapshots of a node.
   *
   * @param host The node's parts.
   */
  constructor(host: SnapshotHost) {
    this.#host = host;
  }

  /**
   * Installs a snapshot from the leader, which replaces the log: durable
   * first, then the state machine.
   *
   * @param snapshot The snapshot the core took.
   * @returns The index the state machine now stands at.
   */
  async install(snapshot: Snapshot): Promise<number> {
    await this.#host.storage.saveSnapshot(snapshot);
    await this.#host.applier.restore(snapshot.data);
    this.#host.stats.snapshotsInstalled++;
    return snapshot.meta.index;
  }

  /**
   * Snapshots the state machine and compacts the log once `snapshotEvery`
   * entries were applied since the last snapshot. The snapshot holds the
   * state machine's bytes and the idempotency keys (replicated state too).
   */
  async maybeTake(): Promise<void> {
    const { settings } = this.#host;
    const raft = this.#host.raft();
    // Nothing applies while we await (applying happens only in the ready
    // loop, which awaits this), so the state machine's snapshot stands at
    // the index applied now: take the index before the await.
    const index = raft.log.applied;
    if (index - raft.snapshot.index < settings.snapshotEvery) return;
    const data = await this.#host.applier.snapshot();
    // A leader's snapshot may have been stepped in while the state machine
    // took ours (messages arrive between our awaits): it stands at or past
    // `index`, and already replaced the log this one would compact.
    if (raft.snapshot.index >= index) return;
    const meta = raft.compact(index, data, { keepEntries: settings.snapshotKeepEntries });
    await this.#host.storage.saveSnapshot({ meta, data });
    this.#host.stats.snapshotsTaken++;
  }
}
