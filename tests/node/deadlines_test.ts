/**
 * Tests for `Deadlines` (src/node/deadlines.ts): each deadline runs once, at
 * its time, unless cancelled; one timer stands for all of them, and under a
 * steady load of clients answered in time it is set about once per timeout.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { type Clock, manualClock } from "../../src/clock.ts";
import { Deadlines } from "../../src/node/deadlines.ts";

/** A manual clock that counts the timers set on it. */
function countingClock() {
  const clock = manualClock();
  let set = 0;
  const counting: Clock = {
    now: () => clock.now(),
    setTimer: (fn, ms) => {
      set++;
      return clock.setTimer(fn, ms);
    },
    clearTimer: (id) => clock.clearTimer(id),
  };
  return { clock, counting, timersSet: () => set };
}

Deno.test("Deadlines runs each deadline at its time, in time order, whatever the order of adding", () => {
  const clock = manualClock();
  const deadlines = new Deadlines(clock);
  const ran: string[] = [];
  for (const [name, at] of [["c", 30], ["a", 10], ["d", 30], ["b", 20]] as const) {
    deadlines.add(at, () => ran.push(`${name}@${clock.now()}`));
  }
  strictEqual(deadlines.size, 4);
  clock.advance(9);
  deepStrictEqual(ran, []);
  clock.advance(1);
  deepStrictEqual(ran, ["a@10"]);
  clock.advance(25);
  deepStrictEqual(ran, ["a@10", "b@20", "c@30", "d@30"]);
  strictEqual(deadlines.size, 0);
  strictEqual(clock.pending, 0);
});

Deno.test("Deadlines.cancel() keeps a deadline from running; with none left no timer stays", () => {
  const clock = manualClock();
  const deadlines = new Deadlines(clock);
  const ran: string[] = [];
  const a = deadlines.add(10, () => ran.push("a"));
  const b = deadlines.add(20, () => ran.push("b"));
  deadlines.cancel(a);
  clock.advance(15);
  deepStrictEqual(ran, [], "a cancelled, b not due");
  deadlines.cancel(b);
  deadlines.cancel(b);
  strictEqual(deadlines.size, 0);
  strictEqual(clock.pending, 0, "nothing waits: no timer");
  clock.advance(100);
  deepStrictEqual(ran, []);
});

Deno.test("Deadlines: a deadline added by one that runs is kept", () => {
  const clock = manualClock();
  const deadlines = new Deadlines(clock);
  const ran: number[] = [];
  deadlines.add(10, () => {
    ran.push(clock.now());
    deadlines.add(clock.now() + 5, () => ran.push(clock.now()));
  });
  clock.advance(20);
  deepStrictEqual(ran, [10, 15]);
});

Deno.test("Deadlines under a steady load of clients answered in time set about one timer per timeout", () => {
  // 10 clients a millisecond for 10 s, each with a 1 s deadline and answered
  // within 5 ms; one in 1,000 is never answered and must time out, on time.
  const { clock, counting, timersSet } = countingClock();
  const deadlines = new Deadlines(counting);
  const open: { cancel: () => void; at: number }[] = [];
  const late: number[] = [];
  let expected = 0;
  let n = 0;
  for (let ms = 0; ms < 10_000; ms++) {
    for (let i = 0; i < 10; i++, n++) {
      const at = clock.now() + 1000;
      const d = deadlines.add(at, () => late.push(clock.now() - at));
      if (n % 1000 === 999) expected++;
      else open.push({ cancel: () => deadlines.cancel(d), at: clock.now() + 5 });
    }
    while (open.length > 0 && open[0]!.at <= clock.now()) open.shift()!.cancel();
    clock.advance(1);
  }
  for (const client of open) client.cancel();
  clock.advance(2000);
  strictEqual(late.length, expected);
  deepStrictEqual(new Set(late), new Set([0]), "every unanswered client timed out at its deadline");
  strictEqual(deadlines.size, 0);
  // Per client it would be 100,000 timers; the 100 that time out need one each.
  strictEqual(timersSet() < 300, true, `${timersSet()} timers set`);
});
