/**
 * Graceful hand-off: a leader stopped with SIGTERM first moves leadership
 * to the most caught-up voter, so that the others need not wait out an
 * election timeout. Measured as the operator sees it: writes sent to a
 * surviving follower while the leader stops, without and with the
 * hand-off, and the figures printed.
 *
 * @module
 */

import { ok, strictEqual } from "node:assert/strict";
import { type CliNode, closeAll, request, startNode, TEST_SECRET, waitFor } from "./harness.ts";

/** What a client of a follower saw while the leader stopped. */
interface Outage {
  /** Writes answered 503 or 504, or not answered. */
  readonly failures: number;
  /** From the first failure's start to the last failure's end, ms (0: none). */
  readonly failingMs: number;
  /** The longest time between two successful writes, ms. */
  readonly stallMs: number;
  /** Successful writes. */
  readonly writes: number;
}

/**
 * Writes to `target` in a loop, stops `leader` with SIGTERM once writes
 * flow, and keeps writing until the leader exited and 20 more writes
 * succeeded.
 */
async function measure(target: CliNode, leader: CliNode, label: string): Promise<Outage> {
  let failures = 0;
  let firstFailure = -1;
  let lastFailureEnd = -1;
  let lastSuccess = -1;
  let stallMs = 0;
  let writes = 0;
  let killedAt = -1;
  let afterExit = 0;
  const deadline = Date.now() + 20_000;
  for (let i = 0; i < 100_000 && Date.now() < deadline && afterExit < 20; i++) {
    if (killedAt < 0 && writes >= 20) {
      killedAt = Date.now();
      leader.process.kill("SIGTERM");
    }
    const started = Date.now();
    let status = 0;
    try {
      status = (await request("PUT", `${target.url}/v1/kv/${label}-${i}`, {
        json: { value: i },
        timeoutMs: 5_000,
      })).status;
    } catch {
      status = 0;
    }
    const ended = Date.now();
    if (status === 200) {
      if (lastSuccess >= 0 && killedAt >= 0) stallMs = Math.max(stallMs, ended - lastSuccess);
      lastSuccess = ended;
      writes++;
      if (leader.process.exited !== null) afterExit++;
    } else {
      // 503: no leader; 504: the stopping leader had the write in flight; 0: no answer.
      ok(status === 503 || status === 504 || status === 0, `write answered ${status}`);
      failures++;
      if (firstFailure < 0) firstFailure = started;
      lastFailureEnd = ended;
    }
  }
  strictEqual(afterExit, 20, `${label}: the cluster did not recover`);
  const status = await leader.process.status;
  strictEqual(status.code, 0, leader.process.describe());
  return {
    failures,
    failingMs: firstFailure < 0 ? 0 : lastFailureEnd - firstFailure,
    stallMs,
    writes,
  };
}

/** The node that leads, as `node` sees it. */
async function leaderOf(nodes: readonly CliNode[], via: CliNode): Promise<CliNode> {
  return await waitFor("a leader", async () => {
    const id = (await request("GET", `${via.url}/v1/status`)).body?.leader?.id;
    return nodes.find((n) => n.id === id) ?? null;
  });
}

Deno.test("SIGTERM to a leader hands leadership over first: a shorter outage than without", async () => {
  const nodes: CliNode[] = [];
  try {
    // h1 leads and stops without a hand-off; the others hand off.
    const h1 = await startNode({ id: "h1", args: ["--shutdown-transfer-ms", "0"] });
    nodes.push(h1);
    const rest = await Promise.all(
      ["h2", "h3", "h4"].map((id) =>
        startNode({ id, join: [h1.url] }).then((n) => {
          nodes.push(n);
          return n;
        })
      ),
    );
    await waitFor("four voters", async () => {
      const res = await request("GET", `${h1.url}/v1/members`);
      return res.body?.members?.filter((m: { voter: boolean }) => m.voter).length === 4;
    });

    // Without a hand-off: three of four remain, they elect after a timeout.
    const before = await measure(rest[2]!, h1, "before");

    // Leave h1 out, so that three voters remain and two of them are a majority.
    const removed = await request("DELETE", `${rest[2]!.url}/v1/members/h1`, {
      headers: { "x-watercraft-secret": TEST_SECRET },
    });
    strictEqual(removed.status, 200, removed.text);
    const leader = await leaderOf(rest, rest[2]!);
    const target = rest.find((n) => n !== leader)!;
    const after = await measure(target, leader, "after");
    await waitFor("the hand-off in the log", () => leader.process.stdout.includes("handed_off"));

    console.log(
      `leader stop, writes to a follower: without hand-off ${before.failures} failed writes over ` +
        `${before.failingMs} ms, longest stall ${before.stallMs} ms; with hand-off ` +
        `${after.failures} failed writes over ${after.failingMs} ms, longest stall ${after.stallMs} ms`,
    );
    ok(
      after.stallMs < before.stallMs,
      `the hand-off did not shorten the outage: ${JSON.stringify({ before, after })}`,
    );
  } finally {
    await closeAll(nodes.map((n) => n.process));
  }
});
