/**
 * Tests of the client routes of `createApp` other than `/v1/kv` (those are in
 * tests/kv/routes_test.ts): the generic log, the cluster routes, `/healthz`,
 * `/metrics`, unknown routes, the client token and the body limit, each
 * checked against API.md sections 2 and 3. Requests go through
 * `app.request()` (no sockets) to a one-node cluster on a manual clock.
 *
 * Every error row also checks that the request changed nothing: API.md says a
 * 4xx or 503 "did not and will not take effect".
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual, throws } from "node:assert/strict";
import {
  type AppOptions,
  createApp,
  createNode,
  kvStateMachine,
  type ProposeResult,
  type WaterCraftNode,
} from "../../mod.ts";
import type { KvCommand } from "../../src/kv/mod.ts";
import { manualClock, MemoryNetwork } from "../../src/testing.ts";

const URL_N1 = "http://n1.test:6969";
/** An entry id or head: lowercase hex SHA-256. */
const HEX = /^[0-9a-f]{64}$/;
/** What `/v1/members` says of the node itself: never silent, so always alive. */
const SELF = {
  id: "n1",
  url: URL_N1,
  voter: true,
  readOnly: false,
  alive: true,
  lastSeenMs: 0,
};
const LEADER = { id: "n1", url: URL_N1 };

/** A write made through the node before the request. */
interface Write {
  readonly command: KvCommand;
  readonly idempotencyKey?: string;
}

/** A member added through the node before the request. */
interface Added {
  readonly id: string;
  readonly url: string;
  readonly readOnly?: boolean;
}

/** The node as the row's setup left it, for paths and wants that depend on it. */
interface Ctx {
  /** The setup writes' results, in order. */
  readonly written: readonly ProposeResult[];
  /** `/v1/head` after setup. */
  readonly head: { readonly head: string; readonly index: number; readonly term: number };
  /** Last log index after setup; every entry up to it is committed and applied. */
  readonly lastIndex: number;
  /** Index of the configuration in force after setup. */
  readonly configIndex: number;
}

/**
 * What a row expects. A 2xx JSON answer: the whole body, where a RegExp
 * stands for a string that matches it. A text answer: lines (RegExps with the
 * `m` flag) the body must hold. An error: fields of `error` (`code` always;
 * `message` as a RegExp).
 */
type Want = unknown;

interface Row {
  readonly name: string;
  readonly options?: AppOptions;
  /** The node's cluster secret; without one the node is created `insecure`. */
  readonly secret?: string;
  readonly writes?: readonly Write[];
  readonly members?: readonly Added[];
  readonly method?: string;
  readonly path: string | ((ctx: Ctx) => string);
  /** A JSON value to send, or a string sent as is. */
  readonly body?: unknown;
  /** Send the body as a stream, without `Content-Length`. */
  readonly streamed?: boolean;
  readonly headers?: Record<string, string>;
  /** Send the request this many times (default 1): every answer must be the same. */
  readonly times?: number;
  readonly status: number;
  /** Content type of the answer; default `application/json`. */
  readonly contentType?: string;
  readonly want: Want | ((ctx: Ctx) => Want);
  /** Relations between the answer and the node that `want` cannot state. */
  readonly check?: (body: Record<string, unknown>, node: WaterCraftNode, ctx: Ctx) => void;
}

/** A one-node cluster that leads, with the row's setup applied through the log. */
async function soloNode(row: Row): Promise<{ node: WaterCraftNode; ctx: Ctx }> {
  const node = await createNode({
    id: "n1",
    url: URL_N1,
    stateMachine: kvStateMachine(),
    transport: new MemoryNetwork().transport(),
    ...(row.secret === undefined ? { insecure: true } : { secret: row.secret }),
    clock: manualClock(1_000_000),
    seed: 1,
    onError: () => {},
  });
  const written: ProposeResult[] = [];
  for (const write of row.writes ?? []) {
    const options = write.idempotencyKey === undefined
      ? {}
      : { idempotencyKey: write.idempotencyKey };
    written.push(await node.propose(write.command, options));
  }
  for (const member of row.members ?? []) await node.addMember(member);
  // A linearizable read returns once the leader's first entry is applied.
  await node.read({ op: "get", key: "settle" });
  const status = node.status();
  strictEqual(status.appliedIndex, status.lastIndex, "setup left entries unapplied");
  return {
    node,
    ctx: {
      written,
      head: node.head(),
      lastIndex: status.lastIndex,
      configIndex: status.configIndex,
    },
  };
}

