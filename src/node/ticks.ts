/**
 * A node's tick, every heartbeat interval: it moves the core's clock
 * (elections, heartbeats), starts a read confirmation round when none is
 * running, tells the transport which peers a leader no longer hears from,
 * lets the cluster operations evict a learner that never caught up, and
 * schedules a pass of the ready loop for what the tick produced.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { Raft } from "../core/raft.ts";
import type { Transport } from "../transport/transport.ts";
import type { NodeSettings } from "./options.ts";
import type { ReadBatcher } from "./reads.ts";
import { silentPeers } from "./status.ts";

/** The parts of a node a tick works with. */
export interface TickHost {
  /** This node's id. */
  readonly id: string;
  /** Keeps time and sets the timer. */
  readonly clock: Clock;
  /** The tick (`heartbeatMs`) and the election timeout. */
  readonly settings: Pick<NodeSettings, "heartbeatMs" | "electionMs">;
  /** The core. */
  raft(): Raft;
  /** Read confirmation rounds. */
  readonly reads: ReadBatcher;
  /** Told which peers went silent. */
  readonly transport: Transport;
  /** Whether the node stopped: no more ticks. */
  stopped(): boolean;
  /** Whether this node was removed: it does not move the core's clock. */
  removed(): boolean;
  /** Evicts a learner that never caught up, on a leader. */
  evict(): void;
  /** Schedules a pass of the ready loop. */
  schedule(): void;
  /** Stops the node after an error. */
  fail(error: unknown): void;
}

/** The ticks of one node. */
export class Ticks {
  readonly #host: TickHost;
  #timer: TimerId | null = null;

  /**
   * Creates the ticks of a node; none runs until {@linkcode Ticks.start}.
   *
   * @param host The node's parts.
   */
  constructor(host: TickHost) {
    this.#host = host;
  }

  /** Arms the next tick, unless the node stopped. */
  start(): void {
    const host = this.#host;
    if (host.stopped()) return;
    this.#timer = host.clock.setTimer(() => {
      if (host.stopped()) return;
      try {
        // A removed member would only disrupt the others with campaigns it
        // cannot win: it stays quiet until added back (see `removed`).
        if (!host.removed()) host.raft().tick(host.clock.now());
      } catch (e) {
        host.fail(e);
        return;
      }
      if (host.reads.idle) host.reads.startRound();
      this.#reportSilentPeers();
      host.evict();
      host.schedule();
      this.start();
    }, host.settings.heartbeatMs);
  }

  /** Cancels the next tick. */
  stop(): void {
    if (this.#timer !== null) this.#host.clock.clearTimer(this.#timer);
  }

  /** Tells the transport which peers this leader has not heard from (see `silentPeers`). */
  #reportSilentPeers(): void {
    const { transport, id, settings } = this.#host;
    const raft = this.#host.raft();
    if (transport.unreachable === undefined || raft.role !== "leader") return;
    for (const peer of silentPeers(id, raft.seenTicks(), settings)) transport.unreachable(peer);
  }
}
