/**
 * What fuzzing the core found (`core_test.ts`), each kept as a plain test of
 * the input that showed it. Every one is a message no correct peer sends,
 * which a node took in, before the fix, and was then stopped by an
 * assertion, wedged, or made to break Raft's safety. Now each is refused,
 * counted in `refusedMessages`, and the node carries on.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import {
  createEntry,
  type Entry,
  GENESIS_HASH,
  INDEX_MAX,
  type Message,
  type Raft,
} from "../../src/core/mod.ts";
import { bootstrapCluster, type Cluster } from "../core/_harness.ts";

const MEMBERS = ["n1", "n2", "n3"];
const CONFIG = { members: MEMBERS.map((id) => ({ id, voter: true })) };

/** A 3-node cluster led by n1 in term 2, its log the bootstrap config and n1's no-op. */
function ledByN1(): { cluster: Cluster; n1: Raft; n2: Raft } {
  const cluster = bootstrapCluster(MEMBERS);
  const n1 = cluster.elect("n1");
  return { cluster, n1, n2: cluster.node("n2") };
}

/** Steps a message and hands out the batch it caused, as a driver would. */
function stepAndDrain(cluster: Cluster, raft: Raft, m: Message): Message[] {
  raft.step(m);
  return cluster.drain();
}

/** What a node holds: compared before and after a refused message. */
function logOf(raft: Raft): { last: number; commit: number; hashes: (string | undefined)[] } {
  const hashes = [];
  for (let i = 1; i <= raft.log.lastIndex(); i++) hashes.push(raft.log.hash(i));
  return { last: raft.log.lastIndex(), commit: raft.log.committed, hashes };
}

Deno.test("an append whose entries skip or repeat an index is refused, where it tripped an assertion that stopped the follower", () => {
  const rows: { name: string; entries: (n2: Raft, n1: Raft) => Entry[]; commit: number }[] = [
    {
      // The fuzz case: one entry at prevIndex + 2, commit prevIndex + 1.
      name: "an entry past the next index",
      entries: (n2) => [{
        index: n2.log.lastIndex() + 2,
        term: 0,
        kind: "command",
        proposer: "",
        timeMs: 0,
        data: new Uint8Array(0),
        hash: GENESIS_HASH,
      }],
      commit: 3,
    },
    {
      name: "an entry the follower holds, twice",
      entries: (_, n1) => [n1.log.entry(2)!, n1.log.entry(2)!],
      commit: 3,
    },
  ];
  for (const row of rows) {
    const { cluster, n1, n2 } = ledByN1();
    const before = logOf(n2);
    const prevIndex = row.name.startsWith("an entry the") ? 1 : n2.log.lastIndex();
    const sent = stepAndDrain(cluster, n2, {
      type: "append",
      from: "n1",
      to: "n2",
      term: n1.term,
      prevIndex,
      prevTerm: n2.log.term(prevIndex)!,
      prevHash: n2.log.hash(prevIndex)!,
      entries: row.entries(n2, n1),
      commit: row.commit,
    });
    deepStrictEqual(sent, [], row.name);
    deepStrictEqual(logOf(n2), before, row.name);
    strictEqual(n2.status().refusedMessages, 1, row.name);
    // Still a working follower: it takes n1's next entry.
    n1.propose(new Uint8Array([1]));
    cluster.settle();
    strictEqual(n2.log.committed, n1.log.lastIndex(), row.name);
  }
});

Deno.test("an acknowledgement past the leader's log is refused, where the leader counted a copy that did not exist and never sent it", () => {
  const { cluster, n1, n2 } = ledByN1();
  // The fuzz case: n2's real acknowledgement of index 2, replayed with index 3.
  stepAndDrain(cluster, n1, {
    type: "appendResponse",
    from: "n2",
    to: "n1",
    term: n1.term,
    success: true,
    index: n1.log.lastIndex() + 1,
    hintIndex: 0,
    hintTerm: 0,
  });
  strictEqual(n1.status().refusedMessages, 1);
  cluster.isolated.add("n3");
  const entry = n1.propose(new Uint8Array([7]));
  cluster.settle();
  // Committed on n1 and n2 alone: n2 truly holds it.
  strictEqual(n2.log.hash(entry.index), entry.hash);
  strictEqual(n1.entryState(entry.hash)?.state, "committed");
  strictEqual(n2.status().refusedMessages, 0);
});

