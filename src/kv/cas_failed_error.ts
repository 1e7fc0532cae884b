/**
 * The refusal of a compare-and-set that did not match, on the value or on
 * the revision.
 *
 * @module
 */

import { WaterCraftError } from "../errors.ts";
import type { JsonValue } from "./canonical_json.ts";
import { quoteKey } from "./index.ts";

/** What a {@linkcode CasFailedError} found, and what the compare-and-set expected. */
export interface CasFailure {
  /** Whether the key exists (tells a null value from absence). Default: `current !== null`. */
  readonly exists?: boolean;
  /** The key's `modified` revision, 0 when it is absent (or unknown). Default 0. */
  readonly modified?: number;
  /** The revision a compare-and-set on the revision expected; absent for one on the value. */
  readonly expectModified?: number;
}

/**
 * A compare-and-set did not match (HTTP 409 `cas_failed`). `current` holds
 * the key's current value, or null when the key is absent, and `modified`
 * its `modified` revision, 0 when it is absent; both are also in `details`,
 * so that the HTTP error body carries them and the client can retry with
 * either comparison.
 *
 * Thrown from `apply`, it is a deterministic refusal like
 * {@linkcode RejectedError}: the entry stays in the log without effect.
 *
 * @example Catching a failed compare-and-set
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { CasFailedError } from "./cas_failed_error.ts";
 * import { kvStateMachine } from "./state_machine.ts";
 *
 * const kv = kvStateMachine();
 * kv.apply({ op: "put", key: "a", value: 1 }, { index: 4, term: 1, id: "", proposer: "n1", timeMs: 0 });
 * throws(
 *   () => kv.apply({ op: "cas", key: "a", expect: null, value: 2 }),
 *   (error) =>
 *     error instanceof CasFailedError && error.code === "cas_failed" && error.current === 1 &&
 *     error.modified === 4,
 * );
 * ```
 */
export class CasFailedError extends WaterCraftError {
  /** The key's current value, or null when it is absent. */
  readonly current: JsonValue;
  /** The key's `modified` revision, or 0 when it is absent. */
  readonly modified: number;

  /**
   * Creates the error.
   *
   * @param key The key the compare-and-set was for.
   * @param current Its current value, or null when it is absent.
   * @param failure Whether it exists, its revision, and what was expected.
   */
  constructor(key: string, current: JsonValue, failure: CasFailure = {}) {
    const exists = failure.exists ?? current !== null;
    const modified = failure.modified ?? 0;
    super(
      "cas_failed",
      `Cannot compare-and-set key ${quoteKey(key)}: ${casFailureReason(exists, current, failure)}`,
      { current, modified },
    );
    this.name = "CasFailedError";
    this.current = current;
    this.modified = modified;
  }
}

/** Why a compare-and-set did not match, for the error message. */
function casFailureReason(exists: boolean, current: JsonValue, failure: CasFailure): string {
  const expected = failure.expectModified;
  if (expected === undefined) {
    if (!exists) return "the key is absent";
    return current === null
      ? "the key holds null, which is not absence, so expect null does not match"
      : "its current value differs from the expected one";
  }
  if (!exists) return `the key is absent, not modified at index ${expected}`;
  const modified = failure.modified ?? 0;
  // A key restored from a format-1 snapshot has no revision that any
  // expectModified could name; say how to get past it instead of looping.
  if (modified === 0) {
    return "its revision is unknown (restored from an older snapshot format): compare its value " +
      "with expect, or put it again";
  }
  return expected === 0
    ? `the key exists (modified at index ${modified}), so expectModified 0 does not match`
    : `it was last modified at index ${modified}, not ${expected}`;
}
