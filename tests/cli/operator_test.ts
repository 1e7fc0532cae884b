/**
 * The operator's commands (`status`, `members`, `leader`, `kv`, `log`,
 * `--version`) and the routes they lean on (`/readyz`, `/metrics`), run
 * as real processes against a real 3-node cluster of CLI processes on
 * loopback.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { VERSION } from "../../src/http/build_info.ts";
import { type CliNode, closeAll, request, runCli, startNode, waitFor } from "../process/harness.ts";

/** Starts n1, then n2 and n3 joining it, and waits until all three vote. */
async function startCluster(prefix: string, nodes: CliNode[]): Promise<CliNode[]> {
  const first = await startNode({ id: `${prefix}1` });
  nodes.push(first);
  const others = await Promise.all(
    [2, 3].map((n) =>
      startNode({ id: `${prefix}${n}`, join: [first.url] }).then((node) => {
        nodes.push(node);
        return node;
      })
    ),
  );
  const all = [first, ...others];
  await waitFor("three voters", async () => {
    const res = await request("GET", `${first.url}/v1/members`);
    return res.body?.members?.filter((m: { voter: boolean }) => m.voter).length === 3;
  });
  return all;
}

/** Runs a command of the CLI and checks it exits 0. */
async function ok0(args: string[]): Promise<string> {
  const { code, stdout, stderr } = await runCli(args);
  strictEqual(code, 0, `${args.join(" ")}: exit ${code}\nstdout: ${stdout}\nstderr: ${stderr}`);
  return stdout;
}

Deno.test("watercraft --version prints the release and the runtime", async () => {
  const out = await ok0(["--version"]);
  match(out, new RegExp(`^watercraft ${VERSION.replaceAll(".", "\\.")} \\(deno [0-9.]+`));
  const json = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  strictEqual(json.version, VERSION, "build_info.ts VERSION must match deno.json");
});

