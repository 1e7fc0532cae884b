/**
 * The driver in one process: nodes on a {@linkcode MemoryNetwork} with a
 * manual clock, so every timeout is reached by advancing time, not by
 * sleeping.
 *
 * @module
 */

import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import {
  createNode,
  type Member,
  memoryStorage,
  ReadOnlyError,
  RejectedError,
  type StateMachine,
  type Storage,
  TimeoutError,
  UnavailableError,
  WaterCraftError,
  type WaterCraftNode,
} from "../../mod.ts";
import { WaterCraftNode as WaterCraftNodeClass } from "../../src/node/node.ts";
import { type ManualClock, manualClock, MemoryNetwork } from "../../src/testing.ts";

/** A register machine: `{add: n}` adds, `{fail: true}` is refused by apply, `{bad: true}` by validate. */
function counter(): StateMachine<{ add?: number; fail?: boolean }, number, null, number> & {
  total: number;
} {
  const sm = {
    total: 0,
    validate(command: unknown) {
      const c = command as { add?: number; fail?: boolean; bad?: boolean };
      if (c?.bad) throw new RejectedError("bad command");
      return c;
    },
    apply(command: { add?: number; fail?: boolean }) {
      if (command.fail) throw new RejectedError("refused at apply");
      sm.total += command.add ?? 0;
      return sm.total;
    },
    query() {
      return sm.total;
    },
    snapshot: () => new TextEncoder().encode(String(sm.total)),
    restore: (data: Uint8Array) => {
      sm.total = Number(new TextDecoder().decode(data));
    },
  };
  return sm;
}

/** Lets queued microtasks and promise chains run (no time passes). */
async function settle(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise((r) => setTimeout(r, 0));
}

interface Cluster {
  clock: ManualClock;
  network: MemoryNetwork;
  nodes: Map<string, WaterCraftNode>;
  storages: Map<string, Storage>;
  /** Advances time in heartbeat steps, letting the network settle between. */
  advance(ms: number): Promise<void>;
  leader(): WaterCraftNode | undefined;
  stop(): Promise<void>;
}

async function cluster(
  ids: string[],
  extra: Member[] = [],
  storageOf: (id: string) => Storage = () => memoryStorage(),
): Promise<Cluster> {
  const clock = manualClock(1_000_000);
  const network = new MemoryNetwork();
  const members: Member[] = [...ids.map((id) => ({ id, voter: true })), ...extra];
  const nodes = new Map<string, WaterCraftNode>();
  const storages = new Map<string, Storage>();
  for (const [i, m] of members.entries()) {
    const storage = storageOf(m.id);
    storages.set(m.id, storage);
    nodes.set(
      m.id,
      await createNode({
        id: m.id,
        stateMachine: counter(),
        transport: network.transport(),
        storage,
        members,
        readOnly: m.readOnly ?? false,
        bootstrap: !m.readOnly,
        clock,
        seed: i + 1,
        heartbeatMs: 10,
        electionMs: 100,
        onError: () => {},
      }),
    );
  }
  const c: Cluster = {
    clock,
    network,
    nodes,
    storages,
    async advance(ms) {
      for (let t = 0; t < ms; t += 10) {
        clock.advance(10);
        await settle();
      }
    },
    leader: () => [...nodes.values()].find((n) => n.status().role === "leader"),
    async stop() {
      for (const n of nodes.values()) await n.stop();
    },
  };
  return c;
}

/** Advances time until a leader exists (bounded). */
async function electLeader(c: Cluster): Promise<WaterCraftNode> {
  for (let i = 0; i < 100; i++) {
    const leader = c.leader();
    if (leader !== undefined) return leader;
    await c.advance(10);
  }
  throw new Error("No leader within 1 s of simulated time");
}

/** Resolves `promise` while advancing simulated time (bounded). */
async function during<T>(c: Cluster, promise: Promise<T>, maxMs = 10_000): Promise<T> {
  let outcome: { ok: true; value: T } | { ok: false; error: unknown } | null = null;
  promise.then((value) => outcome = { ok: true, value }, (error) => outcome = { ok: false, error });
  for (let t = 0; t < maxMs && outcome === null; t += 10) await c.advance(10);
  const done = outcome as { ok: true; value: T } | { ok: false; error: unknown } | null;
  if (done === null) throw new Error(`Still pending after ${maxMs} ms of simulated time`);
  if (!done.ok) throw done.error;
  return done.value;
}

