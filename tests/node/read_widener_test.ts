/**
 * Tests for src/node/read_widener.ts: a leader's narrow read round that is
 * not confirmed within the wait goes to the other peers; one confirmed in
 * time does not, and the timer then watches the next narrow round. A
 * three-voter core (the core tests' harness) and a manual clock.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import type { Raft } from "../../src/core/raft.ts";
import { ReadWidener, readWidenMs } from "../../src/node/read_widener.ts";
import { type ManualClock, manualClock } from "../../src/testing.ts";
import { bootstrapCluster, type Cluster, ofType } from "../core/_harness.ts";

const WIDEN_MS = 5;

/** A leader of three voters, a widener watching it, and a clock. */
function setup(): {
  cluster: Cluster;
  leader: Raft;
  clock: ManualClock;
  widener: ReadWidener;
  scheduled: () => number;
  widened: () => number;
  stop: () => void;
} {
  const cluster = bootstrapCluster(["n1", "n2", "n3"]);
  const leader = cluster.elect("n1");
  const clock = manualClock();
  let scheduled = 0;
  let widened = 0;
  let stopped = false;
  const widener = new ReadWidener({
    clock,
    widenMs: WIDEN_MS,
    raft: () => leader,
    stopped: () => stopped,
    schedule: () => scheduled++,
    widened: () => widened++,
  });
  const stop = () => {
    stopped = true;
    widener.stop();
  };
  return {
    cluster,
    leader,
    clock,
    widener,
    scheduled: () => scheduled,
    widened: () => widened,
    stop,
  };
}

/** The heartbeats the leader has ready, as `to:context`. */
function heartbeats(leader: Raft): string[] {
  const rd = leader.ready();
  leader.advance();
  return ofType(rd.messages, "heartbeat").map((m) => `${m.to}:${m.context}`);
}

Deno.test("ReadWidener widens a narrow round that waits past its time", () => {
  const { leader, clock, widener, scheduled, widened } = setup();
  leader.readIndex("r1");
  deepStrictEqual(heartbeats(leader), ["n2:r1"]);
  widener.sent();
  widener.sent();
  strictEqual(clock.pending, 1, "one timer, however often messages go out");
  clock.advance(WIDEN_MS - 1);
  deepStrictEqual([heartbeats(leader), scheduled()], [[], 0]);
  clock.advance(1);
  deepStrictEqual([scheduled(), widened()], [1, 1]);
  deepStrictEqual(heartbeats(leader), ["n3:r1"]);
  strictEqual(leader.narrowReadRound(), null);
  widener.sent();
  strictEqual(clock.pending, 0, "no narrow round is out");
});

Deno.test("ReadWidener leaves a round confirmed in time, and watches the next one", () => {
  const { cluster, leader, clock, widener, scheduled, widened } = setup();
  leader.readIndex("r1");
  heartbeats(leader);
  widener.sent();
  // n2 answers within the wait; r2 then goes out in a narrow round of its own.
  const n2 = cluster.node("n2");
  n2.step({
    type: "heartbeat",
    from: "n1",
    to: "n2",
    term: leader.term,
    commit: 0,
    context: "r1",
    seen: {},
  });
  const answer = ofType(n2.ready().messages, "heartbeatResponse")[0]!;
  n2.advance();
  leader.readIndex("r2");
  leader.step(answer);
  deepStrictEqual(heartbeats(leader), ["n2:r2"]);
  clock.advance(WIDEN_MS);
  deepStrictEqual([scheduled(), widened()], [0, 0], "r1 was confirmed: nothing to widen");
  strictEqual(clock.pending, 1, "armed again, for r2");
  clock.advance(WIDEN_MS);
  strictEqual(scheduled(), 1);
  deepStrictEqual(heartbeats(leader), ["n3:r2"]);
});

Deno.test("ReadWidener.stop() cancels the timer, and a stopped node widens nothing", () => {
  const { leader, clock, widener, scheduled, stop } = setup();
  leader.readIndex("r1");
  heartbeats(leader);
  widener.sent();
  stop();
  strictEqual(clock.pending, 0);
  widener.sent();
  clock.advance(WIDEN_MS * 10);
  deepStrictEqual([scheduled(), leader.narrowReadRound()], [0, "r1"]);
});

Deno.test("readWidenMs() is a tenth of the heartbeat interval, at least a millisecond", () => {
  deepStrictEqual([readWidenMs(50), readWidenMs(200), readWidenMs(4)], [5, 20, 1]);
});
