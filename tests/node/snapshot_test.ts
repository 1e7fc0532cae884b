/**
 * Snapshots and log compaction in the driver: nodes snapshot their state
 * machine every `snapshotEvery` entries, compact their logs, send snapshots
 * to followers that need compacted entries, and recover from snapshot plus
 * log. Nodes run on a {@linkcode MemoryNetwork} with a manual clock (no
 * sleeps); the restart test uses real files.
 *
 * @module
 */

import { deepStrictEqual, notStrictEqual, ok, strictEqual } from "node:assert/strict";
import {
  createNode,
  fileStorage,
  type KvStateMachine,
  kvStateMachine,
  type Member,
  memoryStorage,
  type NodeOptions,
  type Storage,
  type WaterCraftNode,
} from "../../mod.ts";
import { type ManualClock, manualClock, MemoryNetwork } from "../../src/testing.ts";
import { Sessions } from "../../src/node/sessions.ts";

/** Lets queued promise chains run (no simulated time passes). */
async function settle(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise((r) => setTimeout(r, 0));
}

/** Advances simulated time in heartbeat steps until `done()` (bounded). */
async function until(clock: ManualClock, done: () => boolean, maxMs = 20_000): Promise<void> {
  for (let t = 0; t < maxMs && !done(); t += 10) {
    clock.advance(10);
    await settle();
  }
  ok(done(), `condition not met within ${maxMs} ms of simulated time`);
}

/** Resolves `promise` while advancing simulated time (bounded). */
async function during<T>(clock: ManualClock, promise: Promise<T>): Promise<T> {
  let outcome: { value: T } | { error: unknown } | null = null;
  promise.then((value) => outcome = { value }, (error) => outcome = { error });
  await until(clock, () => outcome !== null);
  const done = outcome! as { value: T } | { error: unknown };
  if ("error" in done) throw done.error;
  return done.value;
}

function startNode(
  id: string,
  clock: ManualClock,
  extra: Partial<NodeOptions> & { transport: NodeOptions["transport"] },
): Promise<WaterCraftNode> {
  return createNode({
    id,
    stateMachine: kvStateMachine(),
    clock,
    seed: id.charCodeAt(1),
    heartbeatMs: 10,
    electionMs: 100,
    onError: () => {},
    ...extra,
  });
}

/**
 * Holds the key-value machine's background snapshots until `settle`: then
 * each finishes, or fails when told to.
 *
 * @param kv The machine.
 * @param onStart Called as a snapshot starts.
 * @returns `settle`, and whether a snapshot started.
 */
function holdBackgroundSnapshots(
  kv: KvStateMachine,
  onStart: () => void = () => {},
): { settle(fail: boolean): void; started(): boolean } {
  let settle!: (fail: boolean) => void;
  const held = new Promise<boolean>((resolve) => settle = resolve);
  let started = false;
  const take = kv.snapshotInBackground.bind(kv);
  kv.snapshotInBackground = async () => {
    started = true;
    onStart();
    const data = take();
    if (await held) throw new Error("the disk is on fire");
    return await data;
  };
  return { settle, started: () => started };
}

