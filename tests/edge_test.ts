/**
 * The edge deployment (`examples/edge/main.ts`) under `deno serve`, as a
 * real process keeping its log in a Deno KV file of a temporary directory,
 * in a cluster with two CLI nodes (`deno run -A src/cli.ts`), all on
 * loopback and sharing a cluster secret. It joins as a read-only member,
 * replicates the writes made through the CLI nodes, answers status and
 * members, comes back from Deno KV after a restart, and stops (then restarts
 * from KV) rather than interleave when a second writer touches its KV prefix.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { edgeClock } from "../examples/edge/clock.ts";
import { denoKvStorage } from "../src/storage/deno_kv.ts";
import {
  type CliNode,
  CliProcess,
  closeAll,
  freePort,
  request,
  startNode,
  StopWaiting,
  waitFor,
} from "./process/harness.ts";
import { read, waitForMembers, write } from "./process/scenario.ts";

const SECRET = "edge-s3cret";
/** Each wait's deadline; the whole test takes well under it in total. */
const STEP_MS = 15_000;

Deno.test("edgeClock().runDue() fires overdue timers in order, once, and leaves the others", () => {
  let now = 1000;
  const real = new Map<number, () => void>();
  let nextHandle = 1;
  // A frozen platform: the base clock's timers fire only when the test says so.
  const clock = edgeClock({
    now: () => now,
    setTimer(fn) {
      real.set(nextHandle, fn);
      return nextHandle++;
    },
    clearTimer(id) {
      real.delete(id);
    },
  });
  const fired: string[] = [];
  clock.setTimer(() => fired.push("b"), 200);
  clock.setTimer(() => fired.push("a"), 100);
  const cleared = clock.setTimer(() => fired.push("cleared"), 100);
  clock.setTimer(() => fired.push("late"), 10_000);
  clock.clearTimer(cleared);
  strictEqual(clock.runDue(), 0);
  now += 250;
  strictEqual(clock.runDue(), 2);
  deepStrictEqual(fired, ["a", "b"]);
  // Fired timers let go of their real timer: only "late" is left.
  strictEqual(real.size, 1);
  strictEqual(clock.pending, 1);
  // The real timer firing first wins, and runDue() does not fire it again.
  [...real.values()][0]!();
  now += 20_000;
  strictEqual(clock.runDue(), 0);
  deepStrictEqual(fired, ["a", "b", "late"]);
});

/** Starts `deno serve` on the edge handler and waits until it answers `/healthz` (which creates its node). */
async function startEdge(
  id: string,
  options: { join: readonly string[]; kvPath: string; port?: number },
): Promise<CliNode> {
  let lastError: unknown = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = options.port ?? freePort();
    const url = `http://127.0.0.1:${port}`;
    const proc = new CliProcess(Deno.execPath(), [
      "serve",
      "-A",
      "--unstable-kv",
      // Exercises the guarded top-level registration; a minute-long schedule never fires here.
      "--unstable-cron",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "examples/edge/main.ts",
    ], {
      label: `${id}@deno-serve`,
      env: {
        WATERCRAFT_ID: id,
        WATERCRAFT_ADVERTISE: url,
        WATERCRAFT_JOIN: options.join.join(","),
        WATERCRAFT_KV_PATH: options.kvPath,
        WATERCRAFT_SECRET: SECRET,
      },
    });
    try {
      await waitFor(`${id} to answer /healthz`, async () => {
        if (proc.exited !== null) throw new StopWaiting(proc.describe());
        return (await request("GET", `${url}/healthz`, { timeoutMs: 2000 })).status === 200;
      }, { timeoutMs: STEP_MS });
      return { id, url, runtime: "deno", process: proc };
    } catch (error) {
      await proc.close();
      lastError = error;
      if (options.port !== undefined || !/in use|AddrInUse/i.test(proc.stderr)) break;
    }
  }
  throw lastError;
}

/** Waits until `node` answers `GET key?consistency=local` with `value`. */
async function waitForLocal(node: CliNode, key: string, value: unknown): Promise<void> {
  await waitFor(`${node.id} to hold ${key} = ${JSON.stringify(value)}`, async () => {
    const got = await request("GET", `${node.url}/v1/kv/${key}?consistency=local`);
    return got.status === 200 && JSON.stringify(got.body.value) === JSON.stringify(value);
  }, { timeoutMs: STEP_MS });
}

