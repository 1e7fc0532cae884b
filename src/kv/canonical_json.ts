/**
 * The canonical JSON encoding the key-value machine stores values in:
 * object keys sorted, no whitespace. Structurally equal values get equal
 * strings, so compare-and-set compares strings, and every node's snapshot of
 * the same log is byte-identical.
 *
 * @example Equal objects, equal encodings
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { encodeCanonical } from "./canonical_json.ts";
 *
 * strictEqual(encodeCanonical({ b: [1, { d: 2, c: 3 }], a: null }), '{"a":null,"b":[1,{"c":3,"d":2}]}');
 * ```
 *
 * @module
 */

import { compareKeys } from "./index.ts";

/** Deepest nesting of arrays and objects accepted in a value. */
export const KV_VALUE_DEPTH_MAX = 64;

/** Any JSON value: what keys map to. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * A value is not JSON. {@linkcode encodeCanonical} throws it; callers turn it
 * into their own error, naming `path` and `reason`.
 */
export class NotJsonError extends Error {
  /** Where in the value the problem is: object keys and array indexes, outermost first. */
  readonly path: (string | number)[] = [];
  /** What is wrong there, worded to follow the path (e.g. "must be a finite number"). */
  readonly reason: string;

  /**
   * Creates the error.
   *
   * @param reason What is wrong with the value.
   */
  constructor(reason: string) {
    super(reason);
    this.name = "NotJsonError";
    this.reason = reason;
  }
}

/**
 * Tells a plain object (a JSON object's counterpart) from arrays, null,
 * class instances such as `Date`, and other objects.
 *
 * @param value Anything.
 * @returns Whether `value` is an object whose prototype is `Object.prototype` or null.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { isPlainObject } from "./canonical_json.ts";
 *
 * strictEqual(isPlainObject({ a: 1 }), true);
 * strictEqual(isPlainObject(new Date(0)), false);
 * ```
 */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Encodes a JSON value canonically: object keys in {@linkcode compareKeys}
 * order, no whitespace, numbers as `JSON.stringify` writes them (exactly
 * specified by ECMAScript, so equal on every runtime).
 *
 * @param value The value; anything, checked here.
 * @returns The canonical encoding.
 * @throws {NotJsonError} When `value` is not JSON, or nests deeper than
 *   {@linkcode KV_VALUE_DEPTH_MAX} (which also stops cycles).
 *
 * @example A value that is not JSON
 * ```ts
 * import { deepStrictEqual, throws } from "node:assert/strict";
 * import { encodeCanonical, NotJsonError } from "./canonical_json.ts";
 *
 * throws(
 *   () => encodeCanonical({ a: [1, Infinity] }),
 *   (error) => error instanceof NotJsonError && error.reason === "must be a finite number" &&
 *     JSON.stringify(error.path) === '["a",1]',
 * );
 * deepStrictEqual(encodeCanonical([true, "x"]), '[true,"x"]');
 * ```
 */
export function encodeCanonical(value: unknown): string {
  return encodeAt(value, 0);
}

/** Encodes `value`, which is nested `depth` levels deep. */
function encodeAt(value: unknown, depth: number): string {
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new NotJsonError("must be a finite number");
      return JSON.stringify(value);
    case "undefined":
      throw new NotJsonError(depth === 0 ? "is required" : "must be a JSON value, got undefined");
    case "object":
      break;
    default:
      throw new NotJsonError(`must be a JSON value, got ${typeof value}`);
  }
  if (value === null) return "null";
  if (depth >= KV_VALUE_DEPTH_MAX) {
    throw new NotJsonError(`nests deeper than ${KV_VALUE_DEPTH_MAX} levels`);
  }
  const isArray = Array.isArray(value);
  if (!isArray && !isPlainObject(value)) {
    const name = (value as object).constructor?.name ?? "unknown";
    throw new NotJsonError(`must be a plain JSON object, got ${name}`);
  }
  const parts: string[] = [];
  let at: string | number = 0;
  try {
    if (isArray) {
      for (; at < value.length; at++) parts.push(encodeAt(value[at], depth + 1));
      return `[${parts.join(",")}]`;
    }
    for (at of Object.keys(value).sort(compareKeys)) {
      parts.push(`${JSON.stringify(at)}:${encodeAt(value[at], depth + 1)}`);
    }
    return `{${parts.join(",")}}`;
  } catch (error) {
    // Builds the path on the way out, so that success costs nothing for it.
    if (error instanceof NotJsonError) error.path.unshift(at);
    throw error;
  }
}

/**
 * Decodes a canonical encoding into a fresh value, which the caller owns.
 *
 * @param encoded What {@linkcode encodeCanonical} returned.
 * @returns A new value equal to the one encoded.
 *
 * @example Each decode is a new copy
 * ```ts
 * import { deepStrictEqual, notStrictEqual } from "node:assert/strict";
 * import { decodeCanonical } from "./canonical_json.ts";
 *
 * const encoded = '{"a":[1]}';
 * deepStrictEqual(decodeCanonical(encoded), { a: [1] });
 * notStrictEqual(decodeCanonical(encoded), decodeCanonical(encoded));
 * ```
 */
export function decodeCanonical(encoded: string): JsonValue {
  return JSON.parse(encoded) as JsonValue;
}
