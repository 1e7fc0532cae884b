/**
 * Where a node keeps what must survive a restart: its hard state (term,
 * vote, commit), its log, and the latest snapshot of its state machine.
 *
 * This file holds the {@linkcode Storage} contract, the
 * {@linkcode StorageGuard} that enforces its call protocol for every durable
 * adapter (one call at a time, lazy open, batch checks, no write after a failed
 * one), and {@linkcode CorruptLogError}.
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

/** How a {@linkcode Storage.save} may go about it. */
export interface SaveOptions {
  /**
   * The caller has nothing to do until the save resolves (a follower
   * answers the leader only once its entries are durable): a store may wait
   * for its medium on the calling thread rather than hand the wait to
   * another thread, which costs a wake-up each way. Default false. A store
   * that cannot, or need not, ignores it.
   */
  readonly waitOnThread?: boolean;
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
  save(
    hardState: HardState | null,
    entries: readonly Entry[],
    options?: SaveOptions,
  ): Promise<void>;
  /**
   * Saves a snapshot, replacing the previous one, and drops every saved
   * entry at or below `snapshot.meta.index`; entries after it are kept when
   * they continue the snapshot's chain, else all entries are dropped.
   */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /**
   * Saves a snapshot as `saveSnapshot` does, while `save` calls go on: for
   * a snapshot the node took of its own state, whose entries are durable
   * already. One at a time, and no `load` or `saveSnapshot` meanwhile.
   * Optional: a store that cannot write a snapshot beside its log leaves it
   * out, and the node awaits `saveSnapshot` instead.
   */
  readonly saveSnapshotBeside?: (snapshot: Snapshot) => Promise<void>;
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

// ------------------------------------------------------------------ guard

/** Where a store's log stands: what a new batch or snapshot is checked against. */
export interface LogBounds {
  /** Index of the snapshot in force, 0 without one. */
  readonly snapshotIndex: number;
  /** Index of the last entry stored; `snapshotIndex` when no entry follows the snapshot. */
  readonly lastIndex: number;
}

/**
 * Checks that a batch may be saved on a log: its entries are consecutive and
 * the first one replaces a stored entry or follows the last, so the log keeps
 * no hole. (The hash chain is checked on load, where damage shows.)
 *
 * @param entries The batch; an empty one passes.
 * @param log Where the log stands.
 * @throws {RangeError} When the first entry is at or below the snapshot or past
 *   `lastIndex + 1`, or when the entries are not consecutive.
 *
 * @example A batch must follow what is stored
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { checkBatch } from "./storage.ts";
 *
 * const entry = { index: 7, term: 1, kind: "noop" as const, proposer: "n1", timeMs: 0, data: new Uint8Array(), hash: "" };
 * checkBatch([entry], { snapshotIndex: 0, lastIndex: 6 });
 * throws(() => checkBatch([entry], { snapshotIndex: 0, lastIndex: 5 }), /the log holds 1..5/);
 * ```
 */
export function checkBatch(entries: readonly Entry[], log: LogBounds): void {
  const head = entries[0];
  if (head === undefined) return;
  const first = log.snapshotIndex + 1;
  if (head.index < first || head.index > log.lastIndex + 1) {
    throw new RangeError(
      `Cannot save entry ${head.index}: the log holds ${first}..${log.lastIndex}`,
    );
  }
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.index !== head.index + i) {
      throw new RangeError(`Cannot save entries that are not consecutive at ${head.index + i}`);
    }
  }
}

/**
 * Checks that a snapshot may replace the one a log holds: it is not older.
 *
 * @param snapshot The snapshot to save.
 * @param log Where the log stands.
 * @throws {RangeError} When `snapshot` is below the snapshot in force.
 *
 * @example An older snapshot is refused
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { checkSnapshot } from "./storage.ts";
 *
 * const meta = { index: 3, term: 1, hash: "", config: { members: [] } };
 * throws(() => checkSnapshot({ meta, data: new Uint8Array() }, { snapshotIndex: 5, lastIndex: 9 }), RangeError);
 * ```
 */
