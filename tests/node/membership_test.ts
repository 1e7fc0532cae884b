/**
 * Membership in one process: growing a cluster, removing members (the
 * leader too), read-only members, removed nodes that keep running,
 * automatic eviction and recovery from the loss of a majority. Nodes talk
 * over a {@linkcode MemoryNetwork} and time is a manual clock.
 *
 * @module
 */

import { deepStrictEqual, rejects, strictEqual } from "node:assert/strict";
import {
  createNode,
  kvStateMachine,
  memoryStorage,
  type NodeOptions,
  ReadOnlyError,
  type Storage,
  WaterCraftError,
  type WaterCraftNode,
} from "../../mod.ts";
import { type ManualClock, manualClock, MemoryNetwork } from "../../src/testing.ts";

/** Lets promise chains run (no time passes). */
async function settle(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise((r) => setTimeout(r, 0));
}

class Harness {
  readonly clock: ManualClock = manualClock(1_000_000);
  readonly network = new MemoryNetwork();
  readonly nodes = new Map<string, WaterCraftNode>();
  readonly storages = new Map<string, Storage>();
  #seed = 1;

  async start(id: string, options: Partial<NodeOptions> = {}): Promise<WaterCraftNode> {
    const storage = this.storages.get(id) ?? memoryStorage();
    this.storages.set(id, storage);
    const node = await createNode({
      id,
      url: `mem://${id}`,
      stateMachine: kvStateMachine(),
      transport: this.network.transport(),
      storage,
      clock: this.clock,
      seed: this.#seed++,
      heartbeatMs: 10,
      electionMs: 100,
      onError: () => {},
      onWarning: () => {},
      ...options,
    });
    this.nodes.set(id, node);
    return node;
  }

  async advance(ms: number): Promise<void> {
    for (let t = 0; t < ms; t += 10) {
      this.clock.advance(10);
      await settle();
    }
  }

  /** Advances time until `cond` holds (bounded by `maxMs` of simulated time). */
  async until(cond: () => boolean, maxMs = 5000): Promise<void> {
    for (let t = 0; t < maxMs && !cond(); t += 10) await this.advance(10);
    if (!cond()) throw new Error(`Condition not met within ${maxMs} ms of simulated time`);
  }

  /** Resolves `promise` while advancing simulated time. */
  async during<T>(promise: Promise<T>, maxMs = 10_000): Promise<T> {
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | null = null;
    promise.then(
      (value) => outcome = { ok: true, value },
      (error) => outcome = { ok: false, error },
    );
    for (let t = 0; t < maxMs && outcome === null; t += 10) await this.advance(10);
    const done = outcome as { ok: true; value: T } | { ok: false; error: unknown } | null;
    if (done === null) throw new Error(`Still pending after ${maxMs} ms of simulated time`);
    if (!done.ok) throw done.error;
    return done.value;
  }

  leader(): WaterCraftNode | undefined {
    return [...this.nodes.values()].find((n) => n.status().role === "leader");
  }

  voters(node: WaterCraftNode): string[] {
    return node.members().members.filter((m) => m.voter).map((m) => m.id).sort();
  }

  async stop(): Promise<void> {
    for (const n of this.nodes.values()) await n.stop();
  }
}

/** Starts `ids[0]` as a new cluster and adds the others one by one. */
async function grow(h: Harness, ids: string[]): Promise<WaterCraftNode> {
  const first = await h.start(ids[0]!);
  await h.until(() => first.status().role === "leader");
  for (const id of ids.slice(1)) {
    await h.start(id, { bootstrap: false });
    await h.during(first.addMember({ id, url: `mem://${id}` }));
    await h.until(() => h.voters(first).includes(id));
  }
  return first;
}

Deno.test("addMember() grows a cluster 1 → 5: each joins as a learner and is promoted once caught up", async () => {
  const h = new Harness();
  const first = await grow(h, ["a", "b", "c", "d", "e"]);
  deepStrictEqual(h.voters(first), ["a", "b", "c", "d", "e"]);
  // The original node is the first host.
  strictEqual(first.status().role, "leader");
  const w = await h.during(first.propose({ op: "put", key: "k", value: 1 }));
  await h.advance(50);
  for (const n of h.nodes.values()) {
    strictEqual(n.status().configIndex, first.status().configIndex, n.id);
    strictEqual(n.head().index >= w.index, true, n.id);
  }
  await h.stop();
});

Deno.test("addMember() of an existing id at another URL is a conflict; at the same URL it is a no-op", async () => {
  const h = new Harness();
  const first = await grow(h, ["a", "b"]);
  const before = first.status().configIndex;
  await h.during(first.addMember({ id: "b", url: "mem://b" }));
  strictEqual(first.status().configIndex, before);
  await rejects(
    h.during(first.addMember({ id: "b", url: "mem://elsewhere" })),
    (e: unknown) => e instanceof WaterCraftError && e.code === "conflict",
  );
  await h.stop();
});

