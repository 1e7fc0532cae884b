/**
 * The in-memory Raft log: entries after the last snapshot, what of them is
 * durable, committed and applied, and which configuration is in force.
 *
 * Invariants: `snapshot.index <= applied <= committed <= lastIndex()`,
 * `stable <= lastIndex()`, entries are consecutive and hash-chained.
 *
 * @module
 */

import { assert } from "./assert.ts";
import { type Configuration, decodeConfig, EMPTY_CONFIG } from "./config.ts";
import { type Entry, entryBytes, GENESIS_HASH } from "./entry.ts";

/** What a snapshot stands for: the last entry it covers and the configuration then. */
export interface SnapshotMeta {
  /** Index of the last entry the snapshot covers (0: none). */
  readonly index: number;
  /** That entry's term. */
  readonly term: number;
  /** That entry's hash: the head at `index`. */
  readonly hash: string;
  /** The configuration in force at `index`. */
  readonly config: Configuration;
}

/** The snapshot point of a log that has never been compacted. */
export const EMPTY_SNAPSHOT: SnapshotMeta = {
  index: 0,
  term: 0,
  hash: GENESIS_HASH,
  config: EMPTY_CONFIG,
};

/** A term and index pair, as in conflict hints. */
export interface TermIndex {
  /** A log index: 1 for the first entry, 0 for none. */
  readonly index: number;
  /** The term of the entry at `index`; 0 when it is unknown (none, or compacted away). */
  readonly term: number;
}

/**
 * What the core lets others see of its log: reads only. The core hands out
 * this view (`Raft.log`) rather than the log itself, since a change made
 * from outside would bypass its invariants and its `ready()` bookkeeping.
 * Every value is current as of the call: the view follows the log as it
 * grows, commits, applies and compacts.
 */
export interface LogView {
  /** The snapshot the in-memory entries follow. */
  readonly snapshot: SnapshotMeta;
  /** Highest index known to be committed. */
  readonly committed: number;
  /** Highest index handed out for applying. */
  readonly applied: number;
  /** Highest index known to be durable on this node. */
  readonly stable: number;
  /**
   * Index of the last entry (the snapshot index when there is none after it).
   *
   * @returns The index.
   */
  lastIndex(): number;
  /**
   * Term of the last entry.
   *
   * @returns The term (the snapshot's when there is no entry after it).
   */
  lastTerm(): number;
  /**
   * Hash of the last entry.
   *
   * @returns The hash (the snapshot's when there is no entry after it).
   */
  lastHash(): string;
  /**
   * Returns the term at `index`. Index 0 has term 0.
   *
   * @param index A log index.
   * @returns The term, or undefined when the index is compacted away or past the end.
   */
  term(index: number): number | undefined;
  /**
   * Returns the hash at `index`.
   *
   * @param index A log index.
   * @returns The hash, or undefined outside `[snapshot.index, lastIndex]`.
   */
  hash(index: number): string | undefined;
  /**
   * Returns the entry at `index` if it is in memory.
   *
   * @param index A log index.
   * @returns The entry, or undefined when it is compacted away or past the end.
   */
  entry(index: number): Entry | undefined;
  /**
   * Returns the index of the entry with this hash, if it is in memory.
   *
   * @param hash An entry's hash.
   * @returns Its index, or undefined.
   */
  indexOfHash(hash: string): number | undefined;
  /**
   * The configuration of the latest config entry in the log (or of the
   * snapshot): the one in force, committed or not (thesis §4.1).
   *
   * @returns The configuration and the index of the entry that set it.
   */
  config(): { readonly index: number; readonly config: Configuration };
}

/**
 * Returns a view of `log` that can only read it, for the core to hand out.
 *
 * @param log The log to show.
 * @returns A frozen object whose getters and methods read `log` at each call.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { EMPTY_SNAPSHOT, RaftLog, readOnlyLog } from "./log.ts";
 *
 * const view = readOnlyLog(new RaftLog(EMPTY_SNAPSHOT, [], 0));
 * strictEqual(view.lastIndex(), 0);
 * strictEqual("append" in view, false);
 * ```
 */
