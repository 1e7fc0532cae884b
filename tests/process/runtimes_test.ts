/**
 * The cluster scenario of `cluster_test.ts` with the nodes on Bun
 * (`bun src/cli.ts`), on Node (`node --import tsx src/cli.ts`, what
 * `npx tsx src/cli.ts` runs), and one node per runtime. Bun and tsx are
 * installed from the npm registry into `.tools/` on first use.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { readFileSync } from "node:fs";
import { type CliNode, closeAll, request, startNode, TLS_FILES, waitFor } from "./harness.ts";
import { runClusterScenario } from "./scenario.ts";
import { ensureTools } from "./tools.ts";

Deno.test("cli cluster of 3 Bun processes survives SIGKILL of the leader", async (t) => {
  const launchers = await ensureTools();
  await runClusterScenario(t, { prefix: "bun", runtimes: ["bun", "bun", "bun"], launchers });
});

Deno.test("cli cluster of 3 Node processes (tsx) survives SIGKILL of the leader", async (t) => {
  const launchers = await ensureTools();
  await runClusterScenario(t, { prefix: "node", runtimes: ["node", "node", "node"], launchers });
});

Deno.test("cli cluster mixing Deno, Bun and Node survives SIGKILL of the leader", async (t) => {
  const launchers = await ensureTools();
  await runClusterScenario(t, { prefix: "mixed", runtimes: ["deno", "bun", "node"], launchers });
});

Deno.test("cli on Bun and on Node serves HTTPS, the key-value API, and exits 0 on SIGTERM", async (t) => {
  const launchers = await ensureTools();
  const client = Deno.createHttpClient({ caCerts: [readFileSync(TLS_FILES.ca, "utf8")] });
  const nodes: CliNode[] = [];
  try {
    const started = await Promise.all(
      (["bun", "node"] as const).map((runtime) =>
        startNode({ id: `tls-${runtime}`, runtime, launchers, tls: true }).then((node) => {
          nodes.push(node);
          return node;
        })
      ),
    );
    for (const node of started) {
      await t.step(node.runtime, async () => {
        strictEqual(node.process.stdout, `watercraft listening on ${node.url} as ${node.id}\n`);
        const put = await request("PUT", `${node.url}/v1/kv/a`, {
          json: { value: node.runtime },
          client,
        });
        strictEqual(put.status, 200, put.text);
        const get = await request("GET", `${node.url}/v1/kv/a`, { client });
        deepStrictEqual(get.body, { value: node.runtime, index: put.body.index });
        node.process.kill("SIGTERM");
        const status = await waitFor(
          `${node.id} to exit after SIGTERM`,
          () => node.process.exited,
          {
            timeoutMs: 10_000,
          },
        );
        strictEqual(status.code, 0, node.process.describe());
      });
    }
  } finally {
    client.close();
    await closeAll(nodes.map((n) => n.process));
  }
});
