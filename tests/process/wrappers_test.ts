/**
 * A node started through the wrappers users type stops cleanly when they
 * stop it: Ctrl-C (SIGINT to the whole foreground process group, as a
 * terminal sends it) under `deno task start` and under the `tsx` command
 * (which forks Node) ends with exit 0 and the port free; a wrapper that
 * dies without passing the signal on (`tsx` killed) does not leave the node
 * running with its port taken: the node sees its parent go and stops; and
 * a node a shell script leaves running in the background is no orphan to
 * stop: it outlives the script.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ok, strictEqual } from "node:assert/strict";
import { freePort, REPO_ROOT, StopWaiting, waitFor } from "./harness.ts";
import { ensureTools, TOOLS_DIR } from "./tools.ts";

/** A wrapper's process, in a process group of its own, as a terminal job is. */
interface Job {
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  readonly output: () => string;
}

function startJob(command: string, args: readonly string[]): Job {
  // Deno's child_process rewrites arguments that follow its own path (as
  // Node flags for Deno), so the shell gets that path from the environment.
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", WRAPPED_DENO: Deno.execPath() },
  });
  let output = "";
  child.stdout!.on("data", (chunk) => output += chunk);
  child.stderr!.on("data", (chunk) => output += chunk);
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal }))
  );
  return { pid: child.pid!, exited, output: () => output };
}

/** The flags of a one-node insecure cluster on `port`, its data in `data`. */
function nodeFlags(port: number, data: string): string[] {
  return [
    "--id",
    "w1",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--data",
    data,
    "--insecure",
  ];
}

async function serving(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** Whether nothing listens on `port` any more (it can be bound). */
function portFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/** Runs a wrapper, waits until the node serves, stops it with `stop`, and checks the end. */
async function stopThrough(
  command: string,
  args: (port: number, data: string) => string[],
  stop: (job: Job) => void,
  expectWrapperCode: number | null,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "watercraft-wrapper-"));
  const port = freePort();
  const job = startJob(command, args(port, join(dir, "data")));
  try {
    const up = await Promise.race([
      waitFor("the node to serve", async () => await serving(port) || null, { timeoutMs: 60_000 }),
      job.exited,
    ]);
    strictEqual(up, true, `the node never served:\n${job.output()}`);
    stop(job);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const end = await Promise.race([
      job.exited,
      new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 15_000)),
    ]);
    clearTimeout(timer);
    ok(end !== null, `the wrapper did not exit:\n${job.output()}`);
    if (expectWrapperCode !== null) {
      strictEqual(end.code, expectWrapperCode, `exit ${end.code} ${end.signal}:\n${job.output()}`);
    }
    // The node frees its port first, then closes its storage: where the
    // wrapper did not wait for it, the lock goes a moment after the port.
    await waitFor(
      "the node to let its port and its data directory go",
      () => (portFree(port) && !existsSync(join(dir, "data", "LOCK"))) || null,
      { timeoutMs: 10_000 },
    );
  } finally {
    try {
      process.kill(-job.pid, "SIGKILL");
    } catch {
      // The group is gone: nothing left to end.
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

const deno = Deno.execPath();

Deno.test("Ctrl-C under deno task start: exit 0, the port free", async () => {
  await stopThrough(
    deno,
    (port, data) => ["task", "-q", "start", ...nodeFlags(port, data)],
    (job) => process.kill(-job.pid, "SIGINT"),
    0,
  );
});

Deno.test("Ctrl-C under the tsx command (Node in a child): exit 0, the port free", async () => {
  await ensureTools();
  await stopThrough(
    join(TOOLS_DIR, "node_modules", ".bin", "tsx"),
    (port, data) => ["src/cli.ts", ...nodeFlags(port, data)],
    (job) => process.kill(-job.pid, "SIGINT"),
    0,
  );
});

Deno.test("SIGKILL to the tsx command (Node in a child): the node sees its wrapper go and stops", async () => {
  await ensureTools();
  await stopThrough(
    join(TOOLS_DIR, "node_modules", ".bin", "tsx"),
    (port, data) => ["src/cli.ts", ...nodeFlags(port, data)],
    // The wrapper alone, which cannot pass a SIGKILL on: its child is left to notice.
    (job) => process.kill(job.pid, "SIGKILL"),
    null,
  );
});

Deno.test("a node a shell script starts in the background outlives the script", async () => {
  const dir = mkdtempSync(join(tmpdir(), "watercraft-wrapper-"));
  const port = freePort();
  const log = join(dir, "node.log");
  // The flags hold no spaces or quotes: a temporary path, numbers, names. The
  // script stays until the node serves (at most 60 s), so the node starts as
  // its child, then exits.
  const job = startJob("sh", [
    "-c",
    `"$WRAPPED_DENO" run -A src/cli.ts ${
      nodeFlags(port, join(dir, "data")).join(" ")
    } > ${log} 2>&1 & echo "node $!"; ` +
    `for i in $(seq 600); do grep -q "listening on" ${log} && exit 0; sleep 0.1; done; exit 1`,
  ]);
  try {
    strictEqual((await job.exited).code, 0, job.output());
    const pid = Number(job.output().match(/^node (\d+)$/m)?.[1]);
    ok(pid > 0, job.output());
    await waitFor("the node to serve", async () => await serving(port) || null, {
      timeoutMs: 60_000,
    });
    ok(/listening on/.test(await Deno.readTextFile(log)));
    // A watched wrapper's exit would stop it within a second: it keeps serving past that.
    const servedAt = Date.now();
    await waitFor("the node to serve past a wrapper check", async () => {
      if (!(await serving(port))) {
        throw new StopWaiting(`the node stopped with its parent:\n${await Deno.readTextFile(log)}`);
      }
      return Date.now() - servedAt > 2_000;
    }, { timeoutMs: 10_000 });
    process.kill(pid, "SIGTERM");
    await waitFor("the node to let its port go", () => portFree(port) || null, {
      timeoutMs: 10_000,
    });
  } finally {
    try {
      process.kill(-job.pid, "SIGKILL");
    } catch {
      // The group is gone: nothing left to end.
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