Deno.test("createNode() on empty storage leads a one-node cluster at once and applies writes", async () => {
  const c = await cluster(["solo"]);
  const node = c.nodes.get("solo")!;
  await settle();
  strictEqual(node.status().role, "leader");
  const r = await node.propose({ add: 5 });
  strictEqual(r.state, "committed");
  strictEqual(r.result, 5);
  strictEqual(r.head, r.id);
  strictEqual(r.index, 3); // 1: bootstrap config, 2: no-op, 3: the write
  deepStrictEqual(await node.read(null), { value: 5, index: 3 });
  deepStrictEqual(node.entry(r.id), { id: r.id, index: 3, term: r.term, state: "committed" });
  await c.stop();
});

Deno.test("a 3-node cluster writes through a follower and reads linearizably from another", async () => {
  const c = await cluster(["a", "b", "c"]);
  const leader = await electLeader(c);
  const [f1, f2] = [...c.nodes.values()].filter((n) => n !== leader);
  const w = await during(c, f1!.propose({ add: 2 }));
  strictEqual(w.result, 2);
  // The write completed before the read began: the read must see it.
  const r = await during(c, f2!.read(null));
  strictEqual(r.value, 2);
  strictEqual(r.index >= w.index, true);
  // Heads agree once all have applied the write.
  await c.advance(50);
  const heads = new Set([...c.nodes.values()].map((n) => n.head().head));
  strictEqual(heads.size, 1);
  await c.stop();
});

Deno.test("when the leader is cut off a new one is elected and writes continue", async () => {
  const c = await cluster(["a", "b", "c"]);
  const old = await electLeader(c);
  await during(c, old.propose({ add: 1 }));
  c.network.isolate(old.id);
  let next: WaterCraftNode | undefined;
  for (let i = 0; i < 200 && next === undefined; i++) {
    await c.advance(10);
    next = [...c.nodes.values()].find((n) => n !== old && n.status().role === "leader");
  }
  strictEqual(next !== undefined, true, "no new leader");
  const w = await during(c, next!.propose({ add: 10 }));
  strictEqual(w.result, 11);
  // Within an election timeout the old leader steps down (CheckQuorum).
  for (let i = 0; i < 30 && old.status().role === "leader"; i++) await c.advance(10);
  strictEqual(old.status().role === "leader", false);
  c.network.heal();
  await c.advance(300);
  strictEqual(old.status().leader?.id, next!.id);
  strictEqual((await during(c, old.read(null))).value, 11);
  await c.stop();
});

Deno.test("propose() refusals: validator and apply give RejectedError and change nothing", async () => {
  const c = await cluster(["a", "b", "c"]);
  const leader = await electLeader(c);
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  await rejects(during(c, follower.propose({ bad: true })), RejectedError);
  await rejects(
    during(c, leader.propose({ fail: true })),
    (e: unknown) => e instanceof WaterCraftError && e.code === "rejected",
  );
  await rejects(
    during(c, follower.propose({ fail: true })),
    (e: unknown) => e instanceof WaterCraftError && e.code === "rejected",
  );
  strictEqual((await during(c, leader.read(null))).value, 0);
  await c.stop();
});

Deno.test("a read at the leader whose round went to a cut-off follower is confirmed by the other before the next heartbeat", async () => {
  const c = await cluster(["a", "b", "c"]);
  const leader = await electLeader(c);
  await during(c, leader.propose({ add: 3 }));
  const followers = [...c.nodes.keys()].filter((id) => id !== leader.id);
  // Each follower cut off in turn: a round goes to one of the two, the one
  // that confirmed the last read, so at least once it goes to the one cut off.
  for (const cut of [...followers, ...followers]) {
    // Just after a tick: the next periodic heartbeat is 10 ms away.
    await c.advance(10);
    c.network.isolate(cut);
    let value: unknown = null;
    leader.read(null).then((r) => value = r.value);
    // The widen wait is 1 ms (a tenth of the heartbeat interval).
    for (let ms = 0; ms < 3 && value === null; ms++) {
      c.clock.advance(1);
      await settle();
    }
    strictEqual(value, 3, `confirmed within 3 ms with ${cut} cut off`);
    c.network.heal();
  }
  const widened = /^watercraft_read_rounds_widened_total (\d+)$/m.exec(leader.metrics())?.[1];
  ok(Number(widened) >= 1, `rounds widened: ${widened}`);
  await c.stop();
});

