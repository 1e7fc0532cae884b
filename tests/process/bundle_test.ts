/**
 * The CLI as one JavaScript file for Node (`deno task build:node`): built
 * into a temporary directory with no `node_modules` beside it, it runs on
 * plain `node` with no install step and no TypeScript loader, serves the
 * key-value API, answers the operator commands, and exits 0 on SIGTERM.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { CliProcess, freePort, REPO_ROOT, request, waitFor } from "./harness.ts";
import { ensureTools } from "./tools.ts";

Deno.test("the bundled CLI runs on plain Node with nothing installed beside it", async () => {
  const launchers = await ensureTools();
  const node = launchers.node ?? "node";
  const dir = await Deno.makeTempDir({ prefix: "watercraft-bundle-" });
  let proc: CliProcess | null = null;
  try {
    const bundle = join(dir, "watercraft.mjs");
    // The task's command, with the output in the temporary directory.
    const task =
      JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "deno.json"))).tasks["build:node"];
    const args = (task as string).split(" ").slice(1).map((a) =>
      a === "dist/watercraft.mjs" ? bundle : a
    );
    const built = await new Deno.Command(Deno.execPath(), { args, cwd: REPO_ROOT }).output();
    strictEqual(built.code, 0, new TextDecoder().decode(built.stderr));

    const version = await new Deno.Command(node, { args: [bundle, "--version"], cwd: dir })
      .output();
    match(new TextDecoder().decode(version.stdout), /^watercraft \d+\.\d+\.\d+ \(node /);

    const port = freePort();
    const url = `http://127.0.0.1:${port}`;
    proc = new CliProcess(node, [
      bundle,
      "--id",
      "bundled",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--data",
      join(dir, "data"),
    ], { label: "bundled@node" });
    await proc.waitForLine(/^watercraft listening on /);
    const put = await request("PUT", `${url}/v1/kv/a`, { json: { value: [1, "two"] } });
    strictEqual(put.status, 200, put.text);
    const got = await request("GET", `${url}/v1/kv/a`);
    deepStrictEqual(got.body.value, [1, "two"]);
    const status = await new Deno.Command(node, {
      args: [bundle, "status", "--endpoints", url, "--json"],
      cwd: dir,
      env: { WATERCRAFT_SECRET: "" },
    }).output();
    const text = new TextDecoder().decode(status.stdout);
    strictEqual(status.code, 0, new TextDecoder().decode(status.stderr));
    ok(JSON.parse(text).members.some((m: { id: string }) => m.id === "bundled"), text);

    proc.kill("SIGTERM");
    const exit = await waitFor("the bundled node to exit", () => proc!.exited, {
      timeoutMs: 10_000,
    });
    strictEqual(exit.code, 0, proc.describe());
  } finally {
    await proc?.close();
    await Deno.remove(dir, { recursive: true });
  }
});
