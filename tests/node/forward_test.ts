/**
 * Tests for src/node/forward.ts: `answerFromError` turns what a leader's
 * write threw into the answer a follower gets, `forwardWrite` relays a write
 * over a fake `Transport` and rebuilds the leader's refusal as the same
 * class, and `RelayedWrites` remembers relayed ids up to its bound.
 *
 * @module
 */

import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import {
  type LeaderHint,
  ReadOnlyError,
  RejectedError,
  TimeoutError,
  UnavailableError,
  WaterCraftError,
} from "../../src/errors.ts";
import { answerFromError, forwardWrite, RelayedWrites } from "../../src/node/forward.ts";
import type { ProposeResult } from "../../src/node/options.ts";
import { manualClock } from "../../src/testing.ts";
import type {
  ForwardedAnswer,
  ForwardedProposal,
  Transport,
} from "../../src/transport/transport.ts";

const HINT: LeaderHint = { id: "n2", url: "http://n2:7000" };

/** A command's bytes, as the follower encoded them. */
const COMMAND = new TextEncoder().encode('{"add":7}');

const RESULT: ProposeResult = {
  id: "h7",
  index: 7,
  term: 3,
  state: "committed",
  head: "h7",
  result: { total: 7 },
};

Deno.test("answerFromError() gives the error's code, message and details", async (t) => {
  const cas = new WaterCraftError("cas_failed", "Cannot swap x: it changed", { current: 4 });
  const rows: { name: string; error: unknown; want: ForwardedAnswer }[] = [
    {
      name: "UnavailableError with a leader hint",
      error: new UnavailableError("Cannot write: not the leader", HINT),
      want: {
        ok: false,
        code: "unavailable",
        message: "Cannot write: not the leader",
        details: { leader: HINT },
      },
    },
    {
      name: "UnavailableError with a hint without URL",
      error: new UnavailableError("Cannot write", { id: "n3", url: null }),
      want: {
        ok: false,
        code: "unavailable",
        message: "Cannot write",
        details: { leader: { id: "n3", url: null } },
      },
    },
    {
      name: "UnavailableError without a hint",
      error: new UnavailableError("Cannot write: no leader"),
      want: { ok: false, code: "unavailable", message: "Cannot write: no leader", details: {} },
    },
    {
      name: "ReadOnlyError with a leader hint",
      error: new ReadOnlyError(HINT),
      want: {
        ok: false,
        code: "read_only",
        message: new ReadOnlyError(null).message,
        details: { leader: HINT },
      },
    },
    {
      name: "ReadOnlyError without a hint",
      error: new ReadOnlyError(null),
      want: { ok: false, code: "read_only", message: new ReadOnlyError(null).message, details: {} },
    },
    {
      name: "TimeoutError",
      error: new TimeoutError("Write did not finish in time"),
      want: { ok: false, code: "timeout", message: "Write did not finish in time", details: {} },
    },
    {
      name: "RejectedError",
      error: new RejectedError("Cannot add: negative"),
      want: { ok: false, code: "rejected", message: "Cannot add: negative", details: {} },
    },
    {
      name: "WaterCraftError with details",
      error: cas,
      want: {
        ok: false,
        code: "cas_failed",
        message: "Cannot swap x: it changed",
        details: { current: 4 },
      },
    },
    {
      name: "WaterCraftError too_large",
      error: new WaterCraftError("too_large", "Cannot write: too large"),
      want: { ok: false, code: "too_large", message: "Cannot write: too large", details: {} },
    },
    {
      name: "a plain Error is unavailable",
      error: new Error("disk on fire"),
      want: { ok: false, code: "unavailable", message: "The leader failed: Error: disk on fire" },
    },
    {
      name: "a thrown string is unavailable",
      error: "boom",
      want: { ok: false, code: "unavailable", message: "The leader failed: boom" },
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => deepStrictEqual(answerFromError(row.error), row.want));
  }
  await t.step("the error's details are copied, not shared", () => {
    const answer = answerFromError(cas);
    ok(!answer.ok);
    ok(answer.details !== cas.details);
  });
});

