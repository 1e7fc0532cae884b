/**
 * Tests for src/node/writes.ts: `PendingWrites` answers each waiting write
 * when its entry is accepted or applied, rejects it when another entry takes
 * its index, times it out at its deadline, and keeps `count` exact.
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import type { Entry } from "../../src/core/entry.ts";
import {
  RejectedError,
  TimeoutError,
  UnavailableError,
  WaterCraftError,
} from "../../src/errors.ts";
import type { ProposeResult } from "../../src/node/options.ts";
import type { Outcome } from "../../src/node/sessions.ts";
import { type Landing, PendingWrites } from "../../src/node/writes.ts";
import { type ManualClock, manualClock } from "../../src/testing.ts";
import { flush, fulfilled, rejected, watch } from "./_settle.ts";

/** An entry at `index` whose hash is `hash` (the hash is only compared). */
function entry(index: number, hash: string, term = 1): Entry {
  return { index, term, kind: "command", proposer: "n1", timeMs: 0, data: new Uint8Array(), hash };
}

interface Fixture {
  clock: ManualClock;
  writes: PendingWrites;
  /** Every duration `onCommitted` heard, ms. */
  heard: number[];
}

function fixture(startMs = 1_000): Fixture {
  const clock = manualClock(startMs);
  const heard: number[] = [];
  const writes = new PendingWrites(clock, (ms) => heard.push(ms));
  return { clock, writes, heard };
}

const head = () => "head-hash";
const OK: Outcome = { ok: true, value: { total: 3 } };

Deno.test("PendingWrites.committed() resolves a committed write with its landing and result", async () => {
  const { clock, writes } = fixture();
  const e = entry(5, "h5", 2);
  const w = watch(writes.wait(e, "committed", clock.now() + 100));
  strictEqual(writes.count, 1);
  writes.committed(e, OK, head);
  await flush();
  deepStrictEqual(
    fulfilled(w.seen()),
    {
      id: "h5",
      index: 5,
      term: 2,
      state: "committed",
      head: "head-hash",
      result: { total: 3 },
    } satisfies ProposeResult,
  );
  strictEqual(writes.count, 0);
  strictEqual(clock.pending, 0, "the deadline timer is cleared");
});

Deno.test("PendingWrites.committed() reports a repeated idempotency key as landing where the first entry did", async () => {
  const { clock, writes } = fixture();
  const e = entry(9, "h9", 3);
  const as: Landing = { id: "h4", index: 4, term: 2 };
  const w = watch(writes.wait(e, "committed", clock.now() + 100));
  writes.committed(e, { ok: true, value: "first" }, head, as);
  await flush();
  deepStrictEqual(fulfilled(w.seen()), {
    id: "h4",
    index: 4,
    term: 2,
    state: "committed",
    head: "head-hash",
    result: "first",
  });
});

Deno.test("PendingWrites.committed() rejects a write with the state machine's refusal", async () => {
  const { clock, writes, heard } = fixture();
  const e = entry(3, "h3");
  const refusal = new WaterCraftError("cas_failed", "Cannot swap: value changed", { current: 7 });
  const w = watch(writes.wait(e, "committed", clock.now() + 100));
  writes.committed(e, { ok: false, error: refusal }, head);
  await flush();
  strictEqual(rejected(w.seen()), refusal);
  strictEqual(writes.count, 0);
  strictEqual(heard.length, 1, "a refused write still committed");
});

Deno.test("PendingWrites.committed() rejects writes whose index another entry took", async () => {
  const { clock, writes, heard } = fixture();
  const mine = entry(4, "mine");
  const w = watch(writes.wait(mine, "committed", clock.now() + 100));
  const a = watch(writes.wait(mine, "accepted", clock.now() + 100));
  writes.committed(entry(4, "theirs"), OK, head);
  await flush();
  ok(rejected(w.seen()) instanceof UnavailableError);
  ok(rejected(a.seen()) instanceof UnavailableError);
  strictEqual(writes.count, 0);
  strictEqual(clock.pending, 0);
  deepStrictEqual(heard, [], "a write that never committed has no commit latency");
});

Deno.test("PendingWrites.committed() answers only the writes at the entry's index", async () => {
  const { clock, writes } = fixture();
  const at4 = watch(writes.wait(entry(4, "h4"), "committed", clock.now() + 100));
  const at5 = watch(writes.wait(entry(5, "h5"), "committed", clock.now() + 100));
  writes.committed(entry(4, "h4"), OK, head);
  await flush();
  strictEqual(at4.seen().state, "fulfilled");
  strictEqual(at5.seen().state, "pending");
  strictEqual(writes.count, 1);
  writes.committed(entry(6, "h6"), OK, head);
  strictEqual(writes.count, 1, "an index no one waits on changes nothing");
});

Deno.test("PendingWrites.committed() answers an accepted-wait write not yet answered as accepted", async () => {
  const { clock, writes } = fixture();
  const e = entry(2, "h2", 5);
  const w = watch(writes.wait(e, "accepted", clock.now() + 100));
  writes.committed(e, OK, head);
  await flush();
  deepStrictEqual(fulfilled(w.seen()), {
    id: "h2",
    index: 2,
    term: 5,
    state: "accepted",
    head: "head-hash",
  });
});

