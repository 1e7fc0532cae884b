/**
 * A node's disk in the simulator. Each write a node starts completes only
 * when the scheduler releases its completion event, so a crash can fall
 * between a write starting and finishing: the write then either reached the
 * platter (it is durable though never acknowledged) or not at all, as the
 * seed decides. What is durable is kept in a {@linkcode memoryStorage} (the
 * platter, which survives every crash) and mirrored for the checkers, who
 * read what a node has truly saved, not what it believes.
 *
 * The simulation asks a {@linkcode NodeDiskFactory} for one disk per node, so
 * that another medium can take this one's place: `file_disks.ts` runs the
 * real file adapter on a simulated file system, and is the default. A medium
 * need only hand out a fresh {@linkcode Storage} per node life, decide at a
 * crash what the interrupted write left, tell the checkers what is durable
 * and, if it can, inject faults ({@linkcode InjectableFaults}).
 *
 * @module
 */

import type { Entry, HardState, SnapshotMeta } from "../../../src/core/mod.ts";
import { memoryStorage } from "../../../src/storage/memory.ts";
import type { PersistedState, Snapshot, Storage } from "../../../src/storage/storage.ts";
import type { Prng } from "../../../src/core/mod.ts";
import type { SimScheduler } from "./scheduler.ts";

/** What is durable on a disk, as the checkers read it. */
export interface DurableView {
  /** The last hard state saved. */
  readonly hardState: HardState;
  /** Meta of the snapshot saved, or null. */
  readonly snapshot: SnapshotMeta | null;
  /** Hash of the durable entry at `index`, if the log (after the snapshot) holds one. */
  hashAt(index: number): string | undefined;
  /** Index of the last durable entry (the snapshot's when none follows it). */
  readonly lastIndex: number;
}

/** What the disk tells a checker whenever a write becomes durable. */
export interface DurableWatcher {
  /** A hard state and entries reached the platter. */
  saved(node: string, hardState: HardState | null, entries: readonly Entry[]): void;
  /** A snapshot reached the platter. */
  snapshotSaved(node: string, snapshot: Snapshot): void;
}

/**
 * How a node life ends: `power` is a power loss of its machine (unsynced
 * writes may be lost or torn), `process` a killed process (the operating
 * system keeps what it was given).
 */
export type CrashKind = "power" | "process";

/** What an injected fault made of an error a node stopped with. */
export type FaultCause =
  /** A failed fsync or a full disk: the node stopped itself, as it must (fail-stop). */
  | "io"
  /** A bit flipped at rest: the node refused to start, as it must. */
  | "corrupt";

/** Faults a disk can inject, between and during a node's writes. */
export interface InjectableFaults {
  /** Probability that a sync fails (0 once healed). */
  syncFailureRate: number;
  /** Fills the disk: writes past a few more bytes fail with `ENOSPC`. */
  fill(): void;
  /** Frees the disk (an operator made room). */
  freeSpace(): void;
  /**
   * Flips one bit at rest, on a disk whose node is down after a power loss.
   *
   * @returns Whether a bit flipped (false when the disk holds no byte, or the
   *   last stop was no power loss).
   */
  flipBit(): boolean;
  /**
   * Which injected fault, if any, explains an error a node stopped or failed
   * to start with.
   */
  explain(error: unknown): FaultCause | null;
  /** Faults injected so far. */
  readonly counts: FaultCounts;
}

/** Faults injected into one disk. */
export interface FaultCounts {
  /** Syncs that failed. */
  failedSyncs: number;
  /** Times the disk was filled. */
  fills: number;
  /** Bits flipped at rest. */
  flips: number;
}

/** One node's disk, across its lives. */
export interface NodeDisk {
  /**
   * The storage of a new node life: its writes complete as the scheduler
   * releases them, and belong to `life` (a crash discards their completion).
   */
  open(life: string): Storage;
  /** The life using the disk stopped: decides what its interrupted write left. */
  crash(kind: CrashKind): void;
  /** What is durable now. */
  readonly durable: DurableView;
  /** The faults it can inject; null for none. */
  readonly faults: InjectableFaults | null;
}

/** Creates the disk of one node. */
export type NodeDiskFactory = (node: string) => NodeDisk;

/** How a simulated disk behaves. */
export interface DiskFaults {
  /** Smallest write latency, ms. */
  readonly minWriteMs: number;
  /** Largest write latency, ms. */
  readonly maxWriteMs: number;
  /** Probability that a write interrupted by a crash reached the platter all the same. */
  readonly landsOnCrashRate: number;
  /**
   * A planted bug: the probability that a save is acknowledged without its
   * entries ever being written (for the mutation tests; 0 otherwise).
   */
  readonly skipSaveRate?: number;
}