/** A transport whose only working part is forward(), which answers as told and records calls. */
function fakeTransport(answer: (p: ForwardedProposal) => Promise<ForwardedAnswer>): Transport & {
  calls: { to: string; proposal: ForwardedProposal; signal: AbortSignal }[];
} {
  const calls: { to: string; proposal: ForwardedProposal; signal: AbortSignal }[] = [];
  return {
    calls,
    start() {},
    setPeers() {},
    send() {},
    forward(to, proposal, signal) {
      calls.push({ to, proposal, signal });
      return answer(proposal);
    },
    close: () => Promise.resolve(),
  };
}

Deno.test("forwardWrite() sends the write to the leader and returns its result", async () => {
  const clock = manualClock(1_000);
  const transport = fakeTransport(() => Promise.resolve({ ok: true, value: RESULT }));
  const got = await forwardWrite(transport, "n2", {
    command: COMMAND,
    idempotencyKey: "k1",
    wait: "committed",
    deadline: 1_250,
  }, clock);
  deepStrictEqual(got, RESULT);
  strictEqual(transport.calls.length, 1);
  const call = transport.calls[0]!;
  strictEqual(call.to, "n2");
  deepStrictEqual(call.proposal, {
    command: COMMAND,
    wait: "committed",
    timeoutMs: 250,
    idempotencyKey: "k1",
  });
  strictEqual(call.signal.aborted, false);
});

Deno.test("forwardWrite() sends what remains of the deadline, at least 1 ms", async (t) => {
  const rows = [
    { name: "time left", now: 1_000, deadline: 6_000, want: 5_000 },
    { name: "1 ms left", now: 1_000, deadline: 1_001, want: 1 },
    { name: "deadline now", now: 1_000, deadline: 1_000, want: 1 },
    { name: "deadline past", now: 1_000, deadline: 500, want: 1 },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const transport = fakeTransport(() => Promise.resolve({ ok: true, value: RESULT }));
      await forwardWrite(transport, "n2", {
        command: COMMAND,
        idempotencyKey: undefined,
        wait: "accepted",
        deadline: row.deadline,
      }, manualClock(row.now));
      strictEqual(transport.calls[0]?.proposal.timeoutMs, row.want);
    });
  }
});

Deno.test("forwardWrite() leaves the idempotency key out when there is none", async () => {
  const transport = fakeTransport(() => Promise.resolve({ ok: true, value: RESULT }));
  await forwardWrite(transport, "n2", {
    command: COMMAND,
    idempotencyKey: undefined,
    wait: "accepted",
    deadline: 100,
  }, manualClock());
  const proposal = transport.calls[0]?.proposal;
  ok(proposal !== undefined);
  ok(!("idempotencyKey" in proposal), "no key, not an undefined one");
  strictEqual("wait" in proposal && proposal.wait, "accepted");
});

Deno.test("forwardWrite() rebuilds the leader's refusal as the class its code stands for", async (t) => {
  const rows: {
    name: string;
    answer: ForwardedAnswer;
    check: (e: unknown) => boolean;
  }[] = [
    {
      name: "unavailable with a leader hint",
      answer: { ok: false, code: "unavailable", message: "no quorum", details: { leader: HINT } },
      check: (e) =>
        e instanceof UnavailableError && e.message === "no quorum" &&
        JSON.stringify(e.leader) === JSON.stringify(HINT),
    },
    {
      name: "unavailable without details",
      answer: { ok: false, code: "unavailable", message: "no quorum" },
      check: (e) => e instanceof UnavailableError && e.leader === null,
    },
    {
      name: "read_only with a leader hint",
      answer: { ok: false, code: "read_only", message: "read-only", details: { leader: HINT } },
      check: (e) => e instanceof ReadOnlyError && e.leader?.id === "n2",
    },
    {
      name: "timeout",
      answer: { ok: false, code: "timeout", message: "slow" },
      check: (e) => e instanceof TimeoutError && e.message === "slow",
    },
    {
      name: "rejected",
      answer: { ok: false, code: "rejected", message: "Cannot add: negative" },
      check: (e) => e instanceof RejectedError && e.message === "Cannot add: negative",
    },
    {
      name: "cas_failed with details",
      answer: { ok: false, code: "cas_failed", message: "changed", details: { current: 9 } },
      check: (e) =>
        e instanceof WaterCraftError && e.code === "cas_failed" &&
        JSON.stringify(e.details) === JSON.stringify({ current: 9 }),
    },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const transport = fakeTransport(() => Promise.resolve(row.answer));
      await rejects(
        forwardWrite(transport, "n2", {
          command: COMMAND,
          idempotencyKey: "k",
          wait: "committed",
          deadline: 500,
        }, manualClock()),
        row.check,
      );
    });
  }
});

