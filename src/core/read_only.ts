/**
 * The leader's queue of linearizable reads (ReadIndex, thesis §6.4): each
 * read waits, at the commit index it arrived at, until a quorum of voters
 * answers a heartbeat sent after it, which proves that no newer leader
 * existed when the read arrived.
 *
 * @module
 */

import { hasQuorum } from "./quorum.ts";

/** A read the leader answers once its leadership is confirmed. */
export interface ReadRequest {
  /** The caller's id for the read, unique among pending reads. */
  readonly context: string;
  /** Who asked: the leader itself, or a follower that forwarded the read. */
  readonly from: string;
  /** The read point: the leader's commit index when the read arrived. */
  readonly index: number;
}

/** A read that arrived before the leader knew its commit index. */
export interface DeferredRead {
  /** The caller's id for the read. */
  readonly context: string;
  /** Who asked. */
  readonly from: string;
}

/**
 * Pending reads of one leader in one term, oldest first, with the voters
 * that confirmed each. Reset it whenever leadership or the term changes:
 * reads pending then get no answer, and their callers retry or time out.
 *
 * One confirmation round is out at a time: reads that arrive meanwhile,
 * from the leader or forwarded by followers, wait for its answer and then
 * share the next round. Every follower's reads and the leader's own thus
 * cost one heartbeat round, not one each. A round can go to only as many
 * voters as a quorum needs, those that confirmed rounds most recently
 * ({@linkcode ReadIndexQueue.fastest}): it is then narrow until widened to
 * the others, or until the periodic heartbeat carries it to everyone.
 *
 * A follower's reads may come vouched for by the follower itself (its
 * request was sent in the leader's term after they began): the follower
 * then counts towards their quorum, and theirs only. Such a read is
 * released on its own as soon as the answers with it make a quorum, while
 * the reads before it wait for a quorum of answers; its entry stays, so
 * that answers to a round carrying its context still count for them.
 *
 * @example A read released by a quorum of three voters
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { ReadIndexQueue } from "./read_only.ts";
 *
 * const reads = new ReadIndexQueue();
 * reads.add({ context: "r1", from: "a", index: 7 }, "a");
 * deepStrictEqual(reads.recvAck("r1", "b", ["a", "b", "c"]), [
 *   { context: "r1", from: "a", index: 7 },
 * ]);
 * ```
 */
