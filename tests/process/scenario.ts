/**
 * The three-process cluster scenario that the process tests run on every
 * runtime mix: bootstrap one node, join two, write through a follower, read
 * through another, SIGKILL the leader, and keep writing and reading.
 *
 * @module
 */

import { deepStrictEqual as assertEquals, ok, strictEqual } from "node:assert/strict";
import {
  type CliNode,
  closeAll,
  type Launchers,
  type Reply,
  request,
  type Runtime,
  startNode,
  StopWaiting,
  waitFor,
} from "./harness.ts";

/** Deadline of each wait in the scenario (elections, joins, retries). */
const STEP_MS = 30_000;

/** Runs one step; a failed step ends the scenario, since the next ones build on it. */
async function step(t: Deno.TestContext, name: string, fn: () => Promise<void>): Promise<void> {
  let failure: unknown = null;
  const passed = await t.step(name, async () => {
    try {
      await fn();
    } catch (error) {
      failure = error;
      throw error;
    }
  });
  if (!passed) throw new Error(`Step failed: ${name}`, { cause: failure });
}

/** Options of {@linkcode runClusterScenario}. */
export interface ScenarioOptions {
  /** Prefix of the node ids, e.g. `deno` gives `deno-1`, `deno-2`, `deno-3`. */
  readonly prefix: string;
  /** The runtime of each of the three nodes; the first bootstraps. */
  readonly runtimes: readonly [Runtime, Runtime, Runtime];
  /** Where Bun and tsx are, when a node runs on them. */
  readonly launchers?: Launchers;
}

/**
 * Runs the scenario; kills every process it started, pass or fail.
 *
 * @param t The test context; each phase is a step.
 * @param options Ids and runtimes.
 */
export async function runClusterScenario(
  t: Deno.TestContext,
  options: ScenarioOptions,
): Promise<void> {
  const nodes: CliNode[] = [];
  const launchers = options.launchers ?? {};
  try {
    await step(t, "the first node bootstraps and the others join it", async () => {
      const first = await startNode({
        id: `${options.prefix}-1`,
        runtime: options.runtimes[0],
        launchers,
      });
      nodes.push(first);
      // Both join at once, as nodes started together by a supervisor do.
      const joiners = await Promise.all([1, 2].map((i) =>
        startNode({
          id: `${options.prefix}-${i + 1}`,
          runtime: options.runtimes[i]!,
          launchers,
          join: [first.url],
        }).then((node) => {
          nodes.push(node);
          return node;
        })
      ));
      for (const node of joiners) {
        await node.process.waitForLine(/^watercraft joined /, STEP_MS);
      }
      await waitForMembers(nodes, 3);
    });

    const kv = `${options.prefix}-k`;
    let firstValue: unknown = null;
    await step(t, "a write through a follower is read through another", async () => {
      const leaderId = await agreedLeader(nodes);
      const followers = nodes.filter((n) => n.id !== leaderId);
      strictEqual(followers.length, 2);
      const put = await write(followers[0]!, `${kv}1`, { via: followers[0]!.id });
      firstValue = { via: followers[0]!.id };
      const got = await read(followers[1]!, `${kv}1`);
      assertEquals(got.body.value, firstValue);
      ok(
        got.body.index >= put.body.index,
        `read index ${got.body.index} is behind the write's ${put.body.index}`,
      );
    });

    await step(t, "after SIGKILL of the leader, a new leader serves writes and reads", async () => {
      const oldLeader = await agreedLeader(nodes);
      const victim = nodes.find((n) => n.id === oldLeader)!;
      victim.process.kill("SIGKILL");
      await victim.process.status;
      const survivors = nodes.filter((n) => n !== victim);
      const newLeader = await agreedLeader(survivors);
      ok(newLeader !== oldLeader, `${oldLeader} still leads`);

      // The write acknowledged before the crash survives it.
      for (const survivor of survivors) {
        assertEquals((await read(survivor, `${kv}1`)).body.value, firstValue);
      }

      for (const [i, writer] of survivors.entries()) {
        const reader = survivors[1 - i]!;
        const put = await write(writer, `${kv}2`, { round: i, via: writer.id });
        const got = await read(reader, `${kv}2`);
        assertEquals(got.body.value, { round: i, via: writer.id });
        ok(got.body.index >= put.body.index);
      }

      // The survivors converge on the same head, and see the victim as dead.
      await waitFor("the survivors to report the same head", async () => {
        const heads = await Promise.all(survivors.map((n) => request("GET", `${n.url}/v1/head`)));
        return heads.every((h) => h.status === 200 && h.body.head === heads[0]!.body.head);
      }, { timeoutMs: STEP_MS });
      await waitFor(`the survivors to report ${oldLeader} as not alive`, async () => {
        const lists = await Promise.all(
          survivors.map((n) => request("GET", `${n.url}/v1/members`)),
        );
        return lists.every((l) =>
          l.status === 200 &&
          l.body.members.some((m: { id: string; alive: boolean }) => m.id === oldLeader && !m.alive)
        );
      }, { timeoutMs: STEP_MS });
    });
  } catch (error) {
    throw new Error(
      `${(error as Error).message}\n${nodes.map((n) => n.process.describe()).join("\n")}`,
      {
        cause: error,
      },
    );
  } finally {
    await closeAll(nodes.map((n) => n.process));
  }
}

