/**
 * Following a node's committed log from outside: the entries it applies, in
 * order, with their hashes and outcomes, and the leader changes between
 * them.
 *
 * A watcher holds no copy of the entries: it is a cursor into the node's
 * in-memory log, which it reads as it is consumed. A watcher that falls so
 * far behind that a snapshot compacts away the entry it needs next is
 * dropped, with an event that says from where to resume: memory stays
 * bounded whatever the watcher does. Leader changes wait in a short queue
 * of their own; a watcher that lets it fill is dropped alike.
 *
 * @module
 */

import { decodeConfig } from "../core/config.ts";
import type { ChainLink } from "../chain.ts";
import type { Entry } from "../core/entry.ts";
import type { LogView } from "../core/log.ts";
import { WaterCraftError } from "../errors.ts";
import type { Outcome } from "./sessions.ts";
import { OutcomesByIndex } from "./outcomes.ts";

/**
 * One committed entry, as a watcher or a log listing sees it: what its
 * hash covers ({@linkcode ChainLink}, which `verifyChain` checks), the
 * command decoded, and its outcome.
 */
export interface WatchedEntry extends ChainLink {
  /**
   * The command as the state machine decodes it, the configuration's
   * members for a `config` entry, null for a no-op or a command that could
   * not be decoded.
   */
  readonly data: unknown;
  /** A command's result, when it was applied with success. */
  readonly result?: unknown;
  /** Why a command was refused, when it was. */
  readonly error?: { readonly code: string; readonly message: string };
}

/** What a watcher receives. */
export type WatchEvent =
  | { readonly type: "entry"; readonly entry: WatchedEntry }
  | {
    readonly type: "leader";
    /** The term the change happened in. */
    readonly term: number;
    /** The new leader, or null while there is none. */
    readonly leader: { readonly id: string; readonly url: string | null } | null;
  }
  | {
    /** The watcher was ended: resume with `after: resumeAfter`, or from a snapshot. */
    readonly type: "dropped";
    /**
     * Why: `slow`, this node compacted entries the watcher had not read;
     * `snapshot`, a leader's snapshot replaced entries it had not read;
     * `stopped`, the node stopped.
     */
    readonly reason: DropReason;
    /** The last index it was given. */
    readonly resumeAfter: number;
  };

/** Why a watcher was dropped: see {@linkcode WatchEvent}. */
export type DropReason = "slow" | "snapshot" | "stopped";

/** Options of {@linkcode WatchHub.watch}. */
export interface WatchOptions {
  /** Start after this index: 0 for everything still in the log. Default: the applied index. */
  readonly after?: number;
  /** Ends the watch. */
  readonly signal?: AbortSignal;
}

/** Leader changes a watcher may have waiting before it is dropped as slow. */
const LEADER_EVENTS_MAX = 64;

/** What the hub needs of the node. */
export interface WatchSource {
  /** The node's log. */
  log(): LogView;
  /** The index applied so far. */
  applied(): number;
  /** The command of a command entry, decoded for display. */
  commandOf(entry: Entry): unknown;
}

/** The node's watchers, and the outcomes of the entries still in its log. */
export class WatchHub {
  readonly #source: WatchSource;
  readonly #watchers = new Set<Watcher>();
  /** Outcomes of the command entries applied in this run and still in the log. */
  readonly #outcomes = new OutcomesByIndex();
  #closed = false;

  /**
   * Creates the hub.
   *
   * @param source The node's log and state machine.
   */
  constructor(source: WatchSource) {
    this.#source = source;
  }

