/**
 * Chunked snapshot transfer (Raft §7): the leader sends a snapshot to one
 * follower a chunk at a time, each chunk waiting for the follower's answer,
 * which says how many bytes it holds; the follower joins chunks only from
 * one transfer (same leader, term, snapshot and size) and only in order.
 * Either side can restart: a follower that lost its partial snapshot answers
 * 0 and the leader starts over.
 *
 * The leader's sender keeps the bytes of the snapshot it is sending, so that
 * a newer snapshot taken meanwhile does not restart a transfer the follower
 * has begun to receive: with snapshots taken every few entries under
 * load, restarting would leave a follower that needs many chunks chasing
 * one snapshot after another, never holding a whole one.
 *
 * @module
 */

import { concatBytes } from "@noble/hashes/utils.js";
import type { SnapshotMeta } from "./log.ts";
import type { SnapshotMessage } from "./messages.ts";

/** A snapshot as the leader sends it: where it stands in the log, and its bytes. */
export interface OutgoingSnapshot {
  /** Index, term, hash and configuration of the last entry it covers. */
  readonly meta: SnapshotMeta;
  /** The state machine's bytes at `meta.index`. */
  readonly data: Uint8Array;
}

/**
 * The smallest snapshot chunk sent, whatever the message size bound: a tiny
 * bound (there to split append batches) must not turn one snapshot into
 * thousands of round trips.
 */
export const SNAPSHOT_CHUNK_MIN_BYTES = 1024;

/**
 * The leader's side of sending one snapshot to one follower.
 *
 * @example Two chunks, the second sent once the first is acknowledged
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { EMPTY_CONFIG } from "./config.ts";
 * import { SnapshotSender } from "./snapshot_transfer.ts";
 *
 * const meta = { index: 9, term: 2, hash: "h9", config: EMPTY_CONFIG };
 * const sender = new SnapshotSender({ meta, data: new Uint8Array(1500) });
 * strictEqual(sender.nextChunk(1000).data.length, 1024);
 * sender.sent(1);
 * strictEqual(sender.inFlight, true);
 * strictEqual(sender.maybeAck(9, 1024), true);
 * strictEqual(sender.nextChunk(1000).offset, 1024);
 * ```
 */
export class SnapshotSender {
  /**
   * The snapshot being sent, bytes included: it stays the one sent until the
   * transfer ends (or starts over), whatever newer snapshot the leader takes.
   */
  readonly snapshot: OutgoingSnapshot;
  /** Bytes the follower holds, as it last said: where the next chunk starts. */
  #acked = 0;
  /** Whether a chunk is unanswered; no other chunk leaves meanwhile. */
  #inFlight = false;
  /** The leader tick the last chunk left at. */
  #sentTick = 0;

  /**
   * Starts sending a snapshot from its first byte.
   *
   * @param snapshot The snapshot and its bytes, kept until the transfer ends.
   */
  constructor(snapshot: OutgoingSnapshot) {
    this.snapshot = snapshot;
  }

  /** Index of the snapshot being sent. */
  get index(): number {
    return this.snapshot.meta.index;
  }

  /** Size of the snapshot being sent, bytes. */
  get total(): number {
    return this.snapshot.data.length;
  }

  /** Bytes the follower acknowledged: where the next chunk starts. */
  get acked(): number {
    return this.#acked;
  }

  /** Whether a chunk is in flight, so the leader sends nothing more. */
  get inFlight(): boolean {
    return this.#inFlight;
  }

  /**
   * Cuts the next chunk of the snapshot being sent.
   *
   * @param maxMsgBytes The message size bound (raised to
   *   {@linkcode SNAPSHOT_CHUNK_MIN_BYTES}).
   * @returns Where the chunk starts in the snapshot, and its bytes (a view).
   */
  nextChunk(maxMsgBytes: number): { offset: number; data: Uint8Array } {
    const data = this.snapshot.data;
    const offset = this.#acked;
    const end = offset + Math.max(SNAPSHOT_CHUNK_MIN_BYTES, maxMsgBytes);
    return { offset, data: data.subarray(offset, end) };
  }

  /**
   * Records that a chunk left.
   *
   * @param tick The leader's tick now.
   */
  sent(tick: number): void {
    this.#inFlight = true;
    this.#sentTick = tick;
  }

