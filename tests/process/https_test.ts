/**
 * HTTPS end to end between CLI nodes, on Deno, Bun and Node (tsx): a
 * throwaway CA and one certificate per node are made with openssl at test
 * time; nodes serve HTTPS (`--tls-cert`, `--tls-key`) and trust the CA for
 * their peer calls (`--ca`). A node that does not trust its peers'
 * certificate is refused, and says why.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import {
  cliCommand,
  type CliNode,
  CliProcess,
  closeAll,
  type Launchers,
  request,
  runCli,
  type Runtime,
  startNode,
  useHttpClient,
  waitFor,
} from "./harness.ts";
import { agreedLeader, read, waitForMembers, write } from "./scenario.ts";
import { ensureTools } from "./tools.ts";
import type { FetchCheck, Outcome } from "./tls/fetch_check.ts";
import { createTestPki, issueCert, type TestPki } from "./tls/pki.ts";

/** Deadline of each wait (joins, elections, replication). */
const STEP_MS = 30_000;

/** How each runtime words a refused certificate (Deno: rustls; Bun and Node: OpenSSL codes). */
const CERTIFICATE_REFUSED = /UnknownIssuer|UNABLE_TO_VERIFY_LEAF_SIGNATURE/;

/**
 * Runs `fn` with a fresh PKI and a client for the test's own requests that
 * trusts its CA; removes both afterwards.
 */
async function withPki(label: string, fn: (pki: TestPki) => Promise<void>): Promise<void> {
  const pki = createTestPki(label);
  const client = Deno.createHttpClient({ caCerts: [pki.ca.pem] });
  useHttpClient(client);
  try {
    await fn(pki);
  } finally {
    useHttpClient(null);
    client.close();
    pki.remove();
  }
}

/** The stderr lines of a node. */
function stderrLines(node: CliNode): string[] {
  return node.process.stderr.split("\n").filter((line) => line !== "");
}

/**
 * A 3-node HTTPS cluster on one runtime: bootstrap, two joins, a write through
 * a follower read through the other, replication to every node, then the
 * SIGKILL of the leader and an election among the survivors, all over HTTPS.
 */
async function httpsCluster(
  t: Deno.TestContext,
  runtime: Runtime,
  launchers: Launchers,
): Promise<void> {
  await withPki(`https-${runtime}`, async (pki) => {
    const nodes: CliNode[] = [];
    const flags = (i: number) => ({
      id: `${runtime}-tls-${i}`,
      runtime,
      launchers,
      tls: issueCert(pki.ca, pki.dir, `${runtime}-tls-${i}`),
      args: ["--ca", pki.ca.cert],
    });
    try {
      await t.step("the first node bootstraps and two join it over HTTPS", async () => {
        const first = await startNode(flags(1));
        nodes.push(first);
        match(first.url, /^https:\/\/127\.0\.0\.1:\d+$/);
        const joiners = await Promise.all(
          [2, 3].map((i) =>
            startNode({ ...flags(i), join: [first.url] }).then((node) => {
              nodes.push(node);
              return node;
            })
          ),
        );
        for (const node of joiners) await node.process.waitForLine(/^watercraft joined /, STEP_MS);
        // Promotion to voter needs the learners to catch up: appends over HTTPS.
        await waitForMembers(nodes, 3);
      });

      await t.step("a write through a follower replicates to every node", async () => {
        const leader = await agreedLeader(nodes);
        const followers = nodes.filter((n) => n.id !== leader);
        strictEqual(followers.length, 2);
        const put = await write(followers[0]!, "k1", { via: followers[0]!.id });
        const got = await read(followers[1]!, "k1");
        deepStrictEqual(got.body.value, { via: followers[0]!.id });
        await waitFor("every node to apply the write", async () => {
          const local = await Promise.all(
            nodes.map((n) => request("GET", `${n.url}/v1/kv/k1?consistency=local`)),
          );
          return local.every((r) => r.status === 200 && r.body.index >= put.body.index);
        }, { timeoutMs: STEP_MS });
      });

      if (runtime === "deno") {
        await t.step(
          "operator commands reach the cluster with --ca, and say why without",
          async () => {
            const endpoints = nodes.map((n) => n.url).join(",");
            const status = await runCli(["status", "--endpoints", endpoints, "--ca", pki.ca.cert]);
            strictEqual(status.code, 0, status.stderr);
            for (const node of nodes) ok(status.stdout.includes(node.id), status.stdout);
            const got = await runCli([
              "kv",
              "get",
              "k1",
              "--endpoints",
              nodes[0]!.url,
              "--ca",
              pki.ca.cert,
              "--json",
            ]);
            strictEqual(got.code, 0, got.stderr);
            strictEqual(JSON.parse(got.stdout).value.via !== undefined, true, got.stdout);
            const blind = await runCli([
              "status",
              "--endpoints",
              endpoints,
              "--timeout-ms",
              "3000",
            ]);
            strictEqual(blind.code, 1, blind.stdout);
            match(blind.stderr, /its certificate is not trusted: give its CA with --ca/);
            const missing = await runCli(["status", "--endpoints", endpoints, "--ca", pki.dir]);
            strictEqual(missing.code, 2, missing.stderr);
            match(missing.stderr, /--ca: /);
          },
        );
      }

      await t.step("after SIGKILL of the leader, the survivors elect one over HTTPS", async () => {
        const oldLeader = await agreedLeader(nodes);
        const victim = nodes.find((n) => n.id === oldLeader)!;
        victim.process.kill("SIGKILL");
        await victim.process.status;
        const survivors = nodes.filter((n) => n !== victim);
        const newLeader = await agreedLeader(survivors);
        ok(newLeader !== oldLeader, `${oldLeader} still leads`);
        const put = await write(survivors[0]!, "k2", 2);
        const got = await read(survivors[1]!, "k2");
        strictEqual(got.body.value, 2);
        ok(got.body.index >= put.body.index);
      });

      for (const node of nodes) {
        const refused = stderrLines(node).filter((line) => /certificate/i.test(line));
        deepStrictEqual(refused, [], `${node.id} refused a certificate`);
      }
    } catch (error) {
      throw withOutput(error, nodes);
    } finally {
      await closeAll(nodes.map((n) => n.process));
    }
  });
}

