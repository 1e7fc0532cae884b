/**
 * Fuzzes a node's HTTP surface through `app.request()` (no sockets): a
 * one-node cluster of the key-value state machine on a manual clock, in
 * open mode (no secret, no client token), its app built by `createApp`.
 *
 * - Client routes: random keys, bodies, queries and headers to the
 *   key-value, log and cluster routes.
 * - Peer routes: random bytes, bent frames and valid frames of messages
 *   drawn against the node's own state to `/raft/messages`, `/raft/stream`
 *   and `/raft/forward`. Forgeries that Raft trusts by design (a fake
 *   snapshot or configuration from a "leader": `trustedForgery` in
 *   `_messages.ts`) are left out, since in open mode they may rewrite the
 *   node's state as a real leader would (a snapshot whose bytes the state
 *   machine cannot restore even stops the node); everything else is a
 *   peer's bad input.
 *
 * Properties: no answer is a 5xx; every non-2xx answer has the JSON shape
 * of API.md section 2 (`{"error": {"code", "message", ...}}`); a forward
 * answers with a frame that decodes; afterwards the node has not failed, it
 * leads again within a bounded stretch of its clock, and a PUT succeeds.
 *
 * @module
 */

import { ok, strictEqual } from "node:assert/strict";
import fc from "fast-check";
import type { Hono } from "hono";
import { createApp, createNode, kvStateMachine, type WaterCraftNode } from "../../mod.ts";
import type { Message } from "../../src/core/mod.ts";
import { type ManualClock, manualClock, MemoryNetwork } from "../../src/testing.ts";
import {
  decodeForwardedAnswer,
  decodeMessages,
  encodeForwardedProposal,
  encodeMessages,
  FrameError,
} from "../../src/transport/http/frames.ts";
import { checkAsyncProperty } from "./_fuzz.ts";
import { applyEdits, bentFrameArb, editsArb, proposalArb, randomFrameArb } from "./_frames.ts";
import { idArb, resolve, type Template, templateArb, trustedForgery } from "./_messages.ts";

const FILE = "tests/fuzz/http_test.ts";
const HEARTBEAT_MS = 50;

/** A node and its app, as the one factory below builds them. */
interface Served {
  readonly node: WaterCraftNode;
  readonly app: Hono;
  readonly clock: ManualClock;
}

/**
 * Builds the node under test and its app: the one place that knows how they
 * are built. Open (`insecure: true`), so that fuzzed peer requests reach the
 * decoders and the core rather than stopping at the proof.
 */
async function serve(): Promise<Served> {
  const clock = manualClock(1_000_000);
  const node = await createNode({
    id: "n1",
    url: "http://n1.test:6969",
    stateMachine: kvStateMachine(),
    transport: new MemoryNetwork().transport(),
    insecure: true,
    clock,
    seed: 1,
    heartbeatMs: HEARTBEAT_MS,
    onError: () => {},
  });
  return { node, app: createApp(node), clock };
}

// ------------------------------------------------------------------ requests

/** One request: what `app.request()` takes. */
interface Req {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Uint8Array | ReadableStream<Uint8Array>;
}

const encoder = new TextEncoder();
/** Answers seen, by kind: the fuzzing must reach both the routes' work and their refusals. */
const answered = { ok: 0, refused: 0 };

/** Text headers can carry: printable ASCII (a client cannot even send other bytes). */
const headerTextArb = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 300,
});

/** Path segments: random text, URL-encoded or not (a bad escape included), and bounds. */
const segmentArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 12, unit: "grapheme" }).map(encodeURIComponent) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "",
      "a",
      "%2F",
      "a%2Fb",
      "%",
      "%zz",
      "%E0%A4%A",
      "%00",
      "..",
      "n1",
      "__proto__",
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom("k".repeat(1024), "k".repeat(1025)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }).map((s) => s.replaceAll("/", "")) },
);

/** Deep nesting, which a recursive parser or canonicalizer could overflow on. */
function nested(depth: number): string {
  return "[".repeat(depth) + "]".repeat(depth);
}

/** Request bodies: JSON of the right shape with odd values, JSON of any shape, not JSON. */
function bodyArb(shape: fc.Arbitrary<unknown>): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 4, arbitrary: shape.map((v) => encoder.encode(JSON.stringify(v))) },
    { weight: 2, arbitrary: fc.jsonValue().map((v) => encoder.encode(JSON.stringify(v))) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((s) => encoder.encode(s)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(1_000, 100_000).map((d) =>
        encoder.encode(`{"value":${nested(d)},"data":${nested(d)}}`)
      ),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '{"value":1e400}',
        '{"value":-0}',
        '{"value":"\\ud800"}',
        '{"__proto__":{"value":1}}',
        '{"value":1,"value":2}',
        '{"value":1,"extra":2}',
        "",
        "null",
      ).map((s) => encoder.encode(s)),
    },
  );
}

