/**
 * Secured by default, as a user meets it through the CLI: a cluster started
 * without a secret generates one, keeps it owner-only in the data directory
 * and prints the command that joins another node, which works as printed;
 * nodes without the secret, or with a wrong one, cannot join; a restart
 * needs no flag; `--insecure` warns. And no clock in the security: members
 * whose clocks are hours apart (libfaketime, from Debian's packages) join,
 * vote, lead, replicate and serve.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import {
  type CliNode,
  type CliProcess,
  closeAll,
  freePort,
  request,
  runCli,
  startNode,
  waitFor,
} from "./harness.ts";

/** The environment of a node given no secret (empty is unset). */
const NO_SECRET = { WATERCRAFT_SECRET: "" };

/** Waits until `node` lists `count` voters and one leader. */
async function voters(node: CliNode, count: number): Promise<void> {
  await waitFor(`${node.id} to list ${count} voters and a leader`, async () => {
    const status = (await request("GET", `${node.url}/v1/status`)).body;
    return status?.leader !== null &&
      status?.members?.filter((m: { voter: boolean }) => m.voter).length === count;
  }, { timeoutMs: 30_000 });
}

Deno.test("cli: a cluster started without a secret is secured, and the command it prints joins", async () => {
  const data = await Deno.makeTempDir({ prefix: "watercraft-secure-" });
  const processes: CliProcess[] = [];
  try {
    const port = freePort();
    let first = await startNode({ id: "s1", data: `${data}/s1`, port, env: NO_SECRET });
    processes.push(first.process);
    const [, secret, url] = await first.process.waitForLine(
      /^ {2}WATERCRAFT_SECRET=([0-9a-f]{64}) deno run -A src\/cli\.ts --join (\S+)$/m,
    );
    strictEqual(url, first.url);
    match(first.process.stdout, /generated the cluster secret \(kept in .*s1.secret\)/);
    const file = await Deno.stat(`${data}/s1/secret`);
    strictEqual(file.mode! & 0o777, 0o600, "the kept secret is owner-only");
    strictEqual(await Deno.readTextFile(`${data}/s1/secret`), `${secret}\n`);

    // The printed command, with a port and memory storage to run beside it.
    const second = await startNode({
      id: "s2",
      join: [url!],
      env: { WATERCRAFT_SECRET: secret! },
    });
    processes.push(second.process);
    await voters(first, 2);

    const base = ["--storage", "memory", "--host", "127.0.0.1", "--port", "0", "--join", url!];
    const bare = await runCli(["--id", "s3", ...base], { env: NO_SECRET });
    strictEqual(bare.code, 2, bare.stderr);
    match(bare.stderr, /Joining a secured cluster needs its secret/);
    const wrong = await runCli(["--id", "s4", ...base], {
      env: { WATERCRAFT_SECRET: "a-guess" },
      timeoutMs: 30_000,
    });
    strictEqual(wrong.code, 1, wrong.stderr);
    match(wrong.stderr, /cluster secret differs/);

    const forged = await fetch(`${url}/raft/messages`, {
      method: "POST",
      headers: { "X-Raft-From": "s9" },
      body: new Uint8Array(10),
    });
    strictEqual(forged.status, 401);
    match(forged.headers.get("X-Raft-Challenge") ?? "", /^[0-9a-f]{32}$/);
    await forged.body?.cancel();

    // A restart finds its secret in its data dir: no flag, nothing printed.
    first.process.kill("SIGTERM");
    strictEqual((await first.process.status).code, 0);
    first = await startNode({ id: "s1", data: `${data}/s1`, port, env: NO_SECRET });
    processes.push(first.process);
    await voters(first, 2);
    ok(!first.process.stdout.includes("generated"), first.process.stdout);
    const put = await request("PUT", `${second.url}/v1/kv/after-restart`, { json: { value: 1 } });
    strictEqual(put.status, 200, put.text);
    const got = await request("GET", `${first.url}/v1/kv/after-restart`);
    deepStrictEqual([got.status, got.body.value], [200, 1]);

    const open = await startNode({ id: "open", args: ["--insecure"], env: NO_SECRET });
    processes.push(open.process);
    match(open.process.stderr, /WARNING: --insecure/);
  } finally {
    await closeAll(processes);
    await Deno.remove(data, { recursive: true });
  }
});

/** The libfaketime library, installed from Debian's packages when missing. */
async function libfaketime(): Promise<string> {
  const find = async () => {
    const out = await new Deno.Command("dpkg", { args: ["-L", "libfaketime"], stdout: "piped" })
      .output().catch(() => null);
    const files = out === null ? "" : new TextDecoder().decode(out.stdout);
    return files.split("\n").find((f) => f.endsWith("/libfaketimeMT.so.1")) ?? null;
  };
  let lib = await find();
  if (lib === null) {
    const install = await new Deno.Command("apt-get", {
      args: ["install", "-y", "-q", "libfaketime"],
      stdout: "piped",
      stderr: "piped",
      env: { DEBIAN_FRONTEND: "noninteractive" },
    }).output();
    lib = await find();
    if (lib === null) {
      throw new Error(
        `Cannot install libfaketime (apt-get install libfaketime): ${
          new TextDecoder().decode(install.stderr)
        }`,
      );
    }
  }
  return lib;
}

Deno.test("cli: members whose clocks are hours apart join, vote, lead, replicate and serve", async () => {
  const lib = await libfaketime();
  const secret = { WATERCRAFT_SECRET: "clock-test-secret" };
  /** A node whose wall clock is `offset` away (libfaketime, preloaded into the node itself). */
  const skewed = (offset: string) => ({ ...secret, LD_PRELOAD: lib, FAKETIME: offset });
  const processes: CliProcess[] = [];
  try {
    // The clocks the nodes see really are hours apart.
    const clock = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "console.log(Date.now())"],
      env: { LD_PRELOAD: lib, FAKETIME: "+10h" },
      stdout: "piped",
    }).output();
    const ahead = Number(new TextDecoder().decode(clock.stdout)) - Date.now();
    ok(ahead > 9 * 3_600_000, `libfaketime shifted the clock by ${ahead} ms only`);

    const c1 = await startNode({ id: "c1", env: secret });
    processes.push(c1.process);
    const c2 = await startNode({ id: "c2", join: [c1.url], env: skewed("+10h") });
    processes.push(c2.process);
    const c3 = await startNode({ id: "c3", join: [c2.url], env: skewed("-3h") });
    processes.push(c3.process);
    await voters(c1, 3);

    // The node 10 hours ahead takes the lead; the one 3 hours behind forwards to it.
    const moved = await request("POST", `${c1.url}/v1/leader/transfer`, { json: { id: "c2" } });
    strictEqual(moved.status, 200, moved.text);
    await waitFor("c2 to lead", async () => {
      return (await request("GET", `${c3.url}/v1/status`)).body?.leader?.id === "c2";
    });
    const put = await request("PUT", `${c3.url}/v1/kv/skew`, { json: { value: "hours apart" } });
    strictEqual(put.status, 200, put.text);
    for (const node of [c1, c2, c3]) {
      const got = await request("GET", `${node.url}/v1/kv/skew`);
      deepStrictEqual([got.status, got.body.value], [200, "hours apart"], node.id);
    }
  } finally {
    await closeAll(processes);
  }
});
