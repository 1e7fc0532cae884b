/**
 * Tests for `Progress` (src/core/progress.ts): probe and replicate
 * transitions, the stale-rejection rules of `maybeDecrease`, and the
 * in-flight window.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { Progress, type ProgressState } from "../../src/core/progress.ts";

/** A progress in `state` with the given match and next indexes. */
function progressAt(state: ProgressState, match: number, next: number, maxInflight = 4): Progress {
  const pr = new Progress(next, maxInflight);
  pr.match = match;
  if (state === "replicate") {
    pr.becomeReplicate();
    pr.next = next;
  }
  return pr;
}

Deno.test("Progress starts probing at the given index, one append at a time", () => {
  const pr = new Progress(5, 4);
  strictEqual(pr.state, "probe");
  strictEqual(pr.match, 0);
  strictEqual(pr.next, 5);
  strictEqual(pr.isPaused(), false);
  pr.sentEntries(7);
  strictEqual(pr.isPaused(), true);
  strictEqual(pr.next, 5, "a probe does not move next: its answer decides");
  deepStrictEqual(pr.inflight, []);
});

Deno.test("Progress.maybeUpdate() raises match and next, never lowers them", async (t) => {
  const rows = [
    { name: "a new match", match: 2, next: 5, index: 4, updated: true, wantMatch: 4, wantNext: 5 },
    {
      name: "a match past next",
      match: 2,
      next: 3,
      index: 6,
      updated: true,
      wantMatch: 6,
      wantNext: 7,
    },
    { name: "a stale ack", match: 4, next: 8, index: 3, updated: false, wantMatch: 4, wantNext: 8 },
    {
      name: "a repeated ack",
      match: 4,
      next: 8,
      index: 4,
      updated: false,
      wantMatch: 4,
      wantNext: 8,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const pr = progressAt("probe", row.match, row.next);
      pr.probeSent = true;
      strictEqual(pr.maybeUpdate(row.index), row.updated);
      strictEqual(pr.match, row.wantMatch);
      strictEqual(pr.next, row.wantNext);
      strictEqual(pr.probeSent, !row.updated, "an ack that moves match unpauses a probe");
    });
  }
});

Deno.test("Progress switches between probe and replicate from the match index", async (t) => {
  await t.step("becomeReplicate() resumes after match with an empty window", () => {
    const pr = progressAt("probe", 6, 9);
    pr.probeSent = true;
    pr.becomeReplicate();
    strictEqual(pr.state, "replicate");
    strictEqual(pr.next, 7);
    strictEqual(pr.probeSent, false);
    strictEqual(pr.isPaused(), false);
  });
  await t.step("becomeProbe() drops the window and probes after match", () => {
    const pr = progressAt("replicate", 3, 4);
    pr.sentEntries(5);
    pr.sentEntries(8);
    pr.becomeProbe();
    strictEqual(pr.state, "probe");
    strictEqual(pr.next, 4);
    deepStrictEqual(pr.inflight, []);
    strictEqual(pr.isPaused(), false);
  });
});

Deno.test("Progress.maybeDecrease() ignores stale rejections", async (t) => {
  const rows: {
    name: string;
    state: ProgressState;
    match: number;
    next: number;
    rejected: number;
    hint: number;
    want: boolean;
    wantNext: number;
  }[] = [
    // Probe: only the answer to the latest probe (prevIndex = next - 1) counts.
    {
      name: "probe: current rejection uses the hint",
      state: "probe",
      match: 3,
      next: 10,
      rejected: 9,
      hint: 5,
      want: true,
      wantNext: 6,
    },
    {
      name: "probe: hint above the rejected index is capped",
      state: "probe",
      match: 3,
      next: 10,
      rejected: 9,
      hint: 20,
      want: true,
      wantNext: 9,
    },
    {
      name: "probe: hint below match is raised to match + 1",
      state: "probe",
      match: 3,
      next: 10,
      rejected: 9,
      hint: 0,
      want: true,
      wantNext: 4,
    },
    {
      name: "probe: answer to an older probe",
      state: "probe",
      match: 3,
      next: 10,
      rejected: 8,
      hint: 2,
      want: false,
      wantNext: 10,
    },
    {
      name: "probe: answer to a later probe",
      state: "probe",
      match: 3,
      next: 10,
      rejected: 12,
      hint: 2,
      want: false,
      wantNext: 10,
    },
    // Replicate: only a rejection above match is news.
    {
      name: "replicate: rejection above match",
      state: "replicate",
      match: 5,
      next: 9,
      rejected: 7,
      hint: 1,
      want: true,
      wantNext: 6,
    },
    {
      name: "replicate: rejection at match",
      state: "replicate",
      match: 5,
      next: 9,
      rejected: 5,
      hint: 1,
      want: false,
      wantNext: 9,
    },
    {
      name: "replicate: rejection below match",
      state: "replicate",
      match: 5,
      next: 9,
      rejected: 4,
      hint: 1,
      want: false,
      wantNext: 9,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const pr = progressAt(row.state, row.match, row.next);
      if (row.state === "probe") pr.probeSent = true;
      strictEqual(pr.maybeDecrease(row.rejected, row.hint), row.want);
      strictEqual(pr.next, row.wantNext);
      strictEqual(pr.match, row.match);
      if (row.state === "probe") strictEqual(pr.probeSent, !row.want);
    });
  }
});

Deno.test("Progress pauses a full in-flight window and frees it on acks", async (t) => {
  await t.step("the window fills up to maxInflight", () => {
    const pr = progressAt("replicate", 0, 1, 3);
    pr.sentEntries(2);
    pr.sentEntries(4);
    strictEqual(pr.isPaused(), false);
    pr.sentEntries(5);
    strictEqual(pr.isPaused(), true);
    strictEqual(pr.next, 6);
    deepStrictEqual(pr.inflight, [2, 4, 5]);
  });
  const rows = [
    { name: "an ack below every append frees nothing", ack: 1, want: [2, 4, 5], paused: true },
    { name: "an ack inside an append frees the earlier ones", ack: 3, want: [4, 5], paused: false },
    { name: "an ack at an append's end frees it", ack: 4, want: [5], paused: false },
    { name: "an ack past every append frees all", ack: 9, want: [], paused: false },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const pr = progressAt("replicate", 0, 1, 3);
      for (const last of [2, 4, 5]) pr.sentEntries(last);
      pr.freeUpTo(row.ack);
      deepStrictEqual(pr.inflight, row.want);
      strictEqual(pr.isPaused(), row.paused);
    });
  }
});
