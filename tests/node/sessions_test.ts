/**
 * Tests for src/node/sessions.ts: `Sessions` keeps each idempotency key's
 * first result (forgetting the oldest past `IDEMPOTENCY_KEYS_MAX`), tracks
 * the writes in flight until they settle, and carries the kept results
 * through `snapshot()`/`restore()`; `settleKept` answers a retry as the
 * first write was answered.
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
import type { ProposeResult } from "../../src/node/options.ts";
import {
  IDEMPOTENCY_KEYS_MAX,
  type KeptResult,
  Sessions,
  settleKept,
} from "../../src/node/sessions.ts";

function kept(index: number, value: unknown = index): KeptResult {
  return { id: `h${index}`, index, term: 1, outcome: { ok: true, value } };
}

function refused(index: number, error: WaterCraftError): KeptResult {
  return { id: `h${index}`, index, term: 2, outcome: { ok: false, error } };
}

/** A promise settled from outside, its rejection handled. */
function deferred(): {
  promise: Promise<ProposeResult>;
  resolve: (r: ProposeResult) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (r: ProposeResult) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<ProposeResult>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** Lets settled promises run their handlers (no time passes). */
async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await Promise.resolve();
}

const RESULT: ProposeResult = { id: "h1", index: 1, term: 1, state: "committed", head: "h1" };
const HINT: LeaderHint = { id: "n2", url: "http://n2:7000" };

Deno.test("Sessions.kept() returns what keep() kept for a key, and nothing for others", () => {
  const s = new Sessions();
  strictEqual(s.kept("a"), undefined);
  const k = kept(3, { total: 3 });
  s.keep("a", k);
  strictEqual(s.kept("a"), k);
  strictEqual(s.kept("b"), undefined);
});

Deno.test("Sessions.keep() forgets the oldest key past IDEMPOTENCY_KEYS_MAX", () => {
  const s = new Sessions();
  for (let i = 0; i < IDEMPOTENCY_KEYS_MAX; i++) s.keep(`k${i}`, kept(i + 1));
  ok(s.kept("k0") !== undefined, "at the bound nothing is forgotten");
  s.keep("new", kept(IDEMPOTENCY_KEYS_MAX + 1));
  strictEqual(s.kept("k0"), undefined, "the oldest key goes first");
  ok(s.kept("k1") !== undefined, "only one key goes");
  ok(s.kept(`k${IDEMPOTENCY_KEYS_MAX - 1}`) !== undefined);
  ok(s.kept("new") !== undefined);
  s.keep("newer", kept(IDEMPOTENCY_KEYS_MAX + 2));
  strictEqual(s.kept("k1"), undefined);
  ok(s.kept("k2") !== undefined);
});

Deno.test("Sessions.track() keeps a write in flight until it settles", async (t) => {
  const rows: { name: string; settle: (d: ReturnType<typeof deferred>) => void }[] = [
    { name: "resolved", settle: (d) => d.resolve(RESULT) },
    { name: "rejected", settle: (d) => d.reject(new TimeoutError("Write did not finish")) },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const s = new Sessions();
      const d = deferred();
      s.track("a", d.promise);
      strictEqual(s.inFlight("a"), d.promise);
      strictEqual(s.inFlight("b"), undefined);
      await flush();
      strictEqual(s.inFlight("a"), d.promise, "still pending");
      row.settle(d);
      await flush();
      strictEqual(s.inFlight("a"), undefined);
    });
  }
});

Deno.test("Sessions.clearInFlight() forgets every write in flight", async () => {
  const s = new Sessions();
  const a = deferred();
  const b = deferred();
  s.track("a", a.promise);
  s.track("b", b.promise);
  s.clearInFlight();
  strictEqual(s.inFlight("a"), undefined);
  strictEqual(s.inFlight("b"), undefined);
  a.resolve(RESULT);
  b.reject(new UnavailableError("gone"));
  await flush();
});

Deno.test("Sessions.clearInFlight() leaves the kept results alone", () => {
  const s = new Sessions();
  s.keep("a", kept(1));
  s.clearInFlight();
  ok(s.kept("a") !== undefined);
});

Deno.test("Sessions.snapshot() and restore() carry the state machine's bytes and the kept results", async (t) => {
  const cas = new WaterCraftError("cas_failed", "Cannot swap x: it changed", { current: { v: 7 } });
  const rows: { name: string; machine: Uint8Array; kept: [string, KeptResult][] }[] = [
    { name: "no keys, no bytes", machine: new Uint8Array(), kept: [] },
    { name: "bytes only", machine: new Uint8Array([0, 1, 2, 255]), kept: [] },
    {
      name: "ok results",
      machine: new Uint8Array([9]),
      kept: [["a", kept(1, { total: 1 })], ["b", kept(2, null)], ["c", kept(3, "three")]],
    },
    {
      name: "a cas_failed refusal with details",
      machine: new Uint8Array([1, 2, 3]),
      kept: [["cas", refused(4, cas)]],
    },
    {
      name: "an unavailable refusal",
      machine: new Uint8Array(),
      kept: [["u", refused(7, new UnavailableError("Cannot apply: no quorum", HINT))]],
    },
    {
      name: "a read_only refusal",
      machine: new Uint8Array(),
      kept: [["ro", refused(8, new ReadOnlyError(HINT))]],
    },
    {
      name: "a rejected refusal",
      machine: new Uint8Array(),
      kept: [["r", refused(5, new RejectedError("no"))]],
    },
    {
      name: "a timeout refusal",
      machine: new Uint8Array(),
      kept: [["t", refused(6, new TimeoutError("slow"))]],
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const from = new Sessions();
      for (const [key, k] of row.kept) from.keep(key, k);
      const to = new Sessions();
      to.keep("stale", kept(99));
      const machine = to.restore(from.snapshot(row.machine));
      deepStrictEqual([...machine], [...row.machine]);
      strictEqual(to.kept("stale"), undefined, "restore replaces what was kept");
      for (const [key, want] of row.kept) {
        const got = to.kept(key);
        if (got === undefined) throw new Error(`Key ${key} was not restored`);
        deepStrictEqual([got.id, got.index, got.term], [want.id, want.index, want.term]);
        strictEqual(got.outcome.ok, want.outcome.ok);
        if (got.outcome.ok && want.outcome.ok) {
          deepStrictEqual(got.outcome.value, want.outcome.value);
        }
        if (!got.outcome.ok && !want.outcome.ok) {
          const [g, w] = [got.outcome.error, want.outcome.error];
          strictEqual(g.constructor, w.constructor, "the class survives");
          deepStrictEqual([g.code, g.message, g.details], [w.code, w.message, w.details]);
        }
      }
    });
  }
});