export function readOnlyLog(log: RaftLog): LogView {
  return Object.freeze({
    get snapshot(): SnapshotMeta {
      return log.snapshot;
    },
    get committed(): number {
      return log.committed;
    },
    get applied(): number {
      return log.applied;
    },
    get stable(): number {
      return log.stable;
    },
    lastIndex(): number {
      return log.lastIndex();
    },
    lastTerm(): number {
      return log.lastTerm();
    },
    lastHash(): string {
      return log.lastHash();
    },
    term(index: number): number | undefined {
      return log.term(index);
    },
    hash(index: number): string | undefined {
      return log.hash(index);
    },
    entry(index: number): Entry | undefined {
      return log.entry(index);
    },
    indexOfHash(hash: string): number | undefined {
      return log.indexOfHash(hash);
    },
    config(): { readonly index: number; readonly config: Configuration } {
      return log.config();
    },
  });
}

/**
 * The replicated log as one node holds it. Only the core holds one and
 * changes it; others get a {@linkcode LogView} of it.
 */
export class RaftLog implements LogView {
  #snapshot: SnapshotMeta;
  #entries: Entry[] = [];
  #byHash = new Map<string, number>();
  #configIndexes: number[] = [];
  #config: { index: number; config: Configuration };
  #committed: number;
  #applied: number;
  #stable: number;
  /** Index of the config entry the snapshot's configuration came from (the snapshot's own index if unknown). */
  #snapConfigIndex: number;

  /**
   * Creates a log from recovered state.
   *
   * @param snapshot The snapshot the entries follow.
   * @param entries Durable entries after the snapshot, consecutive.
   * @param committed The durable commit index.
   */
  constructor(
    snapshot: SnapshotMeta,
    entries: readonly Entry[],
    committed: number,
  ) {
    this.#snapshot = snapshot;
    this.#snapConfigIndex = snapshot.index;
    this.#config = { index: snapshot.index, config: snapshot.config };
    this.#committed = snapshot.index;
    this.#applied = snapshot.index;
    this.#stable = snapshot.index;
    if (entries.length > 0) this.append(entries);
    this.#stable = this.lastIndex();
    this.#committed = Math.max(snapshot.index, Math.min(committed, this.lastIndex()));
  }

  /** The snapshot the in-memory entries follow. */
  get snapshot(): SnapshotMeta {
    return this.#snapshot;
  }

  /** Highest index known to be committed. */
  get committed(): number {
    return this.#committed;
  }

  /** Highest index handed out for applying. */
  get applied(): number {
    return this.#applied;
  }

  /** Highest index known to be durable on this node. */
  get stable(): number {
    return this.#stable;
  }

  /** Index of the first entry held in memory. */
  firstIndex(): number {
    return this.#snapshot.index + 1;
  }

  /** Index of the last entry (the snapshot index when there is none after it). */
  lastIndex(): number {
    return this.#snapshot.index + this.#entries.length;
  }

  /** Term of the last entry. */
  lastTerm(): number {
    const last = this.#entries.at(-1);
    return last === undefined ? this.#snapshot.term : last.term;
  }

  /** Hash of the last entry. */
  lastHash(): string {
    const last = this.#entries.at(-1);
    return last === undefined ? this.#snapshot.hash : last.hash;
  }