Deno.test("propose() with an idempotency key applies once, also when retried through a new leader", async () => {
  const c = await cluster(["a", "b", "c"]);
  const leader = await electLeader(c);
  const first = await during(c, leader.propose({ add: 7 }, { idempotencyKey: "k1" }));
  const again = await during(c, leader.propose({ add: 7 }, { idempotencyKey: "k1" }));
  deepStrictEqual([again.id, again.result], [first.id, first.result]);
  await c.advance(50);
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  await during(c, leader.transferLeader(follower.id));
  strictEqual(follower.status().role, "leader");
  const retried = await during(c, leader.propose({ add: 7 }, { idempotencyKey: "k1" }));
  deepStrictEqual([retried.id, retried.result], [first.id, 7]);
  strictEqual((await during(c, follower.read(null))).value, 7);
  await c.stop();
});

Deno.test("a read-only member refuses writes with a leader hint and serves linearizable reads", async () => {
  const c = await cluster(["a", "b", "c"], [{ id: "r", voter: false, readOnly: true }]);
  const leader = await electLeader(c);
  const ro = c.nodes.get("r")!;
  await rejects(
    ro.propose({ add: 1 }),
    (e: unknown) => e instanceof ReadOnlyError && e.leader?.id === leader.id,
  );
  await during(c, leader.propose({ add: 4 }));
  strictEqual((await during(c, ro.read(null))).value, 4);
  strictEqual(ro.status().role, "learner");
  await c.stop();
});

Deno.test("membership changes and transfers asked of a follower run on the leader, whose refusals come back", async () => {
  const c = await cluster(["a", "b", "c"]);
  const leader = await electLeader(c);
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  const notFound = (e: unknown) => e instanceof WaterCraftError && e.code === "not_found";
  await rejects(during(c, follower.removeMember("nobody")), notFound);
  await rejects(during(c, leader.removeMember("nobody")), notFound);
  await during(c, follower.transferLeader());
  strictEqual(leader.status().role === "leader", false);
  await c.stop();
});

Deno.test("writes with no leader reachable end in 503 (nothing written) or 504 (unknown), never success", async () => {
  const c = await cluster(["a", "b", "c"]);
  const leader = await electLeader(c);
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  c.network.isolate(leader.id);
  // The leader accepts the write into its log but cannot commit it.
  const pending = leader.propose({ add: 1 }, { timeoutMs: 200 });
  const failed = during(c, pending).then(() => "ok", (e) => e);
  const error = await failed;
  strictEqual(
    error instanceof TimeoutError || error instanceof UnavailableError,
    true,
    String(error),
  );
  // A follower cut off from everyone knows no leader once its election fails.
  c.network.isolate(follower.id);
  await c.advance(1000);
  await rejects(during(c, follower.propose({ add: 1 }, { timeoutMs: 300 })), UnavailableError);
  await c.stop();
});

Deno.test("a leader cut off from its quorum fails its waiting writes (504) within a few election timeouts, not at their deadline", async () => {
  const c = await cluster(["a", "b", "c"]);
  const leader = await electLeader(c);
  c.network.isolate(leader.id);
  const started = c.clock.now();
  const outcome = leader.propose({ add: 1 }, { timeoutMs: 5000 }).then(() => null, (e) => e);
  let error: unknown = null;
  outcome.then((e) => error = e);
  for (let t = 0; t < 1000 && error === null; t += 10) await c.advance(10);
  strictEqual(error instanceof TimeoutError, true, String(error));
  const tookMs = c.clock.now() - started;
  // CheckQuorum steps it down after one election timeout (100 ms here), then
  // the writes wait one more: far from the 5 s deadline.
  strictEqual(tookMs <= 400, true, `took ${tookMs} ms`);
  await c.stop();
});

Deno.test("reads and writes on a follower cut off from everyone fail (503) within a few election timeouts", async () => {
  const c = await cluster(["a", "b", "c"]);
  const leader = await electLeader(c);
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  c.network.isolate(follower.id);
  for (
    const [what, call] of [
      ["read", () => follower.read(null, { timeoutMs: 5000 })],
      ["write", () => follower.propose({ add: 1 }, { timeoutMs: 5000 })],
    ] as const
  ) {
    const started = c.clock.now();
    let error: unknown = null;
    (call() as Promise<unknown>).then(() => error = "ok", (e) => error = e);
    for (let t = 0; t < 2000 && error === null; t += 10) await c.advance(10);
    strictEqual(error instanceof UnavailableError, true, `${what}: ${String(error)}`);
    const tookMs = c.clock.now() - started;
    strictEqual(tookMs <= 700, true, `${what} took ${tookMs} ms`);
  }
  await c.stop();
});