Deno.test("operator commands against a 3-node CLI cluster", async (t) => {
  const nodes: CliNode[] = [];
  try {
    const [n1, n2, n3] = await startCluster("op", nodes);
    // Any member will do: the commands find the leader themselves.
    const via = ["--endpoints", `http://127.0.0.1:1,${n3!.url}`];

    await t.step("status: one table row per member, and --json", async () => {
      const [table, json] = await Promise.all([
        ok0(["status", ...via]),
        ok0(["status", ...via, "--json"]),
      ]);
      const lines = table.trim().split("\n");
      match(lines[0]!, /^ID +URL +ROLE +TERM +COMMIT +APPLIED +LAG +ALIVE +LAST SEEN +READ-ONLY$/);
      strictEqual(lines.length, 4, table);
      const status = JSON.parse(json);
      strictEqual(status.leader.id, "op1");
      deepStrictEqual(status.members.map((m: { id: string }) => m.id).sort(), [
        "op1",
        "op2",
        "op3",
      ]);
      for (const m of status.members) {
        ok(["leader", "follower"].includes(m.role), JSON.stringify(m));
        strictEqual(m.alive, true);
        strictEqual(typeof m.lag, "number");
      }
    });

    await t.step("kv put, get, list and delete through a follower", async () => {
      const put = JSON.parse(await ok0(["kv", "put", "k/1", '{"x":1}', ...via]));
      strictEqual(put.prev, null);
      await ok0(["kv", "put", "k/2", "plain text", ...via]);
      strictEqual(await ok0(["kv", "get", "k/1", ...via]), '{"x":1}\n');
      strictEqual(await ok0(["kv", "list", "k/", ...via]), 'k/1\t{"x":1}\nk/2\t"plain text"\n');
      const del = JSON.parse(await ok0(["kv", "delete", "k/1", ...via]));
      deepStrictEqual(del.prev, { x: 1 });
      const missing = await runCli(["kv", "get", "k/1", ...via]);
      strictEqual(missing.code, 1, missing.stderr);
      match(missing.stderr, /^watercraft: not_found: No key "k\/1"\n$/);
    });

    await t.step(
      "log tail prints the last entries, and log verify finds the same chain everywhere",
      async () => {
        const tail = (await ok0(["log", "tail", "--limit", "3", ...via])).trim().split("\n");
        strictEqual(tail.length, 3, tail.join("\n"));
        // The last entry is the delete of k/1, with the index before it.
        match(
          tail[2]!,
          /^\d+ t\d+ command op\d [0-9a-f]{16} \{"op":"delete","key":"k\/1"\} → \{"prev":\{"x":1\},"prevCreated":\d+,"prevModified":\d+\}$/,
        );
        const [first] =
          (await ok0(["log", "tail", "--after", "0", "--limit", "1", ...via, "--json"]))
            .trim().split("\n").map((l) => JSON.parse(l));
        strictEqual(first.index, 1);
        strictEqual(first.prev, "0".repeat(64));
        const all = ["--endpoints", [n1!.url, n2!.url, n3!.url].join(",")];
        const verified = await ok0(["log", "verify", ...all]);
        match(verified, /^same history up to index \d+: [0-9a-f]{64}$/m);
        strictEqual(verified.split("\n").filter((l) => / check, up to index /.test(l)).length, 3);
        const json = JSON.parse(await ok0(["log", "verify", ...all, "--json"]));
        strictEqual(json.ok, true);
        strictEqual(
          new Set(json.members.map((m: { hashAtCommon: string }) => m.hashAtCommon)).size,
          1,
        );
      },
    );

    await t.step("members list, add and remove", async () => {
      const list = await ok0(["members", "list", ...via]);
      match(list, /^ID +URL +VOTER +READ-ONLY +ALIVE +LAST SEEN +LEADER\n/);
      match(list, /^op1 .* \*$/m);
      // A member that never comes: it stays a learner, and can be removed.
      const added = JSON.parse(
        await ok0(["members", "add", "ghost", "http://127.0.0.1:9", "--json", ...via]),
      );
      ok(added.members.some((m: { id: string; voter: boolean }) => m.id === "ghost" && !m.voter));
      const removed = JSON.parse(await ok0(["members", "remove", "ghost", "--json", ...via]));
      ok(!removed.members.some((m: { id: string }) => m.id === "ghost"));
      const refused = await runCli(["members", "remove", "ghost", ...via], {
        env: { WATERCRAFT_SECRET: "wrong" },
      });
      strictEqual(refused.code, 1);
      match(refused.stderr, /^watercraft: unauthorized: /);
    });

    await t.step("leader transfer, to a named voter and to the best one", async () => {
      match(await ok0(["leader", "transfer", "op2", ...via]), /^leader is now op2 at /);
      const status = await request("GET", `${n1!.url}/v1/status`);
      strictEqual(status.body.leader.id, "op2");
      match(await ok0(["leader", "transfer", ...via]), /^leader is now op[13] at /);
    });

    await t.step("readyz, metrics and Retry-After", async () => {
      for (const node of [n1!, n2!, n3!]) {
        const ready = await request("GET", `${node.url}/readyz`);
        strictEqual(ready.status, 200, ready.text);
      }
      const metrics = await request("GET", `${n2!.url}/metrics`);
      match(metrics.text, /^watercraft_has_leader 1$/m);
      match(metrics.text, /^watercraft_build_info\{version="[^"]+",runtime="deno",/m);
      match(metrics.text, /^process_resident_memory_bytes [1-9]\d+$/m);
      match(metrics.text, /^watercraft_js_heap_used_bytes [1-9]\d+$/m);
      const leader = (await request("GET", `${n2!.url}/v1/status`)).body.leader;
      const lag = await request("GET", `${leader.url}/metrics`);
      match(lag.text, /^watercraft_follower_lag_entries\{peer="op\d"\} \d+$/m);
    });

    await t.step("a removed member stops campaigning and says so", async () => {
      // Remove a follower: it must not disrupt the others with elections.
      const leaderId = (await request("GET", `${n1!.url}/v1/status`)).body.leader.id;
      const victim = [n1!, n2!, n3!].find((n) => n.id !== leaderId)!;
      const keeper = [n1!, n2!, n3!].find((n) => n.id !== leaderId && n !== victim)!;
      await ok0(["members", "remove", victim.id, "--endpoints", keeper.url]);
      const status = await waitFor("the removed member to know", async () => {
        const res = await request("GET", `${victim.url}/v1/status`);
        return res.body?.removed === true ? res.body : null;
      });
      const termThen = status.term;
      const ready = await waitFor("readyz to refuse", async () => {
        const res = await fetch(`${victim.url}/readyz`);
        const body = await res.json();
        return res.status === 503 ? { res, body } : null;
      });
      strictEqual(ready.res.headers.get("retry-after"), "1");
      match(ready.body.error.message, /removed/);
      await waitFor("the removal in its log", () => victim.process.stderr.includes("removed"));
      // The members drop (and count) a non-member's vote requests: while
      // the removed node campaigned the count grew; now it must stand still
      // for three election timeouts and more.
      const dropped = async () =>
        Number(
          (await request("GET", `${keeper.url}/metrics`)).text.match(
            /^watercraft_peer_messages_from_non_members_total (\d+)$/m,
          )?.[1],
        );
      const before = await dropped();
      const deadline = Date.now() + 1_600;
      await waitFor("three election timeouts to pass", () => Date.now() >= deadline);
      strictEqual(await dropped(), before, "the removed node still sends vote requests");
      strictEqual((await request("GET", `${victim.url}/v1/status`)).body.term, termThen);
      strictEqual(
        (await request("GET", `${keeper.url}/v1/status`)).body.leader.id,
        leaderId,
        "the leader kept its place",
      );
    });
  } finally {
    await closeAll(nodes.map((n) => n.process));
  }
});