Deno.test("Sessions.restore() keeps the kept results' order, so the oldest is still forgotten first", () => {
  const from = new Sessions();
  from.keep("old", kept(1));
  from.keep("young", kept(2));
  const to = new Sessions();
  to.restore(from.snapshot(new Uint8Array()));
  for (let i = 0; i < IDEMPOTENCY_KEYS_MAX - 1; i++) to.keep(`k${i}`, kept(i + 3));
  strictEqual(to.kept("old"), undefined);
  ok(to.kept("young") !== undefined);
});

Deno.test("Sessions.restore() reads a snapshot that sits inside a larger buffer", () => {
  const from = new Sessions();
  from.keep("a", kept(1, "one"));
  const snap = from.snapshot(new Uint8Array([4, 5, 6]));
  const larger = new Uint8Array(snap.length + 10);
  larger.set(snap, 7);
  const to = new Sessions();
  const machine = to.restore(larger.subarray(7, 7 + snap.length));
  deepStrictEqual([...machine], [4, 5, 6]);
  deepStrictEqual(to.kept("a"), kept(1, "one"));
});

Deno.test("Sessions.snapshot() does not carry the writes in flight", async () => {
  const from = new Sessions();
  const d = deferred();
  from.track("a", d.promise);
  const to = new Sessions();
  to.restore(from.snapshot(new Uint8Array()));
  strictEqual(to.inFlight("a"), undefined);
  strictEqual(to.kept("a"), undefined);
  d.resolve(RESULT);
  await flush();
});

Deno.test("settleKept() answers a retry as the first write was answered", async (t) => {
  await t.step(
    "an ok outcome resolves as committed at the first entry, with the given head",
    async () => {
      const got = await settleKept(kept(4, { total: 4 }), "head-now");
      deepStrictEqual(got, {
        id: "h4",
        index: 4,
        term: 1,
        state: "committed",
        head: "head-now",
        result: { total: 4 },
      });
    },
  );
  await t.step("a refused outcome rejects with the kept error itself", async () => {
    const error = new WaterCraftError("cas_failed", "Cannot swap", { current: 1 });
    await rejects(settleKept(refused(5, error), "head-now"), (e) => e === error);
  });
  await t.step("a refused outcome rebuilt from a snapshot rejects with its class", async () => {
    const from = new Sessions();
    from.keep("r", refused(6, new RejectedError("Cannot add: negative")));
    const to = new Sessions();
    to.restore(from.snapshot(new Uint8Array()));
    await rejects(settleKept(to.kept("r")!, "h"), RejectedError);
  });
});

Deno.test("Sessions.track() is not undone by an older write with the same key settling", async () => {
  const s = new Sessions();
  let settleOld!: (r: ProposeResult) => void;
  const old = new Promise<ProposeResult>((resolve) => settleOld = resolve);
  s.track("k", old);
  s.clearInFlight(); // this node stopped leading; the old write still waits
  const fresh = new Promise<ProposeResult>(() => {});
  s.track("k", fresh); // leading again, a retry proposes anew
  settleOld({ id: "h1", index: 1, term: 1, state: "committed", head: "h1" });
  for (let i = 0; i < 3; i++) await Promise.resolve();
  strictEqual(s.inFlight("k"), fresh, "the retry still in flight is forgotten");
});

Deno.test("Sessions.restore() rebuilds a kept UnavailableError with its class and leader hint", () => {
  const from = new Sessions();
  from.keep("u", refused(3, new UnavailableError("Cannot apply: no quorum", HINT)));
  const to = new Sessions();
  to.restore(from.snapshot(new Uint8Array()));
  const got = to.kept("u");
  if (got === undefined || got.outcome.ok) throw new Error("The refusal was not restored");
  const e = got.outcome.error;
  ok(e instanceof UnavailableError);
  strictEqual(e.message, "Cannot apply: no quorum");
  deepStrictEqual(e.leader, HINT);
});

Deno.test("Sessions.restore() rebuilds a kept ReadOnlyError with its class and leader hint", () => {
  const from = new Sessions();
  from.keep("r", refused(3, new ReadOnlyError(HINT)));
  const to = new Sessions();
  to.restore(from.snapshot(new Uint8Array()));
  const got = to.kept("r");
  if (got === undefined || got.outcome.ok) throw new Error("The refusal was not restored");
  ok(got.outcome.error instanceof ReadOnlyError);
  deepStrictEqual(got.outcome.error.leader, HINT);
});
