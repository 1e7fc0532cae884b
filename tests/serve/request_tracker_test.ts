/**
 * `request_tracker.ts`: the guard's rules read from a connection's requests
 * (a fake clock, no sockets; `tests/serve_test.ts` runs them on real ones).
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import type { ConnectionLimits } from "../../src/serve/guard.ts";
import {
  observedAnswer,
  observedBody,
  TrackedConnection,
} from "../../src/serve/request_tracker.ts";
import { assertSilentClosedAtHeadTimeout, fakeClockGuard } from "./fake_clock_guard.ts";

const LIMITS: ConnectionLimits = { idleTimeoutMs: 1_000, headersTimeoutMs: 300, maxConnections: 2 };

/** A guard on a fake clock, and what it closed, by connection name. */
function setup(limits: ConnectionLimits = LIMITS) {
  return fakeClockGuard<TrackedConnection>(
    limits,
    (guard, close) =>
      guard.admitWith((now) => new TrackedConnection(close, (c) => guard.forget(c), now)),
  );
}

Deno.test("TrackedConnection holds a connection to the head timeout until its first request begins", async (t) => {
  await t.step(
    "no request: closed at the head timeout from the accept",
    () => assertSilentClosedAtHeadTimeout(setup),
  );
  await t.step("a request begun in time: the head clock is off for good", () => {
    const { closed, open, advanceTo } = setup();
    const a = open("a")!;
    advanceTo(200);
    a.requestBegan();
    advanceTo(5_000);
    deepStrictEqual(closed, [], "the handler's own time is not the client's");
    strictEqual(a.headStartMs, null);
  });
});

Deno.test("TrackedConnection runs the idle clock only while the connection waits on its client", async (t) => {
  await t.step("after an answer is written: closed at the idle timeout", () => {
    const { closed, open, advanceTo } = setup();
    const a = open("a")!;
    a.requestBegan();
    advanceTo(2_000);
    a.requestEnded();
    advanceTo(2_990);
    deepStrictEqual(closed, []);
    advanceTo(3_000);
    deepStrictEqual(closed, ["a:idle"]);
  });
  await t.step(
    "a body that stops arriving: closed once the handler waited the idle timeout",
    () => {
      const { closed, open, advanceTo } = setup();
      const a = open("a")!;
      a.requestBegan();
      // Chunks keep coming for 3 s: each wait is short.
      for (let at = 0; at < 3_000; at += 500) {
        const wait = a.waitBegan();
        advanceTo(at + 500);
        a.waitEnded(wait);
      }
      deepStrictEqual(closed, []);
      a.waitBegan();
      advanceTo(3_990);
      deepStrictEqual(closed, []);
      advanceTo(4_000);
      deepStrictEqual(closed, ["a:idle"]);
    },
  );
  await t.step("an answer not taken: the oldest wait counts", () => {
    const { closed, open, advanceTo } = setup();
    const a = open("a")!;
    a.requestBegan();
    const answer = a.waitBegan();
    advanceTo(600);
    // Another request (HTTP/2) waits too, more recently: the older one decides.
    a.requestBegan();
    const other = a.waitBegan();
    advanceTo(990);
    deepStrictEqual(closed, []);
    advanceTo(1_000);
    deepStrictEqual(closed, ["a:idle"]);
    a.waitEnded(answer);
    a.waitEnded(other);
  });
  await t.step("a wait ended twice, or never begun, changes nothing", () => {
    const { closed, open, advanceTo } = setup();
    const a = open("a")!;
    a.requestBegan();
    const wait = a.waitBegan();
    a.waitEnded(wait);
    a.waitEnded(wait);
    a.waitEnded(null);
    strictEqual(a.waitingForApplication, true);
    advanceTo(3_000);
    deepStrictEqual(closed, []);
  });
});

Deno.test("TrackedConnection at the cap: only a connection with no request in progress makes room", () => {
  const { closed, open, advanceTo } = setup({ ...LIMITS, headersTimeoutMs: 0 });
  const busy = open("busy")!;
  busy.requestBegan();
  const idle = open("idle")!;
  idle.requestBegan();
  idle.requestEnded();
  advanceTo(300);
  const newcomer = open("new");
  deepStrictEqual(closed, ["idle:evicted"]);
  strictEqual(newcomer !== null, true);
  // Now both are busy: the next is refused, and nothing is closed for it.
  newcomer!.requestBegan();
  strictEqual(open("refused"), null);
  deepStrictEqual(closed, ["idle:evicted"]);
  // A connection that closed frees its place.
  busy.closed();
  strictEqual(open("later") !== null, true);
});

/** Lets the streams' pending reads and pulls run. */
const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A source stream whose chunks the test hands over one at a time. */
function source() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) }, {
    highWaterMark: 0,
  });
  return { stream, controller };
}

Deno.test("observedBody() counts the handler's wait for the next bytes as the client's", async () => {
  const { clock, closed, open, advanceTo } = setup();
  const a = open("a")!;
  a.requestBegan();
  const { stream, controller } = source();
  const reader = observedBody(stream, a).getReader();
  strictEqual(a.waitingForApplication, true, "nothing asked for yet: the handler's time");
  const first = reader.read();
  await settled();
  strictEqual(a.waitingForApplication, false, "asked for, not arrived: the client's time");
  strictEqual(a.lastActivityMs, clock.now);
  advanceTo(500);
  controller.enqueue(new Uint8Array([1]));
  deepStrictEqual((await first).value, new Uint8Array([1]));
  strictEqual(a.waitingForApplication, true, "the chunk arrived");
  const second = reader.read();
  await settled();
  advanceTo(1_490);
  deepStrictEqual(closed, []);
  advanceTo(1_500);
  deepStrictEqual(closed, ["a:idle"]);
  controller.close();
  strictEqual((await second).done, true);
});

Deno.test("observedAnswer() counts a chunk handed over, until the next is asked for, as the client's", async () => {
  const { closed, open, advanceTo } = setup();
  const a = open("a")!;
  a.requestBegan();
  const { stream, controller } = source();
  let last: unknown = "unset";
  const reader = observedAnswer(stream, a, (wait) => last = wait).getReader();
  const first = reader.read();
  await settled();
  strictEqual(a.waitingForApplication, true, "the handler has nothing to send yet");
  advanceTo(2_000);
  deepStrictEqual(closed, [], "a quiet stream is the application's time");
  controller.enqueue(new Uint8Array([7]));
  deepStrictEqual((await first).value, new Uint8Array([7]));
  strictEqual(a.waitingForApplication, false, "handed over, not yet written");
  advanceTo(2_990);
  deepStrictEqual(closed, []);
  const second = reader.read();
  await settled();
  strictEqual(a.waitingForApplication, true, "written: the runtime asks for more");
  controller.close();
  strictEqual((await second).done, true);
  strictEqual(a.waitingForApplication, false, "the end waits to be written too");
  strictEqual(last !== null && typeof last === "object", true, "the request is told of that wait");
  // That wait began at 2,990, when the end was handed over.
  advanceTo(3_980);
  deepStrictEqual(closed, []);
  advanceTo(3_990);
  deepStrictEqual(closed, ["a:idle"]);
});
