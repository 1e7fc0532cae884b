/**
 * Tests for src/node/reads.ts: `ReadBatcher` against a fake `ReadHost` that
 * records every ReadIndex context it is asked to confirm and can answer that
 * no leader is known. Time is a manual clock.
 *
 * @module
 */

import { deepStrictEqual, notStrictEqual, ok, strictEqual } from "node:assert/strict";
import { UnavailableError } from "../../src/errors.ts";
import { ReadBatcher, type ReadHost } from "../../src/node/reads.ts";
import { type ManualClock, manualClock } from "../../src/testing.ts";
import { flush, rejected, watch } from "./_settle.ts";

/** A node as the batcher sees it: records the rounds asked for. */
interface FakeHost extends ReadHost {
  readonly clock: ManualClock;
  /** Every context `readIndex()` was called with, in order. */
  readonly contexts: string[];
  /** What `readIndex()` answers: false stands for "no leader known". */
  leaderKnown: boolean;
  /** How many times `schedule()` was called. */
  scheduled: number;
}

const RETRY_MS = 100;

function fakeHost(): FakeHost {
  const host: FakeHost = {
    clock: manualClock(5_000),
    retryMs: RETRY_MS,
    contexts: [],
    leaderKnown: true,
    scheduled: 0,
    readIndex(context) {
      host.contexts.push(context);
      return host.leaderKnown;
    },
    schedule() {
      host.scheduled++;
    },
  };
  return host;
}

function lastContext(host: FakeHost): string {
  const context = host.contexts.at(-1);
  if (context === undefined) throw new Error("No round was asked for");
  return context;
}

Deno.test("ReadBatcher.wait() lets the reads that arrive during a round share the next round", async () => {
  const host = fakeHost();
  const reads = new ReadBatcher("n1", host);
  strictEqual(reads.idle, true);
  const first = watch(reads.wait(1_000));
  const rest = Array.from({ length: 4 }, () => watch(reads.wait(1_000)));
  strictEqual(host.contexts.length, 1, "the first read starts a round, the rest queue");
  strictEqual(host.scheduled, 1);
  strictEqual(reads.idle, false);
  strictEqual(reads.count, 5);
  reads.confirmed({ index: 7, context: lastContext(host) }, 7);
  await flush();
  deepStrictEqual(first.seen(), { state: "fulfilled", value: 7 });
  for (const w of rest) strictEqual(w.seen().state, "pending");
  strictEqual(host.contexts.length, 2, "one round for all the queued reads");
  strictEqual(host.scheduled, 2);
  reads.confirmed({ index: 8, context: lastContext(host) }, 8);
  await flush();
  for (const w of rest) deepStrictEqual(w.seen(), { state: "fulfilled", value: 8 });
  strictEqual(reads.count, 0);
  strictEqual(reads.idle, true);
  strictEqual(host.contexts.length, 2, "no round for an empty queue");
  strictEqual(host.clock.pending, 0, "read and round timers are cleared");
});

Deno.test("ReadBatcher.startRound() sends one round for every read queued while no leader was known", async () => {
  const host = fakeHost();
  host.leaderKnown = false;
  const reads = new ReadBatcher("n1", host);
  const ws = Array.from({ length: 5 }, () => watch(reads.wait(1_000)));
  host.leaderKnown = true;
  const asked = host.contexts.length;
  reads.startRound();
  strictEqual(host.contexts.length, asked + 1);
  reads.confirmed({ index: 3, context: lastContext(host) }, 3);
  await flush();
  for (const w of ws) deepStrictEqual(w.seen(), { state: "fulfilled", value: 3 });
  strictEqual(host.contexts.length, asked + 1, "one round served them all");
});

Deno.test("ReadBatcher.wait() during a round waits for the next round", async () => {
  const host = fakeHost();
  const reads = new ReadBatcher("n1", host);
  const first = watch(reads.wait(1_000));
  const round1 = lastContext(host);
  const second = watch(reads.wait(1_000));
  strictEqual(host.contexts.length, 1, "no second round while one is out");
  reads.confirmed({ index: 3, context: round1 }, 3);
  await flush();
  deepStrictEqual(first.seen(), { state: "fulfilled", value: 3 });
  strictEqual(second.seen().state, "pending", "confirmed before it arrived: not enough");
  strictEqual(host.contexts.length, 2, "the next round starts at once");
  const round2 = lastContext(host);
  notStrictEqual(round2, round1);
  reads.confirmed({ index: 4, context: round2 }, 4);
  await flush();
  deepStrictEqual(second.seen(), { state: "fulfilled", value: 4 });
  strictEqual(reads.count, 0);
});