export class ReadIndexQueue {
  /**
   * Reads waiting for a quorum, in arrival order; contexts are distinct.
   * `vouch` is the follower that vouched for the read; `released`, that it
   * was released on its own, its entry kept for the reads before it.
   */
  #pending: {
    request: ReadRequest;
    acks: Set<string>;
    vouch: string | null;
    released: boolean;
  }[] = [];
  /** Reads that arrived before this leader committed an entry of its term. */
  #deferred: DeferredRead[] = [];
  /** The context of the round out (a heartbeat sent, no quorum yet), or null. */
  #out: string | null = null;
  /** The peers the round out went to, when only some of them: null when it went to all. */
  #outTargets: readonly string[] | null = null;
  /** Voters and learners by when they last confirmed a pending read, most recent first. */
  #recent: string[] = [];

  /** Number of reads waiting for a quorum. */
  get pending(): number {
    let waiting = 0;
    for (const p of this.#pending) if (!p.released) waiting++;
    return waiting;
  }

  /**
   * Queues a read, confirmed so far by the leader alone, or by the leader
   * and the follower that vouched for it.
   *
   * @param request The read.
   * @param leader The leader's own id, its first confirmation.
   * @param vouch The follower that vouched for this read alone, if any.
   * @returns Whether it was queued: false when a read with the same context
   *   is pending already (the earlier one will answer it).
   */
  add(request: ReadRequest, leader: string, vouch: string | null = null): boolean {
    if (this.#pending.some((p) => p.request.context === request.context)) return false;
    this.#pending.push({ request, acks: new Set([leader]), vouch, released: false });
    return true;
  }

  /**
   * The followers that vouched for the waiting reads, when every one of
   * them was vouched for: a round needs one answer fewer from the others.
   *
   * @returns The followers, or null when some read was not vouched for.
   */
  vouchers(): ReadonlySet<string> | null {
    const vouchers = new Set<string>();
    for (const p of this.#pending) {
      if (p.released) continue;
      if (p.vouch === null) return null;
      vouchers.add(p.vouch);
    }
    return vouchers.size === 0 ? null : vouchers;
  }

  /**
   * The context heartbeats carry: that of the latest pending read, whose
   * quorum also confirms every earlier one.
   *
   * @returns The context, or null when no read is pending.
   */
  lastContext(): string | null {
    return this.#pending.at(-1)?.request.context ?? null;
  }

  /**
   * Starts a confirmation round for the waiting reads, unless one is out:
   * the answer to that one starts the next.
   *
   * @returns The context for the heartbeats to carry, or null when no round
   *   is to be sent now.
   */
  startRound(): string | null {
    if (this.#out !== null) return null;
    this.#outTargets = null;
    return this.#out = this.lastContext();
  }

  /**
   * Picks the peers a round goes to when it need not go to all: those that
   * confirmed reads most recently, which are likely to answer first, then
   * the others in the order given.
   *
   * @param candidates The peers that count towards the quorum.
   * @param needed How many answers the quorum needs besides the leader's own.
   * @returns `needed` of the candidates (all of them, when there are fewer).
   */
  fastest(candidates: readonly string[], needed: number): string[] {
    const picked = this.#recent.filter((id) => candidates.includes(id)).slice(0, needed);
    for (const id of candidates) {
      if (picked.length >= needed) break;
      if (!picked.includes(id)) picked.push(id);
    }
    return picked;
  }

  /**
   * Records that the round out went only to `targets`.
   *
   * @param targets The peers its heartbeat went to.
   */
  narrowed(targets: readonly string[]): void {
    if (this.#out !== null) this.#outTargets = targets;
  }

  /**
   * The round out, when it went to only some of the peers.
   *
   * @returns Its context and the peers it went to, or null.
   */
  narrowRound(): { readonly context: string; readonly targets: readonly string[] } | null {
    return this.#out === null || this.#outTargets === null
      ? null
      : { context: this.#out, targets: this.#outTargets };
  }

  /** The narrow round out has gone to every peer since. */
  widened(): void {
    this.#outTargets = null;
  }

  /**
   * The context the periodic heartbeat carries, which makes it the round out:
   * it also retries a round whose heartbeats or answers were lost.
   *
   * @returns The latest pending read's context, or null when none is pending.
   */
  heartbeatContext(): string | null {
    this.#outTargets = null;
    return this.#out = this.lastContext();
  }

  /**
   * Records that `from` answered a heartbeat carrying `context`.
   *
   * @param context The context the heartbeat carried.
   * @param from The voter or learner that answered.
   * @param voters The voters in force; only they count.
   * @returns The reads released, oldest first: once a quorum confirmed the
   *   read of `context`, it also confirmed every read that arrived before
   *   it. Empty when none is released.
   */
  recvAck(context: string, from: string, voters: readonly string[]): ReadRequest[] {
    const at = this.#pending.findIndex((p) => p.request.context === context);
    if (at < 0) return [];
    const acks = this.#pending[at]!.acks;
    if (acks.has(from)) return [];
    acks.add(from);
    if (this.#recent[0] !== from) {
      this.#recent = [from, ...this.#recent.filter((id) => id !== from)];
    }
    if (hasQuorum(voters, acks)) {
      const done = this.#pending.splice(0, at + 1);
      this.#forgetRoundIfGone(done);
      return done.filter((p) => !p.released).map((p) => p.request);
    }
    // These answers came after every read up to `at` began: with its
    // voucher, a vouched-for read among them may have its quorum.
    const released: ReadRequest[] = [];
    for (const p of this.#pending.slice(0, at + 1)) {
      if (p.released || p.vouch === null || acks.has(p.vouch)) continue;
      if (hasQuorum(voters, new Set([...acks, p.vouch]))) {
        p.released = true;
        released.push(p.request);
      }
    }
    // Released entries at the front count for no read any more.
    let front = 0;
    while (front < this.#pending.length && this.#pending[front]!.released) front++;
    this.#forgetRoundIfGone(this.#pending.splice(0, front));
    return released;
  }

  /** Ends the round out when its read's entry is among those dropped. */
  #forgetRoundIfGone(dropped: readonly { request: ReadRequest }[]): void {
    if (dropped.some((p) => p.request.context === this.#out)) {
      this.#out = null;
      this.#outTargets = null;
    }
  }

  /**
   * Holds a read until the leader commits an entry of its term: before that
   * it does not know the true commit index (§6.4 step 1).
   *
   * @param read The read.
   */
  defer(read: DeferredRead): void {
    this.#deferred.push(read);
  }

  /**
   * Hands back the deferred reads and forgets them.
   *
   * @returns The reads, in arrival order.
   */
  takeDeferred(): DeferredRead[] {
    const out = this.#deferred;
    this.#deferred = [];
    return out;
  }

  /** Drops every pending and deferred read. */
  reset(): void {
    this.#pending = [];
    this.#deferred = [];
    this.#out = null;
    this.#outTargets = null;
  }
}
