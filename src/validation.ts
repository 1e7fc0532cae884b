/**
 * Untrusted input to typed values: the one place where a failed zod parse
 * or malformed JSON becomes an `invalid_request` error naming what is wrong,
 * and the request schemas every client route shares.
 * Client routes, peer routes and the peer codec all parse through it, so a
 * bad request reads the same wherever it is refused.
 *
 * @module
 */

import type { Context } from "hono";
import { z } from "zod";
import { WaterCraftError } from "./errors.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses a value with a schema.
 *
 * @param schema The schema.
 * @param value The raw value.
 * @param where What the value is, for the message ("body", "query parameter limit").
 * @returns The parsed value.
 * @throws {WaterCraftError} `invalid_request`, naming the first bad field.
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { z } from "zod";
 * import { parseWith } from "./validation.ts";
 *
 * throws(
 *   () => parseWith(z.object({ n: z.number() }), { n: "1" }, "body"),
 *   /Invalid body field n: /,
 * );
 * ```
 */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: string,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issue.path.length > 0 ? `${where} field ${issue.path.map(String).join(".")}` : where;
  throw new WaterCraftError("invalid_request", `Invalid ${path}: ${issue.message}`);
}

/**
 * Parses JSON text or UTF-8 bytes.
 *
 * @param body The text, or its UTF-8 bytes.
 * @param where What it is, for the message. Default "body".
 * @returns The parsed value.
 * @throws {WaterCraftError} `invalid_request` when it is not (UTF-8) JSON.
 */
export function parseJson(body: string | Uint8Array, where = "body"): unknown {
  try {
    return JSON.parse(typeof body === "string" ? body : utf8.decode(body));
  } catch {
    const what = typeof body === "string" ? "JSON" : "UTF-8 JSON";
    throw new WaterCraftError("invalid_request", `Invalid ${where}: not valid ${what}`);
  }
}

/** A JSON value (anything `JSON.parse` can return). */
export const jsonValue: z.ZodType<unknown> = z.unknown().refine(
  (v) => v !== undefined,
  "must be present",
);

/** `?consistency=` of reads. */
export const consistencyQuery = z.enum(["linearizable", "local"]).default("linearizable");

/** `Idempotency-Key` header. */
export const idempotencyKey = z.string().min(1).max(256).optional();

/**
 * Reads and validates a JSON request body (an empty body reads as `{}`).
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
