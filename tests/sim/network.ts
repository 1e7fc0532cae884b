/**
 * The simulated network: every message gets a delivery tick drawn from the
 * seed, may be lost or duplicated, and is blocked by partitions (symmetric or
 * one-way). Delivery order within a tick is shuffled, so random delays also
 * reorder messages.
 *
 * @module
 */

import type { Message, Prng } from "../../src/core/mod.ts";

/** Per-seed fault rates of the network. */
export interface NetworkFaults {
  /** Probability that a message is lost. */
  lossRate: number;
  /** Probability that a message is delivered twice. */
  duplicateRate: number;
  /** Largest delivery delay in ticks (the smallest is 1: the next tick). */
  maxDelayTicks: number;
  /**
   * Keep each link's messages in send order, as a stream transport (TCP,
   * one HTTP request at a time per peer) does. Otherwise delays reorder.
   */
  fifo: boolean;
}

/** A network that holds messages until their delivery tick. */
export class SimNetwork {
  #prng: Prng;
  #inFlight = new Map<number, Message[]>();
  /** Per link: the latest delivery tick booked, for FIFO links. */
  #linkTail = new Map<string, number>();
  #blocked = new Set<string>();
  /** Faults in force; the simulator turns them off to heal. */
  faults: NetworkFaults;
  /** Messages accepted for delivery, for statistics. */
  sent = 0;

  /**
   * Creates an empty network.
   *
   * @param prng The seed's generator.
   * @param faults Initial fault rates.
   */
  constructor(prng: Prng, faults: NetworkFaults) {
    this.#prng = prng;
    this.faults = faults;
  }

  /** Queues `m` for delivery at or after tick `now`, subject to faults. */
  send(m: Message, now: number): void {
    if (this.#blocked.has(link(m.from, m.to))) return;
    if (this.#prng.next() < this.faults.lossRate) return;
    const copies = this.#prng.next() < this.faults.duplicateRate ? 2 : 1;
    const key = link(m.from, m.to);
    for (let i = 0; i < copies; i++) {
      let at = now + 1 + Math.floor(this.#prng.next() * this.faults.maxDelayTicks);
      if (this.faults.fifo) {
        at = Math.max(at, this.#linkTail.get(key) ?? 0);
        this.#linkTail.set(key, at);
      }
      let bucket = this.#inFlight.get(at);
      if (bucket === undefined) this.#inFlight.set(at, bucket = []);
      bucket.push(m);
      this.sent++;
    }
  }

  /** Removes and returns the messages due at tick `now`, shuffled. */
  due(now: number): Message[] {
    const bucket = this.#inFlight.get(now) ?? [];
    this.#inFlight.delete(now);
    const order = bucket.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(this.#prng.next() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    let shuffled = order.map((i) => bucket[i]!);
    if (this.faults.fifo) {
      // Interleave links at random but keep each link's own send order
      // (the bucket holds one link's messages in send order).
      const positions = new Map<string, number[]>();
      order.forEach((i, pos) => {
        const key = link(bucket[i]!.from, bucket[i]!.to);
        positions.set(key, [...(positions.get(key) ?? []), pos]);
      });
      shuffled = new Array(bucket.length);
      for (const slots of positions.values()) {
        const sent = slots.map((pos) => order[pos]!).toSorted((x, y) => x - y);
        slots.forEach((pos, k) => shuffled[pos] = bucket[sent[k]!]!);
      }
    }
    return shuffled.filter((m) => !this.#blocked.has(link(m.from, m.to)));
  }

  /** Blocks messages from `from` to `to`. */
  block(from: string, to: string): void {
    this.#blocked.add(link(from, to));
  }

  /** Lifts every partition. */
  healPartitions(): void {
    this.#blocked.clear();
  }

  /** Whether any link is blocked. */
  get partitioned(): boolean {
    return this.#blocked.size > 0;
  }
}

function link(from: string, to: string): string {
  return `${from}>${to}`;
}
