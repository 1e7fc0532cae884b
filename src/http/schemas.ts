/**
 * zod schemas for every client request body, parameter and header, and the
 * helpers that turn a failed parse into a 400 naming the field.
 *
 * @module
 */

import type { Context } from "hono";
import { z } from "zod";
import { NODE_ID_PATTERN, NODE_ID_RULE } from "../core/config.ts";
import { invalidRequest } from "./errors.ts";

const encoder = new TextEncoder();

/** A JSON value (anything `JSON.parse` can return). */
export const jsonValue: z.ZodType<unknown> = z.unknown().refine(
  (v) => v !== undefined,
  "must be present",
);

/** A key-value key: 1 to 1024 UTF-8 bytes. */
export const kvKey = z.string().refine((k) => {
  const n = encoder.encode(k).length;
  return n >= 1 && n <= 1024;
}, "must be 1 to 1024 bytes");

/** A node id. */
export const nodeId = z.string().regex(NODE_ID_PATTERN, `must match ${NODE_ID_RULE}`);

/** An entry id: lowercase hex SHA-256. */
export const entryId = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits");

/** `PUT /v1/kv/:key` body. */
export const putBody = z.object({ value: jsonValue }).strict();

/** `POST /v1/kv/:key/cas` body. */
export const casBody = z.object({ expect: jsonValue, value: jsonValue }).strict();

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

/** `?limit=` of `GET /v1/kv`. */
export const limitQuery = z.coerce.number().int().min(1).max(1000).default(100);

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
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issue.path.length > 0 ? `${where} field ${issue.path.join(".")}` : where;
  throw invalidRequest(`Invalid ${path}: ${issue.message}`);
}

/**
 * Reads and validates a JSON body.
 *
 * @param c The request context.
 * @param schema The body's schema.
 * @returns The parsed body.
 * @throws {WaterCraftError} `invalid_request` for malformed JSON or a bad field.
 */
export async function parseBody<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  let raw: unknown;
  try {
    const text = await c.req.text();
    raw = text === "" ? {} : JSON.parse(text);
  } catch {
    throw invalidRequest("Invalid body: not valid JSON");
  }
  return parse(schema, raw, "body");
}
