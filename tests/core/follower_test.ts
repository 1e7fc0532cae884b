/**
 * Scenario tests for a follower's side of replication (src/core/follower.ts):
 * the Log Matching check over the hash chain, named after the claim of the
 * Raft paper (§ numbers) it checks. Nodes are stepped by hand through the
 * small driver in `_harness.ts`.
 *
 * @module
 */

import { strictEqual } from "node:assert/strict";
import { createEntry, type Entry } from "../../src/core/entry.ts";
import {
  type AppendMessage,
  type AppendResponseMessage,
  TERM_MAX,
} from "../../src/core/messages.ts";
import { bootstrapCluster, type Cluster, ELECTION_TICKS, ofType } from "./_harness.ts";

const encoder = new TextEncoder();

// ------------------------------------------------- §5.3 Log Matching, hash chain

/**
 * A 3-node cluster led by n1 (log: bootstrap config, no-op of term 2), and an
 * append from n1 to n2 after index 2.
 */
function chainCase(
  verifyHashes = true,
): { cluster: Cluster; append: (over: Partial<AppendMessage>) => AppendMessage; next: Entry } {
  const cluster = bootstrapCluster(["n1", "n2", "n3"], { verifyHashes });
  const n1 = cluster.elect("n1");
  const next = createEntry(3, n1.log.hash(2)!, {
    term: 2,
    kind: "command",
    proposer: "n1",
    timeMs: 0,
    data: encoder.encode("x"),
  });
  const append = (over: Partial<AppendMessage>): AppendMessage => ({
    type: "append",
    from: "n1",
    to: "n2",
    term: 2,
    prevIndex: 2,
    prevTerm: 2,
    prevHash: n1.log.hash(2)!,
    entries: [next],
    commit: n1.log.committed,
    ...over,
  });
  return { cluster, append, next };
}

/** Steps `m` on n2 and returns its one append response. */
function answerOf(cluster: Cluster, m: AppendMessage): AppendResponseMessage {
  const n2 = cluster.node("n2");
  n2.step(m);
  const rd = n2.ready();
  n2.advance();
  const responses = ofType(rd.messages, "appendResponse");
  strictEqual(responses.length, 1);
  return responses[0]!;
}

Deno.test("§5.3 Log Matching over the hash chain: appends must link to the follower's log", async (t) => {
  await t.step("control: an append that links is accepted", () => {
    const { cluster, append, next } = chainCase();
    const response = answerOf(cluster, append({}));
    strictEqual(response.success, true);
    strictEqual(response.index, 3);
    strictEqual(cluster.node("n2").log.hash(3), next.hash);
  });

  await t.step("an append whose prevHash differs (same prevIndex and prevTerm) is rejected", () => {
    const { cluster, append, next } = chainCase();
    const n2 = cluster.node("n2");
    const otherIndex2 = createEntry(2, n2.log.hash(1)!, {
      term: 2,
      kind: "noop",
      proposer: "n3",
      timeMs: 0,
      data: new Uint8Array(0),
    });
    const response = answerOf(cluster, append({ prevHash: otherIndex2.hash }));
    strictEqual(response.success, false);
    strictEqual(response.index, 2);
    strictEqual(n2.log.lastIndex(), 2);
    strictEqual(n2.entryState(next.hash), null);
  });

  const tampered = (e: Entry): Entry => ({ ...e, data: encoder.encode("evil") });
  // The fields an entry's hash covers, without its index: spread into
  // createEntry(), a whole entry would carry its own index over the new one.
  const fieldsOf = ({ term, kind, proposer, timeMs, data }: Entry) => ({
    term,
    kind,
    proposer,
    timeMs,
    data,
  });
  const rows = [
    {
      name: "an entry whose hash does not match its contents",
      entries: (e: Entry) => [tampered(e)],
    },
    {
      name: "a good entry followed by a tampered one",
      entries: (e: Entry) => [
        e,
        tampered(createEntry(4, e.hash, { ...fieldsOf(e), data: encoder.encode("y") })),
      ],
    },
    {
      name: "an entry that does not link to the one before it",
      entries: (
        e: Entry,
      ) => [e, createEntry(4, "a".repeat(64), { ...fieldsOf(e), data: encoder.encode("y") })],
    },
  ];
  for (const row of rows) {
    await t.step(`refuses ${row.name}, and the log is unchanged`, () => {
      const { cluster, append, next } = chainCase();
      const n2 = cluster.node("n2");
      const before = n2.log.lastHash();
      const response = answerOf(cluster, append({ entries: row.entries(next) }));
      strictEqual(response.success, false);
      strictEqual(n2.log.lastIndex(), 2);
      strictEqual(n2.log.lastHash(), before);
      strictEqual(n2.entryState(next.hash), null);
    });
  }

  await t.step("control: with verifyHashes off, the tampered entry is taken", () => {
    const { cluster, append, next } = chainCase(false);
    const response = answerOf(cluster, append({ entries: [tampered(next)] }));
    strictEqual(response.success, true);
    strictEqual(cluster.node("n2").log.lastIndex(), 3);
  });
});

// ------------------------------------------------- input no peer may crash or wedge a node with

Deno.test("a follower ignores a heartbeat whose commit index is past its log, and keeps going", () => {
  const cluster = bootstrapCluster(["n1", "n2", "n3"]);
  const n1 = cluster.elect("n1");
  const n2 = cluster.node("n2");
  const before = n2.log.committed;
  n2.step({
    type: "heartbeat",
    from: "n1",
    to: "n2",
    term: n1.term,
    commit: n2.log.lastIndex() + 1000,
    context: null,
    seen: {},
  });
  strictEqual(n2.log.committed, before);
  // It still answers, and still follows the leader.
  strictEqual(ofType(n2.ready().messages, "heartbeatResponse").length, 1);
  n2.advance();
  strictEqual(n2.leader, "n1");
});

Deno.test("Raft.step() refuses terms no peer may push it to, and elections past TERM_MAX still work", () => {
  const cluster = bootstrapCluster(["n1", "n2", "n3"]);
  const n1 = cluster.elect("n1");
  const term = n1.term;
  const heartbeat = (to: string, t: number) => ({
    type: "heartbeat" as const,
    from: "n2",
    to,
    term: t,
    commit: 0,
    context: null,
    seen: {},
  });
  for (const forged of [TERM_MAX + 1, Number.MAX_SAFE_INTEGER]) {
    n1.step(heartbeat("n1", forged));
    strictEqual(n1.term, term);
    strictEqual(n1.role, "leader");
  }
  strictEqual(n1.status().refusedMessages, 2);
  // A forged term of exactly TERM_MAX is followed, everywhere: the cluster
  // must still elect leaders at the terms after it.
  for (const id of ["n1", "n2", "n3"]) {
    cluster.node(id).step({ ...heartbeat(id, TERM_MAX), from: id === "n2" ? "n3" : "n2" });
  }
  for (const id of ["n1", "n2", "n3"]) strictEqual(cluster.node(id).term, TERM_MAX);
  // The forged "leader" falls silent; the nodes elect one of their own.
  let leader: string | undefined;
  for (let i = 0; i < 50 * ELECTION_TICKS && leader === undefined; i++) {
    for (const id of ["n1", "n2", "n3"]) cluster.node(id).tick();
    cluster.settle();
    leader = ["n1", "n2", "n3"].find((id) => cluster.node(id).role === "leader");
  }
  strictEqual(leader !== undefined, true, "no leader past TERM_MAX");
  const next = cluster.node(leader!);
  strictEqual(next.term > TERM_MAX, true);
  strictEqual(Number.isSafeInteger(next.term + 1), true);
});
