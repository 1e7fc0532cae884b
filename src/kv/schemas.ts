/**
 * zod schemas of the key-value machine's commands and queries, and the
 * parsers that refuse a malformed one with a message naming every problem
 * (`command value.n must be a finite number`).
 *
 * The messages name paths as JavaScript would write them, from the
 * command's or query's root, because the state machine answers for commands
 * that reach it any way at all (`POST /v1/entries`, a forwarded proposal, an
 * embedding program); the HTTP layer names its own fields with
 * `src/http/schemas.ts`.
 *
 * @example Values come out in canonical encoding
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { parseCommand } from "./schemas.ts";
 *
 * assertEquals(parseCommand({ op: "put", key: "a", value: { b: 1, a: 2 } }), {
 *   op: "put",
 *   key: "a",
 *   value: '{"a":2,"b":1}',
 * });
 * ```
 *
 * @module
 */

import { z } from "zod";
import { RejectedError, WaterCraftError } from "../errors.ts";
import { encodeCanonical, NotJsonError } from "./canonical_json.ts";
import { keyProblem } from "./index.ts";

/**
 * A command as {@linkcode parseCommand} returns it: checked, with every
 * value in canonical encoding. A `cas` has exactly one comparison: the
 * value (`expect`, `"null"` for absent) or the revision (`expectModified`,
 * 0 for absent); tell them apart with `"expectModified" in command`.
 */
export type ParsedCommand =
  | { readonly op: "put"; readonly key: string; readonly value: string }
  | { readonly op: "delete"; readonly key: string }
  | {
    readonly op: "cas";
    readonly key: string;
    readonly expect: string;
    readonly value: string;
  }
  | {
    readonly op: "cas";
    readonly key: string;
    readonly expectModified: number;
    readonly value: string;
  };

/** A query as {@linkcode parseQuery} returns it: checked. */
export type ParsedQuery =
  | { readonly op: "get"; readonly key: string }
  | {
    readonly op: "list";
    readonly prefix?: string | undefined;
    readonly limit?: number | undefined;
    readonly after?: string | undefined;
  };

function keySchema(minBytes: number) {
  return z.string({
    error: (issue) => issue.input === undefined ? "is required" : "must be a string",
  })
    .check((ctx) => {
      const problem = keyProblem(ctx.value, minBytes);
      if (problem !== undefined) {
        ctx.issues.push({ code: "custom", message: problem, input: ctx.value });
      }
    });
}

/** A JSON value, parsed to its canonical encoding. */
const VALUE_SCHEMA = z.custom<unknown>().transform((value, ctx): string => {
  try {
    return encodeCanonical(value);
  } catch (error) {
    if (!(error instanceof NotJsonError)) throw error;
    ctx.issues.push({ code: "custom", message: error.reason, path: error.path, input: value });
    return z.NEVER;
  }
});

function objectError(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === "unrecognized_keys") {
    return `has unknown field${issue.keys.length === 1 ? "" : "s"} ${
      issue.keys.map((key) => JSON.stringify(key)).join(", ")
    }`;
  }
  return issue.code === "invalid_type" ? "must be a JSON object" : undefined;
}

function opError(ops: readonly string[]) {
  return (issue: z.core.$ZodRawIssue): string | undefined => {
    if (issue.code === "invalid_union") {
      return `must be one of ${ops.map((op) => JSON.stringify(op)).join(", ")}`;
    }
    return issue.code === "invalid_type" ? "must be a JSON object" : undefined;
  };
}

/**
 * A key's revision: the index of a log entry, or 0 for "absent". Indexes
 * are safe integers, so a larger number can never match and is refused.
 */
const REVISION_SCHEMA = z.int({ error: "must be a whole number" })
  .min(0, { error: "must be at least 0" });

/**
 * Both compare-and-set forms share the op `cas` (one discriminator value
 * cannot name two union options), so one object takes either comparison
 * and the check below insists on exactly one of them.
 */
const CAS_SCHEMA = z.strictObject({
  op: z.literal("cas"),
  key: keySchema(1),
  expect: VALUE_SCHEMA.optional(),
  expectModified: REVISION_SCHEMA.optional(),
  value: VALUE_SCHEMA,
}, { error: objectError }).check((ctx) => {
  if ((ctx.value.expect === undefined) === (ctx.value.expectModified === undefined)) {
    ctx.issues.push({
      code: "custom",
      message: 'must have exactly one of "expect" and "expectModified"',
      input: ctx.value,
    });
  }
});

