import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import {
  checkIntervalMs,
  type ConnectionLimits,
  connectionLimits,
  evictableAfterMs,
  type GuardedConnection,
  RefusedConnections,
} from "../../src/serve/guard.ts";
import { HEAD_BYTES_MAX } from "../../src/serve/http1_framing.ts";
import { assertSilentClosedAtHeadTimeout, fakeClockGuard } from "./fake_clock_guard.ts";

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);

const LIMITS: ConnectionLimits = { idleTimeoutMs: 1_000, headersTimeoutMs: 300, maxConnections: 3 };
const GET = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
const OK = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
const STREAM_HEAD = "POST /raft/stream HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n";

/** A guard on a fake clock, and what it closed, by connection name. */
function setup(limits: ConnectionLimits = LIMITS) {
  return fakeClockGuard<GuardedConnection>(limits, (guard, close) => guard.admit(close));
}

Deno.test("connectionLimits() fills in the defaults and refuses what is not a whole number from 0", () => {
  deepStrictEqual(connectionLimits(), {
    idleTimeoutMs: 30_000,
    headersTimeoutMs: 10_000,
    maxConnections: 4_096,
  });
  deepStrictEqual(connectionLimits({ idleTimeoutMs: 0, headersTimeoutMs: 0, maxConnections: 0 }), {
    idleTimeoutMs: 0,
    headersTimeoutMs: 0,
    maxConnections: 0,
  });
  for (const bad of [-1, 1.5, Number.NaN, Infinity, 86_400_001]) {
    throws(() => connectionLimits({ idleTimeoutMs: bad }), RangeError);
  }
  throws(() => connectionLimits({ maxConnections: 1_000_001 }), RangeError);
  strictEqual(checkIntervalMs(LIMITS), 37);
  strictEqual(evictableAfterMs(LIMITS), 75);
  strictEqual(evictableAfterMs(connectionLimits()), 1_000);
  strictEqual(
    evictableAfterMs({ idleTimeoutMs: 0, headersTimeoutMs: 0, maxConnections: 5 }),
    1_000,
  );
  strictEqual(checkIntervalMs(connectionLimits()), 1_000);
  strictEqual(checkIntervalMs({ idleTimeoutMs: 0, headersTimeoutMs: 0, maxConnections: 5 }), 0);
});

Deno.test("ConnectionGuard closes a connection whose head has not arrived within the head timeout", async (t) => {
  await t.step(
    "nothing sent: the first head's clock starts at accept",
    () => assertSilentClosedAtHeadTimeout(setup),
  );
  await t.step("a head trickling in, a byte every 50 ms", () => {
    const { closed, open, advanceTo, clock } = setup();
    const a = open("a")!;
    for (const char of GET.slice(0, 20)) {
      a.received(bytes(char));
      advanceTo(clock.now + 50);
      if (closed.length > 0) break;
    }
    deepStrictEqual(closed, ["a:headers"]);
    strictEqual(clock.now, 300);
  });
  await t.step("a later head's clock starts at its first byte", () => {
    const { closed, open, advanceTo } = setup();
    const a = open("a")!;
    a.received(bytes(GET));
    a.sent(bytes(OK));
    advanceTo(900);
    a.received(bytes("GET /next HT"));
    advanceTo(1_190);
    deepStrictEqual(closed, []);
    advanceTo(1_200);
    deepStrictEqual(closed, ["a:headers"]);
  });
});

Deno.test("ConnectionGuard closes a connection that waits on its client past the idle timeout", async (t) => {
  await t.step("kept alive after an answer, then silent", () => {
    const { closed, open, advanceTo } = setup();
    const a = open("a")!;
    a.received(bytes(GET));
    advanceTo(100);
    a.sent(bytes(OK));
    advanceTo(1_090);
    deepStrictEqual(closed, []);
    advanceTo(1_100);
    deepStrictEqual(closed, ["a:idle"]);
  });
  await t.step("a body that stops arriving", () => {
    const { closed, open, advanceTo } = setup();
    const a = open("a")!;
    a.received(bytes("PUT / HTTP/1.1\r\ncontent-length: 10\r\n\r\nabc"));
    advanceTo(1_000);
    deepStrictEqual(closed, ["a:idle"]);
  });
  await t.step("a client that does not read its answer", () => {
    const { closed, open, advanceTo } = setup();
    const a = open("a")!;
    a.received(bytes(GET));
    advanceTo(2_000);
    a.sent(bytes("HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\nabc"));
    a.writeBlocked(true);
    advanceTo(3_000);
    deepStrictEqual(closed, ["a:idle"]);
  });
});

Deno.test("ConnectionGuard keeps a body that keeps arriving (a peer stream) and a slow answer", async (t) => {
  await t.step("a chunked body with a keepalive chunk every 900 ms, for 20 s", () => {
    const { closed, open, advanceTo, clock } = setup();
    const a = open("a")!;
    a.received(bytes(STREAM_HEAD));
    for (let i = 0; i < 22; i++) {
      advanceTo(clock.now + 900);
      a.received(bytes("2\r\n\0\0\r\n"));
    }
    deepStrictEqual(closed, []);
    strictEqual(a.waitingForRequest, false);
  });
  await t.step("the application taking 10 s to answer", () => {
    const { closed, open, advanceTo } = setup();
    const a = open("a")!;
    a.received(bytes(GET));
    advanceTo(10_000);
    deepStrictEqual(closed, []);
    a.sent(bytes(OK));
    advanceTo(10_990);
    deepStrictEqual(closed, []);
    advanceTo(11_000);
    deepStrictEqual(closed, ["a:idle"]);
  });
});

