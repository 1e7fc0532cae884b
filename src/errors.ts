/**
 * The errors a node's callers see, each with the stable `code` of API.md
 * section 2. Core errors are re-exported here so callers need one import.
 *
 * @module
 */

import { type ErrorCode, WaterCraftError } from "./core/errors.ts";

export {
  type ErrorCode,
  NotLeaderError,
  UnavailableError,
  WaterCraftError,
} from "./core/errors.ts";
export { RejectedError } from "./state_machine.ts";

/** Where the leader is, for clients to retry against. */
export interface LeaderHint {
  /** The leader's node id. */
  readonly id: string;
  /** Its URL from the member list (the leader's own `url` on itself); null when unknown. */
  readonly url: string | null;
}

/** An error that tells the client where the leader is. */
export class LeaderHintError extends WaterCraftError {
  /** The leader, when known. */
  readonly leader: LeaderHint | null;

  /**
   * Creates the error.
   *
   * @param code The stable code.
   * @param message What failed.
   * @param leader The leader, when known.
   */
  constructor(code: ErrorCode, message: string, leader: LeaderHint | null) {
    super(code, message);
    this.name = "LeaderHintError";
    this.leader = leader;
  }
}

/** A write reached a read-only member (HTTP 403 `read_only`). */
export class ReadOnlyError extends LeaderHintError {
  /**
   * Creates the error.
   *
   * @param leader Where writes should go.
   */
  constructor(leader: LeaderHint | null) {
    super(
      "read_only",
      "Cannot write through a read-only member: send writes to the leader",
      leader,
    );
    this.name = "ReadOnlyError";
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