/**
 * Waits until every node's `/v1/members` lists `count` voters and names the
 * same leader.
 *
 * @param nodes The nodes to ask.
 * @param count Voters expected.
 */
export async function waitForMembers(nodes: readonly CliNode[], count: number): Promise<void> {
  await waitFor(`${nodes.length} nodes to list ${count} voters and one leader`, async () => {
    const lists = await Promise.all(nodes.map((n) => request("GET", `${n.url}/v1/members`)));
    const leaders = new Set(lists.map((l) => l.body?.leader?.id ?? null));
    return lists.every((l) =>
      l.status === 200 && l.body.members.filter((m: { voter: boolean }) => m.voter).length === count
    ) && leaders.size === 1 && !leaders.has(null);
  }, { timeoutMs: STEP_MS });
}

/**
 * Waits until every node names the same leader, one of them, which calls
 * itself leader.
 *
 * @param nodes The nodes to ask.
 * @returns The leader's id.
 */
export async function agreedLeader(nodes: readonly CliNode[]): Promise<string> {
  return await waitFor(`one leader among ${nodes.map((n) => n.id).join(", ")}`, async () => {
    const all = await Promise.all(
      nodes.map((n) => request("GET", `${n.url}/v1/status`, { timeoutMs: 2000 })),
    );
    const id = all[0]?.body?.leader?.id;
    if (typeof id !== "string") return null;
    if (!all.every((s) => s.status === 200 && s.body.leader?.id === id)) return null;
    const leader = all.find((s) => s.body.id === id);
    return leader?.body.role === "leader" ? id : null;
  }, { timeoutMs: STEP_MS });
}

/** Answers that mean "nothing was written, try again" (API.md section 2), and 504 "maybe". */
const RETRYABLE = new Set([503, 504]);

/**
 * Writes `key` through `node`, retrying on 503/504 with one idempotency key
 * (so a retry cannot apply twice) until the deadline.
 *
 * @param node The node to write through.
 * @param key The key.
 * @param value Its value.
 * @returns The 200 answer.
 */
export async function write(node: CliNode, key: string, value: unknown): Promise<Reply> {
  const idempotencyKey = crypto.randomUUID();
  return await retry(
    `PUT ${key} through ${node.id}`,
    () =>
      request("PUT", `${node.url}/v1/kv/${encodeURIComponent(key)}`, {
        json: { value },
        headers: { "idempotency-key": idempotencyKey },
      }),
  );
}

/**
 * Reads `key` through `node` (linearizable), retrying on 503/504.
 *
 * @param node The node to read through.
 * @param key The key.
 * @returns The 200 answer.
 */
export async function read(node: CliNode, key: string): Promise<Reply> {
  return await retry(
    `GET ${key} through ${node.id}`,
    () => request("GET", `${node.url}/v1/kv/${encodeURIComponent(key)}`),
  );
}

async function retry(what: string, send: () => Promise<Reply>): Promise<Reply> {
  let last: Reply | null = null;
  return await waitFor(what, async () => {
    const reply = await send();
    last = reply;
    if (reply.status === 200) return reply;
    if (RETRYABLE.has(reply.status)) return null;
    throw new StopWaiting(`${what}: unexpected ${reply.status} ${reply.text}`);
  }, { timeoutMs: STEP_MS, intervalMs: 100 }).catch((error) => {
    const cause = (error as Error).message;
    throw new Error(`${cause}${last === null ? "" : ` (last answer ${last.status} ${last.text})`}`);
  });
}
