/**
 * Clients of the simulated cluster: each runs put, get, compare-and-set and
 * delete through the node API, one at a time, against a node of its choice,
 * and records every operation (call, answer or unknown outcome, in simulated
 * time) for the linearizability check. A write carries an idempotency key
 * and, after a timeout or a refusal, is retried on another node with the
 * same key, as a real client would; it counts as one operation, whose
 * outcome is unknown unless an attempt answered.
 *
 * @module
 */

import type { Prng } from "../../../src/core/mod.ts";
import type { SimScheduler } from "./scheduler.ts";
import type { HistoryOp, KvOp, KvOutput } from "./linearizability.ts";

/** The node methods a client uses (a `WaterCraftNode`, real or mutant). */
export interface ClientTarget {
  /** The node's id. */
  readonly id: string;
  /** Writes a command. */
  propose(
    command: unknown,
    options: { idempotencyKey?: string; timeoutMs?: number },
  ): Promise<{ result?: unknown }>;
  /** Reads. */
  read(query: unknown, options: { timeoutMs?: number }): Promise<{ value: unknown }>;
}

/** What clients need of the simulation. */
export interface ClientHost {
  /** The event queue. */
  readonly scheduler: SimScheduler;
  /** Draws every choice. */
  readonly prng: Prng;
  /** The nodes running now, in a stable order. */
  nodes(): readonly ClientTarget[];
  /**
   * Hears of a node API call that failed with something other than one of
   * its documented errors (each has a string `code`): a bug of the node.
   */
  undocumented(detail: string): void;
}

/** How the clients behave. */
export interface ClientOptions {
  /** Number of clients. */
  readonly clients: number;
  /** Keys they share (few keys: contention). */
  readonly keys: readonly string[];
  /** How long a client waits for one attempt, ms (simulated). */
  readonly attemptMs: number;
  /** Attempts per write before its outcome stays unknown. */
  readonly attempts: number;
  /** Largest pause between two operations of a client, ms. */
  readonly thinkMs: number;
}

/** Codes after which the operation surely had no effect. */
const NO_EFFECT = new Set([
  "unavailable",
  "rejected",
  "read_only",
  "invalid_request",
  "not_found",
  "conflict",
  "too_large",
]);

/** Every client of one simulation and the history they wrote. */
export class Clients {
  readonly #host: ClientHost;
  readonly #options: ClientOptions;
  /** Operations that may have taken effect, in call order. */
  readonly history: HistoryOp[] = [];
  /** Operations that surely had no effect (left out of the check). */
  failed = 0;
  /** Writes acknowledged. */
  acknowledged = 0;
  /** Reads answered. */
  reads = 0;
  #running = false;
  #nextId = 1;
  #nextValue = 1;
  /** Operations still waiting for an answer. */
  #open = 0;
  /** Per client, the value it last saw per key, for its compare-and-sets. */
  readonly #seen: Map<string, number | null>[] = [];

  /**
   * Creates idle clients.
   *
   * @param host The simulation.
   * @param options How they behave.
   */
  constructor(host: ClientHost, options: ClientOptions) {
    this.#host = host;
    this.#options = options;
  }

  /** Operations called and not yet answered or given up. */
  get open(): number {
    return this.#open;
  }

  /** Starts every client; each runs until {@linkcode Clients.stop}. */
  start(): void {
    this.#running = true;
    for (let c = 0; c < this.#options.clients; c++) {
      this.#seen[c] ??= new Map();
      this.#next(c);
    }
  }

  /** Lets each client finish its operation, then stop. */
  stop(): void {
    this.#running = false;
  }

  /**
   * Runs one operation for a client outside the random stream (the checks
   * after a crash of every node).
   *
   * @param client The client number (beyond the random clients' numbers).
   * @param op The operation.
   * @returns When it is answered or given up.
   */
  runOne(client: number, op: KvOp): Promise<void> {
    this.#seen[client] ??= new Map();
    return this.#run(client, op);
  }

  #next(client: number): void {
    if (!this.#running) return;
    const { scheduler, prng } = this.#host;
    scheduler.at(prng.next() * this.#options.thinkMs, `client ${client}`, () => {
      if (!this.#running) return;
      this.#run(client, this.#draw(client)).then(() => this.#next(client));
    });
  }

