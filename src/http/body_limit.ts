/**
 * The client routes' bound on a request body. Hono's `bodyLimit` starts by
 * reading `request.body`, which under `@hono/node-server` turns Node's
 * request into a whole Web `Request` with a `ReadableStream` and an
 * `AbortSignal`: a fifth of a Node leader's CPU under write load went to
 * those objects and the garbage they leave. A body whose length is declared
 * (`Content-Length`, no `Transfer-Encoding`) is bounded by its header alone,
 * since the server reads no more than it declares; a request that declares
 * neither has no body (HTTP/1.1); only a body of unknown length (chunked,
 * or HTTP/2) goes through Hono's streaming check.
 *
 * @module
 */

import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit as streamingBodyLimit } from "hono/body-limit";

/**
 * A middleware that refuses a body over `maxSize` bytes.
 *
 * @param maxSize The most bytes a body may hold.
 * @param onError Called for a body over the limit; what it returns (or
 *   throws) answers the request.
 * @returns The middleware.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { Hono } from "hono";
 * import { bodyLimit } from "./body_limit.ts";
 *
 * const app = new Hono();
 * app.use(bodyLimit(4, (c) => c.text("too large", 413)));
 * app.put("/", async (c) => c.text(await c.req.text()));
 * const put = (body: string) => app.request("/", { method: "PUT", body });
 * strictEqual((await put("1234")).status, 200);
 * strictEqual((await put("12345")).status, 413);
 * ```
 */
export function bodyLimit(
  maxSize: number,
  onError: (c: Context) => Response | Promise<Response>,
): MiddlewareHandler {
  const streaming = streamingBodyLimit({ maxSize, onError });
  return (c, next) => {
    const length = c.req.header("content-length");
    if (c.req.header("transfer-encoding") === undefined) {
      if (length !== undefined && /^\d+$/.test(length)) {
        return Number(length) > maxSize ? Promise.resolve(onError(c)) : next();
      }
      // HTTP/1.1: a request that declares no length has no body.
      if (length === undefined && isHttp1(c)) return next();
    }
    return streaming(c, next);
  };
}

/**
 * Whether the request came over HTTP/1.x, where a body is always declared.
 * Only Node's request says which version it is; elsewhere the answer is no,
 * which sends an undeclared body through the streaming check.
 */
function isHttp1(c: Context): boolean {
  const incoming = (c.env as { incoming?: { httpVersionMajor?: number } } | undefined)?.incoming;
  return incoming?.httpVersionMajor === 1;
}