  /**
   * Records the follower's answer: it holds the first `received` bytes of
   * the snapshot at `index`.
   *
   * @param index The snapshot the answer is about.
   * @param received The bytes the follower holds.
   * @returns Whether the answer was taken, so the next chunk may leave.
   */
  maybeAck(index: number, received: number): boolean {
    // More than the whole snapshot is a forgery or a bug: taken as true, every
    // later chunk would start past the end and the transfer stall for good.
    if (index !== this.index || received > this.total) return false;
    // A smaller count is a stale answer (dropped: honouring it would start a
    // second stream of chunks), except 0, which only a follower that lost its
    // partial snapshot sends (it restarted, or a new transfer replaced it).
    if (received < this.#acked && received !== 0) return false;
    // The same count while a chunk is out answers an earlier copy of a chunk
    // (the network repeated one, or a chunk given up as lost arrived after
    // all). Taken, it would send the chunk in flight a second time; each
    // copy draws an answer of its own, and the copies would multiply for the
    // rest of the transfer.
    if (received === this.#acked && this.#inFlight) return false;
    this.#acked = received;
    this.#inFlight = false;
    return true;
  }

  /**
   * Takes a chunk unanswered for more than `timeoutTicks` as lost, so that
   * it is sent again.
   *
   * @param tick The leader's tick now.
   * @param timeoutTicks How long an answer may take.
   * @returns Whether the chunk in flight was given up.
   */
  maybeExpire(tick: number, timeoutTicks: number): boolean {
    if (!this.#inFlight || tick - this.#sentTick <= timeoutTicks) return false;
    this.#inFlight = false;
    return true;
  }
}

/** What a follower makes of one chunk. */
export type ChunkOutcome =
  | {
    /** More chunks are due. */
    readonly done: false;
    /** Bytes held now: the follower's answer, where the next chunk starts (0: start over). */
    readonly received: number;
  }
  | {
    /** The snapshot is complete. */
    readonly done: true;
    /** Its bytes. */
    readonly data: Uint8Array;
  };

/**
 * The follower's side: the chunks of one snapshot arriving from a leader.
 *
 * @example A snapshot in two chunks
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { EMPTY_CONFIG } from "./config.ts";
 * import { SnapshotReceiver } from "./snapshot_transfer.ts";
 *
 * const meta = { index: 9, term: 2, hash: "h9", config: EMPTY_CONFIG };
 * const chunk = { type: "snapshot", from: "a", to: "b", term: 2, meta, total: 4 } as const;
 * const receiver = new SnapshotReceiver();
 * deepStrictEqual(receiver.receive({ ...chunk, offset: 0, data: new Uint8Array([1, 2]) }), {
 *   done: false,
 *   received: 2,
 * });
 * deepStrictEqual(receiver.receive({ ...chunk, offset: 2, data: new Uint8Array([3, 4]) }), {
 *   done: true,
 *   data: new Uint8Array([1, 2, 3, 4]),
 * });
 * ```
 */
export class SnapshotReceiver {
  /** The transfer under way; its chunks are consecutive from byte 0. */
  #transfer: {
    readonly from: string;
    readonly term: number;
    readonly meta: SnapshotMeta;
    readonly total: number;
    readonly chunks: Uint8Array[];
    received: number;
  } | null = null;

  /** Whether a transfer is under way. */
  get receiving(): boolean {
    return this.#transfer !== null;
  }

  /**
   * Takes one chunk. A chunk at offset 0 of another transfer replaces the
   * one held; a chunk of another transfer elsewhere, or out of order, is
   * dropped.
   *
   * @param m The chunk.
   * @returns The snapshot once complete (the transfer is then forgotten),
   *   else the bytes held, to answer with.
   */
  receive(m: SnapshotMessage): ChunkOutcome {
    let r = this.#transfer;
    // Chunks are only ever joined with chunks of the same leader and term.
    const same = r !== null && r.from === m.from && r.term === m.term &&
      r.meta.index === m.meta.index && r.meta.hash === m.meta.hash && r.total === m.total;
    if (!same && m.offset === 0) {
      r = { from: m.from, term: m.term, meta: m.meta, total: m.total, chunks: [], received: 0 };
      this.#transfer = r;
    } else if (!same || r === null) {
      // Not the transfer we hold (we restarted, or a new one began): from the start.
      return { done: false, received: 0 };
    }
    if (m.offset === r.received && r.received + m.data.length <= r.total) {
      r.chunks.push(m.data);
      r.received += m.data.length;
    }
    if (r.received < r.total) return { done: false, received: r.received };
    this.#transfer = null;
    return { done: true, data: concatChunks(r.chunks) };
  }

  /** Forgets the transfer under way: the term moved on, or the snapshot is no longer needed. */
  reset(): void {
    this.#transfer = null;
  }
}

/** Joins snapshot chunks into one array (the chunks add up to the snapshot's size). */
function concatChunks(chunks: readonly Uint8Array[]): Uint8Array {
  return chunks.length === 1 ? chunks[0]! : concatBytes(...chunks);
}
