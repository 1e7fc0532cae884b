/**
 * The deterministic scheduler of the node simulator: one seeded queue of
 * events (timers, message deliveries, storage completions, client steps,
 * faults) that it releases one at a time in simulated time. After each event
 * it lets every promise chain the event started settle before the next one,
 * so a seed decides the whole interleaving of the real, asynchronous driver.
 *
 * Every event names the node it belongs to, twice: `owner` is one life of a
 * node (a crash discards every event of that life: its timers, its storage
 * completions) and `holder` is the node whose pause holds the event (a paused
 * node's timers and incoming messages wait until it resumes).
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { Prng } from "../../../src/core/mod.ts";

/** A handle for a scheduled event, to cancel it. */
export type EventId = number;

/** Where an event belongs. */
export interface EventScope {
  /** The node life whose crash discards the event; null for none. */
  readonly owner?: string | null;
  /** The node whose pause holds the event; null for none. */
  readonly holder?: string | null;
}

interface SimEvent {
  readonly at: number;
  /** Random tie-break: events due at the same time run in a seeded order. */
  readonly rank: number;
  readonly id: EventId;
  readonly owner: string | null;
  readonly holder: string | null;
  readonly label: string;
  readonly fn: () => void;
}

/** Most events one run may release: a bound on every simulation loop. */
export const EVENTS_MAX = 2_000_000;

/** A seeded event queue over simulated time (ms from 0). */
export class SimScheduler {
  readonly #prng: Prng;
  readonly #heap: SimEvent[] = [];
  readonly #cancelled = new Set<EventId>();
  readonly #deadOwners = new Set<string>();
  readonly #held = new Map<string, SimEvent[]>();
  readonly #settle: () => Promise<void>;
  #nextId = 1;
  #now = 0;
  #released = 0;
  /** FNV-1a over every released event's time and label: equal seeds give equal hashes. */
  #trace = 0x811c9dc5;
  #trace2 = 0x01000193;

  /**
   * Creates an empty queue at time 0.
   *
   * @param prng Decides the order of events due at the same time.
   */
  constructor(prng: Prng) {
    this.#prng = prng;
    // A macrotask hop drains the whole microtask queue: every promise chain
    // an event started settles before the next event, whatever its depth.
    // `setImmediate` hops without the clamping of nested `setTimeout`; a
    // message channel does not drain (Deno delivers its message a few
    // microtasks on), so a long chain would leak into later events: a load
    // that finished after its node's crash, a dead node writing on.
    this.#settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Simulated time now, ms. */
  get now(): number {
    return this.#now;
  }

  /** Events released so far. */
  get released(): number {
    return this.#released;
  }

  /** The trace hash: every released event's time and label, in order. */
  get traceHash(): string {
    return (this.#trace >>> 0).toString(16).padStart(8, "0") +
      (this.#trace2 >>> 0).toString(16).padStart(8, "0");
  }

  /**
   * Schedules `fn` to run `delayMs` from now.
   *
   * @param delayMs How long from now, ms (negative counts as 0).
   * @param label What the event is, for the trace hash.
   * @param fn What to run.
   * @param scope The node life and the node it belongs to.
   * @returns A handle to cancel it.
   */
  at(delayMs: number, label: string, fn: () => void, scope: EventScope = {}): EventId {
    const id = this.#nextId++;
    this.#push({
      at: this.#now + Math.max(0, delayMs),
      rank: this.#prng.next(),
      id,
      owner: scope.owner ?? null,
      holder: scope.holder ?? null,
      label,
      fn,
    });
    return id;
  }

  /**
   * Cancels an event; unknown or released ones are ignored.
   *
   * @param id The event's handle.
   */
  cancel(id: EventId): void {
    this.#cancelled.add(id);
  }

  /**
   * Discards every event of one node life, now and later: the node crashed.
   *
   * @param owner The node life.
   */
  discard(owner: string): void {
    this.#deadOwners.add(owner);
  }

  /**
   * Holds the events of a node until {@linkcode SimScheduler.resume}.
   *
   * @param holder The node.
   */
  pause(holder: string): void {
    if (!this.#held.has(holder)) this.#held.set(holder, []);
  }

  /**
   * Releases a paused node's events, in their order, as due now.
   *
   * @param holder The node.
   */
  resume(holder: string): void {
    const held = this.#held.get(holder);
    if (held === undefined) return;
    this.#held.delete(holder);
    for (const e of held) this.#push({ ...e, at: this.#now, rank: this.#prng.next() });
  }

  /**
   * Whether a node's events are held.
   *
   * @param holder The node.
   * @returns True while it is paused.
   */
  paused(holder: string): boolean {
    return this.#held.has(holder);
  }

  /**
   * Releases events in order until time `until`, `stop()` says so, or the
   * queue is empty; time then stands at `until` (or where it stopped).
   *
   * @param until Simulated time to run to, ms.
   * @param stop Checked after every event.
   * @returns True when `stop()` ended the run.
   * @throws {Error} Past {@linkcode EVENTS_MAX} events: a run that never ends.
   */
  async runUntil(until: number, stop: () => boolean = () => false): Promise<boolean> {
    for (let guard = 0; guard < EVENTS_MAX; guard++) {
      const next = this.#heap[0];
      if (next === undefined || next.at > until) {
        this.#now = Math.max(this.#now, until);
        return false;
      }
      this.#pop();
      if (this.#cancelled.delete(next.id)) continue;
      if (next.owner !== null && this.#deadOwners.has(next.owner)) continue;
      const held = next.holder === null ? undefined : this.#held.get(next.holder);
      if (held !== undefined) {
        held.push(next);
        continue;
      }
      this.#now = next.at;
      if (++this.#released > EVENTS_MAX) throw new Error(`Over ${EVENTS_MAX} events: a livelock`);
      this.#mix(`${next.at.toFixed(3)} ${next.label}`);
      next.fn();
      await this.#settle();
      if (stop()) return true;
    }
    throw new Error(`Over ${EVENTS_MAX} events in one run`);
  }

  /**
   * Lets every promise chain started outside an event settle (a client's
   * first step, a node's start).
   */
  settle(): Promise<void> {
    return this.#settle();
  }

  /**
   * Adds a note to the trace hash: what the simulation observed (a client's
   * answer, a checker's view), so that equal hashes mean equal runs.
   *
   * @param note What to mix in.
   */
  note(note: string): void {
    this.#mix(note);
  }

  #mix(text: string): void {
    let h = this.#trace;
    let g = this.#trace2;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      h = Math.imul(h ^ c, 0x01000193);
      g = Math.imul(g ^ c, 0x5bd1e995) ^ (g >>> 15);
    }
    this.#trace = h;
    this.#trace2 = g;
  }

  // A binary heap ordered by (at, rank, id).
  #less(a: SimEvent, b: SimEvent): boolean {
    if (a.at !== b.at) return a.at < b.at;
    if (a.rank !== b.rank) return a.rank < b.rank;
    return a.id < b.id;
  }

  #push(e: SimEvent): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
