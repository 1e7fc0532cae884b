/**
 * The node simulator's default disks: the real file adapter
 * (`fileStorage(dir, { fs })`, its record format, segments, snapshot file and
 * recovery) on a {@linkcode SimDisk} per node, a simulated file system that
 * loses unsynced writes, tears the last one, fails fsyncs, fills up and
 * flips bits at rest. Every file operation completes when the simulation's
 * scheduler releases it, so a crash can fall between any two of them.
 *
 * The checkers read a {@linkcode DurableMirror} of what the adapter
 * acknowledged, and every start checks it against what the adapter loads
 * from the disk: exactly the acknowledged writes, plus at most the one write
 * that was interrupted, whole. A lost or altered acknowledged write is a
 * violation there, whatever the checkers had counted on.
 *
 * Faults: a power loss ({@linkcode SimDisk.crash}) or a killed process
 * ({@linkcode SimDisk.killProcess}) ends a node life; a failed fsync or a full
 * disk makes the node stop itself (fail-stop, as the storage contract says),
 * after which an operator restarts it; a bit flipped at rest on a node that
 * is down must make its next start refuse with a `CorruptLogError` (or, when
 * the bit was in data never acknowledged, load what was).
 *
 * @module
 */

import type { Prng } from "../../../src/core/mod.ts";
import type { FileSystem } from "../../../src/storage/file/file_system.ts";
import { fileStorage } from "../../../src/storage/file/storage.ts";
import {
  CorruptLogError,
  type PersistedState,
  type Storage,
} from "../../../src/storage/storage.ts";
import { SimDisk } from "../disk.ts";
import { describeState, DurableMirror, sameState, type StorageCall } from "./durable_mirror.ts";
import { NodeViolation } from "./invariants.ts";
import type { SimScheduler } from "./scheduler.ts";
import type {
  CrashKind,
  DurableView,
  DurableWatcher,
  FaultCause,
  FaultCounts,
  InjectableFaults,
  NodeDisk,
  NodeDiskFactory,
} from "./sim_storage.ts";

/** How the file disks of one simulation behave. */
export interface FileDiskOptions {
  /** Decides each disk's crash outcomes, failed syncs and flipped bits (with the node's id). */
  readonly seed: number;
  /** Smallest latency of one file operation, ms. */
  readonly minOpMs: number;
  /** Largest latency of one file operation, ms. */
  readonly maxOpMs: number;
  /** The adapter's segment size: small ones rotate and delete segments often. */
  readonly segmentBytes: number;
  /** Probability that a sync fails, until healed. */
  readonly syncFailureRate: number;
  /**
   * A planted bug: the probability that a save is acknowledged without being
   * written (for the mutation tests; 0 otherwise).
   */
  readonly skipSaveRate?: number;
}

/** Where a node keeps its files on its disk. */
const DATA_DIR = "/watercraft";

/** How deep an error's `cause` chain is searched for an injected fault. */
const CAUSE_DEPTH_MAX = 8;

/**
 * Creates the factory of file disks.
 *
 * @param scheduler The event queue every file operation completes through.
 * @param prng Decides latencies and the bytes left free when a disk fills.
 * @param options Latencies, segment size, fault rates.
 * @param watcher Hears every write the adapter acknowledges.
 * @returns The factory.
 */
export function fileDisks(
  scheduler: SimScheduler,
  prng: Prng,
  options: FileDiskOptions,
  watcher: DurableWatcher,
): NodeDiskFactory {
  return (node) => new FileDisk(node, { scheduler, prng, options, watcher });
}

/** What one {@linkcode FileDisk} works with. */
interface FileDiskContext {
  readonly scheduler: SimScheduler;
  readonly prng: Prng;
  readonly options: FileDiskOptions;
  readonly watcher: DurableWatcher;
}

class FileDisk implements NodeDisk, InjectableFaults {
  readonly #node: string;
  readonly #ctx: FileDiskContext;
  readonly #fs: SimDisk;
  readonly #mirror = new DurableMirror();
  /**
   * The writes begun and not acknowledged, oldest first: those that may have
   * reached the disk or not. Calls overlap only when a snapshot is written
   * beside the log, and after a failed one the storage refuses every other,
   * so there are few.
   */
  #uncertain: StorageCall[] = [];
  /** The life using the disk: file operations belong to it. */
  #life: string | null = null;
  /** How the last life ended; bits flip only on a disk at rest after a power loss. */
  #lastStop: CrashKind | null = null;
  /** Bits flipped since the last successful load: what may explain a corrupt log. */
  #flipsUnloaded = 0;
  #fills = 0;
  #flips = 0;

  constructor(node: string, ctx: FileDiskContext) {
    this.#node = node;
    this.#ctx = ctx;
    this.#fs = new SimDisk({
      seed: (ctx.options.seed ^ hashString(node)) >>> 0,
      syncFailureRate: ctx.options.syncFailureRate,
      schedule: (complete) => {
        const { minOpMs, maxOpMs } = ctx.options;
        const latency = minOpMs + ctx.prng.next() * (maxOpMs - minOpMs);
        ctx.scheduler.at(latency, `disk ${node}`, complete, { owner: this.#life, holder: node });
      },
    });
  }

  // ------------------------------------------------------------ NodeDisk

  get durable(): DurableView {
    return this.#mirror;
  }

  get faults(): InjectableFaults {
    return this;
  }

