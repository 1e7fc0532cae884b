/**
 * Idempotency keys: a write that carries a key is applied at most once, and
 * a retry with the same key gets the first result. The kept results are
 * replicated state (every node keeps the same keys, forgets the same ones at
 * the same index, and carries them in snapshots); the writes still in flight
 * on this leader are not.
 *
 * @module
 */

import { type ErrorCode, errorDetails, errorFromCode, type WaterCraftError } from "../errors.ts";
import type { ProposeResult } from "./options.ts";
import { concatBytes } from "@noble/hashes/utils.js";
import { joinInSlices } from "../binary/join.ts";

/**
 * Idempotency keys remembered, oldest forgotten first. A constant, not an
 * option: every node must forget the same keys at the same index, or a late
 * duplicate would be applied on some nodes and not on others.
 */
export const IDEMPOTENCY_KEYS_MAX = 100_000;

/** What applying a command gave: the state machine's result or its refusal. */
export type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: WaterCraftError };

/** The result kept for an idempotency key, with the entry that made it. */
export interface KeptResult {
  /** The first entry's hash. */
  readonly id: string;
  /** Its index. */
  readonly index: number;
  /** Its term. */
  readonly term: number;
  /** What applying it gave. */
  readonly outcome: Outcome;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The idempotency keys of one node. */
export class Sessions {
  /** Kept results in apply order, so the oldest is forgotten first. */
  readonly #kept = new Map<string, KeptResult>();
  /** Writes proposed on this leader and not yet settled, by key. */
  readonly #inFlight = new Map<string, Promise<ProposeResult>>();

  /**
   * Returns the result kept for `key`.
   *
   * @param key The idempotency key.
   * @returns The kept result, if the key was applied and not yet forgotten.
   */
  kept(key: string): KeptResult | undefined {
    return this.#kept.get(key);
  }

  /**
   * Returns the write with this key that this leader is still running.
   *
   * @param key The idempotency key.
   * @returns Its pending result, if any.
   */
  inFlight(key: string): Promise<ProposeResult> | undefined {
    return this.#inFlight.get(key);
  }

  /**
   * Answers a retry of a write with this key: from its kept result, or by
   * joining the write still running.
   *
   * @param key The idempotency key.
   * @param head The node's head hash now, for a kept result's answer.
   * @returns The answer, or undefined when no write with this key is known.
   */
  retry(key: string, head: () => string): Promise<ProposeResult> | undefined {
    const kept = this.#kept.get(key);
    if (kept !== undefined) return settleKept(kept, head());
    return this.inFlight(key);
  }

  /**
   * Remembers a write with a key until it settles, so a concurrent retry
   * joins it instead of proposing again.
   *
   * @param key The idempotency key.
   * @param write The write's result.
   */
  track(key: string, write: Promise<ProposeResult>): void {
    this.#inFlight.set(key, write);
    // Only this write: after a leadership change the key may track a newer one.
    const forget = () => {
      if (this.#inFlight.get(key) === write) this.#inFlight.delete(key);
    };
    write.then(forget, forget);
  }

  /** Forgets the writes in flight: this node stopped leading, a retry proposes anew. */
  clearInFlight(): void {
    this.#inFlight.clear();
  }

  /**
   * Keeps the result of an applied entry for its key.
   *
   * @param key The idempotency key.
   * @param result The entry and its outcome.
   */
  keep(key: string, result: KeptResult): void {
    this.#kept.set(key, result);
    if (this.#kept.size > IDEMPOTENCY_KEYS_MAX) this.#kept.delete(this.#kept.keys().next().value!);
  }

  /**
   * Encodes the kept results as a snapshot holds them: UTF-8 JSON, oldest
   * first, refusals as code and message.
   *
   * @returns Their bytes now, for {@linkcode Sessions.snapshot}.
   */
  keptNow(): Uint8Array {
    const kept = [...this.#kept].map(([key, k]) => [key, {
      id: k.id,
      index: k.index,
      term: k.term,
      outcome: k.outcome.ok ? k.outcome : {
        ok: false,
        code: k.outcome.error.code,
        message: k.outcome.error.message,
        details: errorDetails(k.outcome.error),
      },
    }]);
    return encoder.encode(JSON.stringify(kept));
  }

