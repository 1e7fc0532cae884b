/**
 * Committed entries into the state machine: a command's envelope is decoded
 * once, a repeated idempotency key gets the first entry's result instead of
 * a second apply, and a refusal by the state machine becomes the outcome
 * (deterministic, the same on every node). Snapshots of the node hold the
 * state machine's bytes and the kept idempotency results.
 *
 * @module
 */

import type { Entry } from "../core/entry.ts";
import { WaterCraftError } from "../errors.ts";
import type { EntryMeta, StateMachine } from "../state_machine.ts";
import { type KeptResult, type Outcome, Sessions } from "./sessions.ts";
import type { Landing } from "./writes.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What applying one entry gave. */
export interface Applied {
  /** The outcome for the writes waiting on the entry. */
  readonly outcome: Outcome;
  /** Where those writes are reported as having landed: the first entry of a repeated key. */
  readonly as?: Landing;
  /** Whether the state machine ran (false for no-ops, configs and repeats). */
  readonly ran: boolean;
}

/** The state machine of a node, fed committed entries in log order. */
export class Applier {
  /** Idempotency keys: replicated state, kept beside the state machine's. */
  readonly sessions: Sessions = new Sessions();
  // deno-lint-ignore no-explicit-any
  readonly #sm: StateMachine<any, unknown, any, unknown>;

  /**
   * Wraps a state machine.
   *
   * @param sm The application's state machine.
   */
  // deno-lint-ignore no-explicit-any
  constructor(sm: StateMachine<any, unknown, any, unknown>) {
    this.#sm = sm;
  }

  /**
   * Validates a client's command and encodes it, with its idempotency key,
   * as the bytes of a log entry.
   *
   * @param command The client's command.
   * @param key Its idempotency key, if any.
   * @returns The entry's data.
   * @throws {RejectedError} When the validator refuses it.
   */
  encode(command: unknown, key: string | undefined): Uint8Array {
    const validated = this.#sm.validate ? this.#sm.validate(command) : command;
    return encoder.encode(
      JSON.stringify(key === undefined ? { c: validated } : { c: validated, k: key }),
    );
  }

  /**
   * Applies one committed entry.
   *
   * @param e The entry, next in log order.
   * @returns Its outcome.
   * @throws {Error} Whatever the state machine threw other than a
   *   `WaterCraftError`: a bug, which must stop the node rather than let
   *   nodes diverge.
   */
  apply(e: Entry): Applied {
    if (e.kind !== "command") return { outcome: { ok: true, value: undefined }, ran: false };
    const envelope = JSON.parse(decoder.decode(e.data)) as { c: unknown; k?: string };
    const key = envelope.k;
    const kept = key === undefined ? undefined : this.sessions.kept(key);
    // A retry that reached the log twice: the first entry and its result stand.
    if (kept !== undefined) return { outcome: kept.outcome, as: kept, ran: false };
    const meta: EntryMeta = {
      index: e.index,
      term: e.term,
      id: e.hash,
      proposer: e.proposer,
      timeMs: e.timeMs,
    };
    let outcome: Outcome;
    try {
      outcome = { ok: true, value: this.#sm.apply(envelope.c, meta) };
    } catch (err) {
      if (!(err instanceof WaterCraftError)) throw err;
      outcome = { ok: false, error: err };
    }
    if (key !== undefined) {
      const result: KeptResult = { id: e.hash, index: e.index, term: e.term, outcome };
      this.sessions.keep(key, result);
    }
    return { outcome, ran: true };
  }

  /**
   * Answers a read from the state machine.
   *
   * @param query The state machine's query.
   * @returns Its answer.
   * @throws {TypeError} When the state machine has no `query()`.
   */
  query(query: unknown): unknown {
    if (!this.#sm.query) throw new TypeError("The state machine has no query() method");
    return this.#sm.query(query);
  }

  /**
   * Snapshots the state machine and the kept results.
   *
   * @returns The node's snapshot data.
   */
  async snapshot(): Promise<Uint8Array> {
    return this.sessions.snapshot(await this.#sm.snapshot());
  }

  /**
   * Replaces the state with a snapshot's.
   *
   * @param data A node snapshot made by {@linkcode Applier.snapshot}.
   */
  async restore(data: Uint8Array): Promise<void> {
    await this.#sm.restore(this.sessions.restore(data));
  }
}