/**
 * Creates the factory of memory-backed simulated disks.
 *
 * @param scheduler The event queue.
 * @param prng Decides latencies and what a crash leaves.
 * @param faults Latencies and crash behaviour.
 * @param watcher Hears every write that becomes durable.
 * @returns The factory.
 */
export function memoryDisks(
  scheduler: SimScheduler,
  prng: Prng,
  faults: DiskFaults,
  watcher: DurableWatcher,
): NodeDiskFactory {
  return (node) => new MemoryDisk(node, scheduler, prng, faults, watcher);
}

/** A write started and not yet durable. */
interface InFlight {
  /** Makes it durable (on the platter and in the mirror). */
  readonly land: () => Promise<void>;
}

class MemoryDisk implements NodeDisk {
  readonly #node: string;
  readonly #scheduler: SimScheduler;
  readonly #prng: Prng;
  readonly #faults: DiskFaults;
  readonly #watcher: DurableWatcher;
  readonly #platter: Storage = memoryStorage();
  #inFlight: InFlight | null = null;
  /** The life using the disk: a crashed life's late writes never start. */
  #life: string | null = null;
  // The mirror of the platter, for the checkers.
  #hardState: HardState = { term: 0, vote: null, commit: 0 };
  #snapshot: SnapshotMeta | null = null;
  /** Hashes of the entries after the snapshot, from index `snapshot + 1`. */
  #hashes: string[] = [];

  constructor(
    node: string,
    scheduler: SimScheduler,
    prng: Prng,
    faults: DiskFaults,
    watcher: DurableWatcher,
  ) {
    this.#node = node;
    this.#scheduler = scheduler;
    this.#prng = prng;
    this.#faults = faults;
    this.#watcher = watcher;
  }

  get durable(): DurableView {
    const first = (this.#snapshot?.index ?? 0) + 1;
    const hashes = this.#hashes;
    return {
      hardState: this.#hardState,
      snapshot: this.#snapshot,
      lastIndex: first - 1 + hashes.length,
      hashAt: (index) => hashes[index - first],
    };
  }

  open(life: string): Storage {
    this.#life = life;
    const platter = this.#platter;
    return {
      load: (): Promise<PersistedState> => platter.load(),
      save: (hardState, entries) => {
        const skip = (this.#faults.skipSaveRate ?? 0) > 0 && entries.length > 0 &&
          this.#prng.next() < this.#faults.skipSaveRate!;
        return this.#write(life, `save ${this.#node}`, async () => {
          if (skip) return;
          await platter.save(hardState, entries);
          this.#mirrorSave(hardState, entries);
          this.#watcher.saved(this.#node, hardState, entries);
        });
      },
      saveSnapshot: (snapshot) =>
        this.#write(life, `snapshot ${this.#node}`, async () => {
          await platter.saveSnapshot(snapshot);
          this.#mirrorSnapshot(snapshot.meta);
          this.#watcher.snapshotSaved(this.#node, snapshot);
        }),
      close: () => Promise.resolve(),
    };
  }

  readonly faults = null;

  crash(): void {
    this.#life = null;
    const interrupted = this.#inFlight;
    this.#inFlight = null;
    if (interrupted !== null && this.#prng.next() < this.#faults.landsOnCrashRate) {
      // It reached the platter, but no one heard: durable, unacknowledged.
      void interrupted.land();
    }
  }

  #write(life: string, label: string, land: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // A life that crashed is gone: what it still tries to write never happens.
      if (life !== this.#life) return;
      const write: InFlight = { land };
      this.#inFlight = write;
      const f = this.#faults;
      const latency = f.minWriteMs + this.#prng.next() * (f.maxWriteMs - f.minWriteMs);
      this.#scheduler.at(latency, label, () => {
        if (this.#inFlight === write) this.#inFlight = null;
        land().then(resolve, reject);
      }, { owner: life, holder: this.#node });
    });
  }

  #mirrorSave(hardState: HardState | null, entries: readonly Entry[]): void {
    if (hardState !== null) this.#hardState = hardState;
    const head = entries[0];
    if (head === undefined) return;
    const first = (this.#snapshot?.index ?? 0) + 1;
    this.#hashes.length = head.index - first;
    for (const e of entries) this.#hashes.push(e.hash);
  }

  #mirrorSnapshot(meta: SnapshotMeta): void {
    const first = (this.#snapshot?.index ?? 0) + 1;
    const at = meta.index - first;
    const continues = at === -1
      ? this.#snapshot?.hash === meta.hash
      : at >= 0 && this.#hashes[at] === meta.hash;
    this.#hashes = continues ? this.#hashes.slice(at + 1) : [];
    this.#snapshot = meta;
  }
}
