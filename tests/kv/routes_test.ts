/**
 * Tests of the key-value routes (`/v1/kv`) through `createApp`, driven with
 * `app.request()` (no sockets) against a one-node cluster on a manual clock:
 * every route's success shape and each error code, the middleware that runs
 * before them, and the check that the node runs the key-value machine.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import {
  type AppOptions,
  createApp,
  createNode,
  kvStateMachine,
  type StateMachine,
  type WaterCraftNode,
} from "../../mod.ts";
import type { KvCommand } from "../../src/kv/mod.ts";
import { manualClock, MemoryNetwork } from "../../src/testing.ts";

/** Fields every write answers with, besides the machine's result. */
const WRITE_FIELDS = ["head", "id", "index", "term"];

/**
 * Where a solo node puts the first command of a row's setup: its own
 * entries come first. A row's revisions count from here.
 */
const FIRST = 3;

/** A one-node cluster that leads at once, with `setup` applied through the log. */
async function soloNode(
  setup: readonly KvCommand[],
  stateMachine: StateMachine = kvStateMachine(),
): Promise<WaterCraftNode> {
  const node = await createNode({
    id: "n1",
    stateMachine,
    transport: new MemoryNetwork().transport(),
    clock: manualClock(1_000_000),
    seed: 1,
    onError: () => {},
  });
  for (const command of setup) await node.propose(command);
  return node;
}

interface Row {
  readonly name: string;
  readonly setup?: readonly KvCommand[];
  readonly options?: AppOptions;
  readonly method: string;
  readonly path: string;
  /** A JSON value to send, or a string sent as is. */
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  readonly status: number;
  /**
   * Success: the answer's fields besides `index` (reads) or `index`, `term`,
   * `id` and `head` (writes), all of them. Failure: fields of `error` that
   * must be there, `code` included.
   */
  readonly want: Record<string, unknown>;
  /** What the message must say (failures only). */
  readonly message?: RegExp;
}

const KEY_1025_BYTES = "é".repeat(512) + "a";

