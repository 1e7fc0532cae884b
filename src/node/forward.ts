/**
 * Requests a member relays to its leader: writes, membership changes and
 * leadership transfers. The request goes over the transport, the leader's
 * answer (a result, or an error with its code) comes back and is rebuilt as
 * the same class of error, and for a write the follower remembers the
 * entry's id as `pending` until its own log holds it.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { type ErrorCode, errorDetails, errorFromCode, WaterCraftError } from "../errors.ts";
import type {
  ForwardedAnswer,
  ForwardedProposal,
  ForwardedWrite,
  Transport,
} from "../transport/transport.ts";
import type { ProposeResult } from "./options.ts";
import type { WaitFor } from "./writes.ts";

/** Most relayed ids remembered; the oldest are forgotten first. */
const RELAYED_MAX = 10_000;

/** A write as the node that took it hands it on: to its own log, or to the leader. */
export interface WriteRequest {
  /** The command's bytes, validated and encoded here. */
  readonly command: Uint8Array;
  /** Its idempotency key, if any. */
  readonly idempotencyKey: string | undefined;
  /** What the client waits for. */
  readonly wait: WaitFor;
  /** When the client stops waiting, on the clock's time. */
  readonly deadline: number;
}

/**
 * Forwards a write to the leader and returns its result.
 *
 * @param transport How to reach the leader.
 * @param leader The leader's id.
 * @param request The write.
 * @param clock Time, for what remains of the deadline.
 * @returns The leader's result.
 * @throws {WaterCraftError} The leader's refusal, as the class its code stands for.
 */
export async function forwardWrite(
  transport: Transport,
  leader: string,
  request: WriteRequest,
  clock: Clock,
): Promise<ProposeResult> {
  const proposal: ForwardedWrite = {
    command: request.command,
    wait: request.wait,
    timeoutMs: remainingMs(request.deadline, clock),
    ...(request.idempotencyKey !== undefined ? { idempotencyKey: request.idempotencyKey } : {}),
  };
  return await forwardToLeader(transport, leader, proposal) as ProposeResult;
}

/**
 * Forwards a proposal of any kind to the leader and returns the value of its
 * answer.
 *
 * @param transport How to reach the leader.
 * @param leader The leader's id.
 * @param proposal The proposal; its `timeoutMs` bounds the leader's work.
 * @returns The leader's answer's value.
 * @throws {WaterCraftError} The leader's refusal, as the class its code
 *   stands for; `unavailable` when the leader surely did not get it,
 *   `timeout` when the outcome is unknown.
 */
export async function forwardToLeader(
  transport: Transport,
  leader: string,
  proposal: ForwardedProposal,
): Promise<unknown> {
  // A little longer than the leader's own deadline, so its answer wins.
  const signal = AbortSignal.timeout(proposal.timeoutMs + 1000);
  const answer = await transport.forward(leader, proposal, signal);
  if (!answer.ok) {
    throw errorFromCode(answer.code as ErrorCode, answer.message, answer.details ?? {});
  }
  return answer.value;
}

/**
 * What remains of a deadline, for the leader: at least 1 ms, so that a
 * request forwarded at its deadline still gets an answer rather than none.
 *
 * @param deadline When the caller stops waiting, on the clock's time.
 * @param clock Time.
 * @returns The milliseconds left, at least 1.
 */
export function remainingMs(deadline: number, clock: Clock): number {
  return Math.max(1, deadline - clock.now());
}

/**
 * Turns what a leader's write threw into the answer a forwarding follower
 * gets.
 *
 * @param e What was thrown.
 * @returns The answer: the error's code, message and details.
 */
export function answerFromError(e: unknown): ForwardedAnswer {
  if (e instanceof WaterCraftError) {
    return { ok: false, code: e.code, message: e.message, details: { ...errorDetails(e) } };
  }
  return { ok: false, code: "unavailable", message: `The leader failed: ${String(e)}` };
}

/** Ids of writes this follower relayed, until its own log holds them. */
export class RelayedWrites {
  readonly #byId = new Map<string, { readonly index: number; readonly term: number }>();

  /**
   * Remembers where a relayed write landed.
   *
   * @param result The leader's answer.
   */
  remember(result: ProposeResult): void {
    this.#byId.set(result.id, { index: result.index, term: result.term });
    if (this.#byId.size > RELAYED_MAX) this.#byId.delete(this.#byId.keys().next().value!);
  }

  /**
   * Returns where a relayed write landed.
   *
   * @param id The entry's hash.
   * @returns Its index and term, if this node relayed it and does not hold it yet.
   */
  get(id: string): { readonly index: number; readonly term: number } | undefined {
    return this.#byId.get(id);
  }

  /**
   * Forgets a write: this node's log holds it now.
   *
   * @param id The entry's hash.
   */
  forget(id: string): void {
    this.#byId.delete(id);
  }
}