  #draw(client: number): KvOp {
    const p = this.#host.prng;
    const keys = this.#options.keys;
    const key = keys[Math.floor(p.next() * keys.length)]!;
    const r = p.next();
    if (r < 0.4) return { kind: "get", key };
    if (r < 0.7) return { kind: "put", key, value: this.#nextValue++ };
    if (r < 0.95) {
      const expect = this.#seen[client]!.get(key) ?? null;
      return { kind: "cas", key, expect, value: this.#nextValue++ };
    }
    return { kind: "delete", key };
  }

  async #run(client: number, op: KvOp): Promise<void> {
    const { scheduler } = this.#host;
    const id = this.#nextId++;
    const callMs = scheduler.now;
    const write = op.kind !== "get";
    // Some writes go without a key, as from a client that does not retry:
    // the node must apply them once all the same.
    const keyed = write && (client >= 1000 || id % 4 !== 0);
    const idempotencyKey = keyed ? `c${client}-${id}` : undefined;
    let unknown = false;
    this.#open++;
    try {
      const attempts = keyed ? this.#options.attempts : 1;
      for (let attempt = 0; attempt < attempts; attempt++) {
        const answer = await this.#attempt(op, idempotencyKey);
        if (answer.kind === "output") {
          this.#record({ id, client, op, callMs, returnMs: scheduler.now, output: answer.output });
          this.#learn(client, op, answer.output);
          return;
        }
        if (answer.kind === "unknown") unknown = true;
      }
      if (write && unknown) {
        this.#record({ id, client, op, callMs, returnMs: Infinity });
        this.#seen[client]!.delete(op.key);
      } else this.failed++;
    } finally {
      this.#open--;
    }
  }

  #record(h: HistoryOp): void {
    this.history.push(h);
    if (h.output?.kind === "read") this.reads++;
    else if (h.output !== undefined) this.acknowledged++;
    const out = h.output === undefined ? "unknown" : JSON.stringify(h.output);
    this.#host.scheduler.note(`op ${h.id} ${h.op.kind} ${h.op.key} ${out}`);
  }

  #learn(client: number, op: KvOp, output: KvOutput): void {
    const seen = this.#seen[client]!;
    if (output.kind === "read") seen.set(op.key, output.value);
    else if (output.kind === "cas" && !output.ok) seen.set(op.key, output.current);
    else if (op.kind === "put" || op.kind === "cas") seen.set(op.key, op.value);
    else if (op.kind === "delete") seen.set(op.key, null);
  }

  /** One attempt on one node: its output, a sure failure, or an unknown outcome. */
  async #attempt(
    op: KvOp,
    idempotencyKey: string | undefined,
  ): Promise<{ kind: "output"; output: KvOutput } | { kind: "failed" | "unknown" }> {
    const { scheduler, prng } = this.#host;
    const nodes = this.#host.nodes();
    if (nodes.length === 0) {
      // No node runs: wait a little, as a client retrying a refused connection.
      await new Promise<void>((r) => scheduler.at(this.#options.attemptMs / 4, "client wait", r));
      return { kind: "failed" };
    }
    const node = nodes[Math.floor(prng.next() * nodes.length)]!;
    const timeoutMs = this.#options.attemptMs;
    let call: Promise<KvOutput>;
    if (op.kind === "get") {
      call = node.read({ op: "get", key: op.key }, { timeoutMs }).then((r) => {
        const v = r.value as { found: boolean; value: unknown };
        return { kind: "read", value: v.found ? v.value as number : null };
      });
    } else {
      const command = op.kind === "put"
        ? { op: "put", key: op.key, value: op.value }
        : op.kind === "delete"
        ? { op: "delete", key: op.key }
        : { op: "cas", key: op.key, expect: op.expect, value: op.value };
      const options = idempotencyKey === undefined ? { timeoutMs } : { idempotencyKey, timeoutMs };
      call = node.propose(command, options).then((r) => {
        if (op.kind === "cas") return { kind: "cas", ok: true };
        const prev = (r.result as { prev?: unknown } | undefined)?.prev;
        return { kind: "written", prev: prev === undefined ? null : prev as number | null };
      });
    }
    // The client's own deadline: a node that crashed or is paused never answers.
    return await new Promise((resolve) => {
      let done = false;
      const timer = scheduler.at(timeoutMs + 1, "client deadline", () => {
        if (done) return;
        done = true;
        resolve({ kind: op.kind === "get" ? "failed" : "unknown" });
      });
      call.then((output) => {
        if (done) return;
        done = true;
        scheduler.cancel(timer);
        resolve({ kind: "output", output });
      }, (e: unknown) => {
        if (done) return;
        done = true;
        scheduler.cancel(timer);
        const code = (e as { code?: unknown } | null)?.code;
        if (typeof code !== "string") {
          this.#host.undocumented(`${node.id} ${op.kind}: ${e instanceof Error ? e.stack : e}`);
        }
        if (op.kind === "cas" && code === "cas_failed") {
          const current = (e as { details?: { current?: unknown } }).details?.current;
          resolve({
            kind: "output",
            output: { kind: "cas", ok: false, current: (current ?? null) as number | null },
          });
        } else if (op.kind === "get") resolve({ kind: "failed" });
        else {resolve({
            kind: typeof code === "string" && NO_EFFECT.has(code) ? "failed" : "unknown",
          });}
      });
    });
  }
}
