/**
 * The one place where errors become HTTP responses: every non-2xx answer has
 * the JSON shape of API.md section 2.
 *
 * @module
 */

import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type ErrorCode, ReadOnlyError, UnavailableError, WaterCraftError } from "../errors.ts";

/** HTTP status of each error code. */
export const STATUS_OF: Readonly<Record<ErrorCode, ContentfulStatusCode>> = {
  invalid_request: 400,
  unauthorized: 401,
  read_only: 403,
  not_found: 404,
  cas_failed: 409,
  conflict: 409,
  compacted: 410,
  too_large: 413,
  rejected: 422,
  unavailable: 503,
  timeout: 504,
};

/**
 * `Retry-After` of every `503 unavailable`, in seconds: an election takes
 * one or two election timeouts (500 ms by default), and the header takes
 * whole seconds only.
 */
export const RETRY_AFTER_S = "1";

/** The JSON body of an error response. */
export interface ErrorBody {
  error: {
    code: string;
    message: string;
    leader?: { id: string; url: string | null } | null;
    [detail: string]: unknown;
  };
}

/**
 * Renders an error as a response. Expected failures keep their code; anything
 * else is a bug and answers 500 `internal` without leaking details.
 *
 * @param c The request context.
 * @param error What went wrong.
 * @returns The JSON error response.
 */
export function errorResponse(c: Context, error: unknown): Response {
  // Hono's own middleware answers with a ready response; ours build theirs
  // with errorBody() so they have this module's shape.
  if (error instanceof HTTPException) return error.getResponse();
  if (error instanceof WaterCraftError) {
    const body: ErrorBody = {
      error: { ...error.details, code: error.code, message: error.message },
    };
    if (error instanceof UnavailableError || error instanceof ReadOnlyError) {
      body.error.leader = error.leader;
    }
    if ("current" in error && !("current" in body.error)) {
      body.error.current = (error as { current: unknown }).current;
    }
    const status = STATUS_OF[error.code] ?? 500;
    // A 503 never took effect: say when a retry is worth it (about one election).
    if (status === 503) c.header("Retry-After", RETRY_AFTER_S);
    return c.json(body, status);
  }
  console.error("watercraft: unexpected error while serving", c.req.method, c.req.path, error);
  return c.json({ error: { code: "internal", message: "Internal error" } }, 500);
}

/**
 * The JSON body of an error, for middleware that builds its own response.
 *
 * @param code The stable code.
 * @param message What went wrong.
 * @returns The body, as in API.md section 2.
 */
export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: { code, message } };
}