Deno.test("removeMember() of the leader commits, the leader steps down and the others carry on", async () => {
  const h = new Harness();
  const first = await grow(h, ["a", "b", "c"]);
  await h.during(first.removeMember("a"));
  await h.until(() => h.leader() !== undefined && h.leader() !== first);
  const next = h.leader()!;
  deepStrictEqual(h.voters(next), ["b", "c"]);
  strictEqual(first.status().role === "leader", false);
  const w = await h.during(next.propose({ op: "put", key: "after", value: true }));
  strictEqual(w.state, "committed");
  await h.stop();
});

Deno.test("a read-only member stays a learner, never votes, refuses writes and serves reads", async () => {
  const h = new Harness();
  const first = await grow(h, ["a", "b", "c"]);
  const ro = await h.start("r", { bootstrap: false, readOnly: true });
  await h.during(first.addMember({ id: "r", url: "mem://r", readOnly: true }));
  await h.advance(500);
  strictEqual(ro.status().role, "learner");
  deepStrictEqual(h.voters(first), ["a", "b", "c"]);
  await rejects(ro.propose({ op: "put", key: "x", value: 1 }), ReadOnlyError);
  const wrote = await h.during(first.propose({ op: "put", key: "x", value: 2 }));
  deepStrictEqual((await h.during(ro.read({ op: "get", key: "x" }))).value, {
    found: true,
    value: 2,
    created: wrote.index,
    modified: wrote.index,
  });
  // With the leader gone, the read-only member never becomes host.
  h.network.isolate("a");
  await h.until(() => h.leader() !== undefined && h.leader() !== first, 3000);
  strictEqual(h.leader() === ro, false);
  strictEqual(ro.raft.term >= 1 && ro.status().role === "learner", true);
  await h.stop();
});

Deno.test("a removed node that keeps running cannot disrupt the cluster (PreVote, CheckQuorum)", async () => {
  const h = new Harness();
  const first = await grow(h, ["a", "b", "c", "d"]);
  await h.during(first.removeMember("d"));
  const term = first.raft.term;
  // d never learns of its removal: cut it off, let it time out again and again.
  const d = h.nodes.get("d")!;
  h.network.isolate("d");
  await h.advance(2000);
  h.network.heal();
  await h.advance(2000);
  strictEqual(first.status().role, "leader");
  strictEqual(first.raft.term, term);
  strictEqual(d.status().role === "leader", false);
  await h.stop();
});

Deno.test("evictAfterMs: the leader removes a silent voter and keeps committing, never below minVoters", async () => {
  const h = new Harness();
  const first = await h.start("a", { evictAfterMs: 1000, minVoters: 3 });
  await h.until(() => first.status().role === "leader");
  for (const id of ["b", "c", "d"]) {
    await h.start(id, { bootstrap: false });
    await h.during(first.addMember({ id, url: `mem://${id}` }));
    await h.until(() => h.voters(first).includes(id));
  }
  await h.nodes.get("d")!.stop();
  h.nodes.delete("d");
  await h.until(() => !h.voters(first).includes("d"), 5000);
  deepStrictEqual(h.voters(first), ["a", "b", "c"]);
  await h.nodes.get("c")!.stop();
  h.nodes.delete("c");
  await h.advance(3000);
  // Three voters is the floor: c stays although silent, and a + b still commit.
  deepStrictEqual(h.voters(first), ["a", "b", "c"]);
  strictEqual(
    (await h.during(first.propose({ op: "put", key: "k", value: 1 }))).state,
    "committed",
  );
  await h.stop();
});

Deno.test("forceNewCluster recovers a lone survivor of a lost majority with its data", async () => {
  const h = new Harness();
  const first = await grow(h, ["a", "b", "c"]);
  const kept = await h.during(first.propose({ op: "put", key: "kept", value: 42 }));
  await h.advance(100);
  for (const n of h.nodes.values()) await n.stop();
  h.nodes.clear();
  // b and c are gone for good. a alone cannot elect itself...
  const stuck = await h.start("a");
  await h.advance(2000);
  strictEqual(stuck.status().role === "leader", false);
  await stuck.stop();
  // ...until it is told to form a new cluster of itself.
  const survivor = await h.start("a", { forceNewCluster: true });
  await h.until(() => survivor.status().role === "leader");
  deepStrictEqual(h.voters(survivor), ["a"]);
  deepStrictEqual((await h.during(survivor.read({ op: "get", key: "kept" }))).value, {
    found: true,
    value: 42,
    created: kept.index,
    modified: kept.index,
  });
  strictEqual(
    (await h.during(survivor.propose({ op: "put", key: "new", value: 1 }))).state,
    "committed",
  );
  await h.stop();
});

Deno.test("a retried addMember() does not answer before the pending addition commits", async () => {
  const h = new Harness();
  const first = await grow(h, ["a", "b", "c"]);
  await h.start("d", { bootstrap: false });
  h.network.partition(["a", "d"], ["b", "c"]);
  let firstTry = "pending";
  first.addMember({ id: "d", url: "mem://d" }, { timeoutMs: 30 }).then(
    () => firstTry = "ok",
    (e) => firstTry = e.code,
  );
  await h.advance(40);
  strictEqual(firstTry, "timeout");
  let retry = "pending";
  first.addMember({ id: "d", url: "mem://d" }, { timeoutMs: 60 }).then(
    () => retry = "ok",
    (e) => retry = e.code,
  );
  await h.advance(100);
  // The addition cannot commit without b or c: the retry must not claim it did.
  strictEqual(retry === "ok", false, retry);
  await h.stop();
});

