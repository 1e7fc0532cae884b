/**
 * Tests of the command-line node: its flag parser in process, then the
 * real program (`deno run -A src/cli.ts`) on loopback.
 *
 * @module
 */

import { deepStrictEqual as assertEquals, match, ok, strictEqual } from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CliOptions, HELP, parseArgs, UsageError } from "../src/cli.ts";
import {
  type CliNode,
  closeAll,
  request,
  runCli,
  startNode,
  TLS_FILES,
  waitFor,
} from "./process/harness.ts";

// ----------------------------------------------------------------- parser

Deno.test("parseArgs() applies the defaults of API.md section 1", () => {
  const got = parseArgs(["--id", "n1"], {});
  assertEquals(
    got,
    {
      id: "n1",
      port: 6969,
      host: "0.0.0.0",
      advertise: null,
      data: "./watercraft-data/n1",
      storage: "file",
      join: [],
      readOnly: false,
      idGiven: true,
      forceNewCluster: false,
      secret: null,
      clientToken: null,
      tlsCert: null,
      tlsKey: null,
      ca: null,
      heartbeatMs: 50,
      electionMs: 500,
    } satisfies CliOptions,
  );
});

Deno.test("parseArgs() picks a random valid id when none is given", () => {
  const a = parseArgs([], {});
  const b = parseArgs([], {});
  ok(a !== "help" && b !== "help");
  match(a.id, /^[A-Za-z0-9._-]{1,64}$/);
  ok(a.id !== b.id, "two random ids are equal");
  strictEqual(a.data, `./watercraft-data/${a.id}`);
});

Deno.test("parseArgs() reads every flag", async (t) => {
  const rows: {
    name: string;
    args: string[];
    env?: Record<string, string>;
    want: Partial<CliOptions>;
  }[] = [
    {
      name: "--flag=value form",
      args: ["--port=7000", "--host=127.0.0.1"],
      want: { port: 7000, host: "127.0.0.1" },
    },
    { name: "port 0 picks a free port", args: ["--port", "0"], want: { port: 0 } },
    {
      name: "advertise loses its trailing slash",
      args: ["--advertise", "http://a.example:7000/"],
      want: { advertise: "http://a.example:7000" },
    },
    {
      name: "join takes a comma list and may repeat",
      args: ["--join", "http://a:1,http://b:2/", "--join=https://c:3"],
      want: { join: ["http://a:1", "http://b:2", "https://c:3"] },
    },
    {
      name: "read-only with join",
      args: ["--join", "http://a:1", "--read-only"],
      want: { readOnly: true, join: ["http://a:1"] },
    },
    { name: "data dir", args: ["--id", "x", "--data", "/tmp/d"], want: { data: "/tmp/d" } },
    { name: "storage memory", args: ["--storage", "memory"], want: { storage: "memory" } },
    {
      name: "storage file parses (start refuses it)",
      args: ["--storage", "file"],
      want: { storage: "file" },
    },
    {
      name: "secrets from flags win over the environment",
      args: ["--secret", "s1", "--client-token", "t1"],
      env: { WATERCRAFT_SECRET: "s2", WATERCRAFT_CLIENT_TOKEN: "t2" },
      want: { secret: "s1", clientToken: "t1" },
    },
    {
      name: "secrets from the environment",
      args: [],
      env: { WATERCRAFT_SECRET: "s2", WATERCRAFT_CLIENT_TOKEN: "t2" },
      want: { secret: "s2", clientToken: "t2" },
    },
    {
      name: "an empty environment variable is unset",
      args: [],
      env: { WATERCRAFT_SECRET: "" },
      want: { secret: null },
    },
    {
      name: "a value starting with -- uses the = form",
      args: ["--secret=--odd"],
      want: { secret: "--odd" },
    },
    {
      name: "tls files and ca",
      args: ["--tls-cert", "c.pem", "--tls-key", "k.pem", "--ca", "ca.pem"],
      want: { tlsCert: "c.pem", tlsKey: "k.pem", ca: "ca.pem" },
    },
    {
      name: "timings",
      args: ["--heartbeat-ms", "20", "--election-ms", "300"],
      want: { heartbeatMs: 20, electionMs: 300 },
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const got = parseArgs(row.args, row.env ?? {});
      ok(got !== "help");
      for (const [key, value] of Object.entries(row.want)) {
        assertEquals(got[key as keyof CliOptions], value, key);
      }
    });
  }
});

