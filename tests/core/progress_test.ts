/**
 * Tests for `Progress` (src/core/progress.ts): probe, replicate and snapshot
 * transitions, the stale-rejection rules of `maybeDecrease`, and the
 * in-flight window; and for `ProgressTracker`: which members it follows,
 * CheckQuorum rounds and the index a majority stores.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { EMPTY_CONFIG } from "../../src/core/config.ts";
import { Progress, type ProgressState, ProgressTracker } from "../../src/core/progress.ts";

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

Deno.test("Progress in snapshot state pauses while a chunk is in flight", () => {
  const pr = progressAt("replicate", 3, 6);
  pr.sentEntries(7);
  strictEqual(pr.snapshot, null);
  const sender = pr.becomeSnapshot({
    meta: { index: 20, term: 1, hash: "h20", config: EMPTY_CONFIG },
    data: new Uint8Array(2048),
  });
  strictEqual(pr.state, "snapshot");
  strictEqual(pr.snapshot, sender);
  strictEqual(sender.index, 20);
  deepStrictEqual(pr.inflight, [], "appends in flight are forgotten");
  strictEqual(pr.isPaused(), false);
  sender.sent(1);
  strictEqual(pr.isPaused(), true);
  sender.maybeAck(20, 1024);
  strictEqual(pr.isPaused(), false);
  pr.maybeUpdate(20);
  pr.becomeReplicate();
  strictEqual(pr.snapshot, null, "only snapshot state holds a sender");
  strictEqual(pr.next, 21);
});

/** A tracker of leader `a` over `members` (all voters unless named in `learners`). */
function trackerOf(members: string[], learners: string[] = []): ProgressTracker {
  const tracker = new ProgressTracker("a", 4);
  tracker.sync(members.map((id) => ({ id, voter: !learners.includes(id) })), 11);
  return tracker;
}

Deno.test("ProgressTracker.sync() follows exactly the members other than the leader", async (t) => {
  await t.step("new members are probed from the given index", () => {
    const tracker = trackerOf(["a", "b", "c"]);
    deepStrictEqual([...tracker].map(([id, pr]) => [id, pr.state, pr.next]), [
      ["b", "probe", 11],
      ["c", "probe", 11],
    ]);
    strictEqual(tracker.get("a"), undefined);
  });
  await t.step("departed members are dropped, the others keep their progress", () => {
    const tracker = trackerOf(["a", "b", "c"]);
    tracker.get("b")!.maybeUpdate(10);
    tracker.sync(
      [{ id: "a", voter: true }, { id: "b", voter: true }, { id: "d", voter: false }],
      15,
    );
    deepStrictEqual([...tracker].map(([id, pr]) => [id, pr.match, pr.next]), [
      ["b", 10, 11],
      ["d", 0, 15],
    ]);
  });
  await t.step("clear() forgets everyone", () => {
    const tracker = trackerOf(["a", "b"]);
    tracker.clear();
    deepStrictEqual([...tracker], []);
  });
});

Deno.test("ProgressTracker.quorumActive() asks whether a majority of voters was heard from this round", async (t) => {
  const rows = [
    { name: "the leader alone of three", voters: ["a", "b", "c"], heard: [], want: false },
    { name: "one follower of three", voters: ["a", "b", "c"], heard: ["b"], want: true },
    { name: "one follower of five", voters: ["a", "b", "c", "d", "e"], heard: ["b"], want: false },
    {
      name: "two followers of five",
      voters: ["a", "b", "c", "d", "e"],
      heard: ["b", "e"],
      want: true,
    },
    { name: "a learner does not count", voters: ["a", "b", "c"], heard: ["l"], want: false },
    {
      name: "an untracked member does not count",
      voters: ["a", "b", "c"],
      heard: ["zz"],
      want: false,
    },
    { name: "a single voter needs no one", voters: ["a"], heard: [], want: true },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const tracker = trackerOf([...row.voters, "l"], ["l"]);
      for (const id of row.heard) tracker.heard(id, 1);
      strictEqual(tracker.quorumActive(row.voters), row.want);
      strictEqual(
        tracker.quorumActive(row.voters),
        row.voters.length === 1,
        "the next round starts from nobody",
      );
    });
  }
});

Deno.test("ProgressTracker.quorumMatch() returns the highest index a majority of voters store", async (t) => {
  const rows = [
    {
      name: "the leader counts its own",
      voters: ["a", "b", "c"],
      own: 9,
      matches: { b: 5 },
      want: 5,
    },
    {
      name: "the median of five",
      voters: ["a", "b", "c", "d", "e"],
      own: 9,
      matches: { b: 2, c: 8, d: 4, e: 7 },
      want: 7,
    },
    {
      name: "untracked voters store nothing",
      voters: ["a", "b", "x"],
      own: 9,
      matches: {},
      want: 0,
    },
    { name: "learners do not count", voters: ["a", "b", "c"], own: 9, matches: { l: 9 }, want: 0 },
    { name: "a single voter", voters: ["a"], own: 9, matches: {}, want: 9 },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const tracker = trackerOf(["a", "b", "c", "d", "e", "l"], ["l"]);
      for (const [id, match] of Object.entries(row.matches)) tracker.get(id)!.maybeUpdate(match);
      strictEqual(tracker.quorumMatch(row.voters, row.own), row.want);
    });
  }
});

Deno.test("ProgressTracker.heard() marks a follower alive, and seenTicks() says how long ago", () => {
  const tracker = trackerOf(["a", "b", "c", "d"]);
  strictEqual(tracker.heard("zz", 3), undefined, "an untracked member's answer is ignored");
  strictEqual(tracker.heard("b", 3), tracker.get("b"));
  tracker.heard("c", 7);
  strictEqual(tracker.get("b")!.recentActive, true);
  deepStrictEqual(tracker.seenTicks(10), new Map([["b", 7], ["c", 3]]));
});

Deno.test("ProgressTracker.views() reports each follower", () => {
  const tracker = trackerOf(["a", "b", "c"]);
  tracker.heard("b", 1)!.maybeUpdate(10);
  tracker.get("b")!.becomeReplicate();
  tracker.get("b")!.sentEntries(12);
  tracker.get("c")!.sentEntries(11);
  deepStrictEqual(
    tracker.views(),
    new Map([
      ["b", {
        match: 10,
        next: 13,
        state: "replicate",
        paused: false,
        inflight: 1,
        recentActive: true,
      }],
      ["c", { match: 0, next: 11, state: "probe", paused: true, inflight: 0, recentActive: false }],
    ]),
  );
});
