/**
 * What a node's storage acknowledged as durable, kept beside a simulated
 * file system: the checkers read it (a vote or an append answer may leave
 * only once it holds them; a committed entry must be in a majority of them),
 * and every restart checks it against what the real adapter loads from the
 * disk after the crash. A load must return exactly what was acknowledged,
 * or that plus the one write that was interrupted (whole, never in part):
 * so the mirror is never taken on trust, and a disk or adapter that loses an
 * acknowledged write is caught at the next start.
 *
 * @module
 */

import { type Entry, GENESIS_HASH } from "../../../src/core/entry.ts";
import type { HardState } from "../../../src/core/types.ts";
import type { PersistedState, Snapshot } from "../../../src/storage/storage.ts";
import type { DurableView } from "./sim_storage.ts";

/** One storage write, as the node called it. */
export type StorageCall =
  | { readonly kind: "save"; readonly hard: HardState | null; readonly entries: readonly Entry[] }
  | { readonly kind: "snapshot"; readonly snapshot: Snapshot };

/** A node's acknowledged durable state, applied call by call as the storage contract says. */
export class DurableMirror implements DurableView {
  #hardState: HardState = { term: 0, vote: null, commit: 0 };
  #snapshot: Snapshot | null = null;
  /** The entries after the snapshot, consecutive from `snapshot + 1`. */
  #entries: Entry[] = [];

  /** The last hard state acknowledged. */
  get hardState(): HardState {
    return this.#hardState;
  }

  /** Meta of the snapshot acknowledged, or null. */
  get snapshot(): Snapshot["meta"] | null {
    return this.#snapshot?.meta ?? null;
  }

  /** Index of the last acknowledged entry (the snapshot's when none follows it). */
  get lastIndex(): number {
    return this.#first() - 1 + this.#entries.length;
  }

  /**
   * The hash of the acknowledged entry at `index`.
   *
   * @param index The index.
   * @returns Its hash, or undefined when the log after the snapshot holds none there.
   */
  hashAt(index: number): string | undefined {
    return this.#entries[index - this.#first()]?.hash;
  }

  /**
   * The state a load must return if nothing else was written.
   *
   * @returns Hard state, snapshot and entries.
   */
  state(): PersistedState {
    return { hardState: this.#hardState, snapshot: this.#snapshot, entries: this.#entries };
  }

  /**
   * Applies an acknowledged write.
   *
   * @param call The write.
   */
  apply(call: StorageCall): void {
    if (call.kind === "save") {
      if (call.hard !== null) this.#hardState = call.hard;
      const head = call.entries[0];
      if (head === undefined) return;
      this.#entries = this.#entries.slice(0, Math.max(0, head.index - this.#first()));
      this.#entries.push(...call.entries);
      return;
    }
    const { meta } = call.snapshot;
    const first = this.#first();
    const at = meta.index - first;
    const prevHash = this.#snapshot?.meta.hash ?? GENESIS_HASH;
    // Entries after the snapshot stay only when they continue its chain.
    const continues = at === -1 ? prevHash === meta.hash : this.#entries[at]?.hash === meta.hash;
    this.#entries = continues ? this.#entries.slice(at + 1) : [];
    this.#snapshot = call.snapshot;
  }

  /**
   * Replaces the mirror with what a load returned (once checked).
   *
   * @param state The loaded state.
   */
  reset(state: PersistedState): void {
    this.#hardState = state.hardState;
    this.#snapshot = state.snapshot;
    this.#entries = [...state.entries];
  }

  /**
   * A copy, to try a write on without changing this one.
   *
   * @returns The copy.
   */
  clone(): DurableMirror {
    const copy = new DurableMirror();
    copy.reset(this.state());
    return copy;
  }

  #first(): number {
    return (this.#snapshot?.meta.index ?? 0) + 1;
  }
}

/**
 * Whether two recovered states are the same: hard state, snapshot (meta and
 * bytes) and entries (by index, term and hash, which covers their bytes).
 *
 * @param a One state.
 * @param b The other.
 * @returns True when equal.
 */
export function sameState(a: PersistedState, b: PersistedState): boolean {
  const ha = a.hardState;
  const hb = b.hardState;
  if (ha.term !== hb.term || ha.vote !== hb.vote || ha.commit !== hb.commit) return false;
  const sa = a.snapshot;
  const sb = b.snapshot;
  if ((sa === null) !== (sb === null)) return false;
  if (sa !== null && sb !== null) {
    if (sa.meta.index !== sb.meta.index || sa.meta.hash !== sb.meta.hash) return false;
    if (!equalBytes(sa.data, sb.data)) return false;
  }
  if (a.entries.length !== b.entries.length) return false;
  return a.entries.every((e, i) => {
    const f = b.entries[i]!;
    return e.index === f.index && e.term === f.term && e.hash === f.hash;
  });
}

/**
 * A short description of a recovered state, for violation messages.
 *
 * @param state The state.
 * @returns Hard state, snapshot index and the range of entries.
 */
export function describeState(state: PersistedState): string {
  const snap = state.snapshot?.meta.index ?? 0;
  const h = state.hardState;
  return `term ${h.term} vote ${h.vote} commit ${h.commit}, snapshot ${snap}, entries ${
    snap + 1
  }..${snap + state.entries.length}`;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
