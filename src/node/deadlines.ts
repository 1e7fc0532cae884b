/**
 * The deadlines of many waiting clients on one timer. A timer per client
 * (set when it starts waiting, cleared when it is answered) cost two timer
 * calls and their allocations on every read and write; here a client's
 * deadline is an entry in a queue kept in time order, and one timer is
 * armed for the earliest.
 *
 * Cancelling only marks the entry: most clients are answered long before
 * their deadline, so the front of the queue is mostly entries already
 * answered. They are dropped in one sweep when the timer fires (armed for
 * one of them, it fires early and finds nothing due), and the timer is
 * armed again for the first entry still waiting. Under a steady load it so
 * fires about once per timeout, not once per client. A due entry fires at
 * its exact time.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";

/** A deadline in a {@linkcode Deadlines} queue. */
export interface Deadline {
  /** When it falls due, on the clock's time. */
  readonly at: number;
  /** What runs when it falls due; null once cancelled or run. */
  fn: (() => void) | null;
}

/** Front entries dropped before the queue's array is compacted. */
const COMPACT_AFTER = 1024;

/** Deadlines on one timer, each run once when due unless cancelled first. */
export class Deadlines {
  readonly #clock: Clock;
  /** Entries in time order from `#head`; those before it are gone. */
  #queue: Deadline[] = [];
  #head = 0;
  #live = 0;
  #timer: TimerId | null = null;
  /** When the armed timer fires. */
  #armedAt = Infinity;

  /**
   * Creates an empty queue.
   *
   * @param clock The clock whose time deadlines are on.
   */
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Number of deadlines neither cancelled nor run. */
  get size(): number {
    return this.#live;
  }

  /**
   * Schedules `fn` at `at`.
   *
   * @param at When, on the clock's time.
   * @param fn What to run then.
   * @returns The deadline, to cancel.
   */
  add(at: number, fn: () => void): Deadline {
    const deadline: Deadline = { at, fn };
    const queue = this.#queue;
    // Deadlines mostly come in time order (the same timeout from now).
    if (queue.length === this.#head || queue[queue.length - 1]!.at <= at) queue.push(deadline);
    else queue.splice(this.#insertionPoint(at), 0, deadline);
    this.#live++;
    if (at < this.#armedAt) this.#arm(at);
    return deadline;
  }

  /**
   * Cancels a deadline; one already run or cancelled is ignored.
   *
   * @param deadline The deadline.
   */
  cancel(deadline: Deadline): void {
    if (deadline.fn === null) return;
    deadline.fn = null;
    if (--this.#live > 0) return;
    // Nothing waits: no timer keeps the process alive, nothing is kept.
    this.#disarm();
    this.#queue = [];
    this.#head = 0;
  }

  #fire(): void {
    this.#timer = null;
    this.#armedAt = Infinity;
    const now = this.#clock.now();
    const queue = this.#queue;
    const due: (() => void)[] = [];
    while (this.#head < queue.length) {
      const first = queue[this.#head]!;
      if (first.fn !== null && first.at > now) break;
      if (first.fn !== null) {
        due.push(first.fn);
        first.fn = null;
        this.#live--;
      }
      this.#head++;
    }
    if (this.#head >= COMPACT_AFTER || this.#head === queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
    if (this.#head < this.#queue.length) this.#arm(this.#queue[this.#head]!.at);
    // After the queue is consistent: a callback may add or cancel deadlines.
    for (const fn of due) fn();
  }

  #arm(at: number): void {
    this.#disarm();
    this.#armedAt = at;
    this.#timer = this.#clock.setTimer(() => this.#fire(), Math.max(0, at - this.#clock.now()));
  }

  #disarm(): void {
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#timer = null;
    this.#armedAt = Infinity;
  }

  /** The index after the last entry due at or before `at`. */
  #insertionPoint(at: number): number {
    let low = this.#head;
    let high = this.#queue.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#queue[mid]!.at <= at) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