Deno.test("PendingWrites.accepted() resolves only accepted-wait writes of the same entry", async () => {
  const { clock, writes } = fixture();
  const e = entry(7, "h7", 4);
  const acc = watch(writes.wait(e, "accepted", clock.now() + 100));
  const com = watch(writes.wait(e, "committed", clock.now() + 100));
  const other = watch(writes.wait(entry(7, "other"), "accepted", clock.now() + 100));
  writes.accepted(e, head);
  await flush();
  deepStrictEqual(fulfilled(acc.seen()), {
    id: "h7",
    index: 7,
    term: 4,
    state: "accepted",
    head: "head-hash",
  });
  strictEqual(com.seen().state, "pending", "a committed-wait write waits on");
  strictEqual(other.seen().state, "pending", "another entry's write is not accepted by this one");
  strictEqual(writes.count, 2);
  strictEqual(clock.pending, 1, "one timer stands for the deadlines of the writes still waiting");
  writes.committed(e, OK, head);
  await flush();
  strictEqual(fulfilled(com.seen()).state, "committed");
  ok(rejected(other.seen()) instanceof UnavailableError);
  strictEqual(writes.count, 0);
});

Deno.test("PendingWrites.wait() rejects with TimeoutError at the deadline and drops the waiter", async () => {
  const { clock, writes, heard } = fixture();
  const e = entry(3, "h3");
  const late = watch(writes.wait(e, "committed", clock.now() + 100));
  const later = watch(writes.wait(e, "committed", clock.now() + 200));
  clock.advance(99);
  await flush();
  strictEqual(late.seen().state, "pending");
  clock.advance(1);
  await flush();
  ok(rejected(late.seen()) instanceof TimeoutError);
  strictEqual(writes.count, 1);
  writes.committed(e, OK, head);
  await flush();
  strictEqual(fulfilled(later.seen()).state, "committed");
  deepStrictEqual(heard, [100], "the timed-out write is not answered again");
  strictEqual(writes.count, 0);
});

Deno.test("PendingWrites.wait() with a deadline already past times out on the next tick", async () => {
  const { clock, writes } = fixture();
  const w = watch(writes.wait(entry(1, "h1"), "accepted", clock.now() - 50));
  await flush();
  strictEqual(w.seen().state, "pending");
  clock.advance(1);
  await flush();
  ok(rejected(w.seen()) instanceof TimeoutError);
  strictEqual(writes.count, 0);
});

Deno.test("PendingWrites.count follows waits, answers, timeouts and failAll", async (t) => {
  const rows: {
    name: string;
    act: (f: Fixture) => void;
    want: number;
  }[] = [
    { name: "three waits", act: () => {}, want: 3 },
    {
      name: "committed at index 1 answers both writes there",
      act: ({ writes }) => writes.committed(entry(1, "a"), OK, head),
      want: 1,
    },
    {
      name: "accepted answers only the accepted-wait write",
      act: ({ writes }) => writes.accepted(entry(1, "a"), head),
      want: 2,
    },
    {
      name: "accepted twice answers it once",
      act: ({ writes }) => {
        writes.accepted(entry(1, "a"), head);
        writes.accepted(entry(1, "a"), head);
      },
      want: 2,
    },
    {
      name: "the first deadline passes",
      act: ({ clock }) => clock.advance(10),
      want: 2,
    },
    {
      name: "every deadline passes",
      act: ({ clock }) => clock.advance(30),
      want: 0,
    },
    {
      name: "a timeout then a commit at the same index",
      act: ({ clock, writes }) => {
        clock.advance(10);
        writes.committed(entry(1, "a"), OK, head);
      },
      want: 1,
    },
    {
      name: "failAll",
      act: ({ writes }) => writes.failAll(new UnavailableError("stopped")),
      want: 0,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const f = fixture();
      const now = f.clock.now();
      watch(f.writes.wait(entry(1, "a"), "accepted", now + 10));
      watch(f.writes.wait(entry(1, "a"), "committed", now + 20));
      watch(f.writes.wait(entry(2, "b"), "committed", now + 30));
      row.act(f);
      strictEqual(f.writes.count, row.want);
      f.writes.failAll(new UnavailableError("test over"));
      await flush();
    });
  }
});

Deno.test("PendingWrites.failAll() rejects every waiting write with the error and clears its timers", async () => {
  const { clock, writes } = fixture();
  const error = new UnavailableError("Cannot write: the node stopped");
  const ws = [
    watch(writes.wait(entry(1, "a"), "accepted", clock.now() + 100)),
    watch(writes.wait(entry(1, "a"), "committed", clock.now() + 100)),
    watch(writes.wait(entry(8, "b"), "committed", clock.now() + 100)),
  ];
  writes.failAll(error);
  await flush();
  for (const w of ws) strictEqual(rejected(w.seen()), error);
  strictEqual(writes.count, 0);
  strictEqual(clock.pending, 0);
  writes.committed(entry(8, "b"), OK, head);
  strictEqual(writes.count, 0);
});

Deno.test("PendingWrites onCommitted hears how long each committed write waited", async () => {
  const { clock, writes, heard } = fixture();
  const e = entry(1, "a");
  watch(writes.wait(e, "committed", clock.now() + 1_000));
  clock.advance(30);
  watch(writes.wait(e, "accepted", clock.now() + 1_000));
  clock.advance(12);
  writes.committed(e, { ok: false, error: new RejectedError("no") }, head);
  await flush();
  deepStrictEqual(heard, [42, 12]);
});

Deno.test("PendingWrites onCommitted hears nothing for writes answered by accepted()", () => {
  const { clock, writes, heard } = fixture();
  const e = entry(1, "a");
  watch(writes.wait(e, "accepted", clock.now() + 1_000));
  clock.advance(5);
  writes.accepted(e, head);
  writes.committed(e, OK, head);
  deepStrictEqual(heard, []);
});