/** Waits until `follower` has applied what `leader` has, with the same head. */
async function waitForSameHead(leader: CliNode, follower: CliNode): Promise<number> {
  return await waitFor(`${follower.id} to reach ${leader.id}'s head`, async () => {
    const [a, b] = await Promise.all([
      request("GET", `${leader.url}/v1/head`),
      request("GET", `${follower.url}/v1/head`),
    ]);
    return a.status === 200 && b.status === 200 && a.body.index === b.body.index &&
      a.body.head === b.body.head && a.body.index;
  }, { timeoutMs: STEP_MS });
}

Deno.test("edge handler under deno serve joins a CLI cluster read-only, replicates, survives a restart and a second writer", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "watercraft-edge-test-" });
  const kvPath = join(dir, "edge.sqlite");
  const nodes: CliNode[] = [];
  const env = { WATERCRAFT_SECRET: SECRET };
  let edge: CliNode | null = null;
  // Each step builds on the one before: the first failure ends the test.
  const step = async (name: string, fn: () => Promise<void>) => {
    if (!(await t.step(name, fn))) throw new Error(`Step failed: ${name}`);
  };
  try {
    const first = await startNode({ id: "cli-1", env });
    nodes.push(first);
    const second = await startNode({ id: "cli-2", join: [first.url], env });
    nodes.push(second);
    await second.process.waitForLine(/^watercraft joined /);
    await waitForMembers([first, second], 2);

    // It joins through the follower, which points it at the host.
    edge = await startEdge("edge-1", { join: [second.url], kvPath });
    const port = Number(new URL(edge.url).port);

    await step("the edge node joins as a read-only member", async () => {
      await edge!.process.waitForLine(/^watercraft joined the cluster via /, STEP_MS);
      const members = await request("GET", `${first.url}/v1/members`);
      const entry = members.body.members.find((m: { id: string }) => m.id === "edge-1");
      deepStrictEqual(entry && { url: entry.url, voter: entry.voter, readOnly: entry.readOnly }, {
        url: edge!.url,
        voter: false,
        readOnly: true,
      });
    });

    await step("it answers /v1/status and /v1/members", async () => {
      const status = await waitFor("the edge node to know the leader", async () => {
        const s = await request("GET", `${edge!.url}/v1/status`);
        return s.status === 200 && s.body.leader?.id === "cli-1" && s.body;
      }, { timeoutMs: STEP_MS });
      strictEqual(status.id, "edge-1");
      strictEqual(status.url, edge!.url);
      strictEqual(status.role, "learner");
      strictEqual(status.readOnly, true);
      // It knows the host from the first heartbeat, the members once its log holds the configuration.
      const members = await waitFor("the edge node to list the three members", async () => {
        const m = await request("GET", `${edge!.url}/v1/members`);
        return m.status === 200 && m.body.members.length === 3 && m.body;
      }, { timeoutMs: STEP_MS });
      strictEqual(members.leader?.id, "cli-1");
      deepStrictEqual(
        members.members.map((m: { id: string; voter: boolean }) => [m.id, m.voter]).sort(),
        [["cli-1", true], ["cli-2", true], ["edge-1", false]],
      );
    });

    await step(
      "writes through both CLI nodes reach it (local and linearizable reads)",
      async () => {
        await write(first, "a", 1);
        await write(second, "b", { nested: [2] }); // forwarded to the host
        const entry = await request("POST", `${second.url}/v1/entries`, {
          json: { data: { op: "put", key: "c", value: "three" } },
          headers: { "idempotency-key": "edge-test-c" },
        });
        strictEqual(entry.status, 201, entry.text);
        await waitForLocal(edge!, "a", 1);
        await waitForLocal(edge!, "b", { nested: [2] });
        await waitForLocal(edge!, "c", "three");
        strictEqual((await read(edge!, "c")).body.value, "three");
        const index = await waitForSameHead(first, edge!);
        ok(
          index >= entry.body.index,
          `edge applied ${index}, the write was at ${entry.body.index}`,
        );
      },
    );

    await step("it refuses writes with 403 read_only naming the host", async () => {
      const refused = await request("PUT", `${edge!.url}/v1/kv/x`, { json: { value: 1 } });
      strictEqual(refused.status, 403, refused.text);
      strictEqual(refused.body.error.code, "read_only");
      strictEqual(refused.body.error.leader?.id, "cli-1");
    });

    await step(
      "frozen (SIGSTOP), it drops off the alive list without stalling writes; thawed, it catches up",
      async () => {
        edge!.process.kill("SIGSTOP");
        try {
          await write(first, "frozen", true); // commits without it: it holds no vote
          await waitFor("the host to see the edge node silent", async () => {
            const m = await request("GET", `${first.url}/v1/members`);
            return m.body.members.find((x: { id: string }) => x.id === "edge-1")?.alive === false;
          }, { timeoutMs: STEP_MS });
        } finally {
          edge!.process.kill("SIGCONT");
        }
        await waitForLocal(edge!, "frozen", true);
        await waitFor("the host to see the edge node alive again", async () => {
          const m = await request("GET", `${first.url}/v1/members`);
          return m.body.members.find((x: { id: string }) => x.id === "edge-1")?.alive === true;
        }, { timeoutMs: STEP_MS });
      },
    );

    await step(
      "after SIGTERM and a restart it recovers its log from Deno KV and catches up",
      async () => {
        edge!.process.kill("SIGTERM");
        const status = await waitFor("the edge process to exit", () => edge!.process.exited, {
          timeoutMs: STEP_MS,
        });
        strictEqual(status.code, 0, edge!.process.describe());
        await write(first, "d", 4); // while it is down
        edge = await startEdge("edge-1", { join: [second.url], kvPath, port });
        await edge.process.waitForLine(/^watercraft has state already: edge-1 rejoins/, STEP_MS);
        const loaded = edge.process.stdout.match(/log (\d+) entries/);
        ok(loaded !== null && Number(loaded[1]) > 0, edge.process.stdout);
        await waitForLocal(edge, "a", 1);
        await waitForLocal(edge, "d", 4);
        const members = await request("GET", `${first.url}/v1/members`);
        strictEqual(members.body.members.length, 3, members.text);
      },
    );

    await step(
      "a second writer on its KV prefix stops it instead of interleaving; it restarts from KV",
      async () => {
        const kv = await Deno.openKv(kvPath);
        try {
          // Another "isolate" loads the same prefix and writes once: the marker's versionstamp moves.
          const entries = await waitFor(
            "a second writer to commit under the edge node's prefix",
            async () => {
              const intruder = denoKvStorage(kv, { prefix: ["watercraft", "edge-1"] });
              const state = await intruder.load();
              await intruder.save(state.hardState, []);
              return state.entries.length;
            },
            { timeoutMs: STEP_MS },
          );
          ok(entries > 0);
          // The edge node's next write (the entry for "e") is refused, so the node stops.
          await write(first, "e", 5);
          await waitFor(
            "the edge node to report the refused write",
            () => /another writer changed/.test(edge!.process.stderr),
            { timeoutMs: STEP_MS },
          );
          // The leader's next messages restart it from KV, and it catches up.
          await waitForLocal(edge!, "e", 5);
          // Two starts in this process: the one after SIGTERM, and the one after the refusal.
          const starts = edge!.process.stdout.match(/^watercraft edge node edge-1 at /gm);
          strictEqual(starts?.length, 2, edge!.process.stdout);
          match(edge!.process.stderr, /watercraft: node edge-1 stopped:/);
          await waitForSameHead(first, edge!);
          // Its log in KV is whole: it loads, chains (load checks every hash) and ends at the head.
          // A follower applies a committed entry while its own save of it
          // may still run, so the last save is waited for.
          const head = await request("GET", `${edge!.url}/v1/status`);
          const stored = await waitFor(
            "the edge node's log in KV to reach its applied index",
            async () => {
              const reloaded = await denoKvStorage(kv, { prefix: ["watercraft", "edge-1"] })
                .load();
              return reloaded.entries.length >= head.body.appliedIndex && reloaded.entries.length;
            },
            { timeoutMs: STEP_MS },
          );
          ok(stored >= head.body.appliedIndex, head.text);
        } finally {
          kv.close();
        }
      },
    );
  } finally {
    await closeAll([...nodes, ...(edge === null ? [] : [edge])].map((n) => n.process));
    await Deno.remove(dir, { recursive: true });
  }
});
