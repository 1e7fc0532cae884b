/**
 * The key-value routes of API.md section 3, as a Hono sub-app, for nodes
 * that run the built-in {@linkcode KvStateMachine}:
 *
 * - `GET /v1/kv?prefix=&limit=&after=&consistency=`: `{ items, index, next }`,
 *   each item `{ key, value, created, modified }`; `next` (the last key of a
 *   full page, else null) is the next page's `after`.
 * - `GET /v1/kv/:key?consistency=`: `{ value, index, created, modified }`,
 *   or `404 not_found`.
 * - `PUT /v1/kv/:key`, body `{ value }`: `{ index, term, id, head, prev,
 *   created, modified }`, and `prevModified` when the key existed.
 * - `DELETE /v1/kv/:key`: `{ index, term, id, head, prev }`, and
 *   `prevCreated` and `prevModified` when the key existed.
 * - `POST /v1/kv/:key/cas`, body `{ expect, value }` or `{ expectModified,
 *   value }`: as `PUT`, or `409 cas_failed` with `current` and `modified`.
 * - `GET /v1/watch/kv?prefix=&after=`: key changes as Server-Sent Events
 *   (`src/kv/watch.ts`).
 *
 * Writes take an `Idempotency-Key` header. The sub-app has no middleware and
 * no error handler of its own: `createApp` mounts it after the path check
 * (`src/http/request_path.ts`), the client token guard and the body limit,
 * and renders its errors.
 *
 * A key is its path segment decoded with `decodeURIComponent`; the path
 * check has refused any segment that does not decode, so no escape is ever
 * kept as it is (`%ZZ` is not a key, and `%25ZZ` is the key `%ZZ`).
 *
 * @module
 */

/**
 * `Hono` is public in its own package, but doc lint reports every type from
 * a dependency as private (denoland/deno#27364); the tag silences that.
 *
 * @ignore
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { assert } from "../core/assert.ts";
import { WaterCraftError } from "../errors.ts";
import {
  consistencyQuery,
  idempotencyKey,
  jsonValue,
  parseBody,
  parseWith,
} from "../validation.ts";
import type { WaterCraftNode } from "../node/node.ts";
import type {
  KvGetAnswer,
  KvGetQuery,
  KvListAnswer,
  KvListQuery,
  KvResult,
} from "./state_machine.ts";
import { eventStream } from "../http/event_stream.ts";
import { startAfter } from "../http/log_routes.ts";
import { keyProblem } from "./index.ts";
import { keyChangeOf } from "./watch.ts";
import { KV_LIST_LIMIT_DEFAULT, KV_LIST_LIMIT_MAX } from "./state_machine.ts";

/**
 * A key in a path: 1 to {@linkcode KV_KEY_BYTES_MAX} UTF-8 bytes, valid
 * Unicode, and not `.` or `..`: a path cannot name those keys the same way
 * on every runtime (the path check refuses them first; this holds should
 * the routes be mounted without it).
 */
const kvKey = z.string().superRefine((key, ctx) => {
  if (key === "." || key === "..") {
    ctx.addIssue({ code: "custom", message: `${JSON.stringify(key)} cannot be named in a path` });
    return;
  }
  const problem = keyProblem(key, 1);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});

/** `?limit=` of `GET /v1/kv`. */
const limitQuery = z.coerce.number().int().min(1).max(KV_LIST_LIMIT_MAX).default(
  KV_LIST_LIMIT_DEFAULT,
);

/** `PUT /v1/kv/:key` body. */
const putBody = z.object({ value: jsonValue }).strict();

/**
 * `POST /v1/kv/:key/cas` body: compares the value (`expect`) or the
 * revision (`expectModified`, 0 for absent), exactly one of them. `"expect":
 * null` is present (it means absent), so only a missing field is undefined.
 */
const casBody = z.object({
  expect: jsonValue.optional(),
  expectModified: z.int().min(0).optional(),
  value: jsonValue,
}).strict().refine(
  (body) => (body.expect === undefined) !== (body.expectModified === undefined),
  'must have exactly one of "expect" and "expectModified"',
);

/**
 * Creates the key-value routes of a node. `createApp` mounts them unless
 * its `kv` option is false.
 *
 * @param node The node to serve; its state machine must be a
 *   {@linkcode KvStateMachine} (anything else answers `500 internal`).
 * @returns A Hono app with the `/v1/kv` routes.
 *
 * @example A write and a read
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { createNode, kvStateMachine } from "../../mod.ts";
 * import { MemoryNetwork } from "../testing.ts";
 * import { kvRoutes } from "./routes.ts";
 *
 * const node = await createNode({ id: "n1", stateMachine: kvStateMachine(), transport: new MemoryNetwork().transport() });
 * const app = kvRoutes(node);
 * const put = await app.request("/v1/kv/a", { method: "PUT", body: JSON.stringify({ value: 1 }) });
 * strictEqual((await put.json()).prev, null);
 * strictEqual((await (await app.request("/v1/kv/a")).json()).value, 1);
 * await node.stop();
 * ```
 */