Deno.test("ReadBatcher.confirmed() ignores answers to other contexts", async (t) => {
  const rows: { name: string; context: (host: FakeHost, round: string) => string }[] = [
    { name: "an unknown context", context: () => "n1:0:1" },
    { name: "the round's context with a suffix", context: (_, round) => `${round}0` },
    {
      name: "the same sequence number from another batcher of the same id",
      context: () => {
        const other = fakeHost();
        watch(new ReadBatcher("n1", other).wait(1));
        return lastContext(other);
      },
    },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const host = fakeHost();
      const reads = new ReadBatcher("n1", host);
      const w = watch(reads.wait(1_000));
      const round = lastContext(host);
      reads.confirmed({ index: 2, context: row.context(host, round) }, 2);
      await flush();
      strictEqual(w.seen().state, "pending");
      strictEqual(reads.idle, false);
      reads.confirmed({ index: 2, context: round }, 2);
      await flush();
      deepStrictEqual(w.seen(), { state: "fulfilled", value: 2 });
    });
  }
});

Deno.test("ReadBatcher.confirmed() ignores a late answer to a round already retried", async () => {
  const host = fakeHost();
  const reads = new ReadBatcher("n1", host);
  const w = watch(reads.wait(1_000));
  const lost = lastContext(host);
  host.clock.advance(RETRY_MS);
  const retry = lastContext(host);
  notStrictEqual(retry, lost);
  reads.confirmed({ index: 9, context: lost }, 9);
  await flush();
  strictEqual(w.seen().state, "pending");
  strictEqual(reads.count, 1);
  reads.confirmed({ index: 9, context: retry }, 9);
  await flush();
  deepStrictEqual(w.seen(), { state: "fulfilled", value: 9 });
});

Deno.test("ReadBatcher.release() frees a confirmed read once applied reaches its index", async (t) => {
  const rows = [
    { name: "applied below the index", applied: [5], want: "pending" },
    { name: "applied one short", applied: [5, 9], want: "pending" },
    { name: "applied at the index", applied: [5, 10], want: "fulfilled" },
    { name: "applied past the index", applied: [12], want: "fulfilled" },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const host = fakeHost();
      const reads = new ReadBatcher("n1", host);
      const w = watch(reads.wait(1_000));
      reads.confirmed({ index: 10, context: lastContext(host) }, 0);
      strictEqual(reads.idle, true, "the round is over even before apply");
      for (const applied of row.applied) reads.release(applied);
      await flush();
      strictEqual(w.seen().state, row.want);
      strictEqual(reads.count, row.want === "pending" ? 1 : 0);
      if (row.want === "fulfilled") deepStrictEqual(w.seen(), { state: "fulfilled", value: 10 });
      reads.failAll(new UnavailableError("test over"));
      await flush();
    });
  }
});

Deno.test("ReadBatcher.confirmed() releases at once when applied is already at the index", async () => {
  const host = fakeHost();
  const reads = new ReadBatcher("n1", host);
  const w = watch(reads.wait(1_000));
  reads.confirmed({ index: 4, context: lastContext(host) }, 6);
  await flush();
  deepStrictEqual(w.seen(), { state: "fulfilled", value: 4 }, "resolves with the confirmed index");
});

Deno.test("ReadBatcher.startRound() starts no round while no leader is known, then one when asked again", async () => {
  const host = fakeHost();
  host.leaderKnown = false;
  const reads = new ReadBatcher("n1", host);
  const w = watch(reads.wait(1_000));
  strictEqual(reads.idle, true);
  strictEqual(reads.count, 1);
  strictEqual(host.scheduled, 0, "nothing to send");
  host.leaderKnown = true;
  reads.startRound();
  strictEqual(reads.idle, false);
  strictEqual(host.scheduled, 1);
  reads.startRound();
  strictEqual(host.contexts.length, 2, "no second round while one is out");
  reads.confirmed({ index: 1, context: lastContext(host) }, 1);
  await flush();
  deepStrictEqual(w.seen(), { state: "fulfilled", value: 1 });
});

Deno.test("ReadBatcher.startRound() with nothing queued asks for no round", () => {
  const host = fakeHost();
  const reads = new ReadBatcher("n1", host);
  reads.startRound();
  deepStrictEqual(host.contexts, []);
  strictEqual(reads.idle, true);
});

Deno.test("ReadBatcher retries a lost round after retryMs with a new context", async () => {
  const host = fakeHost();
  const reads = new ReadBatcher("n1", host);
  const ws = [watch(reads.wait(10_000)), watch(reads.wait(10_000))];
  host.clock.advance(RETRY_MS - 1);
  strictEqual(host.contexts.length, 1);
  host.clock.advance(1);
  strictEqual(host.contexts.length, 2);
  strictEqual(new Set(host.contexts).size, 2, "each round has its own context");
  strictEqual(reads.count, 2);
  host.clock.advance(RETRY_MS);
  strictEqual(host.contexts.length, 3, "retried again while unanswered");
  reads.confirmed({ index: 6, context: lastContext(host) }, 6);
  await flush();
  for (const w of ws) deepStrictEqual(w.seen(), { state: "fulfilled", value: 6 });
  host.clock.advance(RETRY_MS * 3);
  strictEqual(host.contexts.length, 3, "an answered round is not retried");
});

