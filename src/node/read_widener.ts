/**
 * Widens a leader's narrow read round that is not confirmed soon. The core
 * sends a linearizable read's confirmation round only to as many voters as
 * a quorum needs (`Raft.narrowReadRound()`), which halves the peer traffic
 * of reads in a cluster of three; if one of them is slow or paused (a
 * garbage collection, a full disk queue), this sends the round to the
 * others after {@linkcode readWidenMs}, instead of leaving the reads to the
 * next periodic heartbeat.
 *
 * One timer at most: when it fires and a newer narrow round is out, it is
 * armed again for that one, so a steady stream of rounds costs one timer
 * per interval, not one per round.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { Raft } from "../core/raft.ts";

/** What the widener needs of its node. */
export interface ReadWidenerHost {
  /** Time for the timer. */
  readonly clock: Clock;
  /** How long a narrow round may go unconfirmed before it is widened, ms. */
  readonly widenMs: number;
  /** The core. */
  raft(): Raft;
  /** Whether the node stopped: nothing is widened. */
  stopped(): boolean;
  /** Makes the node run its loop, so the widened round's messages go out. */
  schedule(): void;
  /** Hears that a round was widened (counted in the node's metrics). */
  widened(): void;
}

/**
 * How long a narrow read round may wait for its answers before it goes to
 * every peer: a tenth of the heartbeat interval, at least a millisecond.
 * A round takes well under a millisecond on a healthy cluster, and a
 * widened one costs only one more heartbeat per peer.
 *
 * @param heartbeatMs The heartbeat interval, ms.
 * @returns The wait, ms.
 */
export function readWidenMs(heartbeatMs: number): number {
  return Math.max(1, Math.round(heartbeatMs / 10));
}

/** Watches a leader's narrow read rounds. */
export class ReadWidener {
  readonly #host: ReadWidenerHost;
  #timer: TimerId | null = null;

  /**
   * Creates an idle widener.
   *
   * @param host What it needs of the node.
   */
  constructor(host: ReadWidenerHost) {
    this.#host = host;
  }

  /** Messages went out: arms the timer for a narrow round among them, unless armed. */
  sent(): void {
    if (this.#timer !== null || this.#host.stopped()) return;
    const context = this.#host.raft().narrowReadRound();
    if (context === null) return;
    this.#timer = this.#host.clock.setTimer(() => {
      this.#timer = null;
      if (this.#host.stopped()) return;
      const raft = this.#host.raft();
      if (raft.narrowReadRound() !== context) {
        // Confirmed in time; a newer narrow round may be out.
        this.sent();
        return;
      }
      raft.widenReadRound();
      this.#host.widened();
      this.#host.schedule();
    }, this.#host.widenMs);
  }

  /** Cancels the timer. */
  stop(): void {
    if (this.#timer !== null) this.#host.clock.clearTimer(this.#timer);
    this.#timer = null;
  }
}
