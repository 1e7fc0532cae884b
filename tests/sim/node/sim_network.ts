/**
 * The simulated network between real nodes: a {@linkcode Transport} per node
 * life whose every delivery is an event of the scheduler. A seed draws the
 * faults: loss, duplication, delay (which reorders, unless links are FIFO),
 * symmetric and one-way partitions, and corruption of an entry's bytes
 * (which the receiving node's hash check must refuse). Forwarded requests
 * travel as two events, the request and its answer, each subject to the
 * same partitions; the forwarding node learns `timeout` when the answer
 * cannot come back.
 *
 * @module
 */

import type { Entry, Message, Prng } from "../../../src/core/mod.ts";
import { WaterCraftError } from "../../../src/errors.ts";
import type {
  ForwardedAnswer,
  ForwardedProposal,
  PeerHandler,
  Transport,
} from "../../../src/transport/transport.ts";
import type { SimScheduler } from "./scheduler.ts";

/** Faults of the network; the simulation changes them between phases. */
export interface NetworkFaults {
  /** Probability that a message is lost. */
  lossRate: number;
  /** Probability that a message arrives twice. */
  duplicateRate: number;
  /** Smallest delivery delay, ms. */
  minDelayMs: number;
  /** Largest delivery delay, ms. */
  maxDelayMs: number;
  /** Keep each link's messages in order, as one stream per peer does. */
  fifo: boolean;
  /** Probability that an append's entry arrives with a flipped data byte. */
  corruptRate: number;
}

/** What the network saw a node send, for the checkers that watch every message. */
export type SendWatcher = (m: Message) => void;

/** Forwarded requests wait at most this long past their own timeout, ms. */
const FORWARD_GRACE_MS = 1000;

/** The network of one simulation. */
export class SimNetwork {
  readonly #scheduler: SimScheduler;
  readonly #prng: Prng;
  readonly #handlers = new Map<string, PeerHandler>();
  readonly #blocked = new Set<string>();
  readonly #linkTail = new Map<string, number>();
  readonly #watchers: SendWatcher[] = [];
  /** Faults in force. */
  faults: NetworkFaults;
  /** Messages handed to a node. */
  delivered = 0;
  /** Entries corrupted on the way. */
  corrupted = 0;

  /**
   * Creates a network with no node on it.
   *
   * @param scheduler The event queue.
   * @param prng Decides every fault.
   * @param faults The faults in force at first.
   */
  constructor(scheduler: SimScheduler, prng: Prng, faults: NetworkFaults) {
    this.#scheduler = scheduler;
    this.#prng = prng;
    this.faults = faults;
  }

  /**
   * Adds a checker that sees every message as it is sent.
   *
   * @param watcher Called with each message before any fault.
   */
  watch(watcher: SendWatcher): void {
    this.#watchers.push(watcher);
  }