Deno.test("a commit alone costs no disk write: writes are answered without an fsync of the commit index", async () => {
  const c = await cluster(["a", "b", "c"]);
  const leader = await electLeader(c);
  const commitOnly = new Map<string, number>();
  for (const [id, storage] of c.storages) {
    const save = storage.save.bind(storage);
    storage.save = (hard, entries) => {
      if (entries.length === 0) commitOnly.set(id, (commitOnly.get(id) ?? 0) + 1);
      return save(hard, entries);
    };
  }
  for (let i = 0; i < 5; i++) await during(c, leader.propose({ add: 1 }));
  await c.advance(200);
  deepStrictEqual([...commitOnly], [], "saves without entries");
  for (const node of c.nodes.values()) strictEqual((await during(c, node.read(null))).value, 5);
  await c.stop();
});

Deno.test("a leader answers a write both followers hold while its own disk write still runs (thesis §10.2.1)", async () => {
  const c = await cluster(["a", "b", "c"]);
  const leader = await electLeader(c);
  const storage = c.storages.get(leader.id)!;
  const save = storage.save.bind(storage);
  let release!: () => void;
  const disk = new Promise<void>((resolve) => release = resolve);
  let held = 0;
  storage.save = async (hard, entries) => {
    if (entries.length > 0) {
      held++;
      await disk;
    }
    return save(hard, entries);
  };
  const first = await during(c, leader.propose({ add: 1 }));
  deepStrictEqual([first.state, first.result, held], ["committed", 1, 1]);
  // A second write, proposed while the first batch's write still runs,
  // reaches the followers at once; the leader applies it once its own
  // storage has it too.
  const second = leader.propose({ add: 2 });
  await c.advance(200);
  strictEqual(c.nodes.get(leader.id === "a" ? "b" : "a")!.status().lastIndex, first.index + 1);
  release();
  deepStrictEqual((await during(c, second)).result, 3);
  await c.stop();
});

Deno.test("maxWaiting bounds the clients waiting: past it writes fail at once with 503", async () => {
  const clock = manualClock();
  const node = await createNode({
    id: "solo",
    stateMachine: counter(),
    transport: new MemoryNetwork().transport(),
    clock,
    maxWaiting: 3,
  });
  await settle();
  const waiting = [1, 2, 3].map(() => node.propose({ add: 1 }));
  await rejects(node.propose({ add: 1 }), UnavailableError);
  await settle();
  for (const w of waiting) strictEqual((await w).state, "committed");
  await node.stop();
});

Deno.test("stop() ends waiting writes with a timeout, not a false success", async () => {
  const c = await cluster(["a", "b", "c"]);
  const leader = await electLeader(c);
  c.network.isolate(leader.id);
  const pending = leader.propose({ add: 1 });
  await settle();
  await leader.stop();
  await rejects(pending, TimeoutError);
  await c.stop();
});

Deno.test("a node restarted on its storage recovers its log and state", async () => {
  const c = await cluster(["a", "b", "c"]);
  const leader = await electLeader(c);
  await during(c, leader.propose({ add: 3 }));
  await c.advance(50);
  const victim = [...c.nodes.values()].find((n) => n !== leader)!;
  const applied = victim.status().appliedIndex;
  await victim.stop();
  const restarted = await createNode({
    id: victim.id,
    stateMachine: counter(),
    transport: c.network.transport(),
    storage: c.storages.get(victim.id)!,
    clock: c.clock,
    heartbeatMs: 10,
    electionMs: 100,
  });
  c.nodes.set(victim.id, restarted);
  await c.advance(100);
  strictEqual(restarted.status().appliedIndex >= applied, true);
  strictEqual((await during(c, restarted.read(null))).value, 3);
  await c.stop();
});

Deno.test("a cluster on a lossy MemoryNetwork still commits every write (Raft retries what is lost)", async () => {
  const c = await cluster(["a", "b", "c"]);
  c.network.lossRate = 0.3;
  const leader = await electLeader(c);
  for (let i = 1; i <= 5; i++) strictEqual((await during(c, leader.propose({ add: 1 }))).result, i);
  strictEqual(c.network.dropped > 0, true);
  c.network.lossRate = 0;
  await c.advance(200);
  for (const n of c.nodes.values()) {
    strictEqual((await during(c, n.read(null, { consistency: "local" }))).value, 5);
  }
  await c.stop();
});

Deno.test("stop() after a storage failure still closes the storage and the transport", async () => {
  let closes = 0;
  let failing = false;
  const inner = memoryStorage();
  const storage: Storage = {
    load: () => inner.load(),
    save: (h, e) => failing ? Promise.reject(new Error("disk gone")) : inner.save(h, e),
    saveSnapshot: (s) => inner.saveSnapshot(s),
    close: () => {
      closes++;
      return inner.close();
    },
  };
  const clock = manualClock();
  const node = await createNode({
    id: "a",
    stateMachine: counter(),
    transport: new MemoryNetwork().transport(),
    storage,
    clock,
    onError: () => {},
  });
  await settle();
  failing = true;
  await rejects(node.propose({ add: 1 }), TimeoutError);
  strictEqual(node.failure instanceof Error, true);
  await node.stop();
  strictEqual(closes, 1);
});

