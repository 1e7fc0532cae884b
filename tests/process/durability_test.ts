/**
 * Durability of CLI nodes on file storage: three nodes under a steady write
 * load are all SIGKILLed at once and restarted on their data directories;
 * every write that got a 2xx must be readable, and all nodes must report the
 * same head at the same index. On Deno, Bun and Node: Bun and Node save
 * through `O_DSYNC` writes, Deno through a write and an `fdatasync`.
 *
 * @module
 */

import { strictEqual } from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type CliNode,
  closeAll,
  freePort,
  request,
  type Runtime,
  startNode,
  waitFor,
} from "./harness.ts";
import { ensureTools } from "./tools.ts";

for (const runtime of ["deno", "bun", "node"] as const satisfies readonly Runtime[]) {
  Deno.test(`cli on ${runtime}, file storage: SIGKILL all three nodes under load, restart, lose no acknowledged write`, () =>
    killAllAndRestart(runtime));
}

async function killAllAndRestart(runtime: Runtime): Promise<void> {
  const launchers = runtime === "deno" ? {} : await ensureTools();
  const dir = mkdtempSync(join(tmpdir(), "watercraft-durable-"));
  const nodes: CliNode[] = [];
  try {
    const ids = ["d1", "d2", "d3"];
    const ports = ids.map(() => freePort());
    const start = (i: number, seeds?: string[]) =>
      startNode({
        id: ids[i]!,
        runtime,
        launchers,
        port: ports[i]!,
        data: join(dir, ids[i]!),
        ...(seeds ? { join: seeds } : {}),
      });
    nodes.push(await start(0));
    nodes.push(await start(1, [nodes[0]!.url]));
    nodes.push(await start(2, [nodes[0]!.url]));
    await waitFor("3 voters", async () => {
      const m = await request("GET", `${nodes[0]!.url}/v1/members`);
      return m.body?.members?.filter((x: { voter: boolean }) => x.voter).length === 3;
    }, { timeoutMs: 20_000 });

    // Steady load from three writers; remember what was acknowledged.
    const acked = new Map<string, number>();
    let stop = false;
    const writer = async (w: number) => {
      for (let i = 0; i < 10_000 && !stop; i++) {
        const key = `w${w}-${i}`;
        const target = nodes[(w + i) % 3]!;
        try {
          const res = await request("PUT", `${target.url}/v1/kv/${key}`, {
            json: { value: i },
            timeoutMs: 3000,
          });
          if (res.status === 200) acked.set(key, i);
        } catch {
          // The node died under the request: its outcome is unknown, which is allowed.
        }
      }
    };
    const writers = [0, 1, 2].map(writer);
    await waitFor("some acknowledged writes", () => acked.size >= 300, { timeoutMs: 20_000 });
    for (const n of nodes) n.process.kill("SIGKILL");
    stop = true;
    await Promise.all(writers);
    await closeAll(nodes.map((n) => n.process));
    nodes.length = 0;

    // Restart all three on their data (no --join: they recover their cluster).
    for (let i = 0; i < 3; i++) nodes.push(await start(i));
    await waitFor("a leader after restart", async () => {
      const s = await request("GET", `${nodes[0]!.url}/v1/status`);
      return s.body?.leader !== null && s.body?.leader !== undefined;
    }, { timeoutMs: 20_000 });
    console.log(`acknowledged before the kill: ${acked.size}`);
    for (const [key, value] of acked) {
      const got = await request("GET", `${nodes[Number(key[1]) % 3]!.url}/v1/kv/${key}`);
      strictEqual(got.status, 200, `${key} acknowledged but lost: ${got.text}`);
      strictEqual(got.body.value, value);
    }
    // One more write, then all nodes agree on the head at the same index.
    const last = await request("PUT", `${nodes[1]!.url}/v1/kv/after`, { json: { value: true } });
    strictEqual(last.status, 200, last.text);
    await waitFor("equal heads", async () => {
      const heads = await Promise.all(nodes.map((n) => request("GET", `${n.url}/v1/head`)));
      return heads.every((h) => h.body.index === last.body.index && h.body.head === last.body.head);
    }, { timeoutMs: 10_000 });
  } finally {
    await closeAll(nodes.map((n) => n.process));
    rmSync(dir, { recursive: true, force: true });
  }
}
