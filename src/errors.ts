/**
 * The errors a node's callers see: one hierarchy, each class with the stable
 * `code` of the wire contract (docs/API.md, "Errors"). The HTTP layer maps
 * codes to statuses (`src/http/errors.ts`); the core's refusals, in Raft's
 * words, become these at the driver ({@linkcode fromRaftError}).
 *
 * @module
 */

import { MembershipError, NotLeaderError, ProposalDroppedError } from "./core/errors.ts";

/** Stable error codes, as in the wire contract. */
export type ErrorCode =
  | "invalid_request"
  | "unauthorized"
  | "read_only"
  | "not_found"
  | "cas_failed"
  | "conflict"
  | "compacted"
  | "too_large"
  | "rejected"
  | "unavailable"
  | "timeout";

/** Where the leader is, for clients to retry against. */
export interface LeaderHint {
  /** The leader's node id. */
  readonly id: string;
  /** Its URL from the member list (the leader's own `url` on itself); null when unknown. */
  readonly url: string | null;
}

/** Base class of every expected WaterCraft failure. */
export class WaterCraftError extends Error {
  /** The stable code callers and the HTTP layer switch on. */
  readonly code: ErrorCode;
  /** Extra fields for the client, e.g. `current` of a failed compare-and-set. */
  readonly details: Readonly<Record<string, unknown>>;

  /**
   * Creates the error.
   *
   * @param code The stable code.
   * @param message A human-readable sentence naming the action that failed.
   * @param details Extra fields for the client's error body.
   */
  constructor(code: ErrorCode, message: string, details: Readonly<Record<string, unknown>> = {}) {
    super(message);
    this.name = "WaterCraftError";
    this.code = code;
    this.details = details;
  }
}

/**
 * Nothing was written or read: no leader is known, there is no quorum, a
 * bound is reached, or the request went to a node that cannot serve it
 * (HTTP 503 `unavailable`). Safe to retry, at `leader` when it is known.
 */
export class UnavailableError extends WaterCraftError {
  /** The leader, when known: where to retry. */
  readonly leader: LeaderHint | null;

  /**
   * Creates the error.
   *
   * @param message Why the request could not be served.
   * @param leader The leader, when known.
   */
  constructor(message: string, leader: LeaderHint | null = null) {
    super("unavailable", message);
    this.name = "UnavailableError";
    this.leader = leader;
  }
}

/** A write reached a read-only member (HTTP 403 `read_only`). */
export class ReadOnlyError extends WaterCraftError {
  /** Where writes should go, when known. */
  readonly leader: LeaderHint | null;

  /**
   * Creates the error.
   *
   * @param leader Where writes should go.
   */
  constructor(leader: LeaderHint | null) {
    super("read_only", "Cannot write through a read-only member: send writes to the leader");
    this.name = "ReadOnlyError";
    this.leader = leader;
  }
}

/**
 * The outcome of a write is unknown: it may still commit (HTTP 504
 * `timeout`). Retry with the same idempotency key to learn its result.
 */
export class TimeoutError extends WaterCraftError {
  /**
   * Creates the error.
   *
   * @param message What timed out.
   */
  constructor(message: string) {
    super("timeout", message);
    this.name = "TimeoutError";
  }
}

/** The state machine refused a command (HTTP 422 `rejected`). */
export class RejectedError extends WaterCraftError {
  /**
   * Creates the error.
   *
   * @param message Why the command was refused, for the client.
   */
  constructor(message: string) {
    super("rejected", message);
    this.name = "RejectedError";
  }
}

/**
 * Rebuilds an error from its code, message and details, as they crossed the
 * wire or were kept with an idempotency key: the class matches the code, so
 * `instanceof` works on errors relayed from another node.
 *
 * @param code The stable code.
 * @param message The message.
 * @param details Extra fields; `leader` becomes the error's leader hint.
 * @returns The error.
 *
 * @example
 * ```ts
 * import { ok, strictEqual } from "node:assert/strict";
 * import { errorFromCode, UnavailableError } from "./errors.ts";
 *
 * const e = errorFromCode("unavailable", "no quorum", { leader: { id: "n2", url: null } });
 * ok(e instanceof UnavailableError);
 * strictEqual(e.leader?.id, "n2");
 * ```
 */
export function errorFromCode(
  code: ErrorCode,
  message: string,
  details: Readonly<Record<string, unknown>> = {},
): WaterCraftError {
  const { leader, ...rest } = details;
  const hint = isLeaderHint(leader) ? leader : null;
  switch (code) {
    case "unavailable":
      return new UnavailableError(message, hint);
    case "read_only":
      return new ReadOnlyError(hint);
    case "timeout":
      return new TimeoutError(message);
    case "rejected":
      return new RejectedError(message);
    default:
      return new WaterCraftError(code, message, rest);
  }
}

/**
 * An error's details with its leader hint among them: what
 * {@linkcode errorFromCode} takes back, so that an error keeps its hint when
 * it crosses the wire or is kept with an idempotency key.
 *
 * @param error The error.
 * @returns Its details, plus `leader` when it carries one.
 */
export function errorDetails(error: WaterCraftError): Readonly<Record<string, unknown>> {
  const leader = error instanceof UnavailableError || error instanceof ReadOnlyError
    ? error.leader
    : null;
  return leader === null ? error.details : { ...error.details, leader };
}

/**
 * Turns a refusal of the Raft core into the error callers see.
 *
 * @param error What the core threw.
 * @param leader The leader as this node knows it, for the hint.
 * @returns The public error, or `error` itself when it is not the core's.
 */
export function fromRaftError(error: unknown, leader: LeaderHint | null): unknown {
  if (error instanceof NotLeaderError || error instanceof ProposalDroppedError) {
    return new UnavailableError(error.message, leader);
  }
  if (error instanceof MembershipError) {
    const code = error.problem === "already_member"
      ? "conflict"
      : error.problem === "not_member"
      ? "not_found"
      : "invalid_request";
    return new WaterCraftError(code, error.message);
  }
  return error;
}

function isLeaderHint(value: unknown): value is LeaderHint {
  if (typeof value !== "object" || value === null) return false;
  const { id, url } = value as Record<string, unknown>;
  return typeof id === "string" && (url === null || typeof url === "string");
}