const rows: Row[] = [
  {
    name: "PUT of a new key answers prev null and the revisions it created",
    method: "PUT",
    path: "/v1/kv/a",
    body: { value: { n: 1 } },
    status: 200,
    want: { prev: null, created: FIRST, modified: FIRST },
  },
  {
    name: "PUT over a value answers the previous value and its revision",
    setup: [{ op: "put", key: "a", value: [1] }],
    method: "PUT",
    path: "/v1/kv/a",
    body: { value: 2 },
    status: 200,
    want: { prev: [1], created: FIRST, modified: FIRST + 1, prevModified: FIRST },
  },
  {
    name: "PUT with an Idempotency-Key",
    method: "PUT",
    path: "/v1/kv/a",
    body: { value: 1 },
    headers: { "idempotency-key": "once" },
    status: 200,
    want: { prev: null, created: FIRST, modified: FIRST },
  },
  {
    name: "GET of a present key answers its value and revisions",
    setup: [{ op: "put", key: "a/b", value: { x: [1, null] } }],
    method: "GET",
    path: "/v1/kv/a%2Fb",
    status: 200,
    want: { value: { x: [1, null] }, created: FIRST, modified: FIRST },
  },
  {
    name: "GET of a key holding null answers null",
    setup: [{ op: "put", key: "n", value: null }],
    method: "GET",
    path: "/v1/kv/n?consistency=local",
    status: 200,
    want: { value: null, created: FIRST, modified: FIRST },
  },
  {
    name: "GET of a changed key answers when it was created and last changed",
    setup: [
      { op: "put", key: "a", value: 1 },
      { op: "put", key: "other", value: 1 },
      { op: "cas", key: "a", expect: 1, value: 2 },
    ],
    method: "GET",
    path: "/v1/kv/a",
    status: 200,
    want: { value: 2, created: FIRST, modified: FIRST + 2 },
  },
  {
    name: "GET /v1/kv lists by prefix up to the limit",
    setup: ["a/2", "b", "a/1", "a/3"].map((key) => ({ op: "put", key, value: key })),
    method: "GET",
    path: "/v1/kv?prefix=a/&limit=2",
    status: 200,
    want: {
      items: [
        { key: "a/1", value: "a/1", created: FIRST + 2, modified: FIRST + 2 },
        { key: "a/2", value: "a/2", created: FIRST, modified: FIRST },
      ],
      next: "a/2",
    },
  },
  {
    name: "GET /v1/kv?after= gives the next page, and a page that is not full has no next",
    setup: ["a/2", "b", "a/1", "a/3"].map((key) => ({ op: "put", key, value: key })),
    method: "GET",
    path: "/v1/kv?prefix=a/&limit=2&after=a/2",
    status: 200,
    want: {
      items: [{ key: "a/3", value: "a/3", created: FIRST + 3, modified: FIRST + 3 }],
      next: null,
    },
  },
  {
    name: "400 for a list cursor over the key size",
    method: "GET",
    path: `/v1/kv?after=${"k".repeat(2000)}`,
    status: 400,
    want: { code: "invalid_request" },
  },
  {
    name: "GET /v1/kv of an empty machine lists nothing",
    method: "GET",
    path: "/v1/kv?consistency=linearizable",
    status: 200,
    want: { items: [], next: null },
  },
  {
    name: "DELETE of a present key answers the previous value and revisions",
    setup: [{ op: "put", key: "a", value: "x" }],
    method: "DELETE",
    path: "/v1/kv/a",
    status: 200,
    want: { prev: "x", prevCreated: FIRST, prevModified: FIRST },
  },
  {
    name: "DELETE of an absent key answers prev null",
    method: "DELETE",
    path: "/v1/kv/a",
    status: 200,
    want: { prev: null },
  },
  {
    name: "cas on a structurally equal value succeeds with the revisions",
    setup: [{ op: "put", key: "a", value: { p: 1, q: 2 } }],
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { expect: { q: 2, p: 1 }, value: 3 },
    status: 200,
    want: { prev: { p: 1, q: 2 }, created: FIRST, modified: FIRST + 1, prevModified: FIRST },
  },
  {
    name: "cas with expect null on an absent key succeeds",
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { expect: null, value: 1 },
    status: 200,
    want: { prev: null, created: FIRST, modified: FIRST },
  },
  {
    name: "cas on the key's modified revision succeeds",
    setup: [{ op: "put", key: "a", value: 1 }, { op: "put", key: "a", value: 2 }],
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { expectModified: FIRST + 1, value: 3 },
    status: 200,
    want: { prev: 2, created: FIRST, modified: FIRST + 2, prevModified: FIRST + 1 },
  },
  {
    name: "cas on revision 0 creates an absent key",
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { value: 1, expectModified: 0 },
    status: 200,
    want: { prev: null, created: FIRST, modified: FIRST },
  },
  {
    name: "400 for a key over 1024 bytes",
    method: "GET",
    path: `/v1/kv/${encodeURIComponent(KEY_1025_BYTES)}`,
    status: 400,
    want: { code: "invalid_request" },
    message: /^Invalid path parameter key: /,
  },
  {
    name: "400 for a PUT body that is not JSON",
    method: "PUT",
    path: "/v1/kv/a",
    body: "{not json",
    status: 400,
    want: { code: "invalid_request" },
    message: /not valid JSON/,
  },
  {
    name: "400 for a PUT body without value",
    method: "PUT",
    path: "/v1/kv/a",
    body: {},
    status: 400,
    want: { code: "invalid_request" },
    message: /^Invalid body field value: /,
  },
  {
    name: "400 for a PUT body with an unknown field",
    method: "PUT",
    path: "/v1/kv/a",
    body: { value: 1, ttl: 5 },
    status: 400,
    want: { code: "invalid_request" },
    message: /^Invalid body: /,
  },
  {
    name: "400 for a cas body with neither expect nor expectModified",
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { value: 1 },
    status: 400,
    want: { code: "invalid_request" },
    message: /^Invalid body: must have exactly one of "expect" and "expectModified"$/,
  },
  {
    name: "400 for a cas body with both expect and expectModified",
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { expect: null, expectModified: 0, value: 1 },
    status: 400,
    want: { code: "invalid_request" },
    message: /^Invalid body: must have exactly one of "expect" and "expectModified"$/,
  },
  {
    name: "400 for a cas on a negative revision",
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { expectModified: -1, value: 1 },
    status: 400,
    want: { code: "invalid_request" },
    message: /^Invalid body field expectModified: /,
  },
  {
    name: "400 for a cas on a revision that is a string",
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { expectModified: "3", value: 1 },
    status: 400,
    want: { code: "invalid_request" },
    message: /^Invalid body field expectModified: /,
  },
  {
    name: "400 for a cas on a revision past the safe integers",
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { expectModified: 2 ** 53, value: 1 },
    status: 400,
    want: { code: "invalid_request" },
    message: /^Invalid body field expectModified: /,
  },
  {
    name: "400 for a list limit of 0",
    method: "GET",
    path: "/v1/kv?limit=0",
    status: 400,
    want: { code: "invalid_request" },
    message: /^Invalid query parameter limit: /,
  },
  {
    name: "400 for an unknown consistency",
    method: "GET",
    path: "/v1/kv/a?consistency=eventual",
    status: 400,
    want: { code: "invalid_request" },
    message: /^Invalid query parameter consistency: /,
  },
  {
    name: "400 for an Idempotency-Key over 256 characters",
    method: "DELETE",
    path: "/v1/kv/a",
    headers: { "idempotency-key": "k".repeat(257) },
    status: 400,
    want: { code: "invalid_request" },
    message: /^Invalid header Idempotency-Key: /,
  },
  {
    name: "404 for a GET of an absent key",
    setup: [{ op: "put", key: "a", value: 1 }, { op: "delete", key: "a" }],
    method: "GET",
    path: "/v1/kv/a",
    status: 404,
    want: { code: "not_found" },
    message: /^No key "a"$/,
  },
  {
    name: "409 with current for a cas that does not match",
    setup: [{ op: "put", key: "a", value: { n: 1 } }],
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { expect: { n: 2 }, value: 3 },
    status: 409,
    want: { code: "cas_failed", current: { n: 1 }, modified: FIRST },
    message: /differs/,
  },
  {
    name: "409 with current null for a cas on an absent key",
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { expect: 1, value: 2 },
    status: 409,
    want: { code: "cas_failed", current: null, modified: 0 },
    message: /absent/,
  },
  {
    name: "409 with current null for expect null on a key holding null",
    setup: [{ op: "put", key: "a", value: null }],
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { expect: null, value: 2 },
    status: 409,
    want: { code: "cas_failed", current: null, modified: FIRST },
    message: /holds null/,
  },
  {
    name: "409 with current and modified for a cas on an older revision",
    setup: [{ op: "put", key: "a", value: 1 }, { op: "put", key: "a", value: 2 }],
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { expectModified: FIRST, value: 3 },
    status: 409,
    want: { code: "cas_failed", current: 2, modified: FIRST + 1 },
    message: new RegExp(`last modified at index ${FIRST + 1}, not ${FIRST}`),
  },
  {
    name: "409 for a cas on revision 0 of a present key",
    setup: [{ op: "put", key: "a", value: 1 }],
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { expectModified: 0, value: 3 },
    status: 409,
    want: { code: "cas_failed", current: 1, modified: FIRST },
    message: /exists/,
  },
  {
    name: "409 with modified 0 for a cas on the revision of a deleted key",
    setup: [{ op: "put", key: "a", value: 1 }, { op: "delete", key: "a" }],
    method: "POST",
    path: "/v1/kv/a/cas",
    body: { expectModified: FIRST, value: 3 },
    status: 409,
    want: { code: "cas_failed", current: null, modified: 0 },
    message: /absent/,
  },
  {
    name: "413 for a PUT body over the limit",
    options: { bodyLimitBytes: 64 },
    method: "PUT",
    path: "/v1/kv/a",
    body: { value: "x".repeat(100) },
    status: 413,
    want: { code: "too_large" },
    message: /over 64 bytes/,
  },
  {
    name: "422 for a command the machine refuses through POST /v1/entries",
    method: "POST",
    path: "/v1/entries",
    body: { data: { op: "incr", key: "a" } },
    status: 422,
    want: { code: "rejected" },
    message: /op must be one of "put", "delete", "cas"/,
  },
  {
    name: "422 for a PUT of a value nested deeper than the machine takes",
    method: "PUT",
    path: "/v1/kv/a",
    body: { value: JSON.parse("[".repeat(65) + "]".repeat(65)) },
    status: 422,
    want: { code: "rejected" },
    message: /nests deeper than 64 levels/,
  },
  {
    name: "401 before anything else without the client token",
    options: { clientToken: "t0ken" },
    method: "GET",
    path: `/v1/kv/${encodeURIComponent(KEY_1025_BYTES)}`,
    status: 401,
    want: { code: "unauthorized" },
  },
  {
    name: "200 with the client token",
    options: { clientToken: "t0ken" },
    setup: [{ op: "put", key: "a", value: 1 }],
    method: "GET",
    path: "/v1/kv/a",
    headers: { authorization: "Bearer t0ken" },
    status: 200,
    want: { value: 1, created: FIRST, modified: FIRST },
  },
  {
    name: "413 before the handler parses the key",
    options: { bodyLimitBytes: 64 },
    method: "PUT",
    path: `/v1/kv/${encodeURIComponent(KEY_1025_BYTES)}`,
    body: { value: "x".repeat(100) },
    status: 413,
    want: { code: "too_large" },
  },
  {
    name: "404 for every KV route with kv: false",
    options: { kv: false },
    setup: [{ op: "put", key: "a", value: 1 }],
    method: "GET",
    path: "/v1/kv/a",
    status: 404,
    want: { code: "not_found" },
    message: /^No route for GET \/v1\/kv\/a$/,
  },
];