// ------------------------------------------------------------------ on any member

/** The error code a promise was rejected with, or "ok". */
async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (e) {
    return e instanceof WaterCraftError ? e.code : `not a WaterCraftError: ${e}`;
  }
}

Deno.test("addMember(), removeMember() and transferLeader() on a follower are forwarded to the leader", async () => {
  const h = new Harness();
  const a = await grow(h, ["a", "b", "c"]);
  const b = h.nodes.get("b")!;
  const c = h.nodes.get("c")!;
  await h.start("d", { bootstrap: false });

  await h.during(b.addMember({ id: "d", url: "mem://d" }));
  strictEqual(a.members().members.some((m) => m.id === "d"), true, "the leader added d");
  // The follower answers once its own view holds the committed change.
  strictEqual(b.members().members.some((m) => m.id === "d"), true, "the follower lists d");
  strictEqual(b.members().configIndex, a.members().configIndex);
  await h.until(() => h.voters(a).includes("d"));

  // The leader's refusals come back with their codes; nothing changes.
  const before = a.status().configIndex;
  strictEqual(
    await outcome(h.during(c.addMember({ id: "d", url: "mem://elsewhere" }))),
    "conflict",
  );
  strictEqual(await outcome(h.during(c.removeMember("nobody"))), "not_found");
  strictEqual(await outcome(h.during(c.transferLeader("nobody"))), "not_found");
  strictEqual(a.status().configIndex, before);

  await h.during(c.removeMember("d"));
  deepStrictEqual(h.voters(a), ["a", "b", "c"]);
  deepStrictEqual(h.voters(c), ["a", "b", "c"]);

  // A transfer to a named voter, asked of another follower...
  await h.during(b.transferLeader("c"));
  strictEqual(c.status().role, "leader");
  strictEqual(b.status().leader?.id, "c", "the follower names the new leader when it answers");
  // ...to itself, asked of itself...
  await h.during(a.transferLeader("a"));
  strictEqual(a.status().role, "leader");
  // ...and to whoever the leader picks.
  await h.during(b.transferLeader());
  strictEqual(a.status().role === "leader", false);
  strictEqual(b.status().leader !== null && b.status().leader?.id !== "a", true);
  await h.stop();
});

Deno.test("a member that knows no leader refuses membership changes and transfers with 503; nothing changes", async () => {
  const h = new Harness();
  const a = await grow(h, ["a", "b", "c"]);
  const b = h.nodes.get("b")!;
  h.network.isolate("b");
  await h.until(() => b.status().leader === null);
  const before = a.status().configIndex;
  strictEqual(await outcome(h.during(b.addMember({ id: "e", url: "mem://e" }))), "unavailable");
  strictEqual(await outcome(h.during(b.removeMember("c"))), "unavailable");
  strictEqual(await outcome(h.during(b.transferLeader("c"))), "unavailable");
  strictEqual(await outcome(h.during(b.transferLeader())), "unavailable");
  await h.advance(500);
  strictEqual(a.status().configIndex, before);
  strictEqual(a.status().role, "leader");
  await h.stop();
});

Deno.test("a forwarded membership change whose answer is lost is a timeout (504): it may have committed", async () => {
  const h = new Harness();
  const a = await grow(h, ["a", "b", "c", "e"]);
  const b = h.nodes.get("b")!;
  await h.start("d", { bootstrap: false });
  // With c and e cut off, the leader cannot commit (2 of 4 voters)...
  h.network.partition(["a"], ["c", "e"]);
  const asked = outcome(b.addMember({ id: "d", url: "mem://d" }));
  await settle();
  strictEqual(a.raft.log.config().index > a.raft.log.committed, true, "the leader has it, pending");
  // ...until they are back; by then the follower that forwarded it is cut off.
  h.network.heal();
  h.network.partition(["a"], ["b"]);
  strictEqual(await h.during(asked), "timeout");
  strictEqual(a.members().members.some((m) => m.id === "d"), true, "yet it committed");
  await h.stop();
});

Deno.test("a request forwarded to a member that no longer leads is refused, not forwarded again", async () => {
  const h = new Harness();
  await grow(h, ["a", "b", "c"]);
  const b = h.nodes.get("b")!;
  const proposals = [
    { kind: "addMember", member: { id: "e", url: "mem://e", readOnly: false }, timeoutMs: 100 },
    { kind: "removeMember", id: "c", timeoutMs: 100 },
    { kind: "transferLeader", target: "c", timeoutMs: 100 },
  ] as const;
  for (const proposal of proposals) {
    const answer = await h.during(b.forwarded("c", proposal));
    strictEqual(answer.ok, false, proposal.kind);
    deepStrictEqual(
      !answer.ok && [answer.code, (answer.details?.leader as { id?: string } | undefined)?.id],
      ["unavailable", "a"],
      proposal.kind,
    );
  }
  await h.stop();
});
