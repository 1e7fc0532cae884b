/**
 * The outcomes of applied entries, kept by index for the watch while their
 * entries are in the log. A compaction drops thousands at once: one copy of
 * what is kept, where deleting them one by one from a map held a node's
 * thread for 3 to 9 ms per snapshot under load.
 *
 * @module
 */

import type { Outcome } from "./sessions.ts";

/** Outcomes by log index, from a moving first index on. */
export class OutcomesByIndex {
  /** The index of `#items[0]`. */
  #first = 1;
  #items: (Outcome | undefined)[] = [];

  /**
   * Keeps the outcome of the entry at `index`.
   *
   * @param index The entry's index, at or above the first kept.
   * @param outcome What applying it gave.
   */
  set(index: number, outcome: Outcome): void {
    if (index >= this.#first) this.#items[index - this.#first] = outcome;
  }

  /**
   * The outcome kept for `index`.
   *
   * @param index An entry's index.
   * @returns Its outcome, or undefined when none is kept.
   */
  get(index: number): Outcome | undefined {
    return index >= this.#first ? this.#items[index - this.#first] : undefined;
  }

  /**
   * Forgets the outcomes below `first`.
   *
   * @param first The lowest index to keep.
   */
  dropBelow(first: number): void {
    if (first <= this.#first) return;
    this.#items = this.#items.slice(first - this.#first);
    this.#first = first;
  }
}