  open(life: string): Storage {
    this.#life = life;
    const inner = fileStorage(`${DATA_DIR}/${this.#node}`, {
      fs: this.#lifeFs(life),
      segmentBytes: this.#ctx.options.segmentBytes,
      onWarning: () => {},
    });
    const skipRate = this.#ctx.options.skipSaveRate ?? 0;
    return {
      load: async () => {
        const state = await inner.load();
        this.#loaded(state);
        return state;
      },
      save: (hard, entries) => {
        if (skipRate > 0 && entries.length > 0 && this.#ctx.prng.next() < skipRate) {
          return Promise.resolve();
        }
        return this.#write({ kind: "save", hard, entries }, () => inner.save(hard, entries));
      },
      saveSnapshot: (snapshot) =>
        this.#write({ kind: "snapshot", snapshot }, () => inner.saveSnapshot(snapshot)),
      saveSnapshotBeside: (snapshot) =>
        this.#write({ kind: "snapshot", snapshot }, () => inner.saveSnapshotBeside!(snapshot)),
      close: () => inner.close(),
    };
  }

  crash(kind: CrashKind): void {
    this.#life = null;
    this.#lastStop = kind;
    if (kind === "power") this.#fs.crash();
    else this.#fs.killProcess();
  }

  // ------------------------------------------------------------ InjectableFaults

  get syncFailureRate(): number {
    return this.#fs.syncFailureRate;
  }

  set syncFailureRate(rate: number) {
    this.#fs.syncFailureRate = rate;
  }

  get counts(): FaultCounts {
    return { failedSyncs: this.#fs.failedSyncs, fills: this.#fills, flips: this.#flips };
  }

  fill(): void {
    this.#fills++;
    this.#fs.capacityBytes = this.#fs.usedBytes + Math.floor(this.#ctx.prng.next() * 4096);
  }

  freeSpace(): void {
    this.#fs.capacityBytes = Infinity;
  }

  flipBit(): boolean {
    if (this.#life !== null || this.#lastStop !== "power") return false;
    if (this.#fs.flipBit() === null) return false;
    this.#flips++;
    this.#flipsUnloaded++;
    return true;
  }

  explain(error: unknown): FaultCause | null {
    let e: unknown = error;
    for (let depth = 0; depth < CAUSE_DEPTH_MAX && e instanceof Error; depth++) {
      if (e instanceof CorruptLogError && this.#flipsUnloaded > 0) return "corrupt";
      const code = (e as { code?: unknown }).code;
      if (code === "EIO" && this.#fs.failedSyncs > 0) return "io";
      if (code === "ENOSPC" && this.#fills > 0) return "io";
      e = e.cause;
    }
    return null;
  }

  // ------------------------------------------------------------ plumbing

  /**
   * The disk as one node life sees it: once the life is over, what it asks
   * of the disk never happens (a dead process does nothing), even if some
   * of its code still runs. Open files need no guard: the disk's handles die
   * with the process already.
   *
   * It has no `openSynced` (the disk is made without `synchronizedWrites`):
   * a save stays a write, then an fdatasync, each scheduled when the storage
   * asks for it, as when the regression seeds were found; the synchronized
   * write is the same two operations, but its sync comes a few microtasks
   * sooner, which moves every seed's story. The storage's own crash stories
   * run both.
   */
  #lifeFs(life: string): FileSystem {
    const fs = this.#fs;
    const alive = <T>(op: () => Promise<T>): Promise<T> =>
      this.#life === life ? op() : new Promise<T>(() => {});
    return {
      mkdir: (path) => alive(() => fs.mkdir(path)),
      readdir: (path) => alive(() => fs.readdir(path)),
      readFile: (path) => alive(() => fs.readFile(path)),
      open: (path, flags) => alive(() => fs.open(path, flags)),
      rename: (from, to) => alive(() => fs.rename(from, to)),
      unlink: (path) => alive(() => fs.unlink(path)),
      syncDir: (path) => alive(() => fs.syncDir(path)),
      lock: (dir) => alive(() => fs.lock(dir)),
      unlock: (dir) => alive(() => fs.unlock(dir)),
    };
  }

  /** Runs a write; once the adapter acknowledges it, the mirror and the checkers hear of it. */
  async #write(call: StorageCall, run: () => Promise<void>): Promise<void> {
    this.#uncertain.push(call);
    await run();
    this.#uncertain = this.#uncertain.filter((c) => c !== call);
    this.#acknowledged(call);
  }

  #acknowledged(call: StorageCall): void {
    this.#mirror.apply(call);
    if (call.kind === "save") this.#ctx.watcher.saved(this.#node, call.hard, call.entries);
    else this.#ctx.watcher.snapshotSaved(this.#node, call.snapshot);
  }

  /** Checks what a start loaded against what was acknowledged; adopts it. */
  #loaded(state: PersistedState): void {
    const acknowledged = this.#mirror.state();
    const interrupted = this.#uncertain.slice(0, UNCERTAIN_MAX);
    this.#uncertain = [];
    this.#flipsUnloaded = 0;
    if (sameState(state, acknowledged)) return;
    // Any of the interrupted writes may have reached the disk whole
    // (durable, never acknowledged), each in the order it began.
    for (let landedSet = 1; landedSet < 1 << interrupted.length; landedSet++) {
      const landed = interrupted.filter((_, i) => (landedSet & (1 << i)) !== 0);
      const mirror = this.#mirror.clone();
      for (const call of landed) mirror.apply(call);
      if (sameState(state, mirror.state())) {
        for (const call of landed) this.#acknowledged(call);
        return;
      }
    }
    const kinds = interrupted.map((c) => c.kind).join(" and ");
    throw new NodeViolation(
      "acknowledged writes survive a restart",
      `${this.#node} loaded ${describeState(state)}; acknowledged: ${describeState(acknowledged)}${
        interrupted.length === 0 ? "" : `, or that and some of the interrupted ${kinds}`
      }`,
    );
  }
}

/** Interrupted writes considered at a restart: a snapshot beside the log, a save, a spare. */
const UNCERTAIN_MAX = 4;

function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