Deno.test("cli HTTPS cluster of 3 Deno processes with --ca elects a leader and replicates", async (t) => {
  await httpsCluster(t, "deno", {});
});

Deno.test("cli HTTPS cluster of 3 Bun processes with --ca elects a leader and replicates", async (t) => {
  await httpsCluster(t, "bun", await ensureTools());
});

Deno.test("cli HTTPS cluster of 3 Node processes (tsx) with --ca elects a leader and replicates", async (t) => {
  await httpsCluster(t, "node", await ensureTools());
});

Deno.test("cli nodes that do not trust their peers' certificate are refused and say why", async (t) => {
  const launchers = await ensureTools();
  for (const runtime of ["deno", "bun", "node"] as const) {
    await t.step(runtime, async () => {
      await withPki(`untrusted-${runtime}`, async (pki) => {
        const nodes: CliNode[] = [];
        const node = (id: string, args: string[], join?: string) =>
          startNode({
            id,
            runtime,
            launchers,
            tls: issueCert(pki.ca, pki.dir, id),
            args,
            ...(join === undefined ? {} : { join: [join] }),
          }).then((started) => {
            nodes.push(started);
            return started;
          });
        try {
          // The first node has no --ca: it cannot verify the certificate of
          // anyone its CA signed, its own members included.
          const first = await node(`${runtime}-blind`, []);
          const [member, noCa, wrongCa] = await Promise.all([
            node(`${runtime}-member`, ["--ca", pki.ca.cert], first.url),
            node(`${runtime}-no-ca`, [], first.url),
            node(`${runtime}-wrong-ca`, ["--ca", pki.otherCa.cert], first.url),
          ]);

          // Joiners that cannot verify the members' certificate give up at
          // once, in one line that says why.
          for (const joiner of [noCa, wrongCa]) {
            const status = await waitFor(`${joiner.id} to exit`, () => joiner.process.exited, {
              timeoutMs: STEP_MS,
            });
            strictEqual(status.code, 1, joiner.process.describe());
            const lines = stderrLines(joiner);
            strictEqual(lines.length, 1, joiner.process.stderr);
            match(
              lines[0]!,
              /^watercraft: cannot join via https:\/\/127\.0\.0\.1:\d+: .*its certificate is not trusted/,
            );
            match(lines[0]!, CERTIFICATE_REFUSED);
          }

          // The member that trusts the CA joins as a learner, but the first
          // node's appends to it are refused: it reports why, once, and the
          // member never catches up, so it is never promoted.
          await member.process.waitForLine(/^watercraft joined /, STEP_MS);
          const line = await waitFor(
            `${first.id} to report the refused certificate`,
            () =>
              stderrLines(first).find((l) =>
                l.startsWith(`watercraft: cannot send to peer ${member.id} at ${member.url}: `)
              ),
            { timeoutMs: STEP_MS },
          );
          match(line, CERTIFICATE_REFUSED);
          match(line, /\(its certificate is not trusted: check --ca\)$/);
          const put = await request("PUT", `${first.url}/v1/kv/a`, { json: { value: 1 } });
          strictEqual(put.status, 200, put.text);
          const members = await request("GET", `${first.url}/v1/members`);
          deepStrictEqual(
            members.body.members.map((m: { id: string; voter: boolean }) => [m.id, m.voter]),
            [[first.id, true], [member.id, false]],
          );
          const status = await request("GET", `${member.url}/v1/status`);
          strictEqual(status.body.lastIndex, 0, status.text);
          strictEqual(
            stderrLines(first).filter((l) => l.includes(`peer ${member.id}`)).length,
            1,
            "the refusal is reported once, not on every retry",
          );
        } catch (error) {
          throw withOutput(error, nodes);
        } finally {
          await closeAll(nodes.map((n) => n.process));
        }
      });
    });
  }
});