Deno.test("ReadBatcher keeps a lost round's reads queued while no leader is known", async () => {
  const host = fakeHost();
  const reads = new ReadBatcher("n1", host);
  const w = watch(reads.wait(10_000));
  host.leaderKnown = false;
  host.clock.advance(RETRY_MS);
  strictEqual(reads.idle, true);
  strictEqual(reads.count, 1);
  host.leaderKnown = true;
  reads.startRound();
  reads.confirmed({ index: 2, context: lastContext(host) }, 2);
  await flush();
  deepStrictEqual(w.seen(), { state: "fulfilled", value: 2 });
});

Deno.test("ReadBatcher.wait() rejects with UnavailableError after timeoutMs", async (t) => {
  const rows: {
    name: string;
    leaderKnown: boolean;
    after: (host: FakeHost, reads: ReadBatcher) => void;
    idle: boolean;
  }[] = [
    { name: "queued, no leader known", leaderKnown: false, after: () => {}, idle: true },
    { name: "in an unanswered round", leaderKnown: true, after: () => {}, idle: false },
    {
      name: "confirmed, waiting for apply",
      leaderKnown: true,
      after: (host, reads) => reads.confirmed({ index: 50, context: lastContext(host) }, 0),
      idle: true,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const host = fakeHost();
      const reads = new ReadBatcher("n1", host);
      host.leaderKnown = row.leaderKnown;
      const w = watch(reads.wait(60));
      row.after(host, reads);
      strictEqual(reads.idle, row.idle);
      host.clock.advance(59);
      await flush();
      strictEqual(w.seen().state, "pending");
      host.clock.advance(1);
      await flush();
      ok(rejected(w.seen()) instanceof UnavailableError);
      strictEqual(reads.count, 0);
      reads.release(1_000);
      strictEqual(reads.count, 0);
      reads.failAll(new UnavailableError("test over"));
    });
  }
});

Deno.test("ReadBatcher.wait() timing out removes the read from its round, and a retry does not bring it back", async () => {
  const host = fakeHost();
  const reads = new ReadBatcher("n1", host);
  const short = watch(reads.wait(RETRY_MS / 2));
  const long = watch(reads.wait(10 * RETRY_MS));
  host.clock.advance(RETRY_MS / 2);
  await flush();
  ok(rejected(short.seen()) instanceof UnavailableError);
  strictEqual(reads.count, 1);
  host.clock.advance(RETRY_MS / 2);
  strictEqual(host.contexts.length, 2, "the round was retried");
  strictEqual(reads.count, 1, "with the live read only");
  reads.confirmed({ index: 8, context: lastContext(host) }, 0);
  strictEqual(reads.count, 1, "only the live read waits for apply");
  reads.release(8);
  await flush();
  deepStrictEqual(long.seen(), { state: "fulfilled", value: 8 });
  strictEqual(reads.count, 0);
});

Deno.test("ReadBatcher.failAll() rejects queued, in-round and confirmed reads and clears timers", async () => {
  const host = fakeHost();
  const reads = new ReadBatcher("n1", host);
  const confirmed = watch(reads.wait(1_000));
  reads.confirmed({ index: 20, context: lastContext(host) }, 0);
  host.leaderKnown = false;
  const queuedEarly = watch(reads.wait(1_000));
  host.leaderKnown = true;
  const inRound = watch(reads.wait(1_000));
  const queued = watch(reads.wait(1_000));
  strictEqual(reads.count, 4);
  ok(!reads.idle);
  const error = new UnavailableError("Cannot read: the node stopped");
  reads.failAll(error);
  await flush();
  for (const w of [confirmed, queuedEarly, inRound, queued]) strictEqual(rejected(w.seen()), error);
  strictEqual(reads.count, 0);
  strictEqual(reads.idle, true);
  strictEqual(host.clock.pending, 0);
  reads.release(100);
  strictEqual(reads.count, 0);
});

Deno.test("ReadBatcher.count counts reads queued, in a round and waiting for apply", async (t) => {
  /** Starts a read whose outcome the row does not check. */
  type Read = () => void;
  const rows: {
    name: string;
    act: (h: FakeHost, r: ReadBatcher, read: Read) => void;
    want: number;
  }[] = [
    { name: "nothing", act: () => {}, want: 0 },
    {
      name: "one in a round, one queued behind it",
      act: (_h, _r, read) => {
        read();
        read();
      },
      want: 2,
    },
    {
      name: "one queued without a leader",
      act: (h, _r, read) => {
        h.leaderKnown = false;
        read();
      },
      want: 1,
    },
    {
      name: "one waiting for apply, one in the next round",
      act: (h, r, read) => {
        read();
        const round = lastContext(h);
        read();
        r.confirmed({ index: 9, context: round }, 0);
      },
      want: 2,
    },
    {
      name: "one released, one in the next round",
      act: (h, r, read) => {
        read();
        const round = lastContext(h);
        read();
        r.confirmed({ index: 9, context: round }, 9);
      },
      want: 1,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const host = fakeHost();
      const reads = new ReadBatcher("n1", host);
      row.act(host, reads, () => void watch(reads.wait(1_000)));
      strictEqual(reads.count, row.want);
      reads.failAll(new UnavailableError("test over"));
      await flush();
    });
  }
});
