/**
 * Fuzzing the peer routes of a secured node (a secret, as by default):
 * requests with random and half-right proofs (sender ids, challenges,
 * sequence numbers and signatures, well-formed or not, a real challenge
 * the node handed out included) and random bodies are all refused with a
 * 4xx in the API.md error shape, and change nothing: not the term, not the
 * log, not the leader. Seeded (`_fuzz.ts`).
 *
 * @module
 */

import { deepStrictEqual, ok } from "node:assert/strict";
import fc from "fast-check";
import { createApp, createNode, kvStateMachine } from "../../mod.ts";
import { manualClock, MemoryNetwork } from "../../src/testing.ts";
import { checkAsyncProperty } from "./_fuzz.ts";

const hexArb = (length: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: length, maxLength: length });

/** A header value: absent, right-looking, or anything printable. */
function headerArb(right: fc.Arbitrary<string>): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    fc.constant(undefined),
    right,
    fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) }),
  );
}

Deno.test("fuzz: a secured node refuses every request without the secret's proof, and nothing changes", async () => {
  const node = await createNode({
    id: "n1",
    url: "http://n1.test:6969",
    stateMachine: kvStateMachine(),
    transport: new MemoryNetwork().transport(),
    secret: "the fuzzed cluster's secret",
    clock: manualClock(1_000_000),
    seed: 1,
    onError: () => {},
  });
  const app = createApp(node);
  try {
    // A challenge this node really handed out: half of the proof is then right.
    const first = await app.request("/raft/messages", {
      method: "POST",
      headers: { "X-Raft-From": "n2" },
      body: new Uint8Array(6),
    });
    const handedOut = first.headers.get("X-Raft-Challenge")!;
    await first.body?.cancel();
    const before = JSON.stringify(node.status());
    const statuses = new Set<number>();
    await checkAsyncProperty(
      fc.asyncProperty(
        fc.constantFrom("/raft/messages", "/raft/stream", "/raft/forward", "/v1/members"),
        headerArb(fc.constantFrom("n1", "n2", "evil")),
        headerArb(fc.oneof(fc.constant(handedOut), hexArb(32))),
        headerArb(
          fc.oneof(fc.integer({ min: 1, max: 5 }).map(String), fc.constant("9007199254740993")),
        ),
        headerArb(hexArb(64)),
        fc.uint8Array({ maxLength: 512 }),
        async (path, from, challenge, seq, signature, body) => {
          const headers: Record<string, string> = {};
          if (from !== undefined) headers["X-Raft-From"] = from;
          if (challenge !== undefined) headers["X-Raft-Challenge"] = challenge;
          if (seq !== undefined) headers["X-Raft-Seq"] = seq;
          if (signature !== undefined) headers["X-Raft-Signature"] = signature;
          const res = await app.request(path, {
            method: "POST",
            headers,
            body: body as BodyInit,
          });
          statuses.add(res.status);
          ok(res.status >= 400 && res.status < 500, `${path} answered ${res.status}`);
          const answer = await res.json();
          ok(typeof answer?.error?.code === "string", JSON.stringify(answer));
        },
      ),
      { numRuns: 400, file: "tests/fuzz/secured_http_test.ts" },
    );
    deepStrictEqual(JSON.parse(JSON.stringify(node.status())), JSON.parse(before));
    ok(statuses.has(401), `no 401 among ${[...statuses]}`);
  } finally {
    await node.stop();
  }
});
