/**
 * A clock for edge functions: the runtime's timers, plus {@linkcode
 * EdgeClock.runDue}, which fires every timer that is already due.
 *
 * An edge platform runs code only while it serves a request (or a cron
 * invocation), and may freeze an isolate between two of them. Timers set with
 * `setTimeout` then stall: the node's tick, its request deadlines, its join
 * back-off. The node takes its time from a {@linkcode Clock}, so this one
 * keeps its own list of timers and their due times; the example's handler
 * calls `runDue()` on every request and on every `Deno.cron` run, which fires
 * what the platform did not. Where `setTimeout` keeps running (`deno serve`,
 * a long-lived isolate), timers fire on their own as usual and `runDue()`
 * finds nothing to do. A timer fires once, whichever comes first.
 *
 * `runDue()` never invents time: it fires only timers whose time has come by
 * the base clock. After a long freeze the node's tick fires once (it re-arms
 * itself a heartbeat later), not once per missed heartbeat, so a thawed
 * isolate does not race through a burst of logical ticks.
 *
 * @module
 */

import type { Clock } from "../../mod.ts";
import { systemClock } from "../../src/clock.ts";

/** A timer handle, as the {@linkcode Clock} interface has it. */
type TimerId = ReturnType<Clock["setTimer"]>;

/** A {@linkcode Clock} that can be told to fire its overdue timers now. */
export interface EdgeClock extends Clock {
  /**
   * Fires every timer due by now, earliest first (timers set while doing so
   * fire too if they are due already).
   *
   * @returns How many timers fired.
   */
  runDue(): number;
  /** Timers waiting. */
  readonly pending: number;
}

/** Rounds of `runDue()`: timers that keep arming due timers cannot spin forever. */
const RUN_DUE_ROUNDS_MAX = 100;

interface Timer {
  readonly at: number;
  readonly fn: () => void;
  readonly handle: TimerId;
}

/**
 * Creates an edge clock over `base` (default: the runtime's clock).
 *
 * @param base Time and real timers.
 * @returns The clock.
 *
 * @example A frozen platform: the base clock's timers never fire by themselves
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { edgeClock } from "./clock.ts";
 *
 * let now = 0;
 * const clock = edgeClock({ now: () => now, setTimer: () => 0, clearTimer() {} });
 * let fired = 0;
 * clock.setTimer(() => fired++, 50);
 * strictEqual(clock.runDue(), 0);
 * now = 60_000; // a minute frozen
 * strictEqual(clock.runDue(), 1);
 * strictEqual(fired, 1);
 * ```
 */
export function edgeClock(base: Clock = systemClock()): EdgeClock {
  const timers = new Map<TimerId, Timer>();
  let nextId = 1;
  return {
    now: () => base.now(),
    setTimer(fn, ms) {
      const id = nextId++;
      const handle = base.setTimer(() => {
        // Already fired by runDue() (or cleared): once only.
        if (timers.delete(id)) fn();
      }, ms);
      timers.set(id, { at: base.now() + Math.max(0, ms), fn, handle });
      return id;
    },
    clearTimer(id) {
      const timer = timers.get(id);
      if (timer === undefined) return;
      timers.delete(id);
      base.clearTimer(timer.handle);
    },
    runDue() {
      let fired = 0;
      for (let round = 0; round < RUN_DUE_ROUNDS_MAX; round++) {
        const now = base.now();
        const due = [...timers].filter(([, t]) => t.at <= now).sort((a, b) =>
          a[1].at - b[1].at || a[0] - b[0]
        );
        if (due.length === 0) break;
        for (const [id, timer] of due) {
          // An earlier callback may have cleared it.
          if (!timers.delete(id)) continue;
          base.clearTimer(timer.handle);
          fired++;
          timer.fn();
        }
      }
      return fired;
    },
    get pending() {
      return timers.size;
    },
  };
}