const valueArb = fc.record({ value: fc.jsonValue() });
const entryArb = fc.record({
  data: fc.oneof(
    fc.jsonValue(),
    fc.record({
      op: fc.constantFrom("put", "delete", "cas", "get", ""),
      key: fc.string({ maxLength: 6 }),
      value: fc.jsonValue(),
    }),
  ),
});
const memberArb = fc.record({
  id: fc.oneof(idArb, fc.string({ maxLength: 8 })),
  url: fc.oneof(
    fc.constantFrom("http://n9.test:1", "https://x", "ftp://x", "not a url", ""),
    fc.webUrl(),
  ),
  readOnly: fc.oneof(fc.boolean(), fc.constant("yes")),
}, { requiredKeys: ["id"] });

/** Headers: mostly none, as most clients send; sometimes odd ones. */
const headersArb: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({}) },
  {
    weight: 1,
    arbitrary: fc.record({
      "content-type": fc.constantFrom(
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
      ),
      "idempotency-key": headerTextArb,
    }, { requiredKeys: [] }),
  },
);

const queryArb = fc.oneof(
  fc.constant(""),
  fc.constantFrom(
    "?wait=accepted",
    "?wait=committed",
    "?wait=never",
    "?consistency=local",
    "?consistency=x",
    "?prefix=&limit=0",
    "?limit=1001",
    "?limit=-1",
    "?limit=1e3",
  ),
  headerTextArb.map((s) => `?${encodeURI(s)}`),
);

/** Requests to the client routes. */
const clientRequestArb: fc.Arbitrary<Req> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      method: fc.oneof(
        { weight: 3, arbitrary: fc.constant("PUT") },
        { weight: 1, arbitrary: fc.constantFrom("GET", "DELETE", "POST") },
      ),
      path: fc.tuple(segmentArb, fc.constantFrom("", "", "/cas"), queryArb).map(([k, cas, q]) =>
        `/v1/kv/${k}${cas}${q}`
      ),
      headers: headersArb,
      body: bodyArb(
        fc.oneof(valueArb, fc.record({ expect: fc.jsonValue(), value: fc.jsonValue() })),
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      method: fc.constant("POST"),
      path: queryArb.map((q) => `/v1/entries${q}`),
      headers: headersArb,
      body: bodyArb(entryArb),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      method: fc.constantFrom("POST", "DELETE"),
      path: fc.oneof(fc.constant("/v1/members"), segmentArb.map((s) => `/v1/members/${s}`)),
      headers: headersArb,
      body: bodyArb(memberArb),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      method: fc.constantFrom("GET", "POST"),
      path: fc.oneof(
        segmentArb.map((s) => `/v1/entries/${s}`),
        fc.constantFrom("/v1/leader/transfer", "/v1/status", "/v1/head", "/v1/kv", "/metrics"),
        queryArb.map((q) => `/v1/kv${q}`),
      ),
      headers: headersArb,
      body: bodyArb(fc.record({ id: fc.oneof(idArb, fc.jsonValue()) }, { requiredKeys: [] })),
    }),
  },
);

// ------------------------------------------------------------------ checks

/** Sends a request and checks the answer's status and, for an error, its shape. */
async function send(app: Hono, req: Req): Promise<Response> {
  const init: RequestInit = { method: req.method, headers: req.headers };
  if (req.body !== undefined && req.method !== "GET") init.body = req.body as BodyInit;
  const res = await app.request(req.path, init);
  answered[res.status < 300 ? "ok" : "refused"]++;
  // One 5xx answers valid input: a transfer in a cluster with no other
  // voter is `503 unavailable`, as leadership has nowhere to go.
  const transferNowhere = req.path === "/v1/leader/transfer" && res.status === 503;
  if (res.status >= 500 && !transferNowhere) {
    throw new Error(`${req.method} ${req.path} answered ${res.status}: ${await res.text()}`);
  }
  if (res.status >= 300) {
    const type = res.headers.get("content-type") ?? "";
    ok(type.startsWith("application/json"), `${res.status} answered as ${type}`);
    const body = await res.json() as { error?: { code?: unknown; message?: unknown } };
    ok(
      typeof body.error?.code === "string" && /^[a-z_]+$/.test(body.error.code),
      JSON.stringify(body),
    );
    ok(typeof body.error?.message === "string", JSON.stringify(body));
  }
  return res;
}

/**
 * The node has not failed, leads again within a bounded stretch of its clock
 * (forged terms may have deposed it), and takes a write.
 */
async function checkWorking(served: Served): Promise<void> {
  const { node, app, clock } = served;
  strictEqual(node.failure, null, `the node failed: ${node.failure}`);
  // Bounded: 400 heartbeats are many election timeouts.
  for (let i = 0; i < 400 && node.status().role !== "leader"; i++) {
    clock.advance(HEARTBEAT_MS);
    for (let j = 0; j < 5; j++) await Promise.resolve();
  }
  strictEqual(node.status().role, "leader", JSON.stringify(node.status()));
  const res = await app.request("/v1/kv/probe", {
    method: "PUT",
    body: JSON.stringify({ value: "still working" }),
  });
  strictEqual(res.status, 200, await res.text());
}

