/**
 * Expected failures, each with a stable `code` that the HTTP layer maps to a
 * status (see API.md section 2).
 *
 * @module
 */

/** Stable error codes, as in the wire contract. */
export type ErrorCode =
  | "invalid_request"
  | "unauthorized"
  | "read_only"
  | "not_found"
  | "not_leader"
  | "cas_failed"
  | "conflict"
  | "too_large"
  | "rejected"
  | "unavailable"
  | "timeout";

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
 * A proposal, read or transfer was sent to a node that is not the leader.
 * `leader` is the id of the leader this node knows of, or null.
 */
export class NotLeaderError extends WaterCraftError {
  /** The leader this node follows, or null when none is known. */
  readonly leader: string | null;

  /**
   * Creates the error.
   *
   * @param action What was attempted, e.g. "propose".
   * @param leader The known leader id, or null.
   */
  constructor(action: string, leader: string | null) {
    super(
      "not_leader",
      `Cannot ${action} as this node is not the leader: ` +
        (leader === null ? "no leader is known" : `leader is ${leader}`),
    );
    this.name = "NotLeaderError";
    this.leader = leader;
  }
}

/**
 * The leader cannot take the proposal now (a leadership transfer is under
 * way, or the uncommitted log is over its bound). Nothing was appended.
 */
export class UnavailableError extends WaterCraftError {
  /**
   * Creates the error.
   *
   * @param message Why the proposal was refused.
   */
  constructor(message: string) {
    super("unavailable", message);
    this.name = "UnavailableError";
  }
}