Deno.test("ConnectionGuard at the cap evicts the connection waiting longest for a request, else refuses", async (t) => {
  await t.step("the oldest waiting one makes room; a busy one never does", () => {
    // No timeouts: a place may change hands once its holder waited 1 s.
    const { guard, closed, open, clock } = setup({
      ...LIMITS,
      headersTimeoutMs: 0,
      idleTimeoutMs: 0,
    });
    const stream = open("stream")!;
    stream.received(bytes(STREAM_HEAD));
    clock.now = 100;
    const slow = open("slow")!;
    slow.received(bytes("GET / HT"));
    clock.now = 200;
    const busy = open("busy")!;
    busy.received(bytes(GET));
    clock.now = 1_200;
    strictEqual(guard.size, 3);
    const d = open("d");
    strictEqual(d !== null, true);
    deepStrictEqual(closed, ["slow:evicted"]);
    strictEqual(guard.size, 3);
    // stream, busy and d: d is waiting for its request, but not for long enough yet.
    clock.now = 2_000;
    strictEqual(open("e"), null);
    clock.now = 2_200;
    const e = open("e")!;
    deepStrictEqual(closed, ["slow:evicted", "d:evicted"]);
    // Once e's request arrives, nothing can make room.
    e.received(bytes(GET));
    clock.now = 10_000;
    strictEqual(open("f"), null);
    deepStrictEqual(closed, ["slow:evicted", "d:evicted"]);
  });
  await t.step("every connection busy: the new one is refused", () => {
    const { closed, open } = setup({ ...LIMITS, headersTimeoutMs: 0, idleTimeoutMs: 0 });
    for (const name of ["a", "b", "c"]) open(name)!.received(bytes(STREAM_HEAD));
    strictEqual(open("d"), null);
    deepStrictEqual(closed, []);
  });
  await t.step("a connection that closed frees its place", () => {
    const { guard, open } = setup({ ...LIMITS, headersTimeoutMs: 0, idleTimeoutMs: 0 });
    const a = open("a")!;
    for (const name of ["b", "c"]) open(name)!.received(bytes(STREAM_HEAD));
    a.received(bytes(STREAM_HEAD));
    a.closed();
    strictEqual(guard.size, 2);
    strictEqual(open("d") !== null, true);
  });
});

Deno.test("ConnectionGuard closes on a head over 16 KiB, and still bounds the answer's wait", () => {
  const { guard, closed, open, advanceTo } = setup({ ...LIMITS, headersTimeoutMs: 0 });
  const a = open("a")!;
  strictEqual(a.received(bytes(`GET / HTTP/1.1\r\nX: ${"a".repeat(HEAD_BYTES_MAX)}`)), false);
  deepStrictEqual(closed, ["a:too_large"]);
  // It counts until its sockets close, and the idle timeout ends it if the
  // client does not read the 431.
  strictEqual(guard.size, 1);
  strictEqual(a.received(bytes("more")), false);
  advanceTo(1_000);
  deepStrictEqual(closed, ["a:too_large", "a:idle"]);
  strictEqual(guard.size, 0);
});

Deno.test("ConnectionGuard answers HEAD and 100-continue exchanges without losing count", () => {
  const { open, advanceTo, closed } = setup({ ...LIMITS, headersTimeoutMs: 0 });
  const a = open("a")!;
  a.received(
    bytes(
      "HEAD / HTTP/1.1\r\n\r\nPUT / HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n",
    ),
  );
  strictEqual(a.owed, 2);
  a.sent(bytes("HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n"));
  strictEqual(a.owed, 1);
  a.sent(bytes("HTTP/1.1 100 Continue\r\n\r\n"));
  a.received(bytes("hi"));
  strictEqual(a.owed, 1);
  strictEqual(a.waitingForApplication, true);
  a.sent(bytes(OK));
  strictEqual(a.owed, 0);
  strictEqual(a.waitingForRequest, true);
  advanceTo(1_000);
  deepStrictEqual(closed, ["a:idle"]);
});

Deno.test("RefusedConnections holds at most its cap, closes each once, and forgets one that closed itself", () => {
  const closed: string[] = [];
  const refused = new RefusedConnections(2);
  refused.hold(() => closed.push("a"));
  const forgetB = refused.hold(() => closed.push("b"));
  refused.hold(() => closed.push("c"));
  deepStrictEqual(closed, ["c"], "past the cap: closed at once");
  forgetB();
  refused.hold(() => closed.push("d"));
  deepStrictEqual(closed, ["c"], "b's place is free again");
  refused.closeAll();
  deepStrictEqual(closed, ["c", "a", "d"], "b closed by itself: not closed again");
  refused.closeAll();
  deepStrictEqual(closed, ["c", "a", "d"]);
});
