/**
 * An in-process transport for tests and examples: nodes in one process
 * exchange messages through a shared {@linkcode MemoryNetwork} that can drop,
 * delay and partition them.
 *
 * @module
 */

import { WaterCraftError } from "../errors.ts";
import { type Prng, seededPrng } from "../core/prng.ts";
import type { Message } from "../core/messages.ts";
import type { ForwardedAnswer, ForwardedProposal, PeerHandler, Transport } from "./transport.ts";

/** Faults of a {@linkcode MemoryNetwork}. */
export interface MemoryNetworkOptions {
  /** Probability that a Raft message is lost. Default 0. */
  readonly lossRate?: number;
  /** Delay of every Raft message, ms (real timers). Default 0: the next microtask. */
  readonly delayMs?: number;
  /** Seed deciding which messages are lost. Default 1. */
  readonly seed?: number;
}

/** A switchboard connecting the memory transports of one process. */
export class MemoryNetwork {
  readonly #handlers = new Map<string, PeerHandler>();
  readonly #blocked = new Set<string>();
  readonly #prng: Prng;
  /** Probability that a Raft message is lost; may be changed at any time. */
  lossRate: number;
  /** Delay of every Raft message, ms; may be changed at any time. */
  delayMs: number;
  /** Messages delivered, for tests. */
  delivered = 0;
  /** Messages dropped by loss, partitions or a missing recipient. */
  dropped = 0;

  /**
   * Creates a network.
   *
   * @param options Loss and delay.
   */
  constructor(options: MemoryNetworkOptions = {}) {
    this.lossRate = options.lossRate ?? 0;
    this.delayMs = options.delayMs ?? 0;
    this.#prng = seededPrng(options.seed ?? 1);
  }

  /**
   * Creates a transport for one node on this network.
   *
   * @returns The transport; `start()` attaches it.
   *
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory.ts";
   *
   * const network = new MemoryNetwork();
   * const transport = network.transport();
   * await transport.close();
   * ```
   */
  transport(): Transport {
    let self: string | null = null;
    let closed = false;
    return {
      start: (id: string, handler: PeerHandler) => {
        self = id;
        this.#handlers.set(id, handler);
      },
      setPeers: () => {},
      send: (messages: readonly Message[]) => {
        if (closed || self === null) return;
        for (const m of messages) this.#deliver(m);
      },
      forward: (
        to: string,
        proposal: ForwardedProposal,
        signal: AbortSignal,
      ): Promise<ForwardedAnswer> => {
        const from = self;
        const handler = this.#handlers.get(to);
        if (closed || from === null || handler === undefined || !this.#reachable(from, to)) {
          return Promise.reject(
            new WaterCraftError("unavailable", `Cannot reach ${to} to forward the write`),
          );
        }
        signal.throwIfAborted();
        return handler.forwarded(from, proposal);
      },
      close: () => {
        closed = true;
        if (self !== null) this.#handlers.delete(self);
        return Promise.resolve();
      },
    };
  }

  /** Blocks traffic between every node of `a` and every node of `b`, both ways. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) {
      for (const y of b) {
        this.#blocked.add(`${x}>${y}`);
        this.#blocked.add(`${y}>${x}`);
      }
    }
  }

  /** Cuts one node off from everybody. */
  isolate(id: string): void {
    this.partition([id], [...this.#handlers.keys()].filter((x) => x !== id));
  }

  /** Lifts every partition. */
  heal(): void {
    this.#blocked.clear();
  }

  #reachable(from: string, to: string): boolean {
    return !this.#blocked.has(`${from}>${to}`);
  }

  #deliver(m: Message): void {
    if (this.lossRate > 0 && this.#prng.next() < this.lossRate) {
      this.dropped++;
      return;
    }
    // Asynchronous, like a network, and in order per link.
    const arrive = () => {
      const handler = this.#handlers.get(m.to);
      if (handler === undefined || !this.#reachable(m.from, m.to)) {
        this.dropped++;
        return;
      }
      this.delivered++;
      handler.receive(m.from, [m]);
    };
    if (this.delayMs > 0) setTimeout(arrive, this.delayMs);
    else queueMicrotask(arrive);
  }
}