/** Runs `tls/fetch_check.ts` on `runtime` and parses what it printed. */
async function fetchCheck(
  runtime: Runtime,
  launchers: Launchers,
  pki: TestPki,
): Promise<FetchCheck> {
  const [command, prefix] = cliCommand(runtime, launchers);
  // The same launch as the CLI's, with the check script in place of src/cli.ts.
  const args = [
    ...prefix.slice(0, -1),
    "tests/process/tls/fetch_check.ts",
    pki.ca.cert,
    pki.cert.cert,
    pki.cert.key,
    pki.otherCa.cert,
  ];
  const proc = new CliProcess(command, args, { label: `fetch_check@${runtime}` });
  try {
    const status = await waitFor(`fetch_check on ${runtime} to exit`, () => proc.exited, {
      timeoutMs: STEP_MS,
    });
    await proc.status;
    strictEqual(status.code, 0, proc.describe());
    return JSON.parse(proc.stdout.trim().split("\n").at(-1)!) as FetchCheck;
  } finally {
    await proc.close();
  }
}

Deno.test("trustingFetch() trusts the CA on Deno, Bun and Node; the fetch failures say why", async (t) => {
  const launchers = await ensureTools();
  const pki = createTestPki("fetch-check");
  try {
    const want: Record<Runtime, FetchCheck["trusted"]["via"]> = {
      deno: "deno-client",
      bun: "bun-tls",
      node: "undici-agent",
    };
    const results = await Promise.all(
      (["deno", "bun", "node"] as const).map((runtime) => fetchCheck(runtime, launchers, pki)),
    );
    for (const [i, runtime] of (["deno", "bun", "node"] as const).entries()) {
      await t.step(runtime, () => {
        const result = results[i]!;
        const answered = (o: Outcome, via: string) =>
          deepStrictEqual(o, { via, answer: { status: 200, body: "POST ping" } });
        answered(result.trusted, want[runtime]);
        answered(result.fallback, "node-https");
        answered(result.fallbackHttp, "node-https");
        for (const refused of [result.untrusted, result.otherCa]) {
          strictEqual(refused.certificate, true, JSON.stringify(refused));
          match(refused.error!, CERTIFICATE_REFUSED);
        }
      });
    }
  } finally {
    pki.remove();
  }
});

/** The error of a failed step with every node's output appended, for the report. */
function withOutput(error: unknown, nodes: readonly CliNode[]): Error {
  return new Error(
    `${(error as Error).message}\n${nodes.map((n) => n.process.describe()).join("\n")}`,
    { cause: error },
  );
}