  /**
   * Returns the term at `index`, or undefined when the index is compacted
   * away or past the end. Index 0 has term 0.
   */
  term(index: number): number | undefined {
    if (index === this.#snapshot.index) return this.#snapshot.term;
    return this.entry(index)?.term ?? (index === 0 ? 0 : undefined);
  }

  /** Returns the hash at `index`, or undefined outside `[snapshot.index, lastIndex]`. */
  hash(index: number): string | undefined {
    if (index === this.#snapshot.index) return this.#snapshot.hash;
    return this.entry(index)?.hash ?? (index === 0 ? GENESIS_HASH : undefined);
  }

  /** Returns the entry at `index` if it is in memory. */
  entry(index: number): Entry | undefined {
    return this.#entries[index - this.#snapshot.index - 1];
  }

  /** Returns the index of the entry with this hash, if it is in memory. */
  indexOfHash(hash: string): number | undefined {
    return this.#byHash.get(hash);
  }

  /**
   * Returns entries in `[lo, hi)`, stopping early once `maxBytes` is reached
   * (but always at least one entry when the range is not empty).
   */
  slice(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    assert(lo > this.#snapshot.index, `Cannot read compacted index ${lo}`);
    assert(hi <= this.lastIndex() + 1, `Cannot read past the last index: ${hi}`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.entry(i)!;
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** Whether the entry at `index` has this term and hash. */
  matches(index: number, term: number, hash: string): boolean {
    return this.term(index) === term && this.hash(index) === hash;
  }

  /**
   * Appends entries, first truncating every entry at or after
   * `entries[0].index`. Truncating committed entries is a safety violation.
   *
   * @returns Whether a suffix was truncated.
   */
  append(entries: readonly Entry[]): boolean {
    const first = entries[0];
    if (first === undefined) return false;
    assert(
      first.index > this.#committed,
      `Cannot overwrite committed index ${first.index} (committed ${this.#committed})`,
    );
    assert(first.index <= this.lastIndex() + 1, `Gap before index ${first.index}`);
    let truncated = false;
    if (first.index <= this.lastIndex()) {
      truncated = true;
      this.#truncateFrom(first.index);
    }
    for (const e of entries) {
      assert(e.index === this.lastIndex() + 1, `Entries are not consecutive at ${e.index}`);
      this.#entries.push(e);
      this.#byHash.set(e.hash, e.index);
      if (e.kind === "config") this.#configIndexes.push(e.index);
    }
    return truncated;
  }

  #truncateFrom(index: number): void {
    for (const e of this.#entries.splice(index - this.#snapshot.index - 1)) {
      this.#byHash.delete(e.hash);
    }
    while ((this.#configIndexes.at(-1) ?? 0) >= index) this.#configIndexes.pop();
    if (this.#config.index >= index) {
      this.#config = { index: this.#snapConfigIndex, config: this.#snapshot.config };
    }
    this.#stable = Math.min(this.#stable, index - 1);
  }

  /**
   * Finds where `entries` first differ from this log: the index of the first
   * entry that is new or conflicts (other term or hash), or 0 when all match.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matches(e.index, e.term, e.hash)) return e.index;
    }
    return 0;
  }

  /**
   * Returns the largest index at or below `index` whose term is at most
   * `term`, with that term: where a leader whose log has `term` at `index`
   * may next find agreement.
   */
  findConflictByTerm(index: number, term: number): TermIndex {
    let i = Math.min(index, this.lastIndex());
    for (; i > this.#snapshot.index; i--) {
      const t = this.term(i)!;
      if (t <= term) return { index: i, term: t };
    }
    return { index: i, term: this.term(i) ?? 0 };
  }

  /** Whether a log ending at (`lastIndex`, `lastTerm`) is at least as up to date as this one (§5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Raises the commit index; never lowers it. */
  commitTo(index: number): void {
    if (index <= this.#committed) return;
    assert(
      index <= this.lastIndex(),
      `Cannot commit ${index} past the last index ${this.lastIndex()}`,
    );
    this.#committed = index;
  }

  /** Entries not yet known durable. */
  unstableEntries(): Entry[] {
    return this.#entries.slice(this.#stable - this.#snapshot.index);
  }

  /**
   * Records that `persisted` (entries handed out by an earlier `ready()`) are
   * durable. Entries truncated away since then do not count: only the
   * longest prefix that is still in the log becomes stable.
   */
  stableTo(persisted: readonly Entry[]): void {
    for (let i = persisted.length - 1; i >= 0; i--) {
      const e = persisted[i]!;
      if (this.hash(e.index) === e.hash) {
        this.#stable = Math.max(this.#stable, e.index);
        return;
      }
    }
  }

  /** Entries committed but not yet handed out for applying, up to `maxBytes`. */
  nextCommitted(maxBytes = Infinity): Entry[] {
    if (this.#applied >= this.#committed) return [];
    return this.slice(this.#applied + 1, this.#committed + 1, maxBytes);
  }

  /** Records that entries up to `index` were handed out for applying. */
  appliedTo(index: number): void {
    assert(index <= this.#committed, `Cannot apply ${index} beyond commit ${this.#committed}`);
    this.#applied = Math.max(this.#applied, index);
  }

  /** The configuration in force before the latest config entry, or null when there is none in memory. */
  previousConfig(): Configuration | null {
    const index = this.#configIndexes.at(-2);
    if (index !== undefined) return decodeConfig(this.entry(index)!.data);
    return this.#configIndexes.length === 1 && this.#snapshot.index > 0
      ? this.#snapshot.config
      : null;
  }

  /** The configuration of the latest config entry in the log (or of the snapshot). */
  config(): { index: number; config: Configuration } {
    const index = this.#configIndexes.at(-1);
    if (index === undefined) {
      if (this.#config.index !== this.#snapConfigIndex) {
        this.#config = { index: this.#snapConfigIndex, config: this.#snapshot.config };
      }
    } else if (index !== this.#config.index) {
      this.#config = { index, config: decodeConfig(this.entry(index)!.data) };
    }
    return this.#config;
  }

  /** The configuration in force at `index` (at or after the snapshot). */
  configAt(index: number): Configuration {
    for (let i = this.#configIndexes.length - 1; i >= 0; i--) {
      const at = this.#configIndexes[i]!;
      if (at <= index) return decodeConfig(this.entry(at)!.data);
    }
    return this.#snapshot.config;
  }

  /** The snapshot metadata of `index`: its term, hash and configuration. */
  metaAt(index: number): SnapshotMeta {
    const term = this.term(index);
    const hash = this.hash(index);
    assert(term !== undefined && hash !== undefined, `Index ${index} is not in the log`);
    return { index, term, hash, config: this.configAt(index) };
  }

  /**
   * Drops the entries up to `index` (applied ones only): a snapshot of the
   * state machine at `index` now stands for them.
   *
   * @returns The new snapshot point.
   */
  compact(index: number): SnapshotMeta {
    assert(
      index > this.#snapshot.index,
      `Cannot compact to ${index}: the log starts after ${this.#snapshot.index}`,
    );
    assert(
      index <= this.#applied,
      `Cannot compact to ${index} beyond the applied index ${this.#applied}`,
    );
    const configIndex = this.#configIndexes.findLast((i) => i <= index) ?? this.#snapConfigIndex;
    const meta = this.metaAt(index);
    const dropped = this.#entries.splice(0, index - this.#snapshot.index);
    // Thousands go at once: when fewer stay, indexing those again is cheaper
    // than deleting each that goes.
    if (dropped.length > this.#entries.length) {
      this.#byHash = new Map(this.#entries.map((e) => [e.hash, e.index]));
    } else {
      for (const e of dropped) this.#byHash.delete(e.hash);
    }
    this.#configIndexes = this.#configIndexes.filter((i) => i > index);
    this.#snapshot = meta;
    this.#snapConfigIndex = configIndex;
    this.#stable = Math.max(this.#stable, index);
    return meta;
  }

  /**
   * Replaces the whole log with a snapshot received from the leader: every
   * entry is dropped and the snapshot's index is committed and applied.
   */
  restore(meta: SnapshotMeta): void {
    assert(
      meta.index > this.#committed,
      `Cannot restore snapshot ${meta.index} over commit ${this.#committed}`,
    );
    this.#entries = [];
    this.#byHash.clear();
    this.#configIndexes = [];
    this.#snapshot = meta;
    this.#snapConfigIndex = meta.index;
    this.#committed = meta.index;
    this.#applied = meta.index;
    this.#stable = meta.index;
  }
}