const COMMAND_SCHEMA = z.discriminatedUnion("op", [
  z.strictObject({ op: z.literal("put"), key: keySchema(1), value: VALUE_SCHEMA }, {
    error: objectError,
  }),
  z.strictObject({ op: z.literal("delete"), key: keySchema(1) }, { error: objectError }),
  CAS_SCHEMA,
], { error: opError(["put", "delete", "cas"]) });

const QUERY_SCHEMA = z.discriminatedUnion("op", [
  z.strictObject({ op: z.literal("get"), key: keySchema(1) }, { error: objectError }),
  z.strictObject({
    op: z.literal("list"),
    prefix: keySchema(0).optional(),
    limit: z.int({ error: "must be a whole number" }).min(0, { error: "must be at least 0" })
      .optional(),
    after: keySchema(1).optional(),
  }, { error: objectError }),
], { error: opError(["get", "list"]) });

/**
 * Parses a command of the key-value machine.
 *
 * @param command Anything: a client's command, or one read from the log.
 * @returns The command, with its values in canonical encoding; a `cas`
 *   with only the comparison it was given.
 * @throws {RejectedError} When `command` is malformed; the message names
 *   every problem.
 *
 * @example A refused command
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { parseCommand } from "./schemas.ts";
 *
 * throws(() => parseCommand({ op: "put", key: "" }), {
 *   name: "RejectedError",
 *   message: "Cannot accept the key-value command: key must be 1 to 1024 UTF-8 bytes, got 0; " +
 *     "value is required",
 * });
 * ```
 */
export function parseCommand(command: unknown): ParsedCommand {
  const result = COMMAND_SCHEMA.safeParse(command);
  if (!result.success) {
    throw new RejectedError(
      `Cannot accept the key-value command: ${formatIssues(result.error.issues, "command")}`,
    );
  }
  const parsed = result.data;
  if (parsed.op !== "cas") return parsed;
  // The schema's check let exactly one comparison through.
  const { key, value } = parsed;
  return parsed.expectModified !== undefined
    ? { op: "cas", key, expectModified: parsed.expectModified, value }
    : { op: "cas", key, expect: parsed.expect!, value };
}

/**
 * Parses a query of the key-value machine.
 *
 * @param query Anything: a `get` or a `list` query, one hopes.
 * @returns The query.
 * @throws {WaterCraftError} With code `invalid_request` when `query` is
 *   malformed; the message names every problem.
 *
 * @example A negative limit
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { parseQuery } from "./schemas.ts";
 *
 * throws(() => parseQuery({ op: "list", limit: -1 }), {
 *   code: "invalid_request",
 *   message: "Cannot answer the key-value query: limit must be at least 0",
 * });
 * ```
 */
export function parseQuery(query: unknown): ParsedQuery {
  const result = QUERY_SCHEMA.safeParse(query);
  if (!result.success) {
    throw new WaterCraftError(
      "invalid_request",
      `Cannot answer the key-value query: ${formatIssues(result.error.issues, "query")}`,
    );
  }
  return result.data;
}

/**
 * Writes a path into a value as JavaScript would, e.g. `value.a[0]` or
 * `value["a b"]`, cut to 100 characters.
 *
 * @param root What to write for the empty path (e.g. "command").
 * @param path Object keys and array indexes, outermost first; symbols are skipped.
 * @returns The path.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { formatPath } from "./schemas.ts";
 *
 * strictEqual(formatPath("command", ["value", "a b", 0]), 'value["a b"][0]');
 * strictEqual(formatPath("command", []), "command");
 * ```
 */
export function formatPath(root: string, path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key !== "symbol") out = pathOf(out, key);
  }
  out = out.replace(/^\./, "");
  if (out === "") return root;
  return out.length > 100 ? `${out.slice(0, 97)}...` : out;
}

function pathOf(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

function formatIssues(issues: readonly z.core.$ZodIssue[], root: string): string {
  return issues.map((issue) => `${formatPath(root, issue.path)} ${issue.message}`).join("; ");
}
