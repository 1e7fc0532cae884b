/**
 * A {@linkcode Clock} for a node inside a Durable Object, whose timers fire
 * from the object's **alarm** rather than from `setTimeout`.
 *
 * A Durable Object may be evicted from memory whenever it is idle, and its
 * `setTimeout` callbacks die with it. Its alarm does not: it is stored with
 * the object, and when it comes due the platform calls the object's
 * `alarm()` handler, re-creating the object if it was evicted. So this clock
 * keeps its timers in a list, asks for the alarm at the earliest due time
 * (through `arm`), and fires whatever is due when the alarm rings
 * ({@linkcode AlarmClock.ring}) or when a request arrives
 * ({@linkcode AlarmClock.runDue}). No `setTimeout` is involved.
 *
 * Like the Deno edge example's clock (`../clock.ts`), it never invents time:
 * a timer fires only when its time has come, and after a long stall the
 * node's tick fires once (it re-arms itself a heartbeat later), not once per
 * missed heartbeat.
 *
 * @module
 */

import type { Clock, TimerId } from "../../../src/clock.ts";

/** How late the alarm rang, over the object's life so far. */
export interface AlarmLateness {
  /** Alarms rung. */
  readonly rings: number;
  /** The latest an alarm rang after the time it was set for, ms. */
  readonly lateMsMax: number;
  /** The mean of how late alarms rang, ms. */
  readonly lateMsMean: number;
  /** The largest gap between two rings, ms. */
  readonly gapMsMax: number;
}

/** A {@linkcode Clock} driven by a Durable Object's alarm. */
export interface AlarmClock extends Clock {
  /**
   * Fires every timer due by now, earliest first, then asks for the alarm
   * again if the earliest timer left is earlier than the alarm set.
   *
   * @returns How many timers fired.
   */
  runDue(): number;
  /**
   * What the object's `alarm()` handler calls: the alarm set is spent, so
   * fire what is due and set the next one.
   *
   * @returns How many timers fired.
   */
  ring(): number;
  /** Timers waiting. */
  readonly pending: number;
  /** When the alarm is set for, or null when none is. */
  readonly armedAtMs: number | null;
  /** How late the alarm rang so far. */
  readonly lateness: AlarmLateness;
}

/** Options of {@linkcode alarmClock}. */
export interface AlarmClockOptions {
  /**
   * Sets the object's alarm for `atMs` (a `Date.now()` time), replacing any
   * alarm set: `ctx.storage.setAlarm(atMs)`.
   */
  readonly arm: (atMs: number) => void;
  /** The time, ms. Default `Date.now()`. */
  readonly now?: () => number;
}

/** Rounds of `runDue()`: timers that keep arming due timers cannot spin forever. */
const RUN_DUE_ROUNDS_MAX = 100;

/**
 * Creates a clock whose timers fire from a Durable Object's alarm.
 *
 * @param options How to set the alarm, and the time.
 * @returns The clock.
 *
 * @example A timer fires when the alarm rings, not before its time
 * ```ts
 * import { deepStrictEqual, strictEqual } from "node:assert/strict";
 * import { alarmClock } from "./alarm_clock.ts";
 *
 * let now = 1000;
 * const alarms: number[] = [];
 * const clock = alarmClock({ now: () => now, arm: (at) => alarms.push(at) });
 * let fired = 0;
 * clock.setTimer(() => fired++, 50);
 * deepStrictEqual(alarms, [1050]);
 * now = 1049;
 * strictEqual(clock.runDue(), 0);
 * now = 1060; // the alarm rings, 10 ms late
 * strictEqual(clock.ring(), 1);
 * strictEqual(fired, 1);
 * strictEqual(clock.lateness.lateMsMax, 10);
 * ```
 */
export function alarmClock(options: AlarmClockOptions): AlarmClock {
  const wallClock = options.now ?? (() => Date.now());
  let last = -Infinity;
  // A clock never goes back, even if the wall clock does.
  const now = () => (last = Math.max(last, wallClock()));
  const timers = new Map<TimerId, { at: number; fn: () => void }>();
  let nextId = 1;
  let armedAtMs: number | null = null;
  let rings = 0;
  let lateMsMax = 0;
  let lateMsTotal = 0;
  let gapMsMax = 0;
  let lastRingMs: number | null = null;

  function earliest(): number | null {
    let at: number | null = null;
    for (const timer of timers.values()) if (at === null || timer.at < at) at = timer.at;
    return at;
  }

  /** Asks for the alarm when the earliest timer is due before the alarm set (or none is set). */
  function rearm(): void {
    const at = earliest();
    if (at === null || (armedAtMs !== null && armedAtMs <= at)) return;
    armedAtMs = at;
    options.arm(at);
  }

  function runDue(): number {
    let fired = 0;
    for (let round = 0; round < RUN_DUE_ROUNDS_MAX; round++) {
      const t = now();
      const due = [...timers].filter(([, timer]) => timer.at <= t)
        .sort((a, b) => a[1].at - b[1].at || a[0] - b[0]);
      if (due.length === 0) break;
      for (const [id, timer] of due) {
        // An earlier callback may have cleared it.
        if (!timers.delete(id)) continue;
        fired++;
        timer.fn();
      }
    }
    rearm();
    return fired;
  }

  return {
    now,
    setTimer(fn, ms) {
      const id = nextId++;
      timers.set(id, { at: now() + Math.max(0, ms), fn });
      rearm();
      return id;
    },
    clearTimer(id) {
      // The alarm may ring for nothing: cheaper than moving it back.
      timers.delete(id);
    },
    runDue,
    ring() {
      const t = now();
      if (armedAtMs !== null) {
        const late = Math.max(0, t - armedAtMs);
        rings++;
        lateMsTotal += late;
        lateMsMax = Math.max(lateMsMax, late);
      }
      if (lastRingMs !== null) gapMsMax = Math.max(gapMsMax, t - lastRingMs);
      lastRingMs = t;
      armedAtMs = null;
      return runDue();
    },
    get pending() {
      return timers.size;
    },
    get armedAtMs() {
      return armedAtMs;
    },
    get lateness() {
      return { rings, lateMsMax, lateMsMean: rings === 0 ? 0 : lateMsTotal / rings, gapMsMax };
    },
  };
}
