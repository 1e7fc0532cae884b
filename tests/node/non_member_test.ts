/**
 * Messages that could start an election or take leadership are dropped when
 * their sender is no member: a transfer (`timeoutNow`) from an id outside
 * the configuration, and a vote request from a removed member, which may
 * run on unaware. Each is counted in
 * `watercraft_peer_messages_from_non_members_total`. A vote request from an
 * id this node has never seen still counts: it may come from a member added
 * while this node was cut off, whose election needs it.
 *
 * Three nodes over a {@linkcode MemoryNetwork}, on a manual clock.
 *
 * @module
 */

import { match, strictEqual } from "node:assert/strict";
import type { Message } from "../../src/core/messages.ts";
import { createNode, kvStateMachine, type WaterCraftNode } from "../../mod.ts";
import { manualClock, MemoryNetwork } from "../../src/testing.ts";

/** A leader `a` with followers `b` and `c`, and a way to let time pass. */
async function cluster() {
  const clock = manualClock(1_000_000);
  const network = new MemoryNetwork();
  const nodes: WaterCraftNode[] = [];
  const advance = async (ms: number) => {
    for (let t = 0; t < ms; t += 10) {
      clock.advance(10);
      for (let i = 0; i < 2; i++) await new Promise((r) => setTimeout(r, 0));
    }
  };
  const start = async (id: string, bootstrap: boolean) => {
    const node = await createNode({
      id,
      url: `mem://${id}`,
      stateMachine: kvStateMachine(),
      transport: network.transport(),
      clock,
      seed: nodes.length + 1,
      heartbeatMs: 10,
      electionMs: 100,
      bootstrap,
      onError: () => {},
      onWarning: () => {},
    });
    nodes.push(node);
    return node;
  };
  const a = await start("a", true);
  for (let t = 0; t < 50 && a.status().role !== "leader"; t++) await advance(10);
  for (const id of ["b", "c"]) {
    await start(id, false);
    const added = a.addMember({ id, url: `mem://${id}` });
    let done = false;
    added.then(() => done = true);
    for (let t = 0; t < 500 && !done; t++) await advance(10);
    for (let t = 0; t < 500 && !a.members().members.find((m) => m.id === id)?.voter; t++) {
      await advance(10);
    }
  }
  strictEqual(a.status().role, "leader");
  const [, b, c] = nodes as [WaterCraftNode, WaterCraftNode, WaterCraftNode];
  return { a, b, c, advance, stop: () => Promise.all(nodes.map((n) => n.stop())) };
}

function dropped(node: WaterCraftNode): number {
  const line = node.metrics().match(/^watercraft_peer_messages_from_non_members_total (\d+)$/m);
  return Number(line?.[1]);
}

/** A vote request that, were it admitted, would depose any leader: a transfer, a higher term, a longer log. */
function depose(from: string, to: string, term: number): Message {
  return {
    type: "vote",
    from,
    to,
    term,
    preVote: false,
    transfer: true,
    lastIndex: 1_000_000,
    lastTerm: term - 1,
  };
}

Deno.test("a timeoutNow from an id outside the configuration starts no election", async () => {
  const { a, b, advance, stop } = await cluster();
  try {
    const term = b.status().term;
    b.receive("evil", [{ type: "timeoutNow", from: "evil", to: "b", term }]);
    await advance(50);
    strictEqual(b.status().term, term, "b campaigned");
    strictEqual(a.status().role, "leader");
    strictEqual(dropped(b), 1);
    match(b.metrics(), /^# HELP watercraft_peer_messages_from_non_members_total /m);
  } finally {
    await stop();
  }
});

Deno.test("a vote request from a removed member that runs on is dropped", async () => {
  const { a, b, c, advance, stop } = await cluster();
  try {
    let removed = false;
    a.removeMember("c").then(() => removed = true);
    for (let t = 0; t < 500 && !removed; t++) await advance(10);
    strictEqual(removed, true);
    await advance(50);
    const term = a.status().term;
    for (const node of [a, b]) node.receive("c", [depose("c", node.id, term + 5)]);
    await advance(20);
    strictEqual(a.status().term, term, "the removed member moved the term");
    strictEqual(a.status().role, "leader");
    strictEqual(dropped(a) + dropped(b), 2);
    void c;
  } finally {
    await stop();
  }
});

Deno.test("a vote request from an id never seen is admitted: it may be a member added while this node was cut off", async () => {
  const { b, advance, stop } = await cluster();
  try {
    const term = b.status().term;
    b.receive("n9", [depose("n9", "b", term + 5)]);
    await advance(10);
    strictEqual(b.status().term >= term + 5, true, "the vote request was dropped");
    strictEqual(dropped(b), 0);
  } finally {
    await stop();
  }
});

Deno.test("a snapshot whose data cannot be restored is refused: the node keeps its log and keeps running", async () => {
  const { a, b, advance, stop } = await cluster();
  try {
    const before = b.status();
    // From the leader, in its term: the snapshot is not refused for its sender or term.
    const term = before.term;
    for (
      const data of [new Uint8Array([1, 2, 3]), new Uint8Array([0, 0, 0, 2, 123, 125, 91, 93])]
    ) {
      b.receive("a", [{
        type: "snapshot",
        from: "a",
        to: "b",
        term,
        meta: {
          index: before.lastIndex + 50,
          term: before.term,
          hash: "ab".repeat(32),
          config: { members: [{ id: "a", voter: true }, { id: "b", voter: true }] },
        },
        offset: 0,
        total: data.length,
        data,
      }]);
      await advance(10);
      strictEqual(b.failure, null, "the snapshot stopped the node");
      strictEqual(b.status().lastIndex, before.lastIndex, "the snapshot replaced the log");
    }
    match(b.metrics(), /^watercraft_peer_messages_refused_total 2$/m);
    // The cluster still writes through b.
    let written = false;
    b.propose({ op: "put", key: "after", value: 1 }).then(() => written = true, () => {});
    for (let t = 0; t < 300 && !written; t++) await advance(10);
    strictEqual(written, true);
    void a;
  } finally {
    await stop();
  }
});