/** Sends a row's request, with `Content-Length` set as clients set it unless streamed. */
async function send(app: ReturnType<typeof createApp>, row: Row, ctx: Ctx): Promise<Response> {
  const headers = new Headers(row.headers);
  let body: BodyInit | undefined;
  if (row.body !== undefined) {
    const text = typeof row.body === "string" ? row.body : JSON.stringify(row.body);
    const bytes = new TextEncoder().encode(text);
    headers.set("content-type", "application/json");
    if (row.streamed) {
      body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(bytes);
          controller.close();
        },
      });
    } else {
      headers.set("content-length", String(bytes.length));
      body = text;
    }
  }
  const path = typeof row.path === "string" ? row.path : row.path(ctx);
  return await app.request(path, {
    method: row.method ?? "GET",
    headers,
    ...(body === undefined ? {} : { body }),
  });
}

/** Asserts that `got` is `want`, where a RegExp in `want` matches a string. */
function assertMatches(got: unknown, want: unknown, path = "body"): void {
  if (want instanceof RegExp) {
    ok(typeof got === "string" && want.test(got), `${path}: ${JSON.stringify(got)} !~ ${want}`);
  } else if (Array.isArray(want)) {
    ok(Array.isArray(got), `${path}: ${JSON.stringify(got)} is not an array`);
    strictEqual(got.length, want.length, `${path}: length`);
    want.forEach((w, i) => assertMatches(got[i], w, `${path}[${i}]`));
  } else if (typeof want === "object" && want !== null) {
    ok(typeof got === "object" && got !== null && !Array.isArray(got), `${path}: not an object`);
    deepStrictEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${path}: fields`);
    for (const [field, value] of Object.entries(want)) {
      assertMatches((got as Record<string, unknown>)[field], value, `${path}.${field}`);
    }
  } else {
    strictEqual(got, want, path);
  }
}

/** Asserts that a response has the API.md section 2 shape with the wanted fields. */
function assertError(body: Record<string, unknown>, want: Record<string, unknown>): void {
  deepStrictEqual(Object.keys(body), ["error"]);
  const error = body.error as Record<string, unknown>;
  strictEqual(error.code, want.code);
  ok(typeof error.message === "string" && error.message.length > 0, "message is empty");
  for (const [field, value] of Object.entries(want)) {
    if (value instanceof RegExp) match(error[field] as string, value, field);
    else deepStrictEqual(error[field], value, field);
  }
}

/** Runs each row as one step, on a fresh node. */
async function run(t: Deno.TestContext, rows: readonly Row[]): Promise<void> {
  for (const row of rows) {
    await t.step({
      name: row.name,
      fn: async () => {
        const { node, ctx } = await soloNode(row);
        try {
          const app = createApp(node, row.options);
          const want = typeof row.want === "function" ? row.want(ctx) : row.want;
          const contentType = row.contentType ?? "application/json";
          const answers: unknown[] = [];
          for (let i = 0; i < (row.times ?? 1); i++) {
            const res = await send(app, row, ctx);
            const text = await res.text();
            strictEqual(res.status, row.status, text);
            strictEqual(res.headers.get("content-type")?.split(";")[0], contentType.split(";")[0]);
            if (contentType !== "application/json") {
              strictEqual(res.headers.get("content-type"), contentType);
              for (const line of want as readonly RegExp[]) match(text, line);
              answers.push(text);
              continue;
            }
            const body = JSON.parse(text);
            answers.push(body);
            if (row.status >= 400) {
              assertError(body, want as Record<string, unknown>);
              const status = node.status();
              strictEqual(status.lastIndex, ctx.lastIndex, "a refused request wrote");
              strictEqual(status.configIndex, ctx.configIndex, "a refused request changed members");
            } else {
              assertMatches(body, want);
            }
            row.check?.(body, node, ctx);
          }
          for (const answer of answers.slice(1)) deepStrictEqual(answer, answers[0]);
        } finally {
          await node.stop();
        }
      },
    });
  }
}

const PUT_A: KvCommand = { op: "put", key: "a", value: 1 };
const PUT_B: KvCommand = { op: "put", key: "b", value: [2] };

// ------------------------------------------------------------------ generic log

const logRows: Row[] = [
  {
    name: "POST /v1/entries answers 201 with the committed entry, the new head and the result",
    writes: [{ command: PUT_A }],
    method: "POST",
    path: "/v1/entries",
    body: { data: { op: "delete", key: "a" } },
    status: 201,
    want: (ctx: Ctx) => ({
      id: HEX,
      index: ctx.lastIndex + 1,
      term: ctx.head.term,
      state: "committed",
      head: HEX,
      result: {
        prev: 1,
        prevCreated: ctx.written[0]!.index,
        prevModified: ctx.written[0]!.index,
      },
    }),
    check: (body, node) => {
      strictEqual(body.head, body.id, "the head is the new entry");
      deepStrictEqual(node.head(), { head: body.id, index: body.index, term: body.term });
    },
  },
  {
    name: "POST /v1/entries?wait=committed is the default made explicit",
    method: "POST",
    path: "/v1/entries?wait=committed",
    body: { data: PUT_A },
    status: 201,
    want: (ctx: Ctx) => ({
      id: HEX,
      index: ctx.lastIndex + 1,
      term: ctx.head.term,
      state: "committed",
      head: HEX,
      result: { prev: null, created: ctx.lastIndex + 1, modified: ctx.lastIndex + 1 },
    }),
    check: (body) => strictEqual(body.head, body.id),
  },
  {
    name:
      "POST /v1/entries?wait=accepted answers 201 once in the log, with the old head, no result",
    writes: [{ command: PUT_A }],
    method: "POST",
    path: "/v1/entries?wait=accepted",
    body: { data: PUT_B },
    status: 201,
    want: (ctx: Ctx) => ({
      id: HEX,
      index: ctx.lastIndex + 1,
      term: ctx.head.term,
      state: "accepted",
      head: ctx.head.head,
      result: null,
    }),
  },
  {
    name: "POST /v1/entries twice with one Idempotency-Key writes once and answers the same twice",
    method: "POST",
    path: "/v1/entries",
    body: { data: PUT_A },
    headers: { "idempotency-key": "retry-1" },
    times: 2,
    status: 201,
    want: (ctx: Ctx) => ({
      id: HEX,
      index: ctx.lastIndex + 1,
      term: ctx.head.term,
      state: "committed",
      head: HEX,
      result: { prev: null, created: ctx.lastIndex + 1, modified: ctx.lastIndex + 1 },
    }),
    check: (body, node, ctx) => {
      strictEqual(node.status().lastIndex, ctx.lastIndex + 1);
      strictEqual(node.entry(body.id as string)?.state, "committed");
    },
  },
  {
    name: "POST /v1/entries with the Idempotency-Key of an earlier write answers that write",
    writes: [{ command: PUT_A, idempotencyKey: "k" }],
    method: "POST",
    path: "/v1/entries",
    body: { data: PUT_B },
    headers: { "idempotency-key": "k" },
    status: 201,
    want: (ctx: Ctx) => ({
      id: ctx.written[0]!.id,
      index: ctx.written[0]!.index,
      term: ctx.written[0]!.term,
      state: "committed",
      head: ctx.written[0]!.id,
      result: { prev: null, created: ctx.written[0]!.index, modified: ctx.written[0]!.index },
    }),
    check: (_body, node, ctx) => strictEqual(node.status().lastIndex, ctx.lastIndex),
  },
  {
    name: "POST /v1/entries answers 400 to a body that is not JSON",
    method: "POST",
    path: "/v1/entries",
    body: '{"data": ',
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body: not valid JSON$/ },
  },
  {
    name: "POST /v1/entries answers 400 to an empty body",
    method: "POST",
    path: "/v1/entries",
    body: "",
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body field data: / },
  },
  {
    name: "POST /v1/entries answers 400 to a body without data",
    method: "POST",
    path: "/v1/entries",
    body: { command: PUT_A },
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body/ },
  },
  {
    name: "POST /v1/entries answers 400 to an object without data",
    method: "POST",
    path: "/v1/entries",
    body: {},
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body field data: / },
  },
  {
    name: "POST /v1/entries answers 400 to a body with an unknown field",
    method: "POST",
    path: "/v1/entries",
    body: { data: PUT_A, wait: "accepted" },
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body: .*wait/ },
  },
  {
    name: "POST /v1/entries answers 400 to an unknown wait",
    method: "POST",
    path: "/v1/entries?wait=applied",
    body: { data: PUT_A },
    status: 400,
    want: { code: "invalid_request", message: /^Invalid query parameter wait: / },
  },
  {
    name: "POST /v1/entries answers 400 to an empty Idempotency-Key",
    method: "POST",
    path: "/v1/entries",
    body: { data: PUT_A },
    headers: { "idempotency-key": "" },
    status: 400,
    want: { code: "invalid_request", message: /^Invalid header Idempotency-Key: / },
  },
  {
    name: "POST /v1/entries answers 422 to data the KV validator refuses: a string",
    method: "POST",
    path: "/v1/entries",
    body: { data: "put a 1" },
    status: 422,
    want: { code: "rejected", message: /must be a JSON object/ },
  },
  {
    name: "POST /v1/entries answers 422 to data the KV validator refuses: null",
    method: "POST",
    path: "/v1/entries",
    body: { data: null },
    status: 422,
    want: { code: "rejected", message: /must be a JSON object/ },
  },
  {
    name: "POST /v1/entries answers 422 to data the KV validator refuses: a put without key",
    method: "POST",
    path: "/v1/entries",
    body: { data: { op: "put", value: 1 } },
    status: 422,
    want: { code: "rejected", message: /key/ },
  },
  {
    name: "GET /v1/entries/:id answers an earlier entry as committed",
    writes: [{ command: PUT_A }, { command: PUT_B }],
    path: (ctx: Ctx) => `/v1/entries/${ctx.written[0]!.id}`,
    status: 200,
    want: (ctx: Ctx) => ({
      id: ctx.written[0]!.id,
      index: ctx.written[0]!.index,
      term: ctx.written[0]!.term,
      state: "committed",
    }),
  },
  {
    name: "GET /v1/entries/:id answers 400 to an id that is not hex",
    path: "/v1/entries/abc",
    status: 400,
    want: { code: "invalid_request", message: /^Invalid path parameter id: / },
  },
  {
    name: "GET /v1/entries/:id answers 400 to an id in uppercase hex",
    writes: [{ command: PUT_A }],
    path: (ctx: Ctx) => `/v1/entries/${ctx.written[0]!.id.toUpperCase()}`,
    status: 400,
    want: { code: "invalid_request", message: /^Invalid path parameter id: / },
  },
  {
    name: "GET /v1/entries/:id answers 400 to an id of 65 hex digits",
    writes: [{ command: PUT_A }],
    path: (ctx: Ctx) => `/v1/entries/${ctx.written[0]!.id}0`,
    status: 400,
    want: { code: "invalid_request", message: /^Invalid path parameter id: / },
  },
  {
    name: "GET /v1/entries/:id answers 404 to an id no entry has",
    writes: [{ command: PUT_A }],
    path: `/v1/entries/${"0".repeat(64)}`,
    status: 404,
    want: { code: "not_found", message: /^No entry 0{64}/ },
  },
  {
    name: "GET /v1/head answers the hash, index and term of the latest committed entry",
    writes: [{ command: PUT_A }, { command: PUT_B }],
    path: "/v1/head",
    status: 200,
    want: (ctx: Ctx) => ({
      head: ctx.written[1]!.id,
      index: ctx.written[1]!.index,
      term: ctx.written[1]!.term,
    }),
  },
];

Deno.test("createApp() answers the generic log routes as API.md section 3 says", async (t) => {
  await run(t, logRows);
});

// ------------------------------------------------------------------ cluster

const N2 = { id: "n2", url: "http://n2.test:6969" };
const N2_LEARNER = { ...N2, voter: false, readOnly: false, alive: false, lastSeenMs: null };

const clusterRows: Row[] = [
  {
    name: "GET /v1/status answers every field of the leader",
    writes: [{ command: PUT_A }],
    path: "/v1/status",
    status: 200,
    want: (ctx: Ctx) => ({
      id: "n1",
      url: URL_N1,
      role: "leader",
      readOnly: false,
      term: ctx.head.term,
      leader: LEADER,
      commitIndex: ctx.written[0]!.index,
      appliedIndex: ctx.written[0]!.index,
      lastIndex: ctx.written[0]!.index,
      head: ctx.written[0]!.id,
      // Not in API.md's list; /v1/members has it too.
      configIndex: 1,
      members: [SELF],
    }),
  },
  {
    name: "GET /v1/status lists a learner that was never heard from as not alive",
    members: [N2],
    path: "/v1/status",
    status: 200,
    want: (ctx: Ctx) => ({
      id: "n1",
      url: URL_N1,
      role: "leader",
      readOnly: false,
      term: ctx.head.term,
      leader: LEADER,
      commitIndex: ctx.lastIndex,
      appliedIndex: ctx.lastIndex,
      lastIndex: ctx.lastIndex,
      head: ctx.head.head,
      configIndex: ctx.configIndex,
      members: [SELF, N2_LEARNER],
    }),
  },
  {
    name: "GET /v1/members answers the leader, the configuration index and the node itself",
    path: "/v1/members",
    status: 200,
    want: { leader: LEADER, configIndex: 1, members: [SELF] },
  },
  {
    name: "GET /v1/members lists a read-only member as a learner",
    members: [{ ...N2, readOnly: true }],
    path: "/v1/members",
    status: 200,
    want: (ctx: Ctx) => ({
      leader: LEADER,
      configIndex: ctx.configIndex,
      members: [SELF, { ...N2_LEARNER, readOnly: true }],
    }),
  },
  {
    name: "POST /v1/members adds a learner and answers the member list",
    method: "POST",
    path: "/v1/members",
    body: N2,
    status: 200,
    want: (ctx: Ctx) => ({
      leader: LEADER,
      configIndex: ctx.lastIndex + 1,
      members: [SELF, N2_LEARNER],
    }),
  },
  {
    name: "POST /v1/members of a member at its URL changes nothing",
    members: [N2],
    method: "POST",
    path: "/v1/members",
    body: N2,
    status: 200,
    want: (ctx: Ctx) => ({
      leader: LEADER,
      configIndex: ctx.configIndex,
      members: [SELF, N2_LEARNER],
    }),
    check: (_body, node, ctx) => strictEqual(node.status().lastIndex, ctx.lastIndex),
  },
  {
    name: "POST /v1/members with the X-WaterCraft-Secret of a secured app adds the member",
    secret: "s3cret",
    method: "POST",
    path: "/v1/members",
    body: N2,
    headers: { "x-watercraft-secret": "s3cret" },
    status: 200,
    want: (ctx: Ctx) => ({
      leader: LEADER,
      configIndex: ctx.lastIndex + 1,
      members: [SELF, N2_LEARNER],
    }),
  },
  {
    name: "POST /v1/members answers 400 to a body that is not JSON",
    method: "POST",
    path: "/v1/members",
    body: "{id: n2}",
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body: not valid JSON$/ },
  },
  {
    name: "POST /v1/members answers 400 to an empty body",
    method: "POST",
    path: "/v1/members",
    body: "",
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body/ },
  },
  {
    name: "POST /v1/members answers 400 to a malformed id",
    method: "POST",
    path: "/v1/members",
    body: { ...N2, id: "n 2" },
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body field id: / },
  },
  {
    name: "POST /v1/members answers 400 to a body without url",
    method: "POST",
    path: "/v1/members",
    body: { id: "n2" },
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body field url: / },
  },
  {
    name: "POST /v1/members answers 400 to a url that is not http(s)",
    method: "POST",
    path: "/v1/members",
    body: { ...N2, url: "ftp://n2.test" },
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body field url: / },
  },
  {
    name: "POST /v1/members answers 400 to a readOnly that is not a boolean",
    method: "POST",
    path: "/v1/members",
    body: { ...N2, readOnly: "yes" },
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body field readOnly: / },
  },
  {
    name: "POST /v1/members answers 400 to an unknown field",
    method: "POST",
    path: "/v1/members",
    body: { ...N2, voter: true },
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body: .*voter/ },
  },
  {
    // API.md section 2 lists no `conflict` code: this pins what the code does.
    name: "POST /v1/members answers 409 conflict to a member's id at another URL",
    members: [N2],
    method: "POST",
    path: "/v1/members",
    body: { ...N2, url: "http://elsewhere.test" },
    status: 409,
    want: { code: "conflict", message: /already a member at http:\/\/n2\.test:6969/ },
  },
  {
    name: "POST /v1/members of a secured app answers 401 without the secret",
    secret: "s3cret",
    method: "POST",
    path: "/v1/members",
    body: N2,
    status: 401,
    want: { code: "unauthorized", message: /cluster secret/ },
  },
  {
    name: "POST /v1/members of a secured app answers 401 to a wrong secret",
    secret: "s3cret",
    method: "POST",
    path: "/v1/members",
    body: N2,
    headers: { "x-watercraft-secret": "guess" },
    status: 401,
    want: { code: "unauthorized" },
  },
  {
    name: "DELETE /v1/members/:id removes a member and answers the member list",
    members: [N2],
    method: "DELETE",
    path: "/v1/members/n2",
    status: 200,
    want: (ctx: Ctx) => ({ leader: LEADER, configIndex: ctx.lastIndex + 1, members: [SELF] }),
  },
  {
    name: "DELETE /v1/members/:id answers 404 to an unknown member",
    members: [N2],
    method: "DELETE",
    path: "/v1/members/n9",
    status: 404,
    want: { code: "not_found", message: /n9/ },
  },
  {
    name: "DELETE /v1/members/:id answers 400 to a malformed id",
    method: "DELETE",
    path: "/v1/members/n%202",
    status: 400,
    want: { code: "invalid_request", message: /^Invalid path parameter id: / },
  },
  {
    name: "POST /v1/leader/transfer to the leader itself answers 200 with the leader",
    method: "POST",
    path: "/v1/leader/transfer",
    body: { id: "n1" },
    status: 200,
    want: { leader: LEADER },
  },
  {
    name: "POST /v1/leader/transfer answers 400 to a body that is not JSON",
    method: "POST",
    path: "/v1/leader/transfer",
    body: "n2",
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body: not valid JSON$/ },
  },
  {
    name: "POST /v1/leader/transfer answers 400 to a malformed id",
    method: "POST",
    path: "/v1/leader/transfer",
    body: { id: "n/2" },
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body field id: / },
  },
  {
    name: "POST /v1/leader/transfer answers 400 to an id that is not a string",
    method: "POST",
    path: "/v1/leader/transfer",
    body: { id: 2 },
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body field id: / },
  },
  {
    name: "POST /v1/leader/transfer answers 400 to an unknown field",
    method: "POST",
    path: "/v1/leader/transfer",
    body: { to: "n2" },
    status: 400,
    want: { code: "invalid_request", message: /^Invalid body: .*to/ },
  },
  {
    name: "POST /v1/leader/transfer answers 404 to an unknown member",
    method: "POST",
    path: "/v1/leader/transfer",
    body: { id: "n9" },
    status: 404,
    want: { code: "not_found", message: /n9/ },
  },
  {
    name: "POST /v1/leader/transfer answers 404 to a learner, which cannot lead",
    members: [N2],
    method: "POST",
    path: "/v1/leader/transfer",
    body: { id: "n2" },
    status: 404,
    want: { code: "not_found", message: /n2.*not a voter/ },
  },
  {
    name: "POST /v1/leader/transfer without a target answers 503 when there is no other voter",
    method: "POST",
    path: "/v1/leader/transfer",
    body: {},
    status: 503,
    want: { code: "unavailable", message: /no other voter/ },
  },
  {
    name: "GET /healthz answers 200 ok",
    path: "/healthz",
    status: 200,
    want: { ok: true },
  },
  {
    name: "GET /metrics answers the Prometheus text format with the node's gauges and counters",
    writes: [{ command: PUT_A }, { command: PUT_B }],
    path: "/metrics",
    status: 200,
    contentType: "text/plain; version=0.0.4",
    want: (ctx: Ctx) => [
      /^# TYPE watercraft_role gauge$/m,
      /^watercraft_role\{role="leader"\} 1$/m,
      /^watercraft_role\{role="follower"\} 0$/m,
      new RegExp(`^watercraft_term ${ctx.head.term}$`, "m"),
      new RegExp(`^watercraft_commit_index ${ctx.lastIndex}$`, "m"),
      new RegExp(`^watercraft_applied_index ${ctx.lastIndex}$`, "m"),
      /^# TYPE watercraft_proposals_total counter$/m,
      /^watercraft_proposals_total 2$/m,
      /^watercraft_proposals_failed_total 0$/m,
    ],
  },
];

Deno.test("createApp() answers the cluster routes as API.md section 3 says", async (t) => {
  await run(t, clusterRows);
});

// ------------------------------------------------------------------ routing, token, body limit

const TOKEN = { clientToken: "t0ken" };
const BEARER = { authorization: "Bearer t0ken" };
const LIMIT = { bodyLimitBytes: 64 };
/** An entry body over 64 bytes. */
const BIG_ENTRY = { data: { op: "put", key: "a", value: "x".repeat(64) } };

const edgeRows: Row[] = [
  {
    name: "an unknown route answers 404 not_found naming the method and path",
    path: "/v2/status",
    status: 404,
    want: { code: "not_found", message: /^No route for GET \/v2\/status$/ },
  },
  {
    name: "an unknown route under /v1 answers 404 not_found",
    method: "POST",
    path: "/v1/entries/x/y",
    body: { data: PUT_A },
    status: 404,
    want: { code: "not_found", message: /^No route for POST \/v1\/entries\/x\/y$/ },
  },
  {
    name: "a known path with another method answers 404 not_found",
    method: "POST",
    path: "/v1/head",
    status: 404,
    want: { code: "not_found", message: /^No route for POST \/v1\/head$/ },
  },
  {
    name: "GET /v1/status answers 401 without the client token, saying it is missing",
    options: TOKEN,
    path: "/v1/status",
    status: 401,
    want: { code: "unauthorized", message: /^Missing client token: / },
  },
  {
    name: "GET /v1/status answers 401 to a wrong client token, saying it is wrong",
    options: TOKEN,
    path: "/v1/status",
    headers: { authorization: "Bearer t0kem" },
    status: 401,
    want: { code: "unauthorized", message: /^Wrong client token$/ },
  },
  ...["bearer t0ken", "BEARER t0ken", "bEaReR t0ken", "Bearer   t0ken"].map((authorization) => ({
    name: `the Bearer scheme is case-insensitive: ${JSON.stringify(authorization)} answers 200`,
    options: TOKEN,
    path: "/v1/head",
    headers: { authorization },
    status: 200,
    want: (ctx: Ctx) => ctx.head,
  })),
  {
    name: "the token itself is case-sensitive: a token that differs in case is wrong",
    options: TOKEN,
    path: "/v1/status",
    headers: { authorization: "bearer T0KEN" },
    status: 401,
    want: { code: "unauthorized", message: /^Wrong client token$/ },
  },
  ...[
    "t0ken",
    "Basic dDBrZW4=",
    "Bearer",
    "Bearer t0ken extra",
    "Bearert0ken",
    "Bearer\tt0ken",
    "Bearer t0k@n",
  ]
    .map((authorization) => ({
      name: `a header that is not Bearer <token> answers 401 saying it is malformed: ${
        JSON.stringify(authorization)
      }`,
      options: TOKEN,
      path: "/v1/status",
      headers: { authorization },
      status: 401,
      want: { code: "unauthorized", message: /^Malformed Authorization header: / },
    })),
  {
    name: "GET /v1/head answers 200 with the client token",
    options: TOKEN,
    writes: [{ command: PUT_A }],
    path: "/v1/head",
    headers: BEARER,
    status: 200,
    want: (ctx: Ctx) => ({
      head: ctx.written[0]!.id,
      index: ctx.written[0]!.index,
      term: ctx.written[0]!.term,
    }),
  },
  {
    name: "POST /v1/entries answers 401 without the client token and writes nothing",
    options: TOKEN,
    method: "POST",
    path: "/v1/entries",
    body: { data: PUT_A },
    status: 401,
    want: { code: "unauthorized" },
  },
  {
    name: "POST /v1/entries answers 201 with the client token",
    options: TOKEN,
    method: "POST",
    path: "/v1/entries",
    body: { data: PUT_A },
    headers: BEARER,
    status: 201,
    want: (ctx: Ctx) => ({
      id: HEX,
      index: ctx.lastIndex + 1,
      term: ctx.head.term,
      state: "committed",
      head: HEX,
      result: { prev: null, created: ctx.lastIndex + 1, modified: ctx.lastIndex + 1 },
    }),
  },
  {
    name: "an unknown route under /v1 answers 401 without the client token",
    options: TOKEN,
    path: "/v1/nowhere",
    status: 401,
    want: { code: "unauthorized" },
  },
  {
    name: "GET /metrics answers 401 without the client token",
    options: TOKEN,
    path: "/metrics",
    status: 401,
    want: { code: "unauthorized" },
  },
  {
    name: "GET /metrics answers 200 with the client token",
    options: TOKEN,
    path: "/metrics",
    headers: BEARER,
    status: 200,
    contentType: "text/plain; version=0.0.4",
    want: [/^watercraft_role\{role="leader"\} 1$/m],
  },
  {
    name: "GET /healthz answers 200 without the client token",
    options: TOKEN,
    path: "/healthz",
    status: 200,
    want: { ok: true },
  },
  {
    name: "the client token is checked before the body limit",
    options: { ...TOKEN, ...LIMIT },
    method: "POST",
    path: "/v1/entries",
    body: BIG_ENTRY,
    status: 401,
    want: { code: "unauthorized" },
  },
  {
    name: "POST /v1/entries answers 413 to a body over the limit",
    options: LIMIT,
    method: "POST",
    path: "/v1/entries",
    body: BIG_ENTRY,
    status: 413,
    want: { code: "too_large", message: /over 64 bytes/ },
  },
  {
    name: "POST /v1/entries answers 413 to a streamed body over the limit",
    options: LIMIT,
    method: "POST",
    path: "/v1/entries",
    body: BIG_ENTRY,
    streamed: true,
    status: 413,
    want: { code: "too_large", message: /over 64 bytes/ },
  },
  {
    name: "POST /v1/entries answers 201 to a body within the limit",
    options: LIMIT,
    method: "POST",
    path: "/v1/entries",
    body: { data: PUT_A },
    status: 201,
    want: (ctx: Ctx) => ({
      id: HEX,
      index: ctx.lastIndex + 1,
      term: ctx.head.term,
      state: "committed",
      head: HEX,
      result: { prev: null, created: ctx.lastIndex + 1, modified: ctx.lastIndex + 1 },
    }),
  },
  {
    name: "POST /v1/members answers 413 to a body over the limit",
    options: LIMIT,
    method: "POST",
    path: "/v1/members",
    body: { ...N2, url: `http://${"n".repeat(64)}.test` },
    status: 413,
    want: { code: "too_large" },
  },
  {
    name: "POST /v1/leader/transfer answers 413 to a body over the limit",
    options: LIMIT,
    method: "POST",
    path: "/v1/leader/transfer",
    body: { id: "n".repeat(64) },
    status: 413,
    want: { code: "too_large" },
  },
];

Deno.test("createApp() routes, checks the client token and limits bodies as API.md section 2 says", async (t) => {
  await run(t, edgeRows);
});

Deno.test("createApp() refuses a client token that no Bearer header can carry (RFC 6750)", async (t) => {
  const node = await createNode({
    id: "n1",
    stateMachine: kvStateMachine(),
    transport: new MemoryNetwork().transport(),
  });
  try {
    for (const token of ["p@ss:w0rd!", "two words", "a=b", ""]) {
      await t.step(JSON.stringify(token), () => {
        throws(() => createApp(node, { clientToken: token }), TypeError);
      });
    }
    for (const token of ["t0ken", "YWJj+/d==", "a.b_c~d-e"]) {
      await t.step(`${JSON.stringify(token)} is accepted`, async () => {
        const app = createApp(node, { clientToken: token });
        const res = await app.request("/v1/status", {
          headers: { authorization: `Bearer ${token}` },
        });
        strictEqual(res.status, 200);
      });
    }
  } finally {
    await node.stop();
  }
});
