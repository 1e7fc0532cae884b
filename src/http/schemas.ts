/**
 * zod schemas for every client request body, parameter and header, and the
 * helpers that turn a failed parse into a 400 naming the field.
 *
 * @module
 */

import type { Context } from "hono";
import { z } from "zod";
import { NODE_ID_PATTERN, NODE_ID_RULE } from "../core/config.ts";
import { parseJson, parseWith } from "../validation.ts";

/** A JSON value (anything `JSON.parse` can return). */
export const jsonValue: z.ZodType<unknown> = z.unknown().refine(
  (v) => v !== undefined,
  "must be present",
);

/**
 * What a client token may hold: RFC 6750's `b64token`, the only tokens an
 * `Authorization: Bearer` header can carry (base64, base64url and hex all fit).
 */
export const CLIENT_TOKEN_PATTERN: RegExp = /^[A-Za-z0-9._~+/-]+=*$/;

/** {@linkcode CLIENT_TOKEN_PATTERN} in words, for error messages. */
export const CLIENT_TOKEN_RULE =
  "letters, digits and - . _ ~ + / only, optionally ending in = (an RFC 6750 bearer token)";

/** A node id. */
export const nodeId = z.string().regex(NODE_ID_PATTERN, `must match ${NODE_ID_RULE}`);

/** An entry id: lowercase hex SHA-256. */
export const entryId = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits");

/** `POST /v1/entries` body. */
export const entryBody = z.object({ data: jsonValue }).strict();

/** `POST /v1/leader/transfer` body. */
export const transferBody = z.object({ id: nodeId.optional() }).strict();

/** `POST /v1/members` body. */
export const memberBody = z.object({
  id: nodeId,
  url: z.url({ protocol: /^https?$/ }),
  readOnly: z.boolean().optional(),
}).strict();

/** `?consistency=` of reads. */
export const consistencyQuery = z.enum(["linearizable", "local"]).default("linearizable");

/** `?wait=` of `POST /v1/entries`. */
export const waitQuery = z.enum(["accepted", "committed"]).default("committed");

/** `Idempotency-Key` header. */
export const idempotencyKey = z.string().min(1).max(256).optional();

/**
 * Parses a value with a schema.
 *
 * @param schema The schema.
 * @param value The raw value.
 * @param where What the value is, for the message ("body", "query parameter limit").
 * @returns The parsed value.
 * @throws {WaterCraftError} `invalid_request`, naming the first bad field.
 */
export function parse<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  return parseWith(schema, value, where);
}

/**
 * Reads and validates a JSON body (an empty body reads as `{}`).
 *
 * @param c The request context.
 * @param schema The body's schema.
 * @returns The parsed body.
 * @throws {WaterCraftError} `invalid_request` for malformed JSON or a bad field.
 */
export async function parseBody<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  const text = await c.req.text();
  return parseWith(schema, text === "" ? {} : parseJson(text), "body");
}