Deno.test("reads and writes while start() awaits the storage's load fail with 503, not a TypeError", async () => {
  const inner = memoryStorage();
  let loaded = () => {};
  const loading = new Promise<void>((resolve) => loaded = resolve);
  const storage: Storage = {
    load: () => loading.then(() => inner.load()),
    save: (h, e) => inner.save(h, e),
    saveSnapshot: (s) => inner.saveSnapshot(s),
    close: () => inner.close(),
  };
  const node = new WaterCraftNodeClass({
    id: "a",
    stateMachine: counter(),
    transport: new MemoryNetwork().transport(),
    storage,
    clock: manualClock(),
  });
  const started = node.start();
  await settle();
  await rejects(node.read(null), UnavailableError);
  await rejects(node.propose({ add: 1 }), UnavailableError);
  loaded();
  await started;
  strictEqual((await node.propose({ add: 2 })).result, 2);
  await node.stop();
});

Deno.test("a write waiting for a leader wakes when the leader returns within one batch", async () => {
  const clock = manualClock(1_000_000);
  const network = new MemoryNetwork();
  const members: Member[] = ["a", "b", "c"].map((id) => ({ id, voter: true }));
  let gate: (() => void) | null = null;
  let blocking = false;
  const nodes = new Map<string, WaterCraftNode>();
  for (const [i, m] of members.entries()) {
    const inner = memoryStorage();
    // c's disk can be held, so a batch stays in flight while messages arrive.
    const storage: Storage = m.id !== "c" ? inner : {
      load: () => inner.load(),
      save: async (h, e) => {
        if (blocking) await new Promise<void>((r) => gate = r);
        return inner.save(h, e);
      },
      saveSnapshot: (s) => inner.saveSnapshot(s),
      close: () => inner.close(),
    };
    nodes.set(
      m.id,
      await createNode({
        id: m.id,
        stateMachine: counter(),
        transport: network.transport(),
        storage,
        members,
        clock,
        seed: i + 1,
        heartbeatMs: 10,
        electionMs: 100,
        onError: () => {},
      }),
    );
  }
  const advance = async (ms: number) => {
    for (let t = 0; t < ms; t += 10) {
      clock.advance(10);
      await settle();
    }
  };
  await advance(600);
  const leader = [...nodes.values()].find((n) => n.status().role === "leader")!;
  const c = nodes.get("c")!;
  if (leader === c) throw new Error("the scenario needs c to follow");
  blocking = true;
  leader.propose({ add: 1 }).catch(() => {});
  await settle(); // c has a batch in flight that waits on the gate
  c.raft.campaign(); // c forgets the leader...
  let outcome = "pending";
  c.propose({ add: 2 }, { timeoutMs: 2000 }).then(() => outcome = "ok", (e) => outcome = String(e));
  await settle();
  await advance(20); // ...and a heartbeat brings it back before c's next batch
  blocking = false;
  (gate as (() => void) | null)?.();
  for (let i = 0; i < 150 && outcome === "pending"; i++) await advance(10);
  strictEqual(outcome, "ok");
  for (const n of nodes.values()) await n.stop();
});

Deno.test("a follower's saves wait for the disk on its thread; a leader's do not", async () => {
  /** Each node's saves of entries, by whether they asked to wait on the thread. */
  const saves = new Map<string, { onThread: number; handedOff: number }>();
  const c = await cluster(["a", "b", "c"], [], (id) => {
    const inner = memoryStorage();
    const count = { onThread: 0, handedOff: 0 };
    saves.set(id, count);
    return {
      load: () => inner.load(),
      save: (h, e, options) => {
        if (e.length > 0) options?.waitOnThread === true ? count.onThread++ : count.handedOff++;
        return inner.save(h, e, options);
      },
      saveSnapshot: (s) => inner.saveSnapshot(s),
      close: () => inner.close(),
    };
  });
  const leader = await electLeader(c);
  await c.advance(100);
  for (const count of saves.values()) count.onThread = count.handedOff = 0;
  for (let i = 0; i < 5; i++) await during(c, leader.propose({ add: 1 }));
  await c.advance(50);
  for (const [id, count] of saves) {
    deepStrictEqual(
      count,
      id === leader.id ? { onThread: 0, handedOff: 5 } : { onThread: 5, handedOff: 0 },
      id,
    );
  }
  await c.stop();
});
