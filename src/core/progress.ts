/**
 * What a leader knows of each follower's log, and the flow control that
 * bounds what it sends: one probe at a time until the follower's position is
 * known, then a bounded window of pipelined appends. {@linkcode ProgressTracker}
 * keeps one {@linkcode Progress} per member and answers the questions asked
 * of all of them at once: is a quorum alive, what does a majority store.
 *
 * @module
 */

import type { Member } from "./config.ts";
import { hasQuorum, quorumIndex } from "./quorum.ts";
import { type OutgoingSnapshot, SnapshotSender } from "./snapshot_transfer.ts";
import type { FollowerView } from "./types.ts";

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
  lastHeardTick: number = -1;
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
   * Switches to sending `snapshot`, from its first byte.
   *
   * @param snapshot The snapshot and its bytes, which the sender keeps until
   *   the transfer ends.
   * @returns Its sender, also {@linkcode Progress.snapshot} from now on.
   */
  becomeSnapshot(snapshot: OutgoingSnapshot): SnapshotSender {
    this.#state = "snapshot";
    this.probeSent = false;
    this.#snapshot = new SnapshotSender(snapshot);
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

/**
 * A leader's {@linkcode Progress} of every other member, voters and learners
 * alike, in member order (etcd `tracker.ProgressTracker`). Iterating it
 * yields `[id, progress]` pairs.
 *
 * @example A quorum of three, counting the leader itself
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { ProgressTracker } from "./progress.ts";
 *
 * const voters = ["a", "b", "c"];
 * const tracker = new ProgressTracker("a", 64);
 * tracker.sync(voters.map((id) => ({ id, voter: true })), 8);
 * tracker.heard("b", 3)!.maybeUpdate(6);
 * strictEqual(tracker.quorumMatch(voters, 7), 6);
 * strictEqual(tracker.quorumActive(voters), true);
 * strictEqual(tracker.quorumActive(voters), false, "nobody was heard from since");
 * ```
 */
export class ProgressTracker implements Iterable<[string, Progress]> {
  /** The leader's id: it never tracks itself. */
  readonly #self: string;
  readonly #maxInflight: number;
  /** One entry per member but the leader, once `sync()` ran. */
  readonly #byId = new Map<string, Progress>();

  /**
   * Creates a tracker that follows no one yet.
   *
   * @param self The leader's id.
   * @param maxInflight The pipelining window of each follower, in messages.
   */
  constructor(self: string, maxInflight: number) {
    this.#self = self;
    this.#maxInflight = maxInflight;
  }

  /**
   * Iterates the followers.
   *
   * @returns `[id, progress]` pairs, in the order members were first tracked.
   */
  [Symbol.iterator](): Iterator<[string, Progress]> {
    return this.#byId.entries();
  }

  /**
   * Returns a follower's progress.
   *
   * @param id The follower's id.
   * @returns Its progress, or undefined when it is not tracked.
   */
  get(id: string): Progress | undefined {
    return this.#byId.get(id);
  }

  /** Forgets every follower: a new term, a new role. */
  clear(): void {
    this.#byId.clear();
  }

  /**
   * Tracks exactly the members other than the leader: new ones are probed
   * from `next`, departed ones are dropped, the others keep their progress.
   *
   * @param members The configuration in force.
   * @param next The first index to offer a new member (the leader's last index + 1).
   */
  sync(members: readonly Member[], next: number): void {
    const ids = new Set(members.map((m) => m.id));
    for (const id of this.#byId.keys()) if (!ids.has(id)) this.#byId.delete(id);
    for (const id of ids) {
      if (id === this.#self || this.#byId.has(id)) continue;
      this.#byId.set(id, new Progress(next, this.#maxInflight));
    }
  }

  /**
   * Records that a follower answered.
   *
   * @param id The follower.
   * @param tick The leader's tick now.
   * @returns Its progress, or undefined when it is not tracked (its answer is then ignored).
   */
  heard(id: string, tick: number): Progress | undefined {
    const pr = this.#byId.get(id);
    if (pr === undefined) return undefined;
    pr.recentActive = true;
    pr.lastHeardTick = tick;
    return pr;
  }

  /**
   * Whether a majority of voters, the leader included, was heard from since
   * the last call (CheckQuorum, thesis §6.2); starts a new round.
   *
   * @param voters The voters in force.
   * @returns True when the leader may go on leading.
   */
  quorumActive(voters: readonly string[]): boolean {
    const active = new Set([this.#self]);
    for (const [id, pr] of this.#byId) {
      if (pr.recentActive) active.add(id);
      pr.recentActive = false;
    }
    return hasQuorum(voters, active);
  }

  /**
   * Returns the highest index a majority of voters store.
   *
   * @param voters The voters in force, at least one.
   * @param ownMatch What the leader itself stores durably.
   * @returns The index; untracked voters count as storing nothing.
   * @throws {AssertionError} When `voters` is empty.
   */
  quorumMatch(voters: readonly string[], ownMatch: number): number {
    return quorumIndex(
      voters.map((id) => id === this.#self ? ownMatch : this.#byId.get(id)?.match ?? 0),
    );
  }

  /**
   * Ticks since each follower was last heard from.
   *
   * @param tick The leader's tick now.
   * @returns Ticks per follower; followers never heard from are absent.
   */
  seenTicks(tick: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const [id, pr] of this.#byId) {
      if (pr.lastHeardTick >= 0) out.set(id, tick - pr.lastHeardTick);
    }
    return out;
  }

  /**
   * A read-only report of every follower.
   *
   * @returns A view per follower.
   */
  views(): Map<string, FollowerView> {
    const out = new Map<string, FollowerView>();
    for (const [id, pr] of this.#byId) {
      out.set(id, {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        paused: pr.isPaused(),
        inflight: pr.inflight.length,
        recentActive: pr.recentActive,
      });
    }
    return out;
  }
}