/** Sends a row's request, with `Content-Length` set as clients set it. */
function send(app: ReturnType<typeof createApp>, row: Row): Promise<Response> {
  const headers = new Headers(row.headers);
  let body: string | undefined;
  if (row.body !== undefined) {
    body = typeof row.body === "string" ? row.body : JSON.stringify(row.body);
    headers.set("content-type", "application/json");
    headers.set("content-length", String(new TextEncoder().encode(body).length));
  }
  return Promise.resolve(
    app.request(row.path, { method: row.method, headers, ...(body === undefined ? {} : { body }) }),
  );
}

Deno.test("the /v1/kv routes answer each request as API.md section 3 says", async (t) => {
  for (const row of rows) {
    await t.step(row.name, async () => {
      const node = await soloNode(row.setup ?? []);
      try {
        const res = await send(createApp(node, row.options), row);
        const body = await res.json();
        strictEqual(res.status, row.status, JSON.stringify(body));
        if (row.status === 200) {
          const isWrite = row.method !== "GET";
          deepStrictEqual(
            Object.keys(body).sort(),
            [...(isWrite ? WRITE_FIELDS : ["index"]), ...Object.keys(row.want)].sort(),
          );
          for (const [field, value] of Object.entries(row.want)) {
            deepStrictEqual(body[field], value, field);
          }
          strictEqual(body.index, node.status().appliedIndex);
          if (isWrite) strictEqual(body.head, node.head().head);
          return;
        }
        for (const [field, value] of Object.entries(row.want)) {
          deepStrictEqual(body.error[field], value, field);
        }
        if (row.message !== undefined) ok(row.message.test(body.error.message), body.error.message);
      } finally {
        await node.stop();
      }
    });
  }
});

