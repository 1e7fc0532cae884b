/**
 * What a leader knows of each follower's log, and the flow control that
 * bounds what it sends: one probe at a time until the follower's position is
 * known, then a bounded window of pipelined appends.
 *
 * @module
 */

import { SnapshotSender } from "./snapshot_transfer.ts";

/**
 * `probe`: position unknown, one append in flight at a time.
 * `replicate`: position known, appends are pipelined up to the window.
 * `snapshot`: a snapshot is on its way; nothing else is sent until it lands.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** Leader-side state of one follower. */
export class Progress {
  /** Highest index known to match the leader's log. */
  match = 0;
  /** Next index to send. */
  next: number;
  /** Flow-control state; changed only by the `becomeX()` methods. */
  #state: ProgressState = "probe";
  /** In probe state: a probe is in flight, wait for its answer or a heartbeat. */
  probeSent = false;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** Leader tick at which this follower was last heard from; -1 before that. */
  lastHeardTick = -1;
  /** Last commit index sent to this follower. */
  sentCommit = 0;
  /** Last index of each in-flight append, oldest first (replicate state). */
  readonly inflight: number[] = [];
  readonly #maxInflight: number;
  /** The snapshot being sent: set exactly in snapshot state. */
  #snapshot: SnapshotSender | null = null;

  /**
   * Creates the progress of a follower about to be probed.
   *
   * @param next The first index to offer it.
   * @param maxInflight The pipelining window, in messages.
   */
  constructor(next: number, maxInflight: number) {
    this.next = next;
    this.#maxInflight = maxInflight;
  }

  /** Flow-control state. */
  get state(): ProgressState {
    return this.#state;
  }

  /** In snapshot state, the snapshot on its way; null in the other states. */
  get snapshot(): SnapshotSender | null {
    return this.#snapshot;
  }

  /** Whether the leader must hold further appends back. */
  isPaused(): boolean {
    if (this.#state === "snapshot") return this.#snapshot!.inFlight;
    return this.#state === "probe" ? this.probeSent : this.inflight.length >= this.#maxInflight;
  }

  /**
   * Switches to sending the snapshot at `index`, from its first byte.
   *
   * @param index The snapshot's index.
   * @returns Its sender, also {@linkcode Progress.snapshot} from now on.
   */
  becomeSnapshot(index: number): SnapshotSender {
    this.#state = "snapshot";
    this.probeSent = false;
    this.#snapshot = new SnapshotSender(index);
    this.inflight.length = 0;
    return this.#snapshot;
  }

  /** Switches to probing from just after the match index. */
  becomeProbe(): void {
    this.#state = "probe";
    this.probeSent = false;
    this.#snapshot = null;
    this.next = this.match + 1;
    this.inflight.length = 0;
  }

  /** Switches to pipelined replication from just after the match index. */
  becomeReplicate(): void {
    this.#state = "replicate";
    this.probeSent = false;
    this.#snapshot = null;
    this.next = this.match + 1;
    this.inflight.length = 0;
  }

  /**
   * Records an acknowledgement up to `index`.
   *
   * @returns Whether the match index grew.
   */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * Handles a rejection of the append whose `prevIndex` was `rejected`;
   * `hint` is the highest index that may match.
   *
   * @returns Whether the rejection was current (not a stale duplicate).
   */
  maybeDecrease(rejected: number, hint: number): boolean {
    if (this.#state === "snapshot") return false;
    if (this.#state === "replicate") {
      // In replicate state only a rejection above the match index is news.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the answer to the latest probe counts.
    if (this.next - 1 !== rejected) return false;
    const next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    // No step back (a follower refusing entries it cannot verify): wait for
    // the next heartbeat rather than resend the same probe at once.
    if (next === this.next) return false;
    this.next = next;
    this.probeSent = false;
    return true;
  }

  /** Records an append sent with entries ending at `lastIndex`. */
  sentEntries(lastIndex: number): void {
    if (this.#state === "replicate") {
      this.next = lastIndex + 1;
      this.inflight.push(lastIndex);
    } else {
      this.probeSent = true;
    }
  }

  /** Frees the window of every append acknowledged by `index`. */
  freeUpTo(index: number): void {
    let n = 0;
    while (n < this.inflight.length && this.inflight[n]! <= index) n++;
    this.inflight.splice(0, n);
  }
}
