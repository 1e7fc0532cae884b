/**
 * The Workers deployment (`examples/edge/workers/`) for real: the Worker is
 * bundled with `deno bundle` and run by miniflare in `workerd`, its member a
 * Durable Object with SQLite storage persisted in a temporary directory, in
 * a cluster with two CLI nodes (`deno run -A src/cli.ts`, file storage), all
 * on loopback and sharing a cluster secret.
 *
 * A read-only member joins, replicates and refuses writes. Then a voter
 * joins behind a loopback proxy that plays the platform's routing (the
 * cluster knows the member by the proxy's URL; the test decides which
 * workerd process serves it): it is promoted, counts in the quorum (writes
 * commit with a CLI node down), comes back after its workerd is killed and
 * the object re-created from storage, lets none of a stale instance's writes
 * land once a second instance of the object (a second workerd on the same
 * storage, while the first is stopped with SIGSTOP) has written, and finally
 * leads the cluster while idle, which is where the heartbeat lag is measured
 * and printed.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { type CliNode, closeAll, request, startNode, waitFor } from "../process/harness.ts";
import { read, waitForMembers, write } from "../process/scenario.ts";
import { bundleWorker, ensureMiniflare, MiniflareProcess, workerdUnusable } from "./miniflare.ts";
import { startSwitchProxy, type SwitchProxy } from "./switch_proxy.ts";

const SECRET = "workers-s3cret";
/** Each wait's deadline; the whole test takes well under it in total. */
const STEP_MS = 20_000;
/** How long the member leads with no client traffic while its heartbeats are sampled. */
const IDLE_MS = 3000;
/** Tries at a second instance that writes while the first is stopped (see that step). */
const ATTEMPTS = 3;
/** How long a stale instance must trail the host to count as stalled, ms (six election timeouts). */
const STALL_MS = 3000;

/** A member served by miniflare, shaped as a CLI node for the scenario helpers. */
function asNode(id: string, url: string, worker: MiniflareProcess): CliNode {
  return { id, url, runtime: "deno", process: worker.runner };
}

/** Waits until `node` answers `GET key?consistency=local` with `value`. */
async function waitForLocal(
  node: { id: string; url: string },
  key: string,
  value: unknown,
  timeoutMs = STEP_MS,
) {
  await waitFor(`${node.id} to hold ${key} = ${JSON.stringify(value)}`, async () => {
    const got = await request("GET", `${node.url}/v1/kv/${key}?consistency=local`, {
      timeoutMs: 3000,
    });
    return got.status === 200 && JSON.stringify(got.body.value) === JSON.stringify(value);
  }, { timeoutMs });
}

/** Waits until `follower` has applied what `leader` has, with the same head. */
async function waitForSameHead(leader: { url: string }, follower: { id: string; url: string }) {
  return await waitFor(`${follower.id} to reach the leader's head`, async () => {
    const [a, b] = await Promise.all([
      request("GET", `${leader.url}/v1/head`, { timeoutMs: 3000 }),
      request("GET", `${follower.url}/v1/head`, { timeoutMs: 3000 }),
    ]);
    return a.status === 200 && b.status === 200 && a.body.index === b.body.index &&
      a.body.head === b.body.head && a.body.index;
  }, { timeoutMs: STEP_MS });
}

/** The member as `node` lists it. */
async function memberSeenBy(node: CliNode, id: string) {
  const members = await request("GET", `${node.url}/v1/members`, { timeoutMs: 3000 });
  return members.body?.members?.find((m: { id: string }) => m.id === id) ?? null;
}

