/**
 * The queue of Raft messages waiting to be sent to one peer. It is FIFO,
 * since Raft's pipelined appends rely on each peer getting its messages in
 * order, and bounded in messages and (estimated) bytes: past either bound
 * the oldest messages are dropped, since Raft tolerates loss and a dead
 * peer must neither grow memory nor delay the others. The sender takes
 * batches off its head, bounded too, one request's or one stream write's
 * worth at a time.
 *
 * @module
 */

import type { Message } from "../../core/messages.ts";

/** Bounds of a {@linkcode PeerQueue}. */
export interface PeerQueueOptions {
  /** Most messages held; the oldest are dropped past it. A positive integer. */
  readonly maxMessages: number;
  /**
   * Most (estimated) bytes held; the oldest are dropped past it, but never
   * the newest message, even when it alone is larger. A positive integer.
   */
  readonly maxBytes: number;
}

/** Bounds of one batch taken off a {@linkcode PeerQueue}. */
export interface BatchLimits {
  /** Most messages in the batch. */
  readonly maxMessages: number;
  /** Most (estimated) bytes in the batch, unless its single message is larger. */
  readonly maxBytes: number;
}

/**
 * The bounded FIFO queue of messages to one peer, with the drop-oldest rule.
 *
 * @example The oldest message goes when the queue is full
 * ```ts
 * import { deepStrictEqual, strictEqual } from "node:assert/strict";
 * import { PeerQueue } from "./peer_queue.ts";
 *
 * const queue = new PeerQueue({ maxMessages: 2, maxBytes: 1 << 20 });
 * strictEqual(queue.push({ type: "timeoutNow", from: "n1", to: "n2", term: 1 }), 0);
 * strictEqual(queue.push({ type: "timeoutNow", from: "n1", to: "n2", term: 2 }), 0);
 * strictEqual(queue.push({ type: "timeoutNow", from: "n1", to: "n2", term: 3 }), 1);
 * const batch = queue.take({ maxMessages: 10, maxBytes: 1 << 20 });
 * deepStrictEqual(batch.map((m) => m.term), [2, 3]);
 * strictEqual(queue.length, 0);
 * strictEqual(queue.bytes, 0);
 * ```
 */
export class PeerQueue {
  readonly #items = new Fifo<Queued>();
  /** The sum of the estimated sizes of `#items`. */
  #bytes = 0;
  readonly #maxMessages: number;
  readonly #maxBytes: number;

  /**
   * Creates an empty queue.
   *
   * @param options Its bounds, already validated by the transport.
   */
  constructor(options: PeerQueueOptions) {
    this.#maxMessages = options.maxMessages;
    this.#maxBytes = options.maxBytes;
  }

  /** Messages waiting. */
  get length(): number {
    return this.#items.length;
  }

  /** Their estimated size, bytes. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Queues a message behind the others, dropping the oldest past the bounds.
   *
   * @param message The message to queue.
   * @returns How many of the oldest messages were dropped to make room.
   */
  push(message: Message): number {
    const bytes = estimateBytes(message);
    this.#items.push({ message, bytes });
    this.#bytes += bytes;
    let dropped = 0;
    // Keep the newest message even when it alone is over the byte bound.
    while (
      this.#items.length > this.#maxMessages ||
      (this.#bytes > this.#maxBytes && this.#items.length > 1)
    ) {
      this.#bytes -= this.#items.shift()!.bytes;
      dropped++;
    }
    return dropped;
  }

  /**
   * Takes the next batch off the head of the queue, in order.
   *
   * @param limits The batch's bounds; a first message over `maxBytes` still
   *   goes, alone.
   * @returns The batch, empty when the queue is.
   */
  take(limits: BatchLimits): Message[] {
    const batch: Message[] = [];
    let bytes = 0;
    while (batch.length < limits.maxMessages) {
      const next = this.#items.peek();
      if (next === undefined || (batch.length > 0 && bytes + next.bytes > limits.maxBytes)) {
        break;
      }
      this.#items.shift();
      this.#bytes -= next.bytes;
      batch.push(next.message);
      bytes += next.bytes;
    }
    return batch;
  }

  /**
   * Empties the queue.
   *
   * @returns How many messages it dropped.
   */
  clear(): number {
    const dropped = this.#items.length;
    this.#items.clear();
    this.#bytes = 0;
    return dropped;
  }
}

/** One queued message and its estimated size. */
interface Queued {
  readonly message: Message;
  readonly bytes: number;
}

/** A FIFO with O(1) push and shift. */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

/** A cheap upper estimate of a message's encoded size, bytes. */
function estimateBytes(message: Message): number {
  let bytes = 256 + message.from.length + message.to.length;
  if (message.type === "append") {
    for (const entry of message.entries) {
      bytes += 160 + entry.proposer.length + Math.ceil(entry.data.length / 3) * 4;
    }
  } else if (message.type === "snapshot") {
    bytes += 512 * message.meta.config.members.length + Math.ceil(message.data.length / 3) * 4;
  } else if (message.type === "heartbeat") {
    bytes += (message.context?.length ?? 0) + 80 * Object.keys(message.seen).length;
  } else if ("context" in message && message.context !== null) {
    bytes += message.context.length;
  }
  return bytes;
}
