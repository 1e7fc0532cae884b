/**
 * Linearizable reads by ReadIndex (thesis §6.4), batched: reads that arrive
 * while a confirmation round is out wait for the next one, so any number of
 * concurrent reads costs one heartbeat round. A read is released once this
 * node has applied up to the index the round confirmed.
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import { NotLeaderError } from "../core/errors.ts";
import type { Raft } from "../core/raft.ts";
import type { ReadState } from "../core/types.ts";
import { UnavailableError } from "../errors.ts";
import { type Deadline, Deadlines } from "./deadlines.ts";

interface ReadWaiter {
  readonly resolve: (index: number) => void;
  readonly reject: (e: unknown) => void;
  readonly deadline: Deadline;
  /** The index the round confirmed; null until it did. */
  index: number | null;
}

/** What the read batcher needs of its node. */
export interface ReadHost {
  /** Time for timeouts. */
  readonly clock: Clock;
  /** How long a round may take before it is retried (an election timeout), ms. */
  readonly retryMs: number;
  /** Asks the core to confirm leadership for `context`; false when no leader is known or the node stopped. */
  readIndex(context: string): boolean;
  /** Makes the node run its loop, so the round's messages go out. */
  schedule(): void;
}

/** The reads of one node waiting for a confirmation round or for apply. */
export class ReadBatcher {
  readonly #host: ReadHost;
  readonly #prefix: string;
  #queue: ReadWaiter[] = [];
  #round:
    | { readonly context: string; readonly reads: ReadWaiter[]; readonly timer: TimerId }
    | null = null;
  #awaitingApply: ReadWaiter[] = [];
  readonly #deadlines: Deadlines;
  #seq = 0;

  /**
   * Creates an idle batcher.
   *
   * @param id The node's id, part of every round's context.
   * @param host What it needs of the node.
   */
  constructor(id: string, host: ReadHost) {
    this.#host = host;
    this.#deadlines = new Deadlines(host.clock);
    // Random per life, so a late answer to a round of a past life never matches.
    this.#prefix = `${id}:${crypto.getRandomValues(new Uint32Array(2)).join("")}`;
  }

  /** Number of reads waiting. */
  get count(): number {
    return this.#queue.length + (this.#round?.reads.length ?? 0) + this.#awaitingApply.length;
  }

  /** Whether no round is out. */
  get idle(): boolean {
    return this.#round === null;
  }

  /**
   * Waits until a round confirms this node's view and it has applied that far.
   *
   * @param timeoutMs How long to wait.
   * @returns The confirmed index.
   * @throws {UnavailableError} When no round succeeded in time.
   */
  wait(timeoutMs: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const waiter: ReadWaiter = {
        resolve,
        reject,
        index: null,
        deadline: this.#deadlines.add(this.#host.clock.now() + timeoutMs, () => {
          this.#drop(waiter);
          reject(
            new UnavailableError("Cannot confirm a linearizable read: no leader answered in time"),
          );
        }),
      };
      this.#queue.push(waiter);
      this.startRound();
    });
  }

  /** Starts a round for the queued reads, unless one is out or no leader is known. */
  startRound(): void {
    if (this.#round !== null || this.#queue.length === 0) return;
    const context = `${this.#prefix}:${++this.#seq}`;
    // No leader: tried again on the next tick or leader change.
    if (!this.#host.readIndex(context)) return;
    const reads = this.#queue;
    this.#queue = [];
    // A round lost with a leader change is retried after an election timeout.
    const timer = this.#host.clock.setTimer(() => {
      if (this.#round?.context !== context) return;
      this.#round = null;
      this.#queue.unshift(...reads);
      this.startRound();
    }, this.#host.retryMs);
    this.#round = { context, reads, timer };
    this.#host.schedule();
  }

  /**
   * Takes the core's answer to a round.
   *
   * @param rs The confirmed context and index.
   * @param applied What this node has applied.
   */
  confirmed(rs: ReadState, applied: number): void {
    const round = this.#round;
    if (round === null || round.context !== rs.context) return;
    this.#host.clock.clearTimer(round.timer);
    this.#round = null;
    for (const r of round.reads) r.index = rs.index;
    this.#awaitingApply.push(...round.reads);
    this.release(applied);
    this.startRound();
  }

  /**
   * Releases the reads whose confirmed index is applied.
   *
   * @param applied What this node has applied.
   */
  release(applied: number): void {
    const still: ReadWaiter[] = [];
    for (const r of this.#awaitingApply) {
      if (r.index !== null && r.index <= applied) {
        this.#deadlines.cancel(r.deadline);
        r.resolve(r.index);
      } else still.push(r);
    }
    this.#awaitingApply = still;
  }

  /**
   * Ends every waiting read with `error`.
   *
   * @param error What the reads are told.
   */
  failAll(error: unknown): void {
    const reads = [...this.#queue, ...(this.#round?.reads ?? []), ...this.#awaitingApply];
    if (this.#round !== null) this.#host.clock.clearTimer(this.#round.timer);
    this.#queue = [];
    this.#round = null;
    this.#awaitingApply = [];
    for (const r of reads) {
      this.#deadlines.cancel(r.deadline);
      r.reject(error);
    }
  }

  #drop(waiter: ReadWaiter): void {
    this.#queue = this.#queue.filter((r) => r !== waiter);
    // In place: a retry of the round re-queues the array its timer holds.
    const inRound = this.#round?.reads ?? [];
    const at = inRound.indexOf(waiter);
    if (at >= 0) inRound.splice(at, 1);
    this.#awaitingApply = this.#awaitingApply.filter((r) => r !== waiter);
  }
}

/**
 * Asks the core to confirm leadership for a round.
 *
 * @param raft The node's core.
 * @param context The round's context.
 * @returns False when no leader is known: the round waits for one.
 */
export function askReadIndex(raft: Raft, context: string): boolean {
  try {
    raft.readIndex(context);
    return true;
  } catch (e) {
    if (e instanceof NotLeaderError) return false;
    throw e;
  }
}
