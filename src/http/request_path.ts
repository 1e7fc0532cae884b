/**
 * The path of a request as the client sent it, and the one check every
 * runtime applies to it before routing.
 *
 * Runtimes disagree on what some paths mean. Deno hands the handler the
 * request-target as it came; Bun and Node build the request's URL with the
 * URL parser, which resolves dot segments (`/v1/kv/x/../y` becomes
 * `/v1/kv/y`, `/v1/kv/..` becomes `/v1/`, and so does `%2e%2e`). And the
 * router keeps a percent-escape it cannot decode as it is, so `/v1/kv/%ZZ`
 * and `/v1/kv/%25ZZ` name the same key. So that a path means one thing on
 * every runtime, a path with any of these is refused with `400
 * invalid_request`:
 *
 * - a dot segment: a segment that is `.` or `..`, where a dot may also be
 *   written `%2e` or `%2E` (the spellings the URL parser resolves);
 * - a `%` not followed by two hex digits;
 * - percent-escapes that do not decode to UTF-8 (`%FF`);
 * - a backslash (Bun's parser reads it as `/`, Node's server refuses it; a
 *   key holding one sends it as `%5C`).
 *
 * The query string is not checked here. `serve()` applies the check to the
 * raw request-target on each runtime, and `createApp()` to the path it can
 * see (the raw one on Deno, or under `@hono/node-server` on Node).
 *
 * @module
 */

/** `%` followed by two hex digits. */
const ESCAPE = /%[0-9A-Fa-f]{2}/g;
/** What a path must hold for {@linkcode pathProblem} to find anything: a dot, a `%` or a backslash. */
const MAY_HAVE_PROBLEM = /[.%\\]/;

/**
 * Returns the path of a request URL or request-target exactly as written:
 * from the first `/` after the authority (or from the start, for a target
 * such as `/v1/kv/a?x=1`) up to the first `?` or `#`, with nothing
 * resolved or decoded. Unlike `new URL(url).pathname`, it keeps dot
 * segments, backslashes and malformed escapes as they are.
 *
 * @param url A request's URL (`request.url`) or request-target.
 * @returns The path, `/` when there is none.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { requestPath } from "./request_path.ts";
 *
 * strictEqual(requestPath("http://127.0.0.1:6969/v1/kv/../x?a=.."), "/v1/kv/../x");
 * strictEqual(requestPath("/v1/kv/%ZZ#top"), "/v1/kv/%ZZ");
 * strictEqual(requestPath("http://host"), "/");
 * ```
 */
export function requestPath(url: string): string {
  let start = 0;
  if (!url.startsWith("/")) {
    const scheme = url.indexOf("://");
    start = scheme < 0 ? 0 : url.indexOf("/", scheme + 3);
    if (start < 0) return "/";
  }
  let end = url.length;
  for (const stop of ["?", "#"]) {
    const at = url.indexOf(stop, start);
    if (at >= 0 && at < end) end = at;
  }
  const path = url.slice(start, end);
  return path === "" ? "/" : path;
}

/**
 * Whether a path segment, as sent, is a dot segment: `.` or `..`, with any
 * dot possibly written `%2e` or `%2E`, as the URL parser reads them.
 *
 * @param segment One segment of a raw path, not decoded.
 * @returns True for `.`, `..`, `%2e`, `.%2E`, `%2e%2e` and the like.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { isDotSegment } from "./request_path.ts";
 *
 * strictEqual(isDotSegment("%2E%2e"), true);
 * strictEqual(isDotSegment("..."), false);
 * ```
 */
export function isDotSegment(segment: string): boolean {
  const dots = segment.replace(/%2e/gi, ".");
  return dots === "." || dots === "..";
}

/**
 * Says what is wrong with a raw path, if anything: the check of the module
 * doc, which every runtime applies before routing.
 *
 * @param path A path as {@linkcode requestPath} returns it.
 * @returns A description of the first problem, naming the segment, or
 *   `undefined` when the path is acceptable.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { pathProblem } from "./request_path.ts";
 *
 * strictEqual(pathProblem("/v1/kv/a%2Fb"), undefined);
 * strictEqual(
 *   pathProblem("/v1/kv/%2e."),
 *   'segment "%2e." is a dot segment, which runtimes resolve differently ' +
 *     '(the keys "." and ".." cannot be named in a path)',
 * );
 * strictEqual(pathProblem("/v1/kv/%ZZ"), 'segment "%ZZ" has a % not followed by two hex digits (send % as %25)');
 * ```
 */
export function pathProblem(path: string): string | undefined {
  // Every problem below needs one of these: most paths are done here, with
  // nothing split or quoted (this runs on every request).
  if (!MAY_HAVE_PROBLEM.test(path)) return undefined;
  for (const segment of path.split("/")) {
    const quoted = JSON.stringify(segment.length > 80 ? `${segment.slice(0, 77)}...` : segment);
    if (isDotSegment(segment)) {
      return `segment ${quoted} is a dot segment, which runtimes resolve differently ` +
        '(the keys "." and ".." cannot be named in a path)';
    }
    if (segment.includes("\\")) {
      return `segment ${quoted} holds a backslash, which runtimes read differently (send it as %5C)`;
    }
    if (segment.replace(ESCAPE, "").includes("%")) {
      return `segment ${quoted} has a % not followed by two hex digits (send % as %25)`;
    }
    if (segment.includes("%")) {
      try {
        decodeURIComponent(segment);
      } catch {
        return `segment ${quoted} has percent-escapes that are not UTF-8`;
      }
    }
  }
  return undefined;
}

/**
 * The message of the `400 invalid_request` that refuses a path.
 *
 * @param problem What {@linkcode pathProblem} said.
 * @returns The error message.
 */
export function pathRefusalMessage(problem: string): string {
  return `Invalid path: ${problem}`;
}

/**
 * The response that refuses a path, for code that answers before any
 * router (the servers of `serve()`): the error shape of API.md section 2.
 *
 * @param problem What {@linkcode pathProblem} said.
 * @returns A `400 invalid_request` response.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { pathRefusal } from "./request_path.ts";
 *
 * const res = pathRefusal("segment \"..\" is a dot segment");
 * strictEqual(res.status, 400);
 * strictEqual((await res.json()).error.code, "invalid_request");
 * ```
 */
export function pathRefusal(problem: string): Response {
  return Response.json(
    { error: { code: "invalid_request", message: pathRefusalMessage(problem) } },
    { status: 400 },
  );
}
