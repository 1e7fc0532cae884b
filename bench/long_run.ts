/**
 * The long-run check: writes to a 3-node cluster (one process, in-memory
 * network, real file storage with fsync) and reports, at checkpoints, the
 * process's resident memory and each node's data directory, so one can see
 * that snapshots and compaction keep both flat however long the cluster runs.
 *
 * ```sh
 * deno task long-run                      # 1,000,000 writes, checkpoints at 100k, 500k, 1M
 * deno task long-run --writes 200000 --checkpoints 50000,100000,200000
 * ```
 *
 * Each line is JSON: `{"writes", "rssMiB", "heapMiB", "dataMiB": {node: MiB}, "files": {node:
 * files in its data directory}, "applied": {node: index}, "writesPerSec"}`. The three nodes share one process, so `rssMiB` is theirs
 * together. Not part of `deno task test`: it takes minutes.
 *
 * @module
 */

import {
  createNode,
  fileStorage,
  kvStateMachine,
  type Member,
  type WaterCraftNode,
} from "../mod.ts";
import { MemoryNetwork } from "../src/testing.ts";

function flag(name: string, fallback: string): string {
  const at = Deno.args.indexOf(`--${name}`);
  return at >= 0 && Deno.args[at + 1] !== undefined ? Deno.args[at + 1]! : fallback;
}

const writes = Number(flag("writes", "1000000"));
const checkpoints = flag("checkpoints", "100000,500000,1000000").split(",").map(Number);
/** Writes in flight at once: enough to fill the leader's batches. */
const CONCURRENCY = 512;
/** Distinct keys: the state stays a fixed size, so its snapshot does too. */
const KEYS = 10_000;

async function dirStats(dir: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile) continue;
    // A snapshot's temporary file may be renamed between the listing and the stat.
    const stat = await Deno.stat(`${dir}/${e.name}`).catch(() => null);
    if (stat === null) continue;
    bytes += stat.size;
    files++;
  }
  return { bytes, files };
}

const VALUE = "v".repeat(64);

/** Proposes writes one after another until `writes` were started; reports at checkpoints. */
async function worker(
  leader: WaterCraftNode,
  progress: { next: number; done: number },
  started: number,
): Promise<void> {
  while (progress.next < writes) {
    const i = progress.next++;
    await leader.propose({ op: "put", key: `key-${i % KEYS}`, value: `${i}:${VALUE}` });
    progress.done++;
    if (checkpoints.includes(progress.done)) await report(progress.done, started);
  }
}

/** Prints one checkpoint line. */
async function report(at: number, started: number): Promise<void> {
  const mem = Deno.memoryUsage();
  const dataMiB: Record<string, number> = {};
  const files: Record<string, number> = {};
  for (const id of ids) {
    const s = await dirStats(`${root}/${id}`);
    dataMiB[id] = Math.round((s.bytes / (1 << 20)) * 10) / 10;
    files[id] = s.files;
  }
  console.log(JSON.stringify({
    writes: at,
    rssMiB: Math.round(mem.rss / (1 << 20)),
    heapMiB: Math.round(mem.heapUsed / (1 << 20)),
    dataMiB,
    files,
    applied: Object.fromEntries(nodes.map((n) => [n.id, n.status().appliedIndex])),
    writesPerSec: Math.round(at / ((performance.now() - started) / 1000)),
  }));
}

const root = await Deno.makeTempDir({ prefix: "watercraft-long-run-" });
const network = new MemoryNetwork();
const ids = ["n1", "n2", "n3"];
const members: Member[] = ids.map((id) => ({ id, voter: true }));
const nodes: WaterCraftNode[] = [];
for (const [i, id] of ids.entries()) {
  nodes.push(
    await createNode({
      id,
      stateMachine: kvStateMachine(),
      transport: network.transport(),
      storage: fileStorage(`${root}/${id}`, { segmentBytes: 8 << 20 }),
      members,
      seed: i + 1,
      // Snapshots every 10,000 entries (the default); 8 MiB segments let
      // compaction delete whole files well before the end of the run.
      snapshotEvery: 10_000,
    }),
  );
}

try {
  const deadline = Date.now() + 30_000;
  let leader: WaterCraftNode | undefined;
  while (leader === undefined && Date.now() < deadline) {
    leader = nodes.find((n) => n.status().role === "leader");
    if (leader === undefined) await new Promise((r) => setTimeout(r, 20));
  }
  if (leader === undefined) throw new Error("No leader within 30 s");

  const started = performance.now();
  const progress = { next: 0, done: 0 };
  await Promise.all(
    Array.from({ length: CONCURRENCY }, () => worker(leader!, progress, started)),
  );
  // Followers may trail the leader by a batch: wait (bounded) until all agree.
  const until = Date.now() + 30_000;
  const heads = () => new Set(nodes.map((n) => n.head().head));
  while (heads().size > 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  console.log(JSON.stringify({ writes: progress.done, distinctHeads: heads().size }));
} finally {
  for (const n of nodes) await n.stop();
  await Deno.remove(root, { recursive: true });
}
