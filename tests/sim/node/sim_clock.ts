/**
 * A node's clock in the simulator: simulated time seen through the node's
 * own skew (a rate and an offset, as a real machine's clock drifts), with
 * timers that are events of the scheduler. Raft must not depend on clocks
 * agreeing, so skew is one of the faults a seed draws.
 *
 * @module
 */

import type { Clock, TimerId } from "../../../src/clock.ts";
import type { SimScheduler } from "./scheduler.ts";

/** How far a node's clock is off. */
export interface ClockSkew {
  /** Node ms per simulated ms: 1.05 runs 5% fast. Positive. */
  readonly rate: number;
  /** Node time at simulated time 0, ms. */
  readonly offsetMs: number;
}

/**
 * Creates the clock of one node life: its timers belong to that life, so a
 * crash discards them, and to the node, so a pause holds them.
 *
 * @param scheduler The simulation's event queue.
 * @param life The node life (see `EventScope.owner`).
 * @param node The node's id (see `EventScope.holder`).
 * @param skew The node's rate and offset.
 * @returns The clock.
 */
export function simClock(
  scheduler: SimScheduler,
  life: string,
  node: string,
  skew: ClockSkew,
): Clock {
  const scope = { owner: life, holder: node };
  return {
    // Whole ms, as `systemClock()` gives: timers and deadlines compare integers.
    now: () => Math.floor(skew.offsetMs + scheduler.now * skew.rate),
    setTimer: (fn: () => void, ms: number): TimerId =>
      scheduler.at(Math.max(0, ms) / skew.rate, `timer ${node}`, fn, scope),
    clearTimer: (id: TimerId) => scheduler.cancel(id),
  };
}