Deno.test("the /v1/kv routes write through the log and read back what they wrote", async () => {
  const node = await soloNode([]);
  const app = createApp(node);
  const json = async (path: string, init?: RequestInit) => {
    const res = await app.request(path, init);
    return { status: res.status, body: await res.json() };
  };
  const put = await json("/v1/kv/k", { method: "PUT", body: JSON.stringify({ value: { a: 1 } }) });
  strictEqual(put.status, 200);
  deepStrictEqual(node.entry(put.body.id), {
    id: put.body.id,
    index: put.body.index,
    term: put.body.term,
    state: "committed",
  });
  const cas = await json("/v1/kv/k/cas", {
    method: "POST",
    body: JSON.stringify({ expect: { a: 1 }, value: "b" }),
  });
  strictEqual(cas.status, 200);
  strictEqual(cas.body.index, put.body.index + 1);
  deepStrictEqual((await json("/v1/kv/k")).body, {
    value: "b",
    index: cas.body.index,
    created: put.body.index,
    modified: cas.body.index,
  });
  deepStrictEqual((await json("/v1/kv")).body, {
    items: [{ key: "k", value: "b", created: put.body.index, modified: cas.body.index }],
    index: cas.body.index,
    next: null,
  });
  const del = await json("/v1/kv/k", { method: "DELETE" });
  deepStrictEqual(del.body.prev, "b");
  strictEqual((await json("/v1/kv/k")).status, 404);
  await node.stop();
});

