/**
 * A connection guard on a fake clock for the guard's unit tests: it names
 * each connection it admits, records what it closed and why, and moves the
 * clock in steps of 10 ms, sweeping at each.
 *
 * @module
 */

import { deepStrictEqual } from "node:assert/strict";
import { type CloseReason, ConnectionGuard, type ConnectionLimits } from "../../src/serve/guard.ts";

/**
 * Makes the guard and its helpers.
 *
 * @param limits The guard's limits.
 * @param admit Admits one connection to the guard, closing it through `close`.
 * @returns The guard, its clock, what it closed (`name:reason`), `open(name)` and `advanceTo(ms)`.
 */
export function fakeClockGuard<T>(
  limits: ConnectionLimits,
  admit: (guard: ConnectionGuard, close: (reason: CloseReason) => void) => T | null,
) {
  const clock = { now: 0 };
  const guard = new ConnectionGuard(limits, () => clock.now);
  const closed: string[] = [];
  const open = (name: string): T | null =>
    admit(guard, (reason: CloseReason) => closed.push(`${name}:${reason}`));
  /** Moves the clock to `ms` in steps of 10 ms, sweeping at each. */
  const advanceTo = (ms: number) => {
    for (let step = 0; step < 100_000 && clock.now < ms; step++) {
      clock.now = Math.min(ms, clock.now + 10);
      guard.sweep();
    }
  };
  return { guard, clock, closed, open, advanceTo };
}

/**
 * The rule both kinds of connection record keep: a connection that sends
 * nothing is closed at the head timeout, counted from its accept.
 *
 * @param setup Makes a fresh fake-clock guard (its limits' head timeout over 10 ms).
 */
export function assertSilentClosedAtHeadTimeout<T>(
  setup: () => ReturnType<typeof fakeClockGuard<T>>,
): void {
  const { guard, closed, open, advanceTo } = setup();
  const timeout = guard.limits.headersTimeoutMs;
  open("a");
  advanceTo(timeout - 10);
  deepStrictEqual(closed, []);
  advanceTo(timeout);
  deepStrictEqual(closed, ["a:headers"]);
}