Deno.test("parseArgs() returns help for --help and -h", () => {
  strictEqual(parseArgs(["--help"], {}), "help");
  strictEqual(parseArgs(["--port", "1", "-h"], {}), "help");
});

/** Bad flags: each must fail with a message that names the problem. */
const BAD_FLAGS: { name: string; args: string[]; want: RegExp }[] = [
  { name: "unknown flag", args: ["--nope"], want: /Unknown flag --nope/ },
  { name: "positional argument", args: ["serve"], want: /Unexpected argument "serve"/ },
  { name: "missing value at the end", args: ["--port"], want: /--port needs a value/ },
  {
    name: "missing value before a flag",
    args: ["--id", "--port", "1"],
    want: /--id needs a value/,
  },
  { name: "non-numeric port", args: ["--port", "http"], want: /--port must be a whole number/ },
  { name: "port out of range", args: ["--port", "70000"], want: /--port must be a whole number/ },
  { name: "negative port", args: ["--port=-1"], want: /--port must be a whole number/ },
  { name: "id with a space", args: ["--id", "a b"], want: /--id must match/ },
  { name: "id too long", args: ["--id", "x".repeat(65)], want: /--id must match/ },
  { name: "flag given twice", args: ["--port", "1", "--port", "2"], want: /--port is given twice/ },
  { name: "switch with a value", args: ["--read-only=yes"], want: /--read-only takes no value/ },
  {
    name: "unknown storage",
    args: ["--storage", "disk"],
    want: /--storage must be memory, file or kv/,
  },
  {
    name: "advertise not a URL",
    args: ["--advertise", "node1:6969"],
    want: /--advertise must be an http/,
  },
  { name: "join not http", args: ["--join", "ftp://a"], want: /--join must be an http/ },
  { name: "read-only without join", args: ["--read-only"], want: /--read-only needs --join/ },
  {
    name: "tls-cert without tls-key",
    args: ["--tls-cert", "c.pem"],
    want: /--tls-cert and --tls-key go together/,
  },
  { name: "empty secret", args: ["--secret="], want: /--secret must not be empty/ },
  {
    name: "zero heartbeat",
    args: ["--heartbeat-ms", "0"],
    want: /--heartbeat-ms must be a whole number/,
  },
  {
    name: "election below two heartbeats",
    args: ["--heartbeat-ms", "100", "--election-ms", "150"],
    want: /--election-ms \(150\) must be at least twice --heartbeat-ms \(100\)/,
  },
  {
    name: "https advertise without tls",
    args: ["--advertise", "https://a:1"],
    want: /HTTPS needs --tls-cert and --tls-key/,
  },
];

Deno.test("parseArgs() refuses bad flags with a one-line UsageError", async (t) => {
  for (const row of BAD_FLAGS) {
    await t.step(row.name, () => {
      let thrown: unknown = null;
      try {
        parseArgs(row.args, {});
      } catch (error) {
        thrown = error;
      }
      ok(thrown instanceof UsageError, `no UsageError for ${row.args.join(" ")}`);
      match(thrown.message, row.want);
      ok(!thrown.message.includes("\n"), "the message spans several lines");
    });
  }
});

// ----------------------------------------------------------------- program

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
    assertEquals(get.body, { value: 1, index: put.body.index });

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
    assertEquals(get.body, { value: "secure", index: put.body.index });
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