Deno.test("POST /v1/kv/:key/cas on a revision: the modified of one answer is the expectModified of the next", async () => {
  const node = await soloNode([]);
  const app = createApp(node);
  const json = async (path: string, init?: RequestInit) => {
    const res = await app.request(path, init);
    return { status: res.status, body: await res.json() };
  };
  const cas = (body: unknown) =>
    json("/v1/kv/k/cas", { method: "POST", body: JSON.stringify(body) });
  try {
    const created = await cas({ expectModified: 0, value: 1 });
    strictEqual(created.status, 200);
    strictEqual(created.body.modified, created.body.index);
    const next = await cas({ expectModified: created.body.modified, value: 2 });
    strictEqual(next.status, 200);
    deepStrictEqual(
      [next.body.prev, next.body.created, next.body.prevModified],
      [1, created.body.index, created.body.index],
    );

    // A writer still holding the first revision loses, and learns the current one.
    const before = await json("/v1/kv/k");
    const stale = await cas({ expectModified: created.body.modified, value: 3 });
    strictEqual(stale.status, 409);
    deepStrictEqual(
      [stale.body.error.code, stale.body.error.current, stale.body.error.modified],
      ["cas_failed", 2, next.body.index],
    );
    // The failed cas is an entry of the log, yet it changed no revision.
    const after = await json("/v1/kv/k");
    ok(after.body.index > before.body.index, "the failed cas was logged");
    deepStrictEqual(
      { ...after.body, index: before.body.index },
      {
        value: 2,
        index: before.body.index,
        created: created.body.index,
        modified: next.body.index,
      },
    );
  } finally {
    await node.stop();
  }
});

Deno.test("the /v1/kv routes answer 500 internal on a node that runs another state machine", async (t) => {
  // A counter: its results and answers are numbers, not the KV shapes.
  let total = 0;
  const counter: StateMachine = {
    apply: () => ++total,
    query: () => total,
    snapshot: () => new Uint8Array(),
    restore: () => {},
  };
  const requests: { name: string; method: string; path: string; body?: string }[] = [
    { name: "a write", method: "PUT", path: "/v1/kv/a", body: JSON.stringify({ value: 1 }) },
    { name: "a get", method: "GET", path: "/v1/kv/a" },
    { name: "a list", method: "GET", path: "/v1/kv" },
  ];
  const node = await soloNode([], counter);
  const app = createApp(node);
  const logged: unknown[][] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => logged.push(args);
  try {
    for (const request of requests) {
      await t.step(request.name, async () => {
        logged.length = 0;
        const res = await app.request(request.path, request);
        strictEqual(res.status, 500);
        deepStrictEqual(await res.json(), {
          error: { code: "internal", message: "Internal error" },
        });
        strictEqual(logged.length, 1);
        const error = logged[0]!.at(-1);
        ok(error instanceof Error && error.name === "AssertionError", String(error));
        ok(/need a node that runs the key-value state machine/.test(error.message), error.message);
      });
    }
  } finally {
    console.error = consoleError;
    await node.stop();
  }
});

// ------------------------------------------------------------------ key paths

