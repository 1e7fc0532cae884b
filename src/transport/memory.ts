/**
 * An in-process transport for tests and examples: nodes in one process
 * exchange messages through a shared {@linkcode MemoryNetwork} that can drop,
 * delay and partition them.
 *
 * Forwarded requests (writes, membership changes, leadership transfers)
 * fail as they do over HTTP, so that in-process clusters see the same
 * errors: `unavailable` when the request could not leave (no route to the
 * leader, or cancelled before sending), `timeout` when it left but its
 * answer cannot come back (a partition that arose meanwhile, the caller's
 * signal, a transport closed while waiting).
 *
 * @module
 */

import { WaterCraftError } from "../errors.ts";
import { type Prng, seededPrng } from "../core/prng.ts";
import type { Message } from "../core/messages.ts";
import {
  describeProposal,
  type ForwardedAnswer,
  type ForwardedProposal,
  type PeerHandler,
  type Transport,
} from "./transport.ts";

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
      forward: async (
        to: string,
        proposal: ForwardedProposal,
        signal: AbortSignal,
      ): Promise<ForwardedAnswer> => {
        const from = self;
        const handler = this.#handlers.get(to);
        const what = describeProposal(proposal);
        if (closed || from === null || handler === undefined || !this.#reachable(from, to)) {
          throw new WaterCraftError("unavailable", `Cannot reach ${to} to forward the ${what}`);
        }
        if (signal.aborted) {
          throw new WaterCraftError(
            "unavailable",
            `Cannot forward the ${what} to ${to}: it was cancelled before sending`,
          );
        }
        // From here on the leader may act on it: an answer that does not come
        // back leaves the outcome unknown.
        const answer = await untilAborted(handler.forwarded(from, proposal), signal);
        if (answer === null || closed || !this.#reachable(to, from)) {
          throw new WaterCraftError(
            "timeout",
            `Cannot learn the outcome of the ${what} forwarded to ${to}: its answer was lost`,
          );
        }
        return answer;
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

/** The answer, or null once `signal` aborts first (the caller stopped waiting). */
function untilAborted<T>(answer: Promise<T>, signal: AbortSignal): Promise<T | null> {
  return new Promise<T | null>((resolve, reject) => {
    const onAbort = () => resolve(null);
    signal.addEventListener("abort", onAbort, { once: true });
    answer.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
