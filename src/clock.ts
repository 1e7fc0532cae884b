/**
 * Time for the driver: a real clock, or a manual one that tests advance by
 * hand so that nothing sleeps.
 *
 * @module
 */

/** A handle for a scheduled timer. */
export type TimerId = number;

/** What the driver needs of time. */
export interface Clock {
  /** Milliseconds since some fixed point; never decreases. */
  now(): number;
  /** Runs `fn` after `ms` milliseconds. */
  setTimer(fn: () => void, ms: number): TimerId;
  /** Cancels a timer; unknown ids are ignored. */
  clearTimer(id: TimerId): void;
}

/**
 * The runtime's clock and timers.
 *
 * @returns A clock backed by `performance.now()` and `setTimeout`.
 */
export function systemClock(): Clock {
  const origin = Date.now() - performance.now();
  return {
    now: () => Math.floor(origin + performance.now()),
    setTimer: (fn, ms) => setTimeout(fn, ms) as unknown as TimerId,
    clearTimer: (id) => clearTimeout(id),
  };
}

/** A clock that moves only when told to. */
export interface ManualClock extends Clock {
  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void;
  /** Number of timers waiting. */
  readonly pending: number;
}

/**
 * Creates a clock for tests: time starts at `startMs` and moves only through
 * `advance()`.
 *
 * @param startMs The initial time.
 * @returns The clock.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { manualClock } from "./clock.ts";
 *
 * const clock = manualClock();
 * let fired = 0;
 * clock.setTimer(() => fired++, 100);
 * clock.advance(99);
 * strictEqual(fired, 0);
 * clock.advance(1);
 * strictEqual(fired, 1);
 * ```
 */
export function manualClock(startMs = 0): ManualClock {
  let now = startMs;
  let nextId = 1;
  const timers = new Map<TimerId, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimer(fn, ms) {
      const id = nextId++;
      timers.set(id, { at: now + Math.max(0, ms), fn });
      return id;
    },
    clearTimer(id) {
      timers.delete(id);
    },
    advance(ms) {
      const until = now + ms;
      for (let guard = 0; guard < 1_000_000; guard++) {
        let due: [TimerId, { at: number; fn: () => void }] | undefined;
        for (const t of timers) {
          if (t[1].at <= until && (due === undefined || t[1].at < due[1].at)) due = t;
        }
        if (due === undefined) break;
        timers.delete(due[0]);
        now = Math.max(now, due[1].at);
        due[1].fn();
      }
      now = until;
    },
    get pending() {
      return timers.size;
    },
  };
}