/** Paths that runtimes read differently: each must answer 400, the same everywhere. */
const AMBIGUOUS_PATHS = [
  "/v1/kv/..",
  "/v1/kv/.",
  "/v1/kv/%2e%2E",
  "/v1/kv/.%2e",
  "/v1/kv/%2E",
  "/v1/kv/x/../y",
  "/v1/kv/../cas",
  "/v1/kv/a/./cas",
  "/v1/kv/%ZZ",
  "/v1/kv/a%",
  "/v1/kv/%2",
  "/v1/kv/%FF",
  "/v1/kv/%C3",
  "/v1/kv/a\\b",
];

/**
 * A request whose URL is `target` exactly as sent, as Deno.serve hands it
 * over; the Request constructor alone would resolve its dot segments.
 */
function asSent(method: string, target: string, body?: string): Request {
  const request = new Request("http://localhost/", {
    method,
    ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } }),
  });
  Object.defineProperty(request, "url", { value: `http://localhost${target}` });
  return request;
}

Deno.test("a key path that runtimes read differently answers 400 invalid_request and changes nothing", async (t) => {
  const node = await soloNode([{ op: "put", key: "y", value: 1 }]);
  const app = createApp(node);
  const lastIndex = node.status().lastIndex;
  const deliveries: {
    name: string;
    send: (method: string, target: string, body?: string) => Promise<Response>;
  }[] = [
    {
      name: "as Deno.serve hands it over (the URL as sent)",
      send: (method, target, body) => Promise.resolve(app.fetch(asSent(method, target, body))),
    },
    {
      // The URL resolved, Node's raw target beside it.
      name: "as @hono/node-server hands it over",
      send: (method, target, body) =>
        Promise.resolve(app.fetch(
          new Request(`http://localhost${target.replaceAll("\\", "%5C")}`, {
            method,
            ...(body === undefined ? {} : { body }),
          }),
          { incoming: { url: target } },
        )),
    },
  ];
  try {
    for (const delivery of deliveries) {
      for (const target of AMBIGUOUS_PATHS) {
        await t.step(`${delivery.name}: ${target}`, async () => {
          for (const method of ["GET", "PUT", "DELETE", "POST"]) {
            const body = method === "GET" || method === "DELETE"
              ? undefined
              : JSON.stringify({ expect: null, value: 1 });
            const res = await delivery.send(method, target, body);
            const answer = await res.json();
            strictEqual(res.status, 400, `${method}: ${JSON.stringify(answer)}`);
            strictEqual(answer.error.code, "invalid_request");
            ok(/^Invalid path: segment /.test(answer.error.message), answer.error.message);
          }
          strictEqual(node.status().lastIndex, lastIndex, "a refused request wrote");
        });
      }
    }
  } finally {
    await node.stop();
  }
});

Deno.test("a key's escapes decode strictly: %25ZZ is the key %ZZ, and %ZZ is no key", async () => {
  const node = await soloNode([]);
  const app = createApp(node);
  try {
    const put = await app.request("/v1/kv/%25ZZ", {
      method: "PUT",
      body: JSON.stringify({ value: "percent" }),
    });
    strictEqual(put.status, 200);
    const { index } = await put.json();
    deepStrictEqual((await (await app.request("/v1/kv")).json()).items, [
      { key: "%ZZ", value: "percent", created: index, modified: index },
    ]);
    strictEqual((await (await app.request("/v1/kv/%25ZZ")).json()).value, "percent");
    const literal = await app.request("/v1/kv/%ZZ");
    strictEqual(literal.status, 400);
    strictEqual((await literal.json()).error.code, "invalid_request");
    // Dots inside a longer key, or escaped in one, are keys like any other.
    for (
      const [path, key] of [["/v1/kv/...", "..."], ["/v1/kv/a..", "a.."], ["/v1/kv/.%2e.", "..."]]
    ) {
      const res = await app.request(path!, { method: "PUT", body: JSON.stringify({ value: key }) });
      strictEqual(res.status, 200, path);
    }
    deepStrictEqual(
      (await (await app.request("/v1/kv")).json()).items.map((i: { key: string }) => i.key),
      ["%ZZ", "...", "a.."],
    );
  } finally {
    await node.stop();
  }
});
