/**
 * Tests of the command-line program (`src/cli/main.ts` behind
 * `src/cli.ts`): the real process (`deno run -A src/cli.ts`) on loopback,
 * its exit codes, its stderr lines, and its flags on Bun and Node, whose
 * `node:util` parses them too.
 *
 * @module
 */

import { deepStrictEqual as assertEquals, match, ok, strictEqual } from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HELP } from "../../src/cli.ts";
import {
  type CliNode,
  closeAll,
  freePort,
  request,
  runCli,
  startNode,
  TLS_FILES,
  waitFor,
} from "../process/harness.ts";
import { ensureTools } from "../process/tools.ts";

Deno.test("cli exits 2 with one stderr line on bad flags and unusable files", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "watercraft-cli-"));
  try {
    const notPem = join(dir, "not.pem");
    writeFileSync(notPem, "hello\n");
    const owned = join(dir, "owned");
    mkdirSync(owned);
    writeFileSync(join(owned, "node-id"), "owner\n");
    const rows: { name: string; args: string[]; want: RegExp }[] = [
      { name: "unknown flag", args: ["--nope"], want: /Unknown flag --nope/ },
      { name: "missing value", args: ["--port"], want: /--port needs a value/ },
      { name: "non-numeric port", args: ["--port", "http"], want: /--port must be a whole number/ },
      { name: "bad id", args: ["--id", "no/slash"], want: /--id must match/ },
      // Where node:util's parseArgs alone would differ: it takes unknown
      // flags, keeps the last of two values, and takes "--x" as a value.
      { name: "unknown short flag", args: ["-x"], want: /^watercraft: Unexpected argument "-x"/ },
      {
        name: "flag given twice",
        args: ["--port=1", "--port", "2"],
        want: /^watercraft: Flag --port is given twice$/,
      },
      {
        name: "a value starting with -- given apart",
        args: ["--secret", "--odd"],
        want: /^watercraft: Flag --secret needs a value$/,
      },
      { name: "option terminator", args: ["--", "x"], want: /Unexpected argument "--"/ },
      { name: "tls-cert without tls-key", args: ["--tls-cert", notPem], want: /go together/ },
      {
        name: "unreadable tls files",
        args: ["--tls-cert", join(dir, "missing.pem"), "--tls-key", join(dir, "missing.pem")],
        want: /--tls-cert: cannot read .*missing\.pem \(ENOENT\)/,
      },
      {
        name: "tls file not PEM",
        args: ["--tls-cert", notPem, "--tls-key", notPem],
        want: /holds no PEM/,
      },
      { name: "unreadable ca", args: ["--ca", join(dir, "ca.pem")], want: /--ca: cannot read/ },
      {
        name: "a data dir that belongs to another node",
        args: ["--id", "other", "--data", owned],
        want: /^watercraft: --data .* belongs to node owner, not other$/,
      },
      {
        name: "a data dir that is a file",
        args: ["--data", notPem],
        want: /^watercraft: --data .* is unusable: /,
      },
      {
        name: "recovery without durable state",
        args: ["--storage", "memory", "--force-new-cluster"],
        want: /--force-new-cluster needs the node's durable state/,
      },
    ];
    // The runs are independent: run them together, report each as a step.
    // Loopback only, should a row wrongly start a node.
    const results = await Promise.all(
      rows.map((row) => runCli(["--host", "127.0.0.1", ...row.args])),
    );
    for (const [i, row] of rows.entries()) {
      await t.step(row.name, () => {
        const { code, stdout, stderr } = results[i]!;
        const lines = stderr.split("\n").filter((line) => line !== "");
        strictEqual(code, 2, `exit code for ${row.args.join(" ")}; stderr: ${stderr}`);
        strictEqual(lines.length, 1, `stderr has ${lines.length} lines: ${stderr}`);
        match(lines[0]!, row.want);
        strictEqual(stdout, "", "nothing on stdout");
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Flags that Bun's and Node's `node:util` must parse as Deno's does. */
const RUNTIME_ROWS: { name: string; args: string[]; code: number; stderr: RegExp }[] = [
  { name: "--help", args: ["--help"], code: 0, stderr: /^$/ },
  {
    name: "unknown flag",
    args: ["--nope=1"],
    code: 2,
    stderr: /^watercraft: Unknown flag --nope /,
  },
  { name: "short flag", args: ["-hx"], code: 2, stderr: /Unexpected argument "-hx"/ },
  // The command comes first: after a flag, a word is no command.
  { name: "positional", args: ["serve"], code: 2, stderr: /Unexpected argument "serve"/ },
  { name: "missing value", args: ["--id", "--port", "1"], code: 2, stderr: /--id needs a value/ },
  { name: "given twice", args: ["--id=a", "--id", "b"], code: 2, stderr: /--id is given twice/ },
  {
    name: "switch with a value",
    args: ["--read-only=yes"],
    code: 2,
    stderr: /--read-only takes no value/,
  },
  {
    name: "a value starting with a single - is a value",
    args: ["--port", "-1"],
    code: 2,
    stderr: /--port must be a whole number from 0 to 65535, got "-1"/,
  },
];

/** How many Bun or Node processes run at once. */
const RUNTIME_RUNS_MAX = 4;

Deno.test("cli on Bun and on Node parses flags as on Deno", async (t) => {
  const launchers = await ensureTools();
  const runs = (["bun", "node"] as const).flatMap((runtime) =>
    RUNTIME_ROWS.map((row) => ({ runtime, row }))
  );
  // A few at a time: tsx compiles the source in every Node process.
  const results: Awaited<ReturnType<typeof runCli>>[] = [];
  for (let i = 0; i < runs.length; i += RUNTIME_RUNS_MAX) {
    results.push(
      ...await Promise.all(
        runs.slice(i, i + RUNTIME_RUNS_MAX).map(({ runtime, row }) =>
          runCli(["--host", "127.0.0.1", ...row.args], { runtime, launchers })
        ),
      ),
    );
  }
  for (const [i, { runtime, row }] of runs.entries()) {
    await t.step(`${runtime}: ${row.name}`, () => {
      const { code, stdout, stderr } = results[i]!;
      strictEqual(code, row.code, `exit code for ${row.args.join(" ")}; stderr: ${stderr}`);
      match(stderr.trimEnd(), row.stderr);
      ok(!stderr.trimEnd().includes("\n"), `stderr has several lines: ${stderr}`);
      strictEqual(stdout, row.code === 0 ? HELP : "");
    });
  }
});

Deno.test("cli --help prints the usage and exits 0", async () => {
  const { code, stdout, stderr } = await runCli(["--help"]);
  strictEqual(code, 0, stderr);
  strictEqual(stdout, HELP);
});

Deno.test("cli serves the key-value API and exits 0 on SIGTERM", async () => {
  const nodes: CliNode[] = [];
  try {
    const node = await startNode({ id: "solo-1" });
    nodes.push(node);
    const lines = node.process.stdout.trim().split("\n");
    assertEquals(lines, [`watercraft listening on ${node.url} as solo-1`]);

    const put = await request("PUT", `${node.url}/v1/kv/a`, { json: { value: 1 } });
    strictEqual(put.status, 200, put.text);
    for (const field of ["index", "term", "id", "head"]) {
      ok(field in put.body, `PUT answer lacks ${field}`);
    }
    strictEqual(put.body.prev, null);
    match(put.body.id, /^[0-9a-f]{64}$/);

    const get = await request("GET", `${node.url}/v1/kv/a`);
    strictEqual(get.status, 200, get.text);
    assertEquals(get.body, {
      value: 1,
      index: put.body.index,
      created: put.body.index,
      modified: put.body.index,
    });

    const again = await request("PUT", `${node.url}/v1/kv/a`, { json: { value: 2 } });
    strictEqual(again.status, 200, again.text);
    strictEqual(again.body.prev, 1);

    const health = await request("GET", `${node.url}/healthz`);
    strictEqual(health.status, 200);
    assertEquals(health.body, { ok: true });

    node.process.kill("SIGTERM");
    const status = await waitFor("the node to exit after SIGTERM", () => node.process.exited, {
      timeoutMs: 10_000,
    });
    strictEqual(status.code, 0, node.process.describe());
    strictEqual(node.process.stderr, "", "nothing on stderr");
  } finally {
    await closeAll(nodes.map((n) => n.process));
  }
});

Deno.test("cli with a client token answers 401 without it, and exits 0 on SIGINT", async (t) => {
  const nodes: CliNode[] = [];
  try {
    const [byFlag, byEnv] = await Promise.all([
      startNode({ id: "tok-flag", args: ["--client-token", "s3cret"] }),
      startNode({ id: "tok-env", env: { WATERCRAFT_CLIENT_TOKEN: "s3cret" } }),
    ]);
    nodes.push(byFlag, byEnv);
    for (const node of [byFlag, byEnv]) {
      await t.step(node.id, async () => {
        const none = await request("PUT", `${node.url}/v1/kv/a`, { json: { value: 1 } });
        strictEqual(none.status, 401, none.text);
        strictEqual(none.body.error.code, "unauthorized");

        const wrong = await request("GET", `${node.url}/v1/kv/a`, {
          headers: { authorization: "Bearer nope" },
        });
        strictEqual(wrong.status, 401, wrong.text);

        const auth = { authorization: "Bearer s3cret" };
        const put = await request("PUT", `${node.url}/v1/kv/a`, {
          json: { value: 1 },
          headers: auth,
        });
        strictEqual(put.status, 200, put.text);
        const get = await request("GET", `${node.url}/v1/kv/a`, { headers: auth });
        strictEqual(get.status, 200, get.text);
        strictEqual(get.body.value, 1);

        // Health checks stay open: load balancers carry no token.
        strictEqual((await request("GET", `${node.url}/healthz`)).status, 200);
      });
    }
    byFlag.process.kill("SIGINT");
    const status = await waitFor("the node to exit after SIGINT", () => byFlag.process.exited, {
      timeoutMs: 10_000,
    });
    strictEqual(status.code, 0, byFlag.process.describe());
  } finally {
    await closeAll(nodes.map((n) => n.process));
  }
});

Deno.test("cli serves HTTPS with --tls-cert and --tls-key", async () => {
  const nodes: CliNode[] = [];
  const client = Deno.createHttpClient({ caCerts: [readFileSync(TLS_FILES.ca, "utf8")] });
  try {
    const node = await startNode({ id: "tls-1", tls: true });
    nodes.push(node);
    match(node.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    match(node.process.stdout, new RegExp(`^watercraft listening on ${node.url} as tls-1\n`));
    const put = await request("PUT", `${node.url}/v1/kv/a`, { json: { value: "secure" }, client });
    strictEqual(put.status, 200, put.text);
    const get = await request("GET", `${node.url}/v1/kv/a`, { client });
    assertEquals(get.body, {
      value: "secure",
      index: put.body.index,
      created: put.body.index,
      modified: put.body.index,
    });
    node.process.kill("SIGTERM");
    const status = await waitFor("the node to exit after SIGTERM", () => node.process.exited, {
      timeoutMs: 10_000,
    });
    strictEqual(status.code, 0, node.process.describe());
  } finally {
    client.close();
    await closeAll(nodes.map((n) => n.process));
  }
});

Deno.test("cli logs each failed join attempt as a join.retry event, then join.failed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "watercraft-join-retry-"));
  try {
    const { code, stdout, stderr } = await runCli([
      "--id",
      "lonely",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--data",
      join(dir, "data"),
      "--join",
      `http://127.0.0.1:${freePort()}`,
      "--join-timeout-ms",
      "1500",
      "--log-format",
      "json",
    ]);
    strictEqual(code, 1, stderr);
    const events = [...stdout.split("\n"), ...stderr.split("\n")]
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line));
    const retries = events.filter((e) => e.event === "join.retry");
    ok(retries.length >= 2, stderr);
    for (const [i, retry] of retries.entries()) {
      strictEqual(retry.level, "warn");
      strictEqual(retry.attempt, i + 1);
      match(retry.problem, /^http:\/\/127\.0\.0\.1:\d+: /);
      ok(Number.isInteger(retry.delayMs) && retry.delayMs >= 0, String(retry.delayMs));
      match(retry.msg, /^join attempt \d+ failed \(.*\); retrying$/);
    }
    strictEqual(events.at(-1)?.event, "join.failed", stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("cli --snapshot-every spaces the node's snapshots", async () => {
  const nodes: CliNode[] = [];
  try {
    const node = await startNode({ id: "snappy", args: ["--snapshot-every", "4"] });
    nodes.push(node);
    for (let i = 0; i < 10; i++) {
      const put = await request("PUT", `${node.url}/v1/kv/k${i}`, { json: { value: i } });
      strictEqual(put.status, 200, put.text);
    }
    // About 13 entries with the configuration's: a snapshot every 4 is 3, the default none.
    const taken = await waitFor("the snapshots to be taken", async () => {
      const metrics = await request("GET", `${node.url}/metrics`);
      const n = Number(metrics.text.match(/^watercraft_snapshots_taken_total (\d+)$/m)?.[1]);
      return n >= 2 && n;
    });
    ok(taken <= 4, `${taken} snapshots`);
  } finally {
    await closeAll(nodes.map((n) => n.process));
  }
});