export function checkSnapshot(snapshot: Snapshot, log: LogBounds): void {
  if (snapshot.meta.index < log.snapshotIndex) {
    throw new RangeError(
      `Cannot save a snapshot at index ${snapshot.meta.index}: the storage holds one at ${log.snapshotIndex}`,
    );
  }
}

/** How the guard's messages name one store: each adapter words its own place. */
export interface StorageNames {
  /** The store, as in `Cannot load: <store> is closed`, e.g. `/data/n1`. */
  readonly store: string;
  /**
   * Where writes go, as in `Cannot write <target> after an earlier write
   * failed`, e.g. `to /data/n1` or `under ["n1"]`.
   */
  readonly target: string;
  /**
   * The store as named when a call overlaps another, as in `Cannot save while
   * another call on <busy> is in progress`, or null to leave it unnamed.
   */
  readonly busy: string | null;
}

/**
 * What an adapter hands to {@linkcode StorageGuard}: how it reads and writes
 * its medium, and where its log stands (read after every call, so it must be
 * current whenever no call runs).
 *
 * Contract, which the guard keeps:
 * - One method runs at a time, `close` excepted; no `prepare*` before an
 *   `open` resolved; no `prepare*` after a write failed.
 * - `open` may be called again (each `load` reads the store afresh).
 * - `prepareSave` gets a batch that is not empty and passed
 *   {@linkcode checkBatch}; `prepareSnapshot` a snapshot that passed
 *   {@linkcode checkSnapshot}.
 * - A `prepare*` method encodes and checks what only the adapter can, and
 *   returns the write. What it throws refuses the call and leaves the storage
 *   usable; a write that rejects leaves the medium in an unknown state, and the
 *   guard refuses every later write.
 */
export interface StorageBackend extends LogBounds {
  /** How messages name this store. */
  readonly names: StorageNames;
  /** Reads the stored state and takes what the medium needs (locks, handles). */
  open(): Promise<PersistedState>;
  /** Encodes a checked batch; returns the write that makes it durable. */
  prepareSave(
    hardState: HardState | null,
    entries: readonly Entry[],
    options?: SaveOptions,
  ): () => Promise<void>;
  /**
   * Encodes a checked snapshot; returns the write that installs it. Left
   * out by a backend that has `prepareSnapshotBeside`: a snapshot saved in
   * one call then runs its two steps back to back.
   */
  prepareSnapshot?(snapshot: Snapshot): () => Promise<void>;
  /**
   * Optional: encodes a checked snapshot of entries already saved, and
   * returns its write in two steps. `write` makes it durable and may run
   * while saves do (it touches nothing they touch); `install` then drops
   * what it replaces, alone.
   */
  prepareSnapshotBeside?(snapshot: Snapshot): SnapshotSteps;
  /** Releases what `open` took; may run while a call is in flight. */
  close(): Promise<void>;
}

/** The two steps of a snapshot written beside the log: see {@linkcode StorageBackend.prepareSnapshotBeside}. */
export interface SnapshotSteps {
  /** Makes the snapshot durable; may run while saves do. */
  readonly write: () => Promise<void>;
  /** Drops what the snapshot replaces; runs alone. */
  readonly install: () => Promise<void>;
}

