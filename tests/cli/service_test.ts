/**
 * `watercraft serve` as a well-behaved service: settings from flags, the
 * environment and a config file in that order (`--print-config`), the same
 * node and data on a second start with the same flags, nothing left behind
 * by a failed start, and one clean exit for the two signals a Ctrl-C under
 * `deno task` delivers.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type CliNode,
  closeAll,
  freePort,
  REPO_ROOT,
  request,
  runCli,
  startNode,
  waitFor,
} from "../process/harness.ts";

Deno.test("serve --print-config: flag over env over file over default", async () => {
  const dir = mkdtempSync(join(tmpdir(), "watercraft-config-"));
  try {
    const file = join(dir, "config.json");
    writeFileSync(
      file,
      JSON.stringify({ port: 7001, "heartbeat-ms": 20, "election-ms": 400, "read-only": false }),
    );
    const { code, stdout, stderr } = await runCli(
      ["serve", "--config", file, "--port", "7003", "--storage", "memory", "--print-config"],
      { env: { WATERCRAFT_PORT: "7002", WATERCRAFT_HEARTBEAT_MS: "25", WATERCRAFT_SECRET: "s" } },
    );
    strictEqual(code, 0, stderr);
    const config = JSON.parse(stdout);
    deepStrictEqual(config.port, { value: 7003, source: "flag" });
    deepStrictEqual(config["heartbeat-ms"], { value: 25, source: "env" });
    deepStrictEqual(config["election-ms"], { value: 400, source: "file" });
    deepStrictEqual(config["idle-timeout-ms"], { value: 30_000, source: "default" });
    deepStrictEqual(config.secret, { value: "***", source: "env" });

    const bad = await runCli(["--print-config"], { env: { WATERCRAFT_READ_ONLY: "maybe" } });
    strictEqual(bad.code, 2);
    match(bad.stderr, /^watercraft: WATERCRAFT_READ_ONLY must be true or false/);
    writeFileSync(file, JSON.stringify({ prot: 1 }));
    const typo = await runCli(["--config", file, "--print-config"]);
    strictEqual(typo.code, 2);
    match(typo.stderr, /sets "prot", which is no flag/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("serve without --id and --data is the same node on the next start", async () => {
  const dir = mkdtempSync(join(tmpdir(), "watercraft-stable-"));
  try {
    const port = String(freePort());
    const run = async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", join(REPO_ROOT, "deno.json"), join(REPO_ROOT, "src/cli.ts")]
          .concat(["--port", port, "--host", "127.0.0.1", "--print-config"]),
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
        env: { WATERCRAFT_SECRET: "s", NO_COLOR: "1" },
      }).output();
      strictEqual(out.code, 0, new TextDecoder().decode(out.stderr));
      return JSON.parse(new TextDecoder().decode(out.stdout));
    };
    const first = await run();
    const second = await run();
    match(first.id.value, /^n-[0-9a-f]{12}$/);
    strictEqual(second.id.value, first.id.value);
    strictEqual(second.data.value, `./watercraft-data/${first.id.value}`);
    ok(existsSync(join(dir, "watercraft-data", `default-id-${port}`)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Starts a node on a port another listener holds, with `flags` besides;
 * resolves with how it ended and whether its data directory is still locked.
 */
async function startOnTakenPort(
  flags: string[],
): Promise<{ code: number; stderr: string; locked: boolean }> {
  const dir = mkdtempSync(join(tmpdir(), "watercraft-taken-"));
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const data = join(dir, "n1");
    const args = ["--id", "n1", "--host", "127.0.0.1", "--port", String(port), "--data", data];
    const { code, stderr } = await runCli([...args, ...flags]);
    return { code, stderr, locked: existsSync(join(data, "LOCK")) };
  } finally {
    listener.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

Deno.test("a start that fails on a taken port leaves no lock behind", async () => {
  const { code, stderr, locked } = await startOnTakenPort([]);
  strictEqual(code, 1, stderr);
  match(stderr, /^watercraft: Cannot listen on 127\.0\.0\.1:\d+: /);
  ok(!locked, "the data dir is still locked");
});

Deno.test("with --log-format json, a start that fails is one JSON error line on stderr", async () => {
  const { code, stderr } = await startOnTakenPort(["--log-format", "json"]);
  strictEqual(code, 1, stderr);
  const lines = stderr.trim().split("\n");
  strictEqual(lines.length, 1, stderr);
  const line = JSON.parse(lines[0]!);
  strictEqual(line.level, "error");
  strictEqual(line.event, "node.start_failed");
  match(line.msg, /^Cannot listen on 127\.0\.0\.1:\d+: /);
  ok(!Number.isNaN(Date.parse(line.time)), line.time);
});

Deno.test("SIGINT twice at once (Ctrl-C under deno task) stops the node cleanly, exit 0", async () => {
  const nodes: CliNode[] = [];
  try {
    const node = await startNode({ id: "twice" });
    nodes.push(node);
    strictEqual((await request("GET", `${node.url}/healthz`)).status, 200);
    // The terminal's SIGINT and the one the task runner forwards.
    node.process.kill("SIGINT");
    node.process.kill("SIGINT");
    const status = await waitFor("the node to exit", () => node.process.exited, {
      timeoutMs: 10_000,
    });
    strictEqual(status.code, 0, node.process.describe());
    strictEqual(node.process.stderr, "", "nothing on stderr");
  } finally {
    await closeAll(nodes.map((n) => n.process));
  }
});
