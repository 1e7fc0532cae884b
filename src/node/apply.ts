/**
 * The state machine's side of the node: a client's command is validated and
 * encoded once where it enters; a committed entry's bytes are decoded once
 * and applied, a repeated idempotency key gets the first entry's result
 * instead of a second apply, and a refusal (by `decode` or `apply`) becomes
 * the outcome, alike on every node. Snapshots of the node hold the state
 * machine's bytes and the kept idempotency results.
 *
 * @module
 */

import type { Entry } from "../core/entry.ts";
import { RejectedError, WaterCraftError } from "../errors.ts";
import type { EntryMeta, StateMachine } from "../state_machine.ts";
import { type KeptResult, type Outcome, Sessions } from "./sessions.ts";
import type { Landing } from "./writes.ts";
import { openEnvelope } from "./envelope.ts";

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
   * Validates a client's command and encodes it: the bytes that are
   * forwarded, logged and replicated from here on.
   *
   * @param command The client's command.
   * @returns The command's bytes.
   * @throws {RejectedError} When the validator refuses it.
   */
  encode(command: unknown): Uint8Array {
    const validated = this.#sm.validate ? this.#sm.validate(command) : command;
    return this.#sm.encode
      ? this.#sm.encode(validated)
      : encoder.encode(JSON.stringify(validated ?? null));
  }

  /**
   * Applies one committed entry.
   *
   * @param e The entry, next in log order.
   * @returns Its outcome.
   * @throws {Error} Whatever `apply` threw other than a `WaterCraftError`: a
   *   bug, which must stop the node rather than let nodes diverge.
   */
  apply(e: Entry): Applied {
    if (e.kind !== "command") return { outcome: { ok: true, value: undefined }, ran: false };
    let command: unknown;
    let key: string | undefined;
    try {
      const opened = openEnvelope(e.data);
      key = opened.key;
      const kept = key === undefined ? undefined : this.sessions.kept(key);
      // A retry that reached the log twice: the first entry and its result stand.
      if (kept !== undefined) return { outcome: kept.outcome, as: kept, ran: false };
      // Without a `decode`, `apply` gets the JSON as it is: the validator may
      // depend on state, so it is not run again here; `apply` refuses what it
      // cannot take (the state machine's contract).
      command = this.#sm.decode
        ? this.#sm.decode(opened.command)
        : JSON.parse(decoder.decode(opened.command));
    } catch (err) {
      // Bytes no node's `encode` made (they bypassed `validate`): refused
      // alike on every node, since decoding is deterministic.
      const reason = err instanceof Error ? err.message : String(err);
      return {
        outcome: { ok: false, error: new RejectedError(`Cannot decode: ${reason}`) },
        ran: false,
      };
    }
    const meta: EntryMeta = {
      index: e.index,
      term: e.term,
      id: e.hash,
      proposer: e.proposer,
      timeMs: e.timeMs,
    };
    let outcome: Outcome;
    try {
      outcome = { ok: true, value: this.#sm.apply(command, meta) };
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
   * A command entry's command as the state machine decodes it, for
   * watchers and log listings.
   *
   * @param e A command entry.
   * @returns The command, or null when its bytes cannot be decoded.
   */
  commandOf(e: Entry): unknown {
    try {
      const { command } = openEnvelope(e.data);
      return this.#sm.decode ? this.#sm.decode(command) : JSON.parse(decoder.decode(command));
    } catch {
      // Refused at apply too: nothing to show.
      return null;
    }
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
   * Captures the state machine and the kept results now and serialises
   * them while entries go on being applied, when the state machine can
   * (`snapshotInBackground`).
   *
   * @returns The node's snapshot data as of the call, or null when the
   *   state machine cannot snapshot in the background.
   */
  snapshotInBackground(): Promise<Uint8Array> | null {
    if (this.#sm.snapshotInBackground === undefined) return null;
    const machine = this.#sm.snapshotInBackground();
    const kept = this.sessions.keptNow();
    return machine.then((data) => this.sessions.snapshotInSlices(data, kept));
  }

  /**
   * Tells whether {@linkcode Applier.restore} would take a leader's
   * snapshot: its framing, then the state machine's `checkSnapshot` when
   * it has one.
   *
   * @param data Snapshot bytes.
   * @returns False for a snapshot that cannot be restored.
   */
  canRestore(data: Uint8Array): boolean {
    const machine = Sessions.machinePart(data);
    if (machine === null) return false;
    return this.#sm.checkSnapshot?.(machine) ?? true;
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
