/**
 * Tests for src/node/leader_watch.ts: `LeaderWatch` answers callers waiting
 * for a leader to be known or for leadership to reach a node, on `wake()`,
 * at their deadline, or on `failAll()`. Time is a manual clock.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { UnavailableError } from "../../src/errors.ts";
import { LeaderWatch } from "../../src/node/leader_watch.ts";
import { type ManualClock, manualClock } from "../../src/testing.ts";
import { flush, rejected, type Seen, watch } from "./_settle.ts";

function fixture(): { clock: ManualClock; watch: LeaderWatch; deadline: number } {
  const clock = manualClock(10_000);
  return { clock, watch: new LeaderWatch(clock), deadline: clock.now() + 500 };
}

Deno.test("LeaderWatch.leader() resolves at once when a leader is known", async () => {
  const f = fixture();
  const w = watch(f.watch.leader("n2", f.deadline));
  await flush();
  deepStrictEqual(w.seen(), { state: "fulfilled", value: "n2" });
  strictEqual(f.clock.pending, 0, "no timer for an answered wait");
});

Deno.test("LeaderWatch.wake() resolves the callers waiting for a leader with the one known", async () => {
  const f = fixture();
  const ws = [watch(f.watch.leader(null, f.deadline)), watch(f.watch.leader(null, f.deadline))];
  f.watch.wake(null);
  await flush();
  for (const w of ws) strictEqual(w.seen().state, "pending", "no leader is no answer");
  f.watch.wake("n3");
  await flush();
  for (const w of ws) deepStrictEqual(w.seen(), { state: "fulfilled", value: "n3" });
  strictEqual(f.clock.pending, 0, "their deadlines are cleared");
  f.clock.advance(1_000);
  await flush();
  for (const w of ws) deepStrictEqual(w.seen(), { state: "fulfilled", value: "n3" });
});

Deno.test("LeaderWatch.wake() answers a leader wait only once", async () => {
  const f = fixture();
  const first = watch(f.watch.leader(null, f.deadline));
  f.watch.wake("n1");
  const second = watch(f.watch.leader(null, f.deadline));
  f.watch.wake("n2");
  await flush();
  deepStrictEqual(first.seen(), { state: "fulfilled", value: "n1" });
  deepStrictEqual(second.seen(), { state: "fulfilled", value: "n2" });
});

Deno.test("LeaderWatch.leader() rejects with UnavailableError at the deadline", async (t) => {
  const rows = [
    { name: "deadline ahead", after: 500, want: 500 },
    { name: "deadline now", after: 0, want: 1 },
    { name: "deadline past", after: -200, want: 1 },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const f = fixture();
      const w = watch(f.watch.leader(null, f.clock.now() + row.after));
      f.clock.advance(row.want - 1);
      await flush();
      strictEqual(w.seen().state, "pending");
      f.clock.advance(1);
      await flush();
      ok(rejected(w.seen()) instanceof UnavailableError);
      f.watch.wake("n1");
      await flush();
      ok(rejected(w.seen()) instanceof UnavailableError, "a late leader changes nothing");
    });
  }
});

Deno.test("LeaderWatch.transfer() resolves only once the target leads", async (t) => {
  const rows: { name: string; wakes: (string | null)[]; want: "pending" | "fulfilled" }[] = [
    { name: "no wake", wakes: [], want: "pending" },
    { name: "no leader known", wakes: [null], want: "pending" },
    { name: "another node leads", wakes: ["n1", "n3"], want: "pending" },
    { name: "the target leads", wakes: ["n2"], want: "fulfilled" },
    { name: "another, then none, then the target", wakes: ["n1", null, "n2"], want: "fulfilled" },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const f = fixture();
      const w = watch(f.watch.transfer("n2", f.deadline));
      for (const leader of row.wakes) f.watch.wake(leader);
      await flush();
      strictEqual(w.seen().state, row.want);
      strictEqual(f.clock.pending, row.want === "pending" ? 1 : 0);
      f.watch.failAll(new UnavailableError("test over"));
      await flush();
    });
  }
});

Deno.test("LeaderWatch.wake() answers the transfers to the leader and leaves the others waiting", async () => {
  const f = fixture();
  const toN2 = [
    watch(f.watch.transfer("n2", f.deadline)),
    watch(f.watch.transfer("n2", f.deadline)),
  ];
  const toN3 = watch(f.watch.transfer("n3", f.deadline));
  const forLeader = watch(f.watch.leader(null, f.deadline));
  f.watch.wake("n2");
  await flush();
  for (const w of toN2) deepStrictEqual(w.seen(), { state: "fulfilled", value: undefined });
  deepStrictEqual(forLeader.seen(), { state: "fulfilled", value: "n2" });
  strictEqual(toN3.seen().state, "pending");
  strictEqual(f.clock.pending, 1);
  f.watch.wake("n3");
  await flush();
  deepStrictEqual(toN3.seen(), { state: "fulfilled", value: undefined });
  strictEqual(f.clock.pending, 0);
});

Deno.test("LeaderWatch.transfer() rejects with UnavailableError naming the target at the deadline", async () => {
  const f = fixture();
  const w = watch(f.watch.transfer("n2", f.deadline));
  f.watch.wake("n1");
  f.clock.advance(499);
  await flush();
  strictEqual(w.seen().state, "pending");
  f.clock.advance(1);
  await flush();
  const e = rejected(w.seen());
  ok(e instanceof UnavailableError);
  ok(e.message.includes("n2"), e.message);
  f.watch.wake("n2");
  await flush();
  ok(rejected(w.seen()) instanceof UnavailableError, "a late transfer changes nothing");
});

Deno.test("LeaderWatch.failAll() rejects every wait with the error and clears the timers", async () => {
  const f = fixture();
  const error = new UnavailableError("Cannot serve the request: the node stopped");
  const ws: { seen(): Seen<unknown> }[] = [
    watch(f.watch.leader(null, f.deadline)),
    watch(f.watch.transfer("n2", f.deadline)),
    watch(f.watch.transfer("n3", f.deadline)),
  ];
  f.watch.failAll(error);
  await flush();
  for (const w of ws) strictEqual(rejected(w.seen()), error);
  strictEqual(f.clock.pending, 0);
  f.watch.wake("n2");
  f.clock.advance(1_000);
  await flush();
  for (const w of ws) strictEqual(rejected(w.seen()), error);
  const after = watch(f.watch.leader(null, f.deadline + 1_000));
  f.watch.wake("n1");
  await flush();
  deepStrictEqual(after.seen(), { state: "fulfilled", value: "n1" }, "the watch still works");
});
