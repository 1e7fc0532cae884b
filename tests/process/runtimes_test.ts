/**
 * The cluster scenario of `cluster_test.ts` with the nodes on Bun
 * (`bun src/cli.ts`), on Node (`node --import tsx src/cli.ts`, what
 * `npx tsx src/cli.ts` runs), and one node per runtime; HTTPS on Bun and
 * Node; and key paths that the runtimes' URL parsers would read differently,
 * sent byte for byte. Bun and tsx are installed from the npm registry into
 * `.tools/` on first use.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { readFileSync } from "node:fs";
import { type CliNode, closeAll, request, startNode, TLS_FILES, waitFor } from "./harness.ts";
import { runClusterScenario } from "./scenario.ts";
import { ensureTools } from "./tools.ts";
import { openedWithDsync } from "../storage/file/fd_flags.ts";

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
        deepStrictEqual(get.body, {
          value: node.runtime,
          index: put.body.index,
          created: put.body.index,
          modified: put.body.index,
        });
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

/** Whether each log segment a process has open was opened with `O_DSYNC` (Linux). */
function segmentsOpenedSynced(pid: number): boolean[] {
  const synced: boolean[] = [];
  for (const fd of Deno.readDirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`);
    } catch {
      continue; // Closed meanwhile.
    }
    if (!target.endsWith(".wal")) continue;
    synced.push(openedWithDsync(pid, fd.name));
  }
  return synced;
}

Deno.test({
  name:
    "cli on Bun and Node saves through O_DSYNC writes; on Deno, whose file writes block its thread, it does not",
  ignore: Deno.build.os !== "linux",
  fn: async (t) => {
    const launchers = await ensureTools();
    const nodes: CliNode[] = [];
    const dir = await Deno.makeTempDir({ prefix: "watercraft_dsync_" });
    try {
      for (const runtime of ["deno", "bun", "node"] as const) {
        const data = `${dir}/${runtime}`;
        const node = await startNode({ id: `dsync-${runtime}`, runtime, launchers, data });
        nodes.push(node);
        await t.step(runtime, async () => {
          const put = await request("PUT", `${node.url}/v1/kv/a`, { json: { value: 1 } });
          strictEqual(put.status, 200, put.text);
          deepStrictEqual(segmentsOpenedSynced(node.process.pid), [runtime !== "deno"]);
        });
      }
    } finally {
      await closeAll(nodes.map((n) => n.process));
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * Sends one HTTP/1.1 request line byte for byte (`fetch` would resolve its
 * dot segments before sending) and returns the answer's status and body.
 */
async function sendRaw(
  url: string,
  requestLine: string,
): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(url).port) });
  try {
    const head = `${requestLine}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;
    await conn.write(new TextEncoder().encode(head));
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(4096);
    let text = "";
    // The server closes the connection after its answer (Connection: close).
    for (let reads = 0; reads < 1000; reads++) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n), { stream: true });
    }
    return { status: Number(text.slice(9, 12)), body: text.slice(text.indexOf("\r\n\r\n") + 4) };
  } finally {
    conn.close();
  }
}

Deno.test("cli on Deno, Bun and Node refuses key paths the runtimes would read differently, alike", async (t) => {
  const launchers = await ensureTools();
  const nodes: CliNode[] = [];
  try {
    const started = await Promise.all(
      (["deno", "bun", "node"] as const).map((runtime) =>
        startNode({ id: `paths-${runtime}`, runtime, launchers }).then((node) => {
          nodes.push(node);
          return node;
        })
      ),
    );
    for (const node of started) {
      await t.step(node.runtime, async () => {
        // Bun and Node resolve these in the URL they hand the handler (`..`
        // would reach it as `/v1/`); Deno would take `..` as the key.
        for (
          const target of ["/v1/kv/..", "/v1/kv/.", "/v1/kv/%2e%2E", "/v1/kv/x/../y", "/v1/kv/%ZZ"]
        ) {
          for (const method of ["GET", "DELETE"]) {
            const { status, body } = await sendRaw(node.url, `${method} ${target} HTTP/1.1`);
            strictEqual(status, 400, `${method} ${target}: ${body}`);
            const error = JSON.parse(body).error;
            strictEqual(error.code, "invalid_request", `${method} ${target}`);
            strictEqual(error.message.startsWith("Invalid path: segment "), true, error.message);
          }
        }
        // An escaped % is a key like any other, and not the same as a bare one.
        const put = await request("PUT", `${node.url}/v1/kv/%25ZZ`, { json: { value: 1 } });
        strictEqual(put.status, 200, put.text);
        const listed = await request("GET", `${node.url}/v1/kv`);
        deepStrictEqual(listed.body.items, [
          { key: "%ZZ", value: 1, created: put.body.index, modified: put.body.index },
        ]);
      });
    }
  } finally {
    await closeAll(nodes.map((n) => n.process));
  }
});