/**
 * The {@linkcode Storage} a durable adapter returns: it keeps the call
 * protocol of the contract, the adapter (a {@linkcode StorageBackend}) keeps
 * only how it reads and writes. It runs one call at a time and refuses an
 * overlapping one, opens the store on the first write when `load` was not
 * called, skips a save with nothing in it, checks every batch and snapshot
 * against the log, and after a failed write refuses every later write, citing
 * the first failure as the cause.
 *
 * Why a wrapper rather than an abstract base class or a helper the adapter
 * calls: the order of those steps is the contract, so it lives in one place
 * that an adapter cannot skip or reorder; the protocol's state (closed, busy,
 * failed) stays in `#` fields no adapter can touch, where a base class would
 * need `protected` hooks; and the guard can be tested on a fake backend and each
 * backend on its own.
 *
 * @example After a failed write, every write is refused
 * ```ts
 * import { rejects, strictEqual } from "node:assert/strict";
 * import { type StorageBackend, StorageGuard } from "./storage.ts";
 *
 * let writes = 0;
 * const backend: StorageBackend = {
 *   names: { store: "the test store", target: "to the test store", busy: null },
 *   snapshotIndex: 0,
 *   lastIndex: 0,
 *   open: () =>
 *     Promise.resolve({ hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [] }),
 *   prepareSave: () => () => writes++ === 0 ? Promise.reject(new Error("disk full")) : Promise.resolve(),
 *   prepareSnapshot: () => () => Promise.resolve(),
 *   close: () => Promise.resolve(),
 * };
 * const storage = new StorageGuard(backend);
 * const hard = { term: 1, vote: null, commit: 0 };
 * await rejects(storage.save(hard, []), /disk full/);
 * await rejects(storage.save(hard, []), /Cannot write to the test store after an earlier write failed/);
 * strictEqual(writes, 1);
 * ```
 */
export class StorageGuard implements Storage {
  readonly #backend: StorageBackend;
  /** "ready" once an `open` resolved; "closed" from `close` on, for good. */
  #state: "new" | "ready" | "closed" = "new";
  /** Whether a call runs: the contract says calls never overlap, so overlap is a bug. */
  #busy = false;
  /** Whether a snapshot is being written beside the log (its steps may wait for a save). */
  #beside = false;
  /** Resolved, and emptied, whenever a call ends. */
  #waiting: (() => void)[] = [];
  /** Saves a snapshot beside the log; present when the backend can. */
  readonly saveSnapshotBeside?: (snapshot: Snapshot) => Promise<void>;
  /** The first failed write's error, or null; once set, only `load` and `close` are served. */
  #failure: { readonly error: unknown } | null = null;

  /**
   * Wraps an adapter's backend.
   *
   * @param backend How the adapter reads and writes; the guard owns it from now on.
   */
  constructor(backend: StorageBackend) {
    if (backend.prepareSnapshot === undefined && backend.prepareSnapshotBeside === undefined) {
      throw new TypeError("A storage backend needs prepareSnapshot or prepareSnapshotBeside");
    }
    this.#backend = backend;
    if (backend.prepareSnapshotBeside !== undefined) {
      this.saveSnapshotBeside = (snapshot) => this.#saveBeside(snapshot);
    }
  }

  /**
   * Reads the recovered state (again, when called twice).
   *
   * @returns What the store holds.
   * @throws {Error} When closed or another call runs, or what the backend throws
   *   (a {@linkcode CorruptLogError} on damage).
   */
  load(): Promise<PersistedState> {
    return this.#exclusive("load", () => this.#open());
  }

