/**
 * Backup and restore end to end, as an operator runs them: `watercraft
 * snapshot save` from a 3-node CLI cluster under write load, `watercraft
 * snapshot restore` into a new data directory, and a new cluster started
 * from it with every key and the head of the backup.
 *
 * @module
 */

import { deepStrictEqual, notStrictEqual, ok, strictEqual } from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeBackup } from "../../src/http/backup.ts";
import { fileStorage } from "../../src/storage/file/storage.ts";
import {
  type CliNode,
  closeAll,
  freePort,
  request,
  runCli,
  startNode,
  TEST_SECRET,
  waitFor,
} from "../process/harness.ts";

/** One acknowledged write of the load. */
interface Written {
  readonly key: string;
  readonly value: number;
  readonly index: number;
  readonly id: string;
}

Deno.test("snapshot save under write load, restore into a new cluster: same keys, same head", async () => {
  const dir = mkdtempSync(join(tmpdir(), "watercraft-backup-"));
  const nodes: CliNode[] = [];
  try {
    const first = await startNode({ id: "bk1" });
    nodes.push(first);
    const others = await Promise.all(
      ["bk2", "bk3"].map((id) =>
        startNode({ id, join: [first.url] }).then((n) => {
          nodes.push(n);
          return n;
        })
      ),
    );
    await waitFor("three voters", async () => {
      const res = await request("GET", `${first.url}/v1/members`);
      return res.body?.members?.filter((m: { voter: boolean }) => m.voter).length === 3;
    });

    // Two writers through a follower, until the backup is taken.
    const written: Written[] = [];
    let loading = true;
    const writer = async (name: string) => {
      for (let i = 0; loading && i < 400; i++) {
        const key = `w/${name}/${i}`;
        const res = await request("PUT", `${others[0]!.url}/v1/kv/${encodeURIComponent(key)}`, {
          json: { value: i },
        });
        strictEqual(res.status, 200, res.text);
        written.push({ key, value: i, index: res.body.index, id: res.body.head });
      }
    };
    const load = Promise.all([writer("a"), writer("b")]);
    await waitFor("some load", () => written.length >= 40);
    const file = join(dir, "cluster.backup");
    const saved = await runCli(["snapshot", "save", file, "--json", "--endpoints", others[1]!.url]);
    loading = false;
    await load;
    strictEqual(saved.code, 0, saved.stderr);
    const report = JSON.parse(saved.stdout);

    const backup = decodeBackup(new Uint8Array(readFileSync(file)));
    strictEqual(backup.header.index, report.index);
    strictEqual(backup.checksum, report.sha256);
    // Every write acknowledged before the save began is in the backup (it is
    // linearizable), and the head is the hash of the entry at its index.
    const atHead = written.find((w) => w.index === backup.header.index);
    ok(atHead !== undefined, `no write landed at the backup's index ${backup.header.index}`);
    strictEqual(backup.header.head, atHead.id);
    const expected = new Map(
      written.filter((w) => w.index <= backup.header.index).map((w) => [w.key, w.value]),
    );
    ok(
      expected.size >= 40 && expected.size < written.length,
      `${expected.size} of ${written.length}`,
    );

    // Restore with the flags the node will be started with; no secret given:
    // the restored cluster gets its own.
    const port = freePort();
    const url = `http://127.0.0.1:${port}`;
    const data = join(dir, "restored");
    const flags = ["--id", "rs1", "--host", "127.0.0.1", "--port", String(port), "--data", data];
    const restored = await runCli(["snapshot", "restore", file, ...flags, "--advertise", url], {
      env: { WATERCRAFT_SECRET: "" },
    });
    strictEqual(restored.code, 0, restored.stderr);
    const secret = readFileSync(join(data, "secret"), "utf8").trim();
    notStrictEqual(secret, TEST_SECRET, "a restored cluster has a new secret");
    const again = await runCli(["snapshot", "restore", file, ...flags], {
      env: { WATERCRAFT_SECRET: "" },
    });
    strictEqual(again.code, 2, "restoring over a node's state is refused");

    // What the data dir holds: the backup's index, term and head.
    const storage = fileStorage(data);
    const state = await storage.load();
    await storage.close();
    deepStrictEqual(
      [state.snapshot?.meta.index, state.snapshot?.meta.term, state.snapshot?.meta.hash],
      [backup.header.index, backup.header.term, backup.header.head],
    );

    const node = await startNode({ id: "rs1", data, port, env: { WATERCRAFT_SECRET: "" } });
    nodes.push(node);
    const status = await waitFor("the restored node to lead", async () => {
      const res = await request("GET", `${node.url}/v1/status`);
      return res.body?.role === "leader" ? res.body : null;
    });
    ok(status.appliedIndex >= backup.header.index);
    strictEqual(status.members.length, 1);
    const listed = await runCli([
      "kv",
      "list",
      "w/",
      "--limit",
      "1000",
      "--json",
      "--endpoints",
      url,
    ]);
    strictEqual(listed.code, 0, listed.stderr);
    const items = JSON.parse(listed.stdout).items as { key: string; value: number }[];
    deepStrictEqual(new Map(items.map((item) => [item.key, item.value])), expected);
  } finally {
    await closeAll(nodes.map((n) => n.process));
    rmSync(dir, { recursive: true, force: true });
  }
});