  /**
   * Notes an applied entry's outcome and wakes the watchers.
   *
   * @param entry The entry just applied.
   * @param outcome What applying it gave.
   */
  applied(entry: Entry, outcome: Outcome): void {
    // Outcomes follow the log: those of compacted entries go.
    this.#outcomes.dropBelow(this.#source.log().snapshot.index + 1);
    if (entry.kind === "command") this.#outcomes.set(entry.index, outcome);
    for (const watcher of this.#watchers) watcher.wake();
  }

  /**
   * Tells every watcher of a leader change.
   *
   * @param term The current term.
   * @param leader The leader, or null.
   */
  leaderChanged(term: number, leader: { id: string; url: string | null } | null): void {
    for (const watcher of this.#watchers) {
      watcher.push({ type: "leader", term, leader }, this.#source.applied());
    }
  }

  /**
   * A leader's snapshot replaced the log up to `index`: watchers that had
   * not read that far miss entries nobody can give them any more.
   *
   * @param index The snapshot's index.
   */
  snapshotInstalled(index: number): void {
    for (const watcher of this.#watchers) watcher.passedBy(index);
  }

  /** The index applied so far. */
  get appliedIndex(): number {
    return this.#source.applied();
  }

  /** Ends every watch: the node stops. */
  close(): void {
    this.#closed = true;
    for (const watcher of this.#watchers) watcher.end("stopped");
  }

  /**
   * Follows the committed log.
   *
   * @param options Where to start.
   * @returns The events, in log order.
   * @throws {WaterCraftError} `compacted` when the entries after `after`
   *   are gone into a snapshot (`details.snapshotIndex`: resume from there);
   *   `invalid_request` for an index that is not an integer ≥ 0;
   *   `unavailable` once the node has stopped.
   */
  watch(options: WatchOptions = {}): AsyncIterableIterator<WatchEvent> {
    if (this.#closed) throw new WaterCraftError("unavailable", "The node has stopped");
    const after = this.#checkedAfter(options.after ?? this.#source.applied());
    const watcher = new Watcher(this, after, (w) => this.#watchers.delete(w));
    this.#watchers.add(watcher);
    if (options.signal !== undefined) {
      if (options.signal.aborted) watcher.finish();
      else options.signal.addEventListener("abort", () => watcher.finish(), { once: true });
    }
    return watcher;
  }

  /**
   * Lists committed entries.
   *
   * @param after Entries after this index.
   * @param limit At most this many.
   * @returns The entries, and the index to ask after next.
   * @throws {WaterCraftError} As {@linkcode WatchHub.watch}.
   */
  list(after: number, limit: number): { entries: WatchedEntry[]; next: number } {
    after = this.#checkedAfter(after);
    const last = Math.min(this.#source.applied(), after + limit);
    const entries: WatchedEntry[] = [];
    for (let index = after + 1; index <= last; index++) {
      const entry = this.describe(index);
      if (entry === null) break;
      entries.push(entry);
    }
    return { entries, next: after + entries.length };
  }

  /**
   * An entry of the log as watchers see it.
   *
   * @param index Its index, at most the applied index.
   * @returns The entry, or null when it has been compacted away.
   */
  describe(index: number): WatchedEntry | null {
    const log = this.#source.log();
    const entry = log.entry(index);
    if (entry === undefined) return null;
    const prev = index - 1 === log.snapshot.index ? log.snapshot.hash : log.hash(index - 1);
    if (prev === undefined) return null;
    const outcome = this.#outcomes.get(index);
    return {
      index,
      term: entry.term,
      id: entry.hash,
      prev,
      kind: entry.kind,
      proposer: entry.proposer,
      timeMs: entry.timeMs,
      data: this.#dataOf(entry),
      bytes: base64(entry.data),
      ...(outcome === undefined ? {} : outcome.ok ? { result: outcome.value ?? null } : {
        error: { code: outcome.error.code, message: outcome.error.message },
      }),
    };
  }

  #dataOf(entry: Entry): unknown {
    if (entry.kind === "noop") return null;
    if (entry.kind === "config") return decodeConfig(entry.data);
    return this.#source.commandOf(entry);
  }

  #checkedAfter(after: number): number {
    if (!Number.isSafeInteger(after) || after < 0) {
      throw new WaterCraftError("invalid_request", `after must be an integer ≥ 0, not ${after}`);
    }
    // Past the applied index is fine: the caller may have seen it on a node
    // further ahead, and this one gives what follows once it gets there.
    if (after < this.#source.applied() && this.describe(after + 1) === null) {
      const snapshotIndex = this.#source.log().snapshot.index;
      throw new WaterCraftError(
        "compacted",
        `The entries after ${after} are compacted into the snapshot at ${snapshotIndex}: ` +
          `start from a snapshot, or after=${snapshotIndex}`,
        { snapshotIndex },
      );
    }
    return after;
  }
}

/** One watch: a cursor into the log and a short queue of leader changes. */
class Watcher implements AsyncIterableIterator<WatchEvent> {
  readonly #hub: WatchHub;
  readonly #forget: (w: Watcher) => void;
  /** The last index given out. */
  #cursor: number;
  /** Leader changes, each with the applied index it happened at. */
  #leaderEvents: { at: number; event: WatchEvent }[] = [];
  #ending: WatchEvent | null = null;
  #done = false;
  #waiting: (() => void) | null = null;

  constructor(hub: WatchHub, after: number, forget: (w: Watcher) => void) {
    this.#hub = hub;
    this.#cursor = after;
    this.#forget = forget;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<WatchEvent> {
    return this;
  }

  wake(): void {
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.();
  }

  push(event: WatchEvent, at: number): void {
    if (this.#leaderEvents.length >= LEADER_EVENTS_MAX) return this.end("slow");
    this.#leaderEvents.push({ at, event });
    this.wake();
  }

  /** Ends it with a `dropped` event. */
  end(reason: DropReason): void {
    if (this.#done || this.#ending !== null) return;
    this.#ending = { type: "dropped", reason, resumeAfter: this.#cursor };
    this.#forget(this);
    this.wake();
  }

  /** Ends it, `snapshot`, when a leader's snapshot at `index` replaced entries it has not read. */
  passedBy(index: number): void {
    if (this.#cursor < index) this.end("snapshot");
  }

  /** Ends it without an event (the consumer asked). */
  finish(): void {
    this.#done = true;
    this.#forget(this);
    this.wake();
  }

  async next(): Promise<IteratorResult<WatchEvent>> {
    // Bounded: each turn either returns or waits for a wake-up, and the
    // watcher is woken only by something to give or by its end.
    while (!this.#done) {
      const leader = this.#leaderEvents[0];
      if (leader !== undefined && leader.at <= this.#cursor) {
        this.#leaderEvents.shift();
        return { value: leader.event, done: false };
      }
      if (this.#ending === null && this.#cursor < this.#hub.appliedIndex) {
        const entry = this.#hub.describe(this.#cursor + 1);
        if (entry === null) {
          this.end("slow");
          continue;
        }
        this.#cursor++;
        return { value: { type: "entry", entry }, done: false };
      }
      if (this.#ending !== null) {
        const ending = this.#ending;
        this.#done = true;
        return { value: ending, done: false };
      }
      await new Promise<void>((resolve) => this.#waiting = resolve);
    }
    return { value: undefined, done: true };
  }

  return(): Promise<IteratorResult<WatchEvent>> {
    this.finish();
    return Promise.resolve({ value: undefined, done: true });
  }
}

function base64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}
