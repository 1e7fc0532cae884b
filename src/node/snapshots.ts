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
  /** Asks the ready loop to run: a snapshot taken in the background is ready. */
  schedule(): void;
  /** Stops the node after an error it cannot recover from. */
  fail(error: unknown): void;
}

/** A snapshot being taken while entries go on being applied. */
interface Background {
  /** The index it stands at. */
  readonly index: number;
  /** Its data, once serialised. */
  data: Uint8Array | null;
}

/** Installs and takes a node's snapshots. */
export class Snapshots {
  readonly #host: SnapshotHost;
  /** The snapshot being taken in the background, if any. */
  #background: Background | null = null;
  /** The snapshot being written beside the log, if any. */
  #writing: Promise<void> | null = null;

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
    // One snapshot write at a time: ours, older, must not land after this one.
    await this.idle();
    await this.#host.storage.saveSnapshot(snapshot);
    await this.#host.applier.restore(snapshot.data);
    this.#host.stats.snapshotsInstalled++;
    return snapshot.meta.index;
  }

  /**
   * Whether {@linkcode Snapshots.maybeTake} has work now: a snapshot taken
   * in the background is ready, or one is due and none is being taken. The
   * ready loop runs while this holds, so a snapshot that came due while
   * another was written is taken once that write ends, not at the next
   * batch, which may never come.
   */
  get ready(): boolean {
    if (this.#writing !== null) return false;
    if (this.#background !== null) return this.#background.data !== null;
    return this.#due();
  }

  /**
   * Snapshots the state machine and compacts the log once `snapshotEvery`
   * entries were applied since the last snapshot. The snapshot holds the
   * state machine's bytes and the idempotency keys (replicated state too).
   * With a state machine that can snapshot in the background, this starts
   * one and returns; a later call, once it is {@linkcode Snapshots.ready},
   * compacts and saves it.
   */
  async maybeTake(): Promise<void> {
    // Nothing to do, or one is being taken or written: the end of that
    // runs the loop again.
    if (!this.ready) return;
    const background = this.#background;
    if (background !== null) {
      this.#background = null;
      return await this.#compact(background.index, background.data!);
    }
    // The state machine stands at the index applied now: this is called
    // from the ready loop, the only code that applies, between passes.
    const index = this.#host.raft().log.applied;
    const taking = this.#host.applier.snapshotInBackground();
    if (taking !== null) {
      const started: Background = { index, data: null };
      this.#background = started;
      taking.then((data) => {
        started.data = data;
        this.#host.schedule();
      }, (error) => this.#host.fail(error));
      return;
    }
    // Nothing applies while we await (the ready loop awaits this).
    await this.#compact(index, await this.#host.applier.snapshot());
  }

  /** Whether `snapshotEvery` entries were applied since the last snapshot. */
  #due(): boolean {
    const raft = this.#host.raft();
    return raft.log.applied - raft.snapshot.index >= this.#host.settings.snapshotEvery;
  }

  /** Compacts the log behind `index` into `data` and saves the snapshot. */
  async #compact(index: number, data: Uint8Array): Promise<void> {
    const raft = this.#host.raft();
    const { settings } = this.#host;
    // A leader's snapshot may have been stepped in while the state machine
    // took ours (messages arrive between our awaits): it stands at or past
    // `index`, and already replaced the log this one would compact.
    if (raft.snapshot.index >= index) return;
    const meta = raft.compact(index, data, { keepEntries: settings.snapshotKeepEntries });
    const { storage, stats } = this.#host;
    if (storage.saveSnapshotBeside === undefined) {
      await storage.saveSnapshot({ meta, data });
      stats.snapshotsTaken++;
      return;
    }
    // Written beside the log, so that the loop goes on persisting and
    // applying meanwhile: the snapshot's entries are durable already, and
    // until it is, a restart recovers from them. A failed write stops the
    // node, as a failed save would.
    this.#writing = storage.saveSnapshotBeside({ meta, data }).then(
      () => {
        stats.snapshotsTaken++;
      },
      (error) => this.#host.fail(error),
    ).finally(() => {
      this.#writing = null;
      this.#host.schedule();
    });
  }

  /** Resolves once no snapshot is being written beside the log. */
  async idle(): Promise<void> {
    for (let guard = 0; guard < 1_000 && this.#writing !== null; guard++) await this.#writing;
  }
}
