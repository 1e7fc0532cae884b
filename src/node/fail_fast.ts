/**
 * Failing fast after a loss: one election timeout after a node lost its
 * leadership, its waiting writes end with `timeout` (they may still
 * commit); one election timeout after it lost its leader, its waiting
 * reads end with `unavailable`. Unless, by then, it is back.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { SoftState } from "../core/types.ts";
import { TimeoutError, UnavailableError } from "../errors.ts";
import type { ReadBatcher } from "./reads.ts";
import type { PendingWrites } from "./writes.ts";

/** What {@linkcode FailFast} watches and fails. */
export interface FailFastHost {
  /** Time and timers. */
  readonly clock: Clock;
  /** How long a loss may last before clients are failed, ms. */
  readonly electionMs: number;
  /** Whether the node stopped (then nothing is left to fail). */
  stopped(): boolean;
  /** Whether the node leads now. */
  leading(): boolean;
  /** Whether the node knows a leader now. */
  leaderKnown(): boolean;
  /** The waiting writes. */
  readonly writes: PendingWrites;
  /** The waiting reads. */
  readonly reads: ReadBatcher;
}

/** Fails a node's waiting clients soon after it lost its leadership or leader. */
export class FailFast {
  readonly #host: FailFastHost;

  /**
   * Creates the watch of a node.
   *
   * @param host The node's parts.
   */
  constructor(host: FailFastHost) {
    this.#host = host;
  }

  /**
   * Hears that the node's role or leader changed.
   *
   * @param soft The new role and leader.
   */
  changed(soft: SoftState): void {
    const { writes, reads } = this.#host;
    if (soft.role !== "leader" && writes.count > 0) this.#later("writes");
    if (soft.leader === null && reads.count > 0) this.#later("reads");
  }

  #later(what: "writes" | "reads"): void {
    const host = this.#host;
    host.clock.setTimer(() => {
      if (host.stopped()) return;
      if (what === "writes" && !host.leading()) {
        host.writes.failAll(
          new TimeoutError(
            "This node lost its leadership before the write committed: it may still commit",
          ),
        );
      }
      if (what === "reads" && !host.leaderKnown()) {
        host.reads.failAll(
          new UnavailableError("Cannot confirm a linearizable read: this node lost its leader"),
        );
      }
    }, host.electionMs);
  }
}