Deno.test("forwardWrite() and answerFromError() carry an error across with its class and leader", async (t) => {
  const rows: { name: string; error: WaterCraftError }[] = [
    { name: "UnavailableError", error: new UnavailableError("Cannot write", HINT) },
    { name: "ReadOnlyError", error: new ReadOnlyError(HINT) },
    { name: "TimeoutError", error: new TimeoutError("Write did not finish") },
    { name: "RejectedError", error: new RejectedError("Cannot add") },
    { name: "cas_failed", error: new WaterCraftError("cas_failed", "x", { current: [1] }) },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const transport = fakeTransport(() => Promise.resolve(answerFromError(row.error)));
      const e = await forwardWrite(transport, "n2", {
        command: COMMAND,
        idempotencyKey: undefined,
        wait: "committed",
        deadline: 500,
      }, manualClock()).then(() => null, (e: unknown) => e);
      ok(e instanceof WaterCraftError);
      strictEqual(e.constructor, row.error.constructor);
      deepStrictEqual([e.code, e.message, e.details], [
        row.error.code,
        row.error.message,
        row.error.details,
      ]);
      if (row.error instanceof UnavailableError || row.error instanceof ReadOnlyError) {
        ok(e instanceof UnavailableError || e instanceof ReadOnlyError);
        deepStrictEqual(e.leader, row.error.leader);
      }
    });
  }
});

Deno.test("forwardWrite() lets what the transport throws through", async () => {
  const failure = new UnavailableError("Cannot reach n2");
  const transport = fakeTransport(() => Promise.reject(failure));
  await rejects(
    forwardWrite(transport, "n2", {
      command: COMMAND,
      idempotencyKey: undefined,
      wait: "committed",
      deadline: 500,
    }, manualClock()),
    (e) => e === failure,
  );
});

Deno.test("RelayedWrites.get() returns where a remembered write landed until forget()", () => {
  const relayed = new RelayedWrites();
  strictEqual(relayed.get("h7"), undefined);
  relayed.remember(RESULT);
  relayed.remember({ ...RESULT, id: "h8", index: 8, term: 4 });
  deepStrictEqual(relayed.get("h7"), { index: 7, term: 3 });
  deepStrictEqual(relayed.get("h8"), { index: 8, term: 4 });
  relayed.forget("h7");
  strictEqual(relayed.get("h7"), undefined);
  deepStrictEqual(relayed.get("h8"), { index: 8, term: 4 });
  relayed.forget("unknown");
  deepStrictEqual(relayed.get("h8"), { index: 8, term: 4 });
});

Deno.test("RelayedWrites.remember() forgets the oldest id past its bound", () => {
  const relayed = new RelayedWrites();
  const write = (i: number): ProposeResult => ({ ...RESULT, id: `w${i}`, index: i + 1 });
  relayed.remember(write(0));
  // The bound is private; find it by remembering until the first id goes (bounded).
  let bound = 0;
  for (let i = 1; i <= 1_000_000 && relayed.get("w0") !== undefined; i++) {
    relayed.remember(write(i));
    bound = i;
  }
  strictEqual(relayed.get("w0"), undefined, "the relayed ids are bounded");
  ok(bound > 1);
  deepStrictEqual(relayed.get("w1"), { index: 2, term: 3 }, "only the oldest goes");
  deepStrictEqual(relayed.get(`w${bound}`), { index: bound + 1, term: 3 });
  relayed.remember(write(bound + 1));
  strictEqual(relayed.get("w1"), undefined);
  deepStrictEqual(relayed.get("w2"), { index: 3, term: 3 });
});