Deno.test("fuzz: client routes answer bad input with a 4xx in the error shape, never a 5xx, and keep working", async () => {
  await checkAsyncProperty(
    fc.asyncProperty(fc.array(clientRequestArb, { minLength: 1, maxLength: 6 }), async (reqs) => {
      const served = await serve();
      try {
        for (const req of reqs) await send(served.app, req);
        await checkWorking(served);
      } finally {
        await served.node.stop();
      }
    }),
    { numRuns: 600, file: FILE },
  );
  ok(answered.ok > 80 && answered.refused > 200, JSON.stringify(answered));
});

// ------------------------------------------------------------------ peer routes

/** The bodies of a peer request, as drawn: message templates, or bytes. */
type PeerBody =
  | { readonly k: "templates"; readonly templates: readonly Template[] }
  | { readonly k: "bytes"; readonly frames: readonly Uint8Array[] };

const peerBodyArb: fc.Arbitrary<PeerBody> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("templates" as const),
      templates: fc.array(templateArb, { minLength: 1, maxLength: 4 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("bytes" as const),
      frames: fc.array(
        fc.oneof(
          bentFrameArb,
          randomFrameArb,
          proposalArb.map(encodeForwardedProposal),
          fc.tuple(proposalArb, editsArb).map(([p, e]) =>
            applyEdits(encodeForwardedProposal(p), e)
          ),
        ),
        { minLength: 1, maxLength: 3 },
      ),
    }),
  },
);

const peerReqArb = fc.record({
  route: fc.constantFrom("messages" as const, "stream" as const, "forward" as const),
  from: fc.oneof({ weight: 4, arbitrary: fc.constant("n2") }, { weight: 1, arbitrary: idArb }),
  body: peerBodyArb,
  cuts: fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 4 }),
});

/** Whether a frame holds a forgery Raft trusts, judged against the node now. */
function holdsTrustedForgery(node: WaterCraftNode, frame: Uint8Array): boolean {
  let messages: Message[];
  try {
    messages = decodeMessages(frame);
  } catch (e) {
    if (e instanceof FrameError) return false;
    throw e;
  }
  return messages.some((m) => trustedForgery(node.raft, m));
}

/** Builds the frames of a peer request now, from the node's state; null when it would carry a trusted forgery. */
function framesOf(node: WaterCraftNode, from: string, body: PeerBody): Uint8Array[] | null {
  const frames = body.k === "bytes" ? [...body.frames] : [
    encodeMessages(
      body.templates.map((t) => ({ ...resolve(t, node.raft, [node.raft]), from })),
    ),
  ];
  return frames.some((f) => holdsTrustedForgery(node, f)) ? null : frames;
}

async function sendPeer(
  served: Served,
  req: { route: "messages" | "stream" | "forward"; from: string; cuts: readonly number[] },
  frames: Uint8Array[],
): Promise<void> {
  const headers = { "X-Raft-From": req.from, "content-type": "application/octet-stream" };
  if (req.route === "stream") {
    // Cut anywhere, as a network cuts a stream: frames split across chunks,
    // several in one.
    const bytes = new Uint8Array(frames.flatMap((f) => [...f]));
    const chunks: Uint8Array[] = [];
    for (let at = 0, i = 0; at < bytes.length; i++) {
      const n = req.cuts[i % req.cuts.length]!;
      chunks.push(bytes.slice(at, at + n));
      at += n;
    }
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(chunk);
        controller.close();
      },
    });
    await send(served.app, { method: "POST", path: "/raft/stream", headers, body });
    return;
  }
  for (const frame of frames) {
    const path = req.route === "messages" ? "/raft/messages" : "/raft/forward";
    const res = await send(served.app, { method: "POST", path, headers, body: frame });
    if (req.route === "forward" && res.status === 200) {
      decodeForwardedAnswer(new Uint8Array(await res.arrayBuffer()));
    }
  }
}

Deno.test("fuzz: peer routes answer bad frames with a 400 in the error shape, never a 5xx, and the node keeps working", async () => {
  let sent = 0;
  await checkAsyncProperty(
    fc.asyncProperty(fc.array(peerReqArb, { minLength: 1, maxLength: 5 }), async (reqs) => {
      const served = await serve();
      try {
        for (const req of reqs) {
          const frames = framesOf(served.node, req.from, req.body);
          if (frames === null) continue;
          await sendPeer(served, req, frames);
          sent++;
        }
        await checkWorking(served);
      } finally {
        await served.node.stop();
      }
    }),
    { numRuns: 500, file: FILE },
  );
  ok(sent > 500, `only ${sent} peer requests sent`);
});