  /**
   * Saves a hard state and a batch, as {@linkcode Storage.save} says.
   *
   * @param hardState The hard state, or null to keep the stored one.
   * @param entries The batch, possibly empty.
   * @param options How the backend may wait for its medium.
   * @returns When both are durable.
   * @throws {RangeError} When the batch does not follow the log (the storage
   *   stays usable).
   * @throws {Error} When closed, another call runs or an earlier write failed, or
   *   what the write throws (then every later write is refused).
   */
  save(
    hardState: HardState | null,
    entries: readonly Entry[],
    options?: SaveOptions,
  ): Promise<void> {
    const run = () =>
      this.#exclusive("save", async () => {
        await this.#ready();
        this.#checkWritable();
        if (hardState === null && entries.length === 0) return;
        checkBatch(entries, this.#backend);
        await this.#poisonOnFailure(this.#backend.prepareSave(hardState, entries, options));
      });
    // A snapshot written beside the log takes the store alone for its
    // first and last steps, both short: a save waits those out rather than
    // being refused.
    return this.#beside && this.#busy ? this.#besideStepDone().then(run) : run();
  }

  /**
   * Saves a snapshot, as {@linkcode Storage.saveSnapshot} says.
   *
   * @param snapshot The snapshot.
   * @returns When it is durable.
   * @throws {RangeError} When it is older than the stored one (the storage stays
   *   usable).
   * @throws {Error} When closed, another call runs or an earlier write failed, or
   *   what the write throws (then every later write is refused).
   */
  saveSnapshot(snapshot: Snapshot): Promise<void> {
    if (this.#beside) {
      return Promise.reject(
        new Error("Cannot save a snapshot while another is written beside the log"),
      );
    }
    return this.#exclusive("save a snapshot", async () => {
      await this.#ready();
      this.#checkWritable();
      checkSnapshot(snapshot, this.#backend);
      await this.#poisonOnFailure(this.#prepareSnapshot(snapshot));
    });
  }

  /** The write of a snapshot saved in one call: the backend's, or its two steps back to back. */
  #prepareSnapshot(snapshot: Snapshot): () => Promise<void> {
    const backend = this.#backend;
    if (backend.prepareSnapshotBeside === undefined) return backend.prepareSnapshot!(snapshot);
    const steps = backend.prepareSnapshotBeside(snapshot);
    return async () => {
      await steps.write();
      await steps.install();
    };
  }

  /**
   * Closes the store for good; a second call does nothing.
   *
   * @returns When the backend released what it held.
   */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    await this.#backend.close();
  }

  async #exclusive<T>(action: string, fn: () => Promise<T>): Promise<T> {
    const { store, busy } = this.#backend.names;
    if (this.#state === "closed") throw new Error(`Cannot ${action}: ${store} is closed`);
    if (this.#busy) {
      const on = busy === null ? "" : ` on ${busy}`;
      throw new Error(`Cannot ${action} while another call${on} is in progress`);
    }
    this.#busy = true;
    try {
      return await fn();
    } finally {
      this.#busy = false;
      const waiting = this.#waiting;
      this.#waiting = [];
      for (const wake of waiting) wake();
    }
  }

  /** Resolves once the call running now ends. */
  #callEnded(): Promise<void> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Resolves once no step of a snapshot written beside the log holds the store. */
  async #besideStepDone(): Promise<void> {
    for (let guard = 0; guard < 1_000 && this.#beside && this.#busy; guard++) {
      await this.#callEnded();
    }
  }

  /**
   * Writes a snapshot beside the log: checks and encodes it alone, writes it
   * while saves go on, then installs it alone once the save running then,
   * if any, ends.
   */
  async #saveBeside(snapshot: Snapshot): Promise<void> {
    if (this.#beside) {
      throw new Error("Cannot save a snapshot while another is written beside the log");
    }
    this.#beside = true;
    try {
      const steps = await this.#exclusive("save a snapshot", async () => {
        await this.#ready();
        this.#checkWritable();
        checkSnapshot(snapshot, this.#backend);
        return this.#backend.prepareSnapshotBeside!(snapshot);
      });
      this.#checkWritable();
      await this.#poisonOnFailure(steps.write);
      for (let guard = 0; guard < 1_000 && this.#busy; guard++) await this.#callEnded();
      await this.#exclusive("save a snapshot", async () => {
        this.#checkWritable();
        await this.#poisonOnFailure(steps.install);
      });
    } finally {
      this.#beside = false;
    }
  }

  async #open(): Promise<PersistedState> {
    const state = await this.#backend.open();
    // A `close` during the open wins: a closed store never comes back.
    if (this.#state === "new") this.#state = "ready";
    return state;
  }

  /** Lets a write come before `load`, which the contract does not promise. */
  async #ready(): Promise<void> {
    if (this.#state !== "ready") await this.#open();
  }

  #checkWritable(): void {
    if (this.#failure !== null) {
      throw new Error(
        `Cannot write ${this.#backend.names.target} after an earlier write failed`,
        { cause: this.#failure.error },
      );
    }
  }

  /** A failed write leaves the medium in an unknown state: refuse every later write. */
  async #poisonOnFailure(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.#failure = { error };
      throw error;
    }
  }
}