Deno.test("a snapshot acknowledgement past the snapshot's size is refused, where the transfer stalled for good", () => {
  // Small messages, so that the snapshot takes several chunks.
  const cluster = bootstrapCluster(MEMBERS, { maxMsgBytes: 1 });
  const n1 = cluster.elect("n1");
  const n3 = cluster.node("n3");
  cluster.isolated.add("n3");
  for (let i = 0; i < 5; i++) {
    n1.propose(new Uint8Array([i]));
    cluster.settle();
  }
  n1.compact(n1.log.applied, new Uint8Array(5000));
  cluster.isolated.delete("n3");
  // n3's first answer, held back: it holds the first chunk.
  let held: Message[] = [];
  for (let t = 0; t < 5 && held.length === 0; t++) {
    n1.tick();
    held = cluster.settle((m) => m.type === "snapshotResponse");
  }
  strictEqual(held.length, 1);
  // The fuzz case: that answer with a count past the snapshot's end.
  stepAndDrain(cluster, n1, { ...held[0]!, received: 10_000_000 } as Message);
  strictEqual(n1.status().refusedMessages, 1);
  cluster.deliver(held);
  for (let t = 0; t < 50 && n3.log.lastIndex() < n1.log.lastIndex(); t++) cluster.tick();
  strictEqual(n3.log.lastIndex(), n1.log.lastIndex());
  strictEqual(n3.log.committed, n1.log.committed);
});

Deno.test("a message of term 0 other than a read or a transfer is refused, where it counted as one of the current term", async (t) => {
  await t.step("a snapshot from a non-member, which a follower installed", () => {
    const { cluster } = ledByN1();
    const n3 = cluster.node("n3");
    const before = logOf(n3);
    // The fuzz case.
    const sent = stepAndDrain(cluster, n3, {
      type: "snapshot",
      from: "n4",
      to: "n3",
      term: 0,
      meta: { index: 2 ** 48 + 1, term: 2, hash: GENESIS_HASH, config: CONFIG },
      offset: 0,
      total: 0,
      data: new Uint8Array(0),
    });
    deepStrictEqual(sent, []);
    deepStrictEqual(logOf(n3), before);
    strictEqual(n3.status().refusedMessages, 1);
  });

  await t.step("a granted vote, which a candidate counted", () => {
    const cluster = bootstrapCluster(MEMBERS, { preVote: false });
    const n1 = cluster.node("n1");
    cluster.isolated.add("n1");
    n1.campaign();
    cluster.settle();
    strictEqual(n1.role, "candidate");
    stepAndDrain(cluster, n1, {
      type: "voteResponse",
      from: "n2",
      to: "n1",
      term: 0,
      preVote: false,
      granted: true,
    });
    strictEqual(n1.role, "candidate");
    strictEqual(n1.status().refusedMessages, 1);
  });
});

Deno.test("a snapshot past INDEX_MAX is refused, where a node brought next to 2^53 could no longer count its log and never went quiet", () => {
  for (const index of [Number.MAX_SAFE_INTEGER - 1, INDEX_MAX + 1]) {
    const { cluster, n1, n2 } = ledByN1();
    stepAndDrain(cluster, n2, {
      type: "snapshot",
      from: "n1",
      to: "n2",
      term: n1.term,
      meta: { index, term: n1.term, hash: GENESIS_HASH, config: CONFIG },
      offset: 0,
      total: 1,
      data: new Uint8Array([1]),
    });
    strictEqual(n2.log.lastIndex(), 2);
    strictEqual(n2.status().refusedMessages, 1);
  }
  // At INDEX_MAX itself the log still counts exactly: a leader there appends and goes quiet.
  const { cluster, n1, n2 } = ledByN1();
  stepAndDrain(cluster, n2, {
    type: "snapshot",
    from: "n1",
    to: "n2",
    term: n1.term,
    meta: { index: INDEX_MAX, term: n1.term, hash: GENESIS_HASH, config: CONFIG },
    offset: 0,
    total: 1,
    data: new Uint8Array([1]),
  });
  strictEqual(n2.log.lastIndex(), INDEX_MAX);
  cluster.isolated.add("n1");
  for (let i = 0; i < 40 && n2.role !== "leader"; i++) cluster.tick(["n2", "n3"]);
  strictEqual(n2.role, "leader");
  n2.propose(new Uint8Array([2]));
  cluster.settle();
  strictEqual(n2.log.lastIndex(), INDEX_MAX + 2);
  strictEqual(n2.hasReady(), false);
});

Deno.test("an append holding a configuration entry that does not decode is refused, where the follower stopped on a SyntaxError at its next tick", () => {
  const { cluster, n1, n2 } = ledByN1();
  const before = logOf(n2);
  // The fuzz case: a hash-valid config entry with no data after the follower's last entry.
  const bad = createEntry(3, n2.log.hash(2)!, {
    term: n1.term,
    kind: "config",
    proposer: "n1",
    timeMs: 0,
    data: new Uint8Array(0),
  });
  const sent = stepAndDrain(cluster, n2, {
    type: "append",
    from: "n1",
    to: "n2",
    term: n1.term,
    prevIndex: 2,
    prevTerm: n2.log.term(2)!,
    prevHash: n2.log.hash(2)!,
    entries: [bad],
    commit: 2,
  });
  deepStrictEqual(sent, []);
  deepStrictEqual(logOf(n2), before);
  strictEqual(n2.status().refusedMessages, 1);
  for (let i = 0; i < 30; i++) cluster.tick();
  strictEqual(n2.status().config.members.length, 3);
});