Deno.test("a follower offline past the retained log catches up through a snapshot (§7)", async () => {
  const clock = manualClock(1_000_000);
  const network = new MemoryNetwork();
  const ids = ["n1", "n2", "n3"];
  const members: Member[] = ids.map((id) => ({ id, voter: true }));
  const storages = new Map<string, Storage>(ids.map((id) => [id, memoryStorage()]));
  const nodes = new Map<string, WaterCraftNode>();
  for (const id of ids) {
    nodes.set(
      id,
      await startNode(id, clock, {
        transport: network.transport(),
        storage: storages.get(id)!,
        members,
        snapshotEvery: 20,
        snapshotKeepEntries: 5,
        // Small messages, and a value of 3 kB per key: the snapshot needs many chunks.
        maxMsgBytes: 4096,
      }),
    );
  }
  try {
    await until(clock, () => [...nodes.values()].some((n) => n.status().role === "leader"));
    const n1 = [...nodes.values()].find((n) => n.status().role === "leader")!;
    const n3 = [...nodes.values()].find((n) => n !== n1)!;
    await during(clock, n1.propose({ op: "put", key: "before", value: 0 }));
    await until(clock, () => n3.status().appliedIndex === n1.status().appliedIndex);
    const behind = n3.status().appliedIndex;
    // A watcher on n3, from where it stands: the snapshot will replace what it has not read.
    const watcher = n3.watch();

    network.isolate(n3.id);
    const big = "x".repeat(3000);
    for (let i = 0; i < 60; i++) {
      await during(clock, n1.propose({ op: "put", key: `k${i}`, value: `${i}:${big}` }));
    }
    const leaderSnapshot = (await storages.get(n1.id)!.load()).snapshot;
    notStrictEqual(leaderSnapshot, null);
    // Entries n3 lacks are gone from the leader's storage and memory alike.
    ok(leaderSnapshot!.meta.index - 5 > behind + 1, `${leaderSnapshot!.meta.index} vs ${behind}`);

    network.heal();
    await until(clock, () => n3.status().appliedIndex >= n1.status().appliedIndex);
    strictEqual(n3.head().head, n1.head().head);
    strictEqual(n3.head().index, n1.head().index);
    // The snapshot carried each key's revisions: they are the leader's.
    const local = await n3.read({ op: "get", key: "k59" }, { consistency: "local" });
    const k59 = n1.status().appliedIndex;
    deepStrictEqual(local.value, { found: true, value: `59:${big}`, created: k59, modified: k59 });
    const before = await n3.read({ op: "get", key: "before" }, { consistency: "local" });
    deepStrictEqual(before.value, { found: true, value: 0, created: behind, modified: behind });
    // n3 installed a snapshot: its storage starts past everything it had.
    const n3Snapshot = (await storages.get(n3.id)!.load()).snapshot;
    ok(n3Snapshot !== null && n3Snapshot.meta.index > behind);
    // Its watcher is told why it is dropped, and from where it had read.
    const events = [];
    for (let i = 0; i < 100; i++) {
      const { value, done } = await watcher.next();
      if (done) break;
      events.push(value);
      if (value.type === "dropped") break;
    }
    deepStrictEqual(events.filter((e) => e.type !== "leader").at(-1), {
      type: "dropped",
      reason: "snapshot",
      resumeAfter: behind,
    });

    // And it keeps replicating from the log afterwards.
    await during(clock, n1.propose({ op: "put", key: "after", value: 1 }));
    await until(clock, () => n3.status().appliedIndex === n1.status().appliedIndex);
    strictEqual(n3.head().head, n1.head().head);
  } finally {
    for (const node of nodes.values()) await node.stop();
  }
});

