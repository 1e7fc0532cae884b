/**
 * Three CLI processes on Deno (`deno run -A src/cli.ts`) form a cluster
 * over loopback HTTP and survive the SIGKILL of their leader; a cluster with
 * a secret and a client token keeps outsiders out.
 *
 * @module
 */

import { deepStrictEqual, match, strictEqual } from "node:assert/strict";
import { type CliNode, closeAll, request, startNode, waitFor } from "./harness.ts";
import { read, runClusterScenario } from "./scenario.ts";

Deno.test("cli cluster of 3 Deno processes: join, write via a follower, read via another, survive SIGKILL of the leader", async (t) => {
  await runClusterScenario(t, { prefix: "deno", runtimes: ["deno", "deno", "deno"] });
});

Deno.test("cli cluster with a secret and a client token: members join, outsiders get 401", async (t) => {
  const nodes: CliNode[] = [];
  const auth = { authorization: "Bearer t0ken" };
  // The secret comes from the environment, the token from a flag: both ways reach the node.
  const secure = { env: { WATERCRAFT_SECRET: "s3cret" }, args: ["--client-token", "t0ken"] };
  try {
    const first = await startNode({ id: "sec-1", ...secure });
    nodes.push(first);
    const second = await startNode({ id: "sec-2", join: [first.url], ...secure });
    nodes.push(second);
    await second.process.waitForLine(/^watercraft joined /);

    await t.step("a write through the joined member is read through the first", async () => {
      const put = await request("PUT", `${second.url}/v1/kv/k`, {
        json: { value: 7 },
        headers: auth,
      });
      strictEqual(put.status, 200, put.text);
      const get = await request("GET", `${first.url}/v1/kv/k`, { headers: auth });
      strictEqual(get.status, 200, get.text);
      strictEqual(get.body.value, 7);
    });

    await t.step("a peer request without proof of the secret gets 401", async () => {
      const res = await request("POST", `${first.url}/raft/messages`, {
        json: { messages: [] },
        headers: { "x-raft-from": "intruder" },
      });
      strictEqual(res.status, 401, res.text);
      strictEqual(res.body.error.code, "unauthorized");
    });

    await t.step("a node with the wrong secret cannot join: one stderr line, exit 1", async () => {
      const intruder = await startNode({
        id: "sec-bad",
        join: [first.url],
        env: { WATERCRAFT_SECRET: "wrong" },
        args: ["--client-token", "t0ken"],
      });
      nodes.push(intruder);
      const status = await waitFor("the intruder to exit", () => intruder.process.exited);
      strictEqual(status.code, 1, intruder.process.describe());
      const lines = intruder.process.stderr.split("\n").filter((line) => line !== "");
      strictEqual(lines.length, 1, intruder.process.stderr);
      match(lines[0]!, /^watercraft: cannot join via http:\/\/127\.0\.0\.1:\d+: /);
      const members = await request("GET", `${first.url}/v1/members`, { headers: auth });
      deepStrictEqual(members.body.members.map((m: { id: string }) => m.id).sort(), [
        "sec-1",
        "sec-2",
      ]);
    });
  } finally {
    await closeAll(nodes.map((n) => n.process));
  }
});

Deno.test("cli --read-only member replicates and serves reads, and refuses writes with 403", async () => {
  const nodes: CliNode[] = [];
  try {
    const leader = await startNode({ id: "ro-leader" });
    nodes.push(leader);
    const reader = await startNode({ id: "ro-reader", join: [leader.url], args: ["--read-only"] });
    nodes.push(reader);
    await reader.process.waitForLine(/^watercraft joined /);

    const members = await request("GET", `${leader.url}/v1/members`);
    const entry = members.body.members.find((m: { id: string }) => m.id === "ro-reader");
    deepStrictEqual({ voter: entry?.voter, readOnly: entry?.readOnly }, {
      voter: false,
      readOnly: true,
    });

    // Its addition is committed when join() returns; it hears from the leader just after.
    await waitFor("the read-only member to know the leader", async () => {
      const status = await request("GET", `${reader.url}/v1/status`);
      return status.body.leader?.id === "ro-leader";
    });
    const refused = await request("PUT", `${reader.url}/v1/kv/a`, { json: { value: 1 } });
    strictEqual(refused.status, 403, refused.text);
    strictEqual(refused.body.error.code, "read_only");
    strictEqual(refused.body.error.leader?.id, "ro-leader");

    const put = await request("PUT", `${leader.url}/v1/kv/a`, { json: { value: 1 } });
    strictEqual(put.status, 200, put.text);
    const got = await read(reader, "a");
    strictEqual(got.body.value, 1);
  } finally {
    await closeAll(nodes.map((n) => n.process));
  }
});