Deno.test("a Durable Object member under workerd joins read-only, then as a voter; survives eviction and a second instance", async (t) => {
  const found = await ensureMiniflare();
  const unusable = await workerdUnusable(found);
  if (unusable !== null) {
    console.warn(`Skipped: ${unusable}`);
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "watercraft-workers-test-" });
  const script = await bundleWorker("examples/edge/workers/worker.ts", `${dir}/worker.js`);
  const nodes: CliNode[] = [];
  const workers = new Set<MiniflareProcess>();
  let proxy: SwitchProxy | null = null;
  const env = { WATERCRAFT_SECRET: SECRET };
  /** Starts the member's Worker under miniflare. */
  const startWorker = async (
    label: string,
    persist: string,
    bindings: Record<string, string>,
  ): Promise<MiniflareProcess> => {
    const worker = await MiniflareProcess.start({
      label,
      script,
      durableObjects: { WATERCRAFT_MEMBER: { className: "WaterCraftMember", useSQLite: true } },
      persist: `${dir}/${persist}`,
      bindings: { WATERCRAFT_SECRET: SECRET, ...bindings },
    });
    workers.add(worker);
    return worker;
  };
  const stopWorker = async (worker: MiniflareProcess, how: "close" | "crash") => {
    workers.delete(worker);
    await (how === "crash" ? worker.crash() : worker.close());
  };
  // Each step builds on the one before: the first failure ends the test.
  const step = async (name: string, fn: () => Promise<void>) => {
    if (!(await t.step(name, fn))) throw new Error(`Step failed: ${name}`);
  };
  try {
    const first = await startNode({ id: "cli-1", env, data: `${dir}/cli-1` });
    nodes.push(first);
    let second = await startNode({ id: "cli-2", join: [first.url], env, data: `${dir}/cli-2` });
    nodes.push(second);
    await second.process.waitForLine(/^watercraft joined /);
    await waitForMembers([first, second], 2);

    await step("a read-only member joins, replicates and refuses writes", async () => {
      const worker = await startWorker("edge-ro@workerd", "ro", {
        WATERCRAFT_ID: "edge-ro",
        WATERCRAFT_JOIN: second.url,
      });
      // Without WATERCRAFT_ADVERTISE the first request's origin is its URL.
      const member = asNode("edge-ro", worker.url, worker);
      strictEqual((await request("GET", `${member.url}/healthz`)).status, 200);
      await worker.runner.waitForLine(/^watercraft joined the cluster via /, STEP_MS);
      const listed = await waitFor(
        "the host to list edge-ro",
        () => memberSeenBy(first, "edge-ro"),
      );
      deepStrictEqual([listed.url, listed.voter, listed.readOnly], [member.url, false, true]);
      const status = await request("GET", `${member.url}/v1/status`);
      deepStrictEqual([status.body.role, status.body.readOnly], ["learner", true]);
      await write(first, "a", 1);
      await write(second, "b", { nested: [2] }); // forwarded to the host
      await waitForLocal(member, "a", 1);
      await waitForLocal(member, "b", { nested: [2] });
      strictEqual((await read(member, "b")).body.value.nested[0], 2);
      await waitForSameHead(first, member);
      const refused = await request("PUT", `${member.url}/v1/kv/x`, { json: { value: 1 } });
      strictEqual(refused.status, 403, refused.text);
      strictEqual(refused.body.error.code, "read_only");
      strictEqual(refused.body.error.leader?.id, "cli-1");
      // It stays a member, stopped: a read-only member never counts in a quorum.
      await stopWorker(worker, "close");
    });

    proxy = startSwitchProxy(null);
    const voter = { id: "edge-voter", url: proxy.url };
    const voterBindings = {
      WATERCRAFT_ID: "edge-voter",
      WATERCRAFT_ADVERTISE: proxy.url,
      WATERCRAFT_JOIN: first.url,
      WATERCRAFT_READ_ONLY: "false",
    };
    let instance = await startWorker("edge-voter@workerd#1", "voter", voterBindings);
    proxy.switchTo(instance.url);

    await step("a voter joins, is promoted and replicates", async () => {
      strictEqual((await request("GET", `${voter.url}/healthz`)).status, 200);
      await instance.runner.waitForLine(/^watercraft joined the cluster via /, STEP_MS);
      await waitFor("edge-voter to be promoted to voter", async () => {
        const m = await memberSeenBy(first, "edge-voter");
        return m?.voter === true && m.readOnly === false;
      }, { timeoutMs: STEP_MS });
      await write(first, "c", 3);
      await waitForLocal(voter, "c", 3);
      // A voter takes writes and forwards them to the host.
      const through = await request("PUT", `${voter.url}/v1/kv/d`, { json: { value: 4 } });
      strictEqual(through.status, 200, through.text);
      await waitForLocal(first, "d", 4);
    });

    await step("it counts in the quorum: writes commit with a CLI node down", async () => {
      await second.process.close(); // SIGKILL
      await write(first, "quorum", "with the Durable Object");
      await waitForLocal(voter, "quorum", "with the Durable Object");
      second = await startNode({
        id: "cli-2",
        env,
        data: `${dir}/cli-2`,
        port: Number(new URL(second.url).port),
      });
      nodes[1] = second;
      await waitForSameHead(first, second);
    });

    await step(
      "workerd killed, the object is re-created from its storage and catches up",
      async () => {
        await stopWorker(instance, "crash");
        await write(first, "while-down", true); // cli-1 and cli-2 are a majority
        instance = await startWorker("edge-voter@workerd#2", "voter", voterBindings);
        proxy!.switchTo(instance.url);
        await waitForLocal(voter, "while-down", true);
        await waitForLocal(voter, "a", 1);
        match(instance.runner.stdout, /started in a Durable Object: voter, log [1-9]\d* entries/);
        ok(!/joined the cluster/.test(instance.runner.stdout), "a member with a log must not join");
        await waitForSameHead(first, voter);
      },
    );

    await step(
      "a second instance of the object writes; none of the stale first instance's writes land",
      async () => {
        // The first instance stalls (a long pause, a partition) while the platform
        // runs a second one on the same storage and sends it the object's traffic.
        // Here the two are workerd processes on one SQLite file, which the platform
        // never runs: a process stopped inside a write transaction keeps SQLite's
        // write lock, and the second cannot write at all. Then the attempt is
        // void: the first is replaced from storage and stopped again, at most
        // ATTEMPTS times in all.
        let wrote = 0;
        for (let attempt = 1; wrote === 0; attempt++) {
          instance.freeze(true);
          const intruder = await startWorker(
            `edge-voter@workerd#3.${attempt}`,
            "voter",
            voterBindings,
          );
          proxy!.switchTo(intruder.url);
          await write(first, "second-instance", attempt);
          try {
            // The leader first has to give up its stream to the frozen instance,
            // which a loaded machine may take a while to notice.
            await waitForLocal(
              { id: `edge-voter#3.${attempt}`, url: intruder.url },
              "second-instance",
              attempt,
              STEP_MS,
            );
            wrote = attempt;
          } catch (error) {
            console.log(
              `attempt ${attempt}: the second instance never wrote (the stopped one may hold ` +
                `SQLite's write lock)\n${intruder.runner.describe()}\n${instance.runner.describe()}`,
            );
            if (attempt >= ATTEMPTS) throw error;
          } finally {
            await stopWorker(intruder, "close");
            instance.freeze(false);
          }
          if (wrote === 0) {
            await stopWorker(instance, "crash");
            instance = await startWorker(`edge-voter@workerd#2.${attempt}`, "voter", voterBindings);
            proxy!.switchTo(instance.url);
            await waitForSameHead(first, voter);
          }
        }
        // Back to the first instance, whose storage moved under it: none of its
        // writes may land. Either its next write meets the version fence and is
        // refused, or (what workerd's SQLite does when the stalled process held an
        // open transaction) its commit is refused and it stalls, as the platform's
        // own fence would leave it. Nothing it holds in memory reaches the log.
        proxy!.switchTo(instance.url);
        await write(first, "back", 2);
        const stalledSince = Date.now();
        const refusal = await waitFor(
          "the first instance to refuse its write or stall",
          async () => {
            if (/another writer changed/.test(instance.runner.stdout + instance.runner.stderr)) {
              return "fence";
            }
            const led = await request("GET", `${first.url}/v1/head`);
            const stale = await request("GET", `${voter.url}/v1/head`, { timeoutMs: 3000 })
              .catch(() => null);
            // Stalled: the host's head moved past "back" a while ago and this one never follows.
            return stale !== null && stale.status === 200 && led.body.index > stale.body.index &&
              Date.now() - stalledSince >= STALL_MS && "stalled";
          },
          { timeoutMs: STEP_MS },
        );
        console.log(
          `the stale instance: ${
            refusal === "fence"
              ? "refused by the version fence"
              : "stalled (its commit refused by SQLite)"
          }`,
        );
        // The platform resets it; the object comes back from storage, the second
        // instance's writes included, its log whole (load checks the hash chain).
        await stopWorker(instance, "crash");
        instance = await startWorker("edge-voter@workerd#4", "voter", voterBindings);
        proxy!.switchTo(instance.url);
        await waitForLocal(voter, "second-instance", wrote);
        await waitForLocal(voter, "back", 2);
        await waitForSameHead(first, voter);
      },
    );

    await step(
      "leading while idle, its alarm-driven heartbeats stay within the election timeout",
      async () => {
        const moved = await request("POST", `${first.url}/v1/leader/transfer`, {
          json: { id: "edge-voter" },
        });
        strictEqual(moved.status, 200, moved.text);
        await waitFor("both CLI nodes to follow edge-voter", async () => {
          const s = await Promise.all(nodes.map((n) => request("GET", `${n.url}/v1/status`)));
          return s.every((x) => x.body.leader?.id === "edge-voter");
        }, { timeoutMs: STEP_MS });
        await write(second, "led-by-the-object", true);
        const before = (await request("GET", `${voter.url}/edge/timers`)).body;
        // No client traffic: only the object's alarm makes it heartbeat.
        let lastSeenMsMax = 0;
        const deadline = Date.now() + IDLE_MS;
        await waitFor("the idle period to pass", async () => {
          for (const node of nodes) {
            const seen = await memberSeenBy(node, "edge-voter");
            lastSeenMsMax = Math.max(lastSeenMsMax, seen?.lastSeenMs ?? 0);
          }
          return Date.now() >= deadline;
        }, { timeoutMs: IDLE_MS + STEP_MS, intervalMs: 10 });
        const after = (await request("GET", `${voter.url}/edge/timers`)).body;
        console.log(
          `workerd member leading while idle for ${IDLE_MS} ms: followers saw its heartbeats at ` +
            `most ${lastSeenMsMax} ms apart (heartbeat 50 ms, election timeout 500 ms); alarms ` +
            `rang ${after.rings - before.rings} times, at most ${after.lateMsMax} ms late ` +
            `(mean ${
              after.lateMsMean.toFixed(1)
            } ms), largest gap between rings ${after.gapMsMax} ms`,
        );
        ok(lastSeenMsMax < 500, `a follower went ${lastSeenMsMax} ms without hearing from it`);
        const s = await Promise.all(nodes.map((n) => request("GET", `${n.url}/v1/status`)));
        ok(s.every((x) => x.body.leader?.id === "edge-voter"), "no election while it led");
      },
    );
  } finally {
    await proxy?.close();
    await Promise.all([...workers].map((w) => w.close()));
    await closeAll(nodes.map((n) => n.process));
    await Deno.remove(dir, { recursive: true });
  }
});
