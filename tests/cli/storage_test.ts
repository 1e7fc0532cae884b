/**
 * The CLI's storage: what it opens is the adapter, every capability kept.
 *
 * @module
 */

import { ok, strictEqual } from "node:assert/strict";
import { parseArgs } from "../../src/cli/flags.ts";
import { openStorage } from "../../src/cli/storage.ts";

Deno.test("the CLI's file storage keeps saveSnapshotBeside, so snapshots do not hold up the log", async () => {
  const dir = await Deno.makeTempDir({ prefix: "watercraft-cli-storage-" });
  try {
    const options = parseArgs(["--id", "n1", "--data", dir], {});
    if (options === "help") throw new Error("unreachable");
    const { storage } = await openStorage(options);
    try {
      ok(storage.saveSnapshotBeside !== undefined, "saveSnapshotBeside was dropped");
      strictEqual((await storage.load())?.entries.length ?? 0, 0);
    } finally {
      await storage.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
