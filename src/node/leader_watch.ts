/**
 * Callers waiting for a leader to be known, or for leadership to land on a
 * given node. Woken after every input, not only on a reported change: the
 * leader may come back before the next batch, and then no change is
 * reported at all.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import { UnavailableError } from "../errors.ts";

interface Waiting<T> {
  readonly resolve: (v: T) => void;
  readonly reject: (e: unknown) => void;
  readonly timer: TimerId;
}

/** The callers of one node waiting on who leads. */
export class LeaderWatch {
  readonly #clock: Clock;
  #forLeader: Waiting<string>[] = [];
  #forTransfer: (Waiting<void> & { readonly target: string })[] = [];

  /**
   * Creates a watch with no one waiting.
   *
   * @param clock Time for deadlines.
   */
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /**
   * Waits until a leader is known.
   *
   * @param leader The leader known now, if any.
   * @param deadline When to give up, on the clock's time.
   * @returns The leader's id.
   * @throws {UnavailableError} When none is known by the deadline.
   */
  leader(leader: string | null, deadline: number): Promise<string> {
    if (leader !== null) return Promise.resolve(leader);
    return new Promise<string>((resolve, reject) => {
      const waiter: Waiting<string> = {
        resolve,
        reject,
        timer: this.#clock.setTimer(() => {
          this.#forLeader = this.#forLeader.filter((w) => w !== waiter);
          reject(new UnavailableError("Cannot serve the request: no leader is known"));
        }, Math.max(1, deadline - this.#clock.now())),
      };
      this.#forLeader.push(waiter);
    });
  }

  /**
   * Waits until `target` leads.
   *
   * @param target The node leadership moves to.
   * @param deadline When to give up, on the clock's time.
   * @throws {UnavailableError} When it does not lead by the deadline.
   */
  transfer(target: string, deadline: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        target,
        resolve,
        reject,
        timer: this.#clock.setTimer(() => {
          this.#forTransfer = this.#forTransfer.filter((w) => w !== waiter);
          reject(new UnavailableError(`Leadership did not move to ${target} in time`));
        }, Math.max(1, deadline - this.#clock.now())),
      };
      this.#forTransfer.push(waiter);
    });
  }

  /**
   * Wakes whoever waits for `leader`.
   *
   * @param leader The leader known now, if any.
   */
  wake(leader: string | null): void {
    if (leader === null) return;
    const waiters = this.#forLeader;
    this.#forLeader = [];
    for (const w of waiters) {
      this.#clock.clearTimer(w.timer);
      w.resolve(leader);
    }
    if (!this.#forTransfer.some((w) => w.target === leader)) return;
    const done = this.#forTransfer.filter((w) => w.target === leader);
    this.#forTransfer = this.#forTransfer.filter((w) => w.target !== leader);
    for (const w of done) {
      this.#clock.clearTimer(w.timer);
      w.resolve();
    }
  }

  /**
   * Ends every wait with `error`.
   *
   * @param error What the callers are told.
   */
  failAll(error: unknown): void {
    for (const w of [...this.#forLeader, ...this.#forTransfer]) {
      this.#clock.clearTimer(w.timer);
      w.reject(error);
    }
    this.#forLeader = [];
    this.#forTransfer = [];
  }
}
