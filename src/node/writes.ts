/**
 * Clients waiting on their writes: each waits on the log index its entry
 * took, until the entry is accepted or applied (then it gets the result),
 * another entry takes that index (then it never will), or its deadline
 * passes (then the outcome is unknown).
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Entry } from "../core/entry.ts";
import { TimeoutError, UnavailableError } from "../errors.ts";
import { type Deadline, Deadlines } from "./deadlines.ts";
import type { ProposeResult } from "./options.ts";
import type { Outcome } from "./sessions.ts";

/** What a write waits for. */
export type WaitFor = "accepted" | "committed";

interface WriteWaiter {
  readonly entry: Entry;
  readonly wait: WaitFor;
  readonly resolve: (r: ProposeResult) => void;
  readonly reject: (e: unknown) => void;
  readonly deadline: Deadline;
  readonly startedMs: number;
}

/** Where a settled write is reported as having landed. */
export interface Landing {
  /** The entry's hash. */
  readonly id: string;
  /** Its index. */
  readonly index: number;
  /** Its term. */
  readonly term: number;
}

/** The writes this node waits on, by log index. */
export class PendingWrites {
  readonly #clock: Clock;
  /** Hears how long each committed write took, ms. */
  readonly #onCommitted: (ms: number) => void;
  readonly #byIndex = new Map<number, WriteWaiter[]>();
  readonly #deadlines: Deadlines;
  #count = 0;

  /**
   * Creates an empty set.
   *
   * @param clock Time for deadlines.
   * @param onCommitted Hears how long each committed write took, ms.
   */
  constructor(clock: Clock, onCommitted: (ms: number) => void) {
    this.#clock = clock;
    this.#deadlines = new Deadlines(clock);
    this.#onCommitted = onCommitted;
  }

  /** Number of writes waiting. */
  get count(): number {
    return this.#count;
  }

  /**
   * Waits until `entry` is accepted or applied, or the deadline passes.
   *
   * @param entry The proposed entry.
   * @param wait What to wait for.
   * @param deadline When to give up, on the clock's time.
   * @returns The write's result.
   * @throws {TimeoutError} When the deadline passes: the write may still commit.
   */
  wait(entry: Entry, wait: WaitFor, deadline: number): Promise<ProposeResult> {
    return new Promise<ProposeResult>((resolve, reject) => {
      const now = this.#clock.now();
      const waiter: WriteWaiter = {
        entry,
        wait,
        resolve,
        reject,
        deadline: this.#deadlines.add(Math.max(now + 1, deadline), () => {
          this.#drop(entry.index, waiter);
          reject(
            new TimeoutError(`Write ${entry.hash} did not finish in time: it may still commit`),
          );
        }),
        startedMs: now,
      };
      const list = this.#byIndex.get(entry.index);
      if (list === undefined) this.#byIndex.set(entry.index, [waiter]);
      else list.push(waiter);
      this.#count++;
    });
  }

  /**
   * Answers the writes that wait for `e` to be accepted: it is durable in
   * this node's log.
   *
   * @param e The entry made durable.
   * @param head The head to report.
   */
  accepted(e: Entry, head: () => string): void {
    const waiters = this.#byIndex.get(e.index);
    if (waiters === undefined) return;
    for (const w of [...waiters]) {
      if (w.wait !== "accepted" || w.entry.hash !== e.hash) continue;
      this.#drop(e.index, w);
      this.#deadlines.cancel(w.deadline);
      w.resolve({ id: e.hash, index: e.index, term: e.term, state: "accepted", head: head() });
    }
  }

  /**
   * Answers the writes waiting on index `e.index`: those whose entry is `e`
   * get its outcome (reported as `as`, the first entry of an idempotency
   * key, when `e` repeats one); any other entry at that index never commits.
   *
   * @param e The applied entry.
   * @param outcome What applying it gave.
   * @param head The head to report.
   * @param as Where the write is reported as having landed.
   */
  committed(e: Entry, outcome: Outcome, head: () => string, as: Landing = landing(e)): void {
    const waiters = this.#byIndex.get(e.index);
    if (waiters === undefined) return;
    this.#byIndex.delete(e.index);
    this.#count -= waiters.length;
    for (const w of waiters) {
      this.#deadlines.cancel(w.deadline);
      if (w.entry.hash !== e.hash) {
        w.reject(
          new UnavailableError("Cannot write: leadership changed before the write committed"),
        );
        continue;
      }
      this.#onCommitted(this.#clock.now() - w.startedMs);
      if (w.wait === "accepted") {
        w.resolve({ ...landing(e), state: "accepted", head: head() });
      } else if (outcome.ok) {
        w.resolve({ ...as, state: "committed", head: head(), result: outcome.value });
      } else {
        w.reject(outcome.error);
      }
    }
  }

  /**
   * Ends every waiting write with `error`.
   *
   * @param error What the writes are told.
   */
  failAll(error: unknown): void {
    for (const list of this.#byIndex.values()) {
      for (const w of list) {
        this.#deadlines.cancel(w.deadline);
        w.reject(error);
      }
    }
    this.#byIndex.clear();
    this.#count = 0;
  }

  #drop(index: number, waiter: WriteWaiter): void {
    const list = this.#byIndex.get(index);
    if (list === undefined) return;
    const at = list.indexOf(waiter);
    if (at < 0) return;
    list.splice(at, 1);
    this.#count--;
    if (list.length === 0) this.#byIndex.delete(index);
  }
}

function landing(e: Entry): Landing {
  return { id: e.hash, index: e.index, term: e.term };
}