Deno.test("a restart from snapshot plus log gives the same state, head and idempotency keys", async () => {
  const dir = await Deno.makeTempDir({ prefix: "watercraft-snapshot-" });
  const clock = manualClock(1_000_000);
  const open = (sm: KvStateMachine) =>
    startNode("n1", clock, {
      transport: new MemoryNetwork().transport(),
      storage: fileStorage(dir),
      stateMachine: sm,
      snapshotEvery: 10,
    });
  try {
    const first = await open(kvStateMachine());
    const kept = await during(
      clock,
      first.propose({ op: "put", key: "once", value: 1 }, { idempotencyKey: "key-1" }),
    );
    for (let i = 0; i < 34; i++) {
      await during(clock, first.propose({ op: "put", key: `k${i % 7}`, value: i }));
    }
    const head = first.head();
    const status = first.status();
    await first.stop();

    // On disk: the latest snapshot and only the entries after it.
    const disk = fileStorage(dir);
    const state = await disk.load();
    await disk.close();
    ok(state.snapshot !== null && state.snapshot.meta.index >= 30, "no snapshot on disk");
    strictEqual(state.entries[0]?.index, state.snapshot.meta.index + 1);
    strictEqual(state.entries.at(-1)?.index, status.lastIndex);

    const again = await open(kvStateMachine());
    try {
      // It re-applies the entries after the snapshot as it learns they are
      // committed (and, leading again, adds a no-op of its new term).
      await until(clock, () => again.head().index > head.index);
      deepStrictEqual(again.entry(head.head), {
        id: head.head,
        index: head.index,
        term: head.term,
        state: "committed",
      });
      ok(again.status().commitIndex > status.commitIndex);
      // Revisions came back too: put i landed at kept.index + 1 + i, and
      // key j was first written by put j.
      for (let j = 0; j < 7; j++) {
        const got = await during(clock, again.read({ op: "get", key: `k${j}` }));
        const last = 28 + j <= 33 ? 28 + j : 21 + j;
        deepStrictEqual(got.value, {
          found: true,
          value: last,
          created: kept.index + 1 + j,
          modified: kept.index + 1 + last,
        });
      }
      // The key's first result came back from the snapshot: no second write.
      const retried = await during(
        clock,
        again.propose({ op: "put", key: "once", value: 2 }, { idempotencyKey: "key-1" }),
      );
      strictEqual(retried.index, kept.index);
      strictEqual(retried.id, kept.id);
      const once = await during(clock, again.read({ op: "get", key: "once" }));
      deepStrictEqual(once.value, {
        found: true,
        value: 1,
        created: kept.index,
        modified: kept.index,
      });
    } finally {
      await again.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a snapshot taken in the background holds up no write and stands at the index it was taken at", async () => {
  const dir = await Deno.makeTempDir({ prefix: "watercraft-snapshot-" });
  const clock = manualClock(1_000_000);
  const kv = kvStateMachine();
  let takenAt = -1;
  let node: WaterCraftNode | null = null;
  const snapshot = holdBackgroundSnapshots(kv, () => takenAt = node!.head().index);
  try {
    node = await startNode("n1", clock, {
      transport: new MemoryNetwork().transport(),
      storage: fileStorage(dir),
      stateMachine: kv,
      // More than the writes made meanwhile: no second snapshot is due
      // when this one ends, so the one on disk is this one.
      snapshotEvery: 20,
    });
    for (let i = 0; takenAt < 0 && i < 40; i++) {
      await during(clock, node.propose({ op: "put", key: `before-${i}`, value: i }));
    }
    ok(takenAt > 0, "no background snapshot started");
    // Writes go on committing and applying while the snapshot is unfinished.
    for (let i = 0; i < 10; i++) {
      await during(clock, node.propose({ op: "put", key: `after-${i}`, value: i }));
    }
    strictEqual(node.raft.snapshot.index, 0);
    snapshot.settle(false);
    await until(clock, () => node!.raft.snapshot.index === takenAt);
    await node.stop();

    // What was saved is the state at `takenAt`: no write made after it.
    const disk = fileStorage(dir);
    const state = await disk.load();
    await disk.close();
    strictEqual(state.snapshot?.meta.index, takenAt);
    const restored = kvStateMachine();
    restored.restore(Sessions.machinePart(state.snapshot.data)!);
    const keys = restored.query({ op: "list" }).items.map((item) => item.key);
    ok(keys.length > 0 && keys.every((key) => key.startsWith("before-")), keys.join(" "));
  } finally {
    await node?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a snapshot that came due while another was written is taken when that write ends, with no write after", async () => {
  const dir = await Deno.makeTempDir({ prefix: "watercraft-snapshot-" });
  const clock = manualClock(1_000_000);
  const storage = fileStorage(dir);
  // The first snapshot's write beside the log waits for the test.
  let release!: () => void;
  const held = new Promise<void>((resolve) => release = resolve);
  const save = storage.saveSnapshotBeside!.bind(storage);
  let writes = 0;
  Object.assign(storage, {
    saveSnapshotBeside: async (snapshot: Parameters<typeof save>[0]) => {
      if (writes++ === 0) await held;
      return await save(snapshot);
    },
  });
  let node: WaterCraftNode | null = null;
  try {
    node = await startNode("n1", clock, {
      transport: new MemoryNetwork().transport(),
      storage,
      snapshotEvery: 5,
    });
    for (let i = 0; writes === 0 && i < 20; i++) {
      await during(clock, node.propose({ op: "put", key: `a-${i}`, value: i }));
    }
    strictEqual(writes, 1, "the first snapshot is being written");
    const first = node.raft.snapshot.index;
    // Another snapshot's worth of writes while the first is held; then none.
    for (let i = 0; i < 6; i++) {
      await during(clock, node.propose({ op: "put", key: `b-${i}`, value: i }));
    }
    const applied = node.head().index;
    strictEqual(writes, 1, "one snapshot is written at a time");
    release();
    await until(clock, () => node!.raft.snapshot.index === applied);
    ok(applied >= first + 5);
  } finally {
    await node?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a node stopped while its snapshot is taken in the background stops cleanly, and a failed one stops the node", async () => {
  const clock = manualClock(1_000_000);
  const run = async (fail: boolean) => {
    const dir = await Deno.makeTempDir({ prefix: "watercraft-snapshot-" });
    const errors: unknown[] = [];
    const kv = kvStateMachine();
    const snapshot = holdBackgroundSnapshots(kv);
    const node = await startNode("n1", clock, {
      transport: new MemoryNetwork().transport(),
      storage: fileStorage(dir),
      stateMachine: kv,
      snapshotEvery: 5,
      onError: (e) => errors.push(e),
    });
    try {
      for (let i = 0; !snapshot.started() && i < 20; i++) {
        await during(clock, node.propose({ op: "put", key: `k${i}`, value: i }));
      }
      ok(snapshot.started(), "no background snapshot started");
      if (fail) {
        snapshot.settle(true);
        await until(clock, () => node.failure !== null);
        strictEqual(errors.length, 1);
        return;
      }
      await node.stop();
      // Finishing after the stop, it saves nothing into the closed storage.
      snapshot.settle(false);
      await settle();
      deepStrictEqual(errors, []);
      strictEqual(node.raft.snapshot.index, 0);
    } finally {
      await node.stop();
      await Deno.remove(dir, { recursive: true });
    }
  };
  await run(false);
  await run(true);
});