  /**
   * Encodes a node snapshot: u32 length and the state machine's bytes, then
   * the kept results.
   *
   * @param machine The state machine's snapshot.
   * @param kept The kept results from {@linkcode Sessions.keptNow} at the
   *   same moment as `machine` (default: now).
   * @returns The node's snapshot.
   */
  snapshot(machine: Uint8Array, kept: Uint8Array = this.keptNow()): Uint8Array {
    return withMachineLength(concatBytes(new Uint8Array(4), machine, kept), machine.length);
  }

  /**
   * Encodes a node snapshot as {@linkcode Sessions.snapshot} does, copying
   * half a MiB at a time with the event loop free in between.
   *
   * @param machine The state machine's snapshot.
   * @param kept The kept results from {@linkcode Sessions.keptNow} at the
   *   same moment as `machine`.
   * @returns The node's snapshot.
   */
  async snapshotInSlices(machine: Uint8Array, kept: Uint8Array): Promise<Uint8Array> {
    return withMachineLength(await joinInSlices([machine, kept], 4), machine.length);
  }

  /**
   * Tells whether a node snapshot is well framed: its state machine part
   * fits in it, and the kept results are a JSON list.
   *
   * @param data Snapshot bytes, from a leader.
   * @returns The state machine's part, or null when the framing is wrong.
   */
  static machinePart(data: Uint8Array): Uint8Array | null {
    if (data.byteLength < 4) return null;
    const length = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
    if (4 + length > data.byteLength) return null;
    try {
      const stored: unknown = JSON.parse(
        new TextDecoder("utf-8", { fatal: true }).decode(data.subarray(4 + length)),
      );
      return Array.isArray(stored) ? data.subarray(4, 4 + length) : null;
    } catch {
      return null;
    }
  }

  /**
   * Replaces the kept results with a snapshot's.
   *
   * @param data A node snapshot made by {@linkcode Sessions.snapshot}.
   * @returns The state machine's part of it.
   */
  restore(data: Uint8Array): Uint8Array {
    const length = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
    const machine = data.subarray(4, 4 + length);
    const stored = JSON.parse(decoder.decode(data.subarray(4 + length))) as [string, Stored][];
    this.#kept.clear();
    for (const [key, k] of stored) {
      this.#kept.set(key, {
        id: k.id,
        index: k.index,
        term: k.term,
        outcome: k.outcome.ok ? { ok: true, value: k.outcome.value } : {
          ok: false,
          error: errorFromCode(
            k.outcome.code as ErrorCode,
            k.outcome.message ?? "",
            k.outcome.details ?? {},
          ),
        },
      });
    }
    return machine;
  }
}

/** A kept result as a snapshot stores it. */
interface Stored {
  id: string;
  index: number;
  term: number;
  outcome: {
    ok: boolean;
    value?: unknown;
    code?: string;
    message?: string;
    details?: Record<string, unknown>;
  };
}

/**
 * Answers a retry from its kept result, as the first write was answered.
 *
 * @param kept The kept result.
 * @param head The head to report.
 * @returns The first write's result, or its refusal.
 */
export function settleKept(kept: KeptResult, head: string): Promise<ProposeResult> {
  if (!kept.outcome.ok) return Promise.reject(kept.outcome.error);
  return Promise.resolve({
    id: kept.id,
    index: kept.index,
    term: kept.term,
    state: "committed",
    head,
    result: kept.outcome.value,
  });
}

/** Writes a node snapshot's first field, the state machine part's length (u32). */
function withMachineLength(snapshot: Uint8Array, length: number): Uint8Array {
  new DataView(snapshot.buffer, snapshot.byteOffset, 4).setUint32(0, length);
  return snapshot;
}