  /**
   * Creates the transport of one node life. It sends nothing once `crash()`
   * (for the life) or `close()` (a graceful stop) ran.
   *
   * @param node The node's id.
   * @param life The node life, whose crash discards its pending forwards.
   * @returns The transport and a function that cuts it off at a crash.
   */
  transport(node: string, life: string): { transport: Transport; crash: () => void } {
    let closed = false;
    let handler: PeerHandler | null = null;
    const detach = () => {
      closed = true;
      if (handler !== null && this.#handlers.get(node) === handler) this.#handlers.delete(node);
    };
    const transport: Transport = {
      start: (id, h) => {
        if (id !== node) throw new Error(`Transport of ${node} started as ${id}`);
        handler = h;
        this.#handlers.set(node, h);
      },
      setPeers: () => {},
      send: (messages) => {
        if (closed) return;
        for (const m of messages) this.#send(m);
      },
      forward: (to, proposal) => this.#forward(node, life, to, proposal, () => closed),
      close: () => {
        detach();
        return Promise.resolve();
      },
    };
    return { transport, crash: detach };
  }

  /**
   * Blocks messages and requests from `from` to `to`.
   *
   * @param from The sender.
   * @param to The receiver.
   */
  block(from: string, to: string): void {
    this.#blocked.add(`${from}>${to}`);
  }

  /**
   * Splits the nodes in two groups that cannot reach each other.
   *
   * @param a One side.
   * @param b The other side.
   */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) {
      for (const y of b) {
        this.block(x, y);
        this.block(y, x);
      }
    }
  }

  /** Lifts every partition. */
  heal(): void {
    this.#blocked.clear();
  }

  /** Whether any link is blocked. */
  get partitioned(): boolean {
    return this.#blocked.size > 0;
  }

  /**
   * Whether `from` reaches `to` now.
   *
   * @param from The sender.
   * @param to The receiver.
   * @returns False while the link is blocked.
   */
  reachable(from: string, to: string): boolean {
    return !this.#blocked.has(`${from}>${to}`);
  }

  #send(m: Message): void {
    for (const w of this.#watchers) w(m);
    const f = this.faults;
    const p = this.#prng;
    if (!this.reachable(m.from, m.to)) return;
    if (p.next() < f.lossRate) return;
    const copies = p.next() < f.duplicateRate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const sent = p.next() < f.corruptRate ? this.#corrupt(m) : m;
      this.#deliverLater(sent);
    }
  }

  #deliverLater(m: Message): void {
    const f = this.faults;
    let delay = f.minDelayMs + this.#prng.next() * (f.maxDelayMs - f.minDelayMs);
    const key = `${m.from}>${m.to}`;
    if (f.fifo) {
      const at = Math.max(this.#scheduler.now + delay, this.#linkTail.get(key) ?? 0);
      this.#linkTail.set(key, at);
      delay = at - this.#scheduler.now;
    }
    this.#scheduler.at(delay, `deliver ${key} ${m.type} ${m.term}`, () => {
      // A partition that arose in flight stops the message too.
      const handler = this.#handlers.get(m.to);
      if (handler === undefined || !this.reachable(m.from, m.to)) return;
      this.delivered++;
      handler.receive(m.from, [m]);
    }, { holder: m.to });
  }

  /** A copy of an append with one entry's data changed and its hash left as it was. */
  #corrupt(m: Message): Message {
    if (m.type !== "append") return m;
    const victims = m.entries.filter((e) => e.data.length > 0);
    if (victims.length === 0) return m;
    const victim = victims[Math.floor(this.#prng.next() * victims.length)]!;
    const data = victim.data.slice();
    const at = Math.floor(this.#prng.next() * data.length);
    data[at] = data[at]! ^ (1 + Math.floor(this.#prng.next() * 255));
    this.corrupted++;
    const entries: Entry[] = m.entries.map((e) => e === victim ? { ...e, data } : e);
    return { ...m, entries };
  }

  #forward(
    from: string,
    life: string,
    to: string,
    proposal: ForwardedProposal,
    closed: () => boolean,
  ): Promise<ForwardedAnswer> {
    const s = this.#scheduler;
    return new Promise<ForwardedAnswer>((resolve, reject) => {
      if (closed() || !this.#handlers.has(to) || !this.reachable(from, to)) {
        reject(new WaterCraftError("unavailable", `Cannot reach ${to} to forward the request`));
        return;
      }
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        s.cancel(timer);
        fn();
      };
      const lost = () =>
        settle(() =>
          reject(
            new WaterCraftError("timeout", `Cannot learn the outcome of the request to ${to}`),
          )
        );
      // The forwarding node's life ends its wait: a crash discards it.
      const timer = s.at(proposal.timeoutMs + FORWARD_GRACE_MS, `forward timeout ${from}`, lost, {
        owner: life,
      });
      s.at(this.#delay(), `forward ${from}>${to}`, () => {
        const handler = this.#handlers.get(to);
        if (handler === undefined || !this.reachable(from, to)) {
          // It never arrived: the sender cannot know, and times out.
          return;
        }
        handler.forwarded(from, proposal).then((answer) => {
          s.at(this.#delay(), `answer ${to}>${from}`, () => {
            if (closed() || !this.reachable(to, from)) return;
            settle(() => resolve(answer));
          }, { owner: life, holder: from });
        });
      }, { holder: to });
    });
  }

  #delay(): number {
    const f = this.faults;
    return f.minDelayMs + this.#prng.next() * (f.maxDelayMs - f.minDelayMs);
  }
}