export function kvRoutes(node: WaterCraftNode): Hono {
  const app = new Hono();

  // The command is typed `unknown` as the client sent its values: the
  // leader's `validate` checks it before it is logged.
  async function write(c: Context, command: unknown) {
    const key = parseWith(
      idempotencyKey,
      c.req.header("idempotency-key"),
      "header Idempotency-Key",
    );
    const r = await node.propose(command, key === undefined ? {} : { idempotencyKey: key });
    return { index: r.index, term: r.term, id: r.id, head: r.head, ...asKv(r.result, isKvResult) };
  }

  app.get("/v1/kv", async (c) => {
    const prefix = c.req.query("prefix") ?? "";
    const limit = parseWith(limitQuery, c.req.query("limit"), "query parameter limit");
    const consistency = parseWith(
      consistencyQuery,
      c.req.query("consistency"),
      "query parameter consistency",
    );
    // Any key may be a cursor ("." too): the state machine checks its size.
    const after = c.req.query("after");
    const query: KvListQuery = {
      op: "list",
      prefix,
      limit,
      ...(after === undefined ? {} : { after }),
    };
    const r = await node.read(query, { consistency });
    const { items } = asKv(r.value, isKvListAnswer);
    // A full page may have more after it: `next` is the `after` of the next page.
    const next = items.length === limit ? items.at(-1)!.key : null;
    return c.json({ items, index: r.index, next });
  });

  // Not under /v1/kv/, where "watch" is a key like any other.
  app.get("/v1/watch/kv", (c) => {
    const prefix = c.req.query("prefix") ?? "";
    const after = startAfter(c, undefined);
    const events = node.watch(after === undefined ? {} : { after });
    return eventStream(c, events, (event) => {
      if (event.type === "dropped") {
        const { reason, resumeAfter } = event;
        return { event: "dropped", data: { reason, resumeAfter }, id: String(resumeAfter) };
      }
      const change = keyChangeOf(event, prefix);
      return change === null
        ? null
        : { event: change.type, data: change, id: String(change.index) };
    });
  });

  app.get("/v1/kv/:key", async (c) => {
    const key = parseWith(kvKey, c.req.param("key"), "path parameter key");
    const consistency = parseWith(
      consistencyQuery,
      c.req.query("consistency"),
      "query parameter consistency",
    );
    const query: KvGetQuery = { op: "get", key };
    const r = await node.read(query, { consistency });
    const answer = asKv(r.value, isKvGetAnswer);
    if (!answer.found) throw new WaterCraftError("not_found", `No key ${JSON.stringify(key)}`);
    const { value, created, modified } = answer;
    return c.json({ value, index: r.index, created, modified });
  });

  app.put("/v1/kv/:key", async (c) => {
    const key = parseWith(kvKey, c.req.param("key"), "path parameter key");
    const body = await parseBody(c, putBody);
    return c.json(await write(c, { op: "put", key, value: body.value }));
  });

  app.delete("/v1/kv/:key", async (c) => {
    const key = parseWith(kvKey, c.req.param("key"), "path parameter key");
    return c.json(await write(c, { op: "delete", key }));
  });

  app.post("/v1/kv/:key/cas", async (c) => {
    const key = parseWith(kvKey, c.req.param("key"), "path parameter key");
    const { expect, expectModified, value } = await parseBody(c, casBody);
    const command = expectModified !== undefined
      ? { op: "cas", key, expectModified, value }
      : { op: "cas", key, expect, value };
    return c.json(await write(c, command));
  });

  return app;
}

/**
 * Narrows what the node's state machine returned to a key-value type. The
 * node types results and answers as `unknown`, since it runs any state
 * machine; a shape other than the KV one means these routes were mounted
 * over another machine, a setup bug that no client can fix.
 *
 * @throws {AssertionError} When `value` fails `is` (rendered `500 internal`).
 */
function asKv<T>(value: unknown, is: (value: unknown) => value is T): T {
  assert(
    is(value),
    "The key-value routes got an answer of another shape from the state machine: they " +
      "need a node that runs the key-value state machine (else create the app with kv: false)",
  );
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The fields a {@linkcode KvResult} may have. */
const KV_RESULT_FIELDS = new Set(["prev", "created", "modified", "prevCreated", "prevModified"]);

/**
 * A `put`, `cas` or `delete` result: `prev` and revisions, nothing else. A
 * `cas` result of an older release was `{}`, and an idempotency key may
 * still hand it back, so no field is required.
 */
function isKvResult(value: unknown): value is KvResult {
  return isRecord(value) && Object.keys(value).every((field) => KV_RESULT_FIELDS.has(field));
}

function isKvGetAnswer(value: unknown): value is KvGetAnswer {
  return isRecord(value) && typeof value.found === "boolean" && "value" in value &&
    (!value.found || (typeof value.created === "number" && typeof value.modified === "number"));
}

function isKvListAnswer(value: unknown): value is KvListAnswer {
  return isRecord(value) && Array.isArray(value.items) &&
    value.items.every((item) => isRecord(item) && typeof item.key === "string");
}
