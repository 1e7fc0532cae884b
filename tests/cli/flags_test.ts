/**
 * Tests of the CLI's flags (`src/cli/flags.ts`), in process: each row is
 * an argument list and an environment, and the settings or the error
 * message they must give.
 *
 * @module
 */

import { deepStrictEqual as assertEquals, match, ok, strictEqual } from "node:assert/strict";
import { type CliOptions, parseArgs, UsageError } from "../../src/cli/flags.ts";

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
      insecure: false,
      clientToken: null,
      tlsCert: null,
      tlsKey: null,
      ca: null,
      heartbeatMs: 50,
      electionMs: 500,
      idleTimeoutMs: 30_000,
      headersTimeoutMs: 10_000,
      maxConnections: 4_096,
      dataGiven: false,
      joinTimeoutMs: 60_000,
      shutdownTransferMs: 2_000,
      readyLagMax: 1_000,
      snapshotEvery: 10_000,
      logFormat: "text",
      logLevel: "info",
      configFile: null,
      printConfig: false,
    } satisfies CliOptions,
  );
});

Deno.test("parseArgs() picks a random valid id when none is given", () => {
  const a = parseArgs([], {});
  const b = parseArgs([], {});
  ok(a !== "help" && b !== "help");
  match(a.id, /^[A-Za-z0-9._-]{1,64}$/);
  match(a.id, /^n-[0-9a-f]{12}$/);
  ok(a.id !== b.id, "two random ids are equal");
  strictEqual(a.data, `./watercraft-data/${a.id}`);
  strictEqual(a.idGiven, false);
});

/** Good flags: the settings they give (only the fields named in `want` are compared). */
const GOOD_FLAGS: {
  name: string;
  args: string[];
  env?: Record<string, string>;
  want: Partial<CliOptions> | "help";
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
  {
    name: "a switch may repeat",
    args: ["--read-only", "--join", "http://a:1", "--read-only"],
    want: { readOnly: true },
  },
  {
    name: "force-new-cluster",
    args: ["--force-new-cluster"],
    want: { forceNewCluster: true },
  },
  {
    name: "data dir",
    args: ["--id", "x", "--data", "/tmp/d"],
    want: { data: "/tmp/d", id: "x", idGiven: true },
  },
  { name: "storage memory", args: ["--storage", "memory"], want: { storage: "memory" } },
  {
    name: "storage file parses (start refuses it)",
    args: ["--storage", "file"],
    want: { storage: "file" },
  },
  { name: "storage kv", args: ["--storage=kv"], want: { storage: "kv" } },
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
    name: "a value starting with a single - may follow the flag",
    args: ["--secret", "-odd", "--client-token", "-"],
    want: { secret: "-odd", clientToken: "-" },
  },
  {
    name: "tls files and ca",
    args: ["--tls-cert", "c.pem", "--tls-key", "k.pem", "--ca", "ca.pem"],
    want: { tlsCert: "c.pem", tlsKey: "k.pem", ca: "ca.pem" },
  },
  {
    name: "https advertise with tls",
    args: ["--tls-cert", "c.pem", "--tls-key", "k.pem", "--advertise", "https://a:1/"],
    want: { advertise: "https://a:1" },
  },
  {
    name: "timings",
    args: ["--heartbeat-ms", "20", "--election-ms", "300"],
    want: { heartbeatMs: 20, electionMs: 300 },
  },
  {
    name: "connection limits",
    args: ["--idle-timeout-ms", "10000", "--headers-timeout-ms=1", "--max-connections", "5"],
    want: { idleTimeoutMs: 10_000, headersTimeoutMs: 1, maxConnections: 5 },
  },
  {
    name: "connection limits off",
    args: ["--idle-timeout-ms", "0", "--headers-timeout-ms", "0", "--max-connections", "0"],
    want: { idleTimeoutMs: 0, headersTimeoutMs: 0, maxConnections: 0 },
  },
  {
    name: "snapshot spacing",
    args: ["--snapshot-every", "50000"],
    want: { snapshotEvery: 50_000 },
  },
  { name: "--help", args: ["--help"], want: "help" },
  { name: "-h after other flags", args: ["--port", "1", "-h"], want: "help" },
  { name: "--help wins over bad values", args: ["--port", "http", "--help"], want: "help" },
];

Deno.test("parseArgs() reads every flag", async (t) => {
  for (const row of GOOD_FLAGS) {
    await t.step(row.name, () => {
      const got = parseArgs(row.args, row.env ?? {});
      if (row.want === "help") {
        strictEqual(got, "help");
        return;
      }
      ok(got !== "help");
      for (const [key, value] of Object.entries(row.want)) {
        assertEquals(got[key as keyof CliOptions], value, key);
      }
    });
  }
});

/** Bad flags: each must fail with a message that names the problem. */
const BAD_FLAGS: { name: string; args: string[]; want: RegExp }[] = [
  { name: "unknown flag", args: ["--nope"], want: /Unknown flag --nope/ },
  {
    name: "unknown flag with a value",
    args: ["--nope=3"],
    want: /^Unknown flag --nope \(see --help\)$/,
  },
  {
    name: "unknown flag before --help",
    args: ["--nope", "--help"],
    want: /Unknown flag --nope/,
  },
  { name: "positional argument", args: ["serve"], want: /Unexpected argument "serve"/ },
  { name: "positional after -h", args: ["-h", "serve"], want: /Unexpected argument "serve"/ },
  {
    name: "option terminator",
    args: ["--", "--port"],
    want: /^Unexpected argument "--": flags start with -- \(see --help\)$/,
  },
  { name: "lone dash", args: ["-"], want: /Unexpected argument "-"/ },
  { name: "short flag other than -h", args: ["-p", "1"], want: /Unexpected argument "-p"/ },
  { name: "-h grouped with a letter", args: ["-hx"], want: /Unexpected argument "-hx"/ },
  { name: "-h with a value", args: ["-h=yes"], want: /Unexpected argument "-h=yes"/ },
  { name: "missing value at the end", args: ["--port"], want: /--port needs a value/ },
  {
    name: "missing value before a flag",
    args: ["--id", "--port", "1"],
    want: /--id needs a value/,
  },
  {
    name: "a value starting with -- given apart",
    args: ["--secret", "--odd"],
    want: /^Flag --secret needs a value$/,
  },
  { name: "missing value before --", args: ["--port", "--"], want: /--port needs a value/ },
  { name: "non-numeric port", args: ["--port", "http"], want: /--port must be a whole number/ },
  {
    name: "snapshots need at least one entry between them",
    args: ["--snapshot-every", "0"],
    want: /--snapshot-every must be a whole number from 1/,
  },
  { name: "port out of range", args: ["--port", "70000"], want: /--port must be a whole number/ },
  { name: "negative port", args: ["--port=-1"], want: /--port must be a whole number/ },
  {
    name: "negative port given apart",
    args: ["--port", "-1"],
    want: /--port must be a whole number from 0 to 65535, got "-1"/,
  },
  { name: "id with a space", args: ["--id", "a b"], want: /--id must match/ },
  { name: "id too long", args: ["--id", "x".repeat(65)], want: /--id must match/ },
  {
    name: "empty id",
    args: ["--id="],
    want: /^--id must match \[A-Za-z0-9._-\]\{1,64\}, got ""$/,
  },
  { name: "flag given twice", args: ["--port", "1", "--port", "2"], want: /--port is given twice/ },
  {
    name: "flag given twice, once with =",
    args: ["--id=a", "--id", "a"],
    want: /^Flag --id is given twice$/,
  },
  { name: "switch with a value", args: ["--read-only=yes"], want: /--read-only takes no value/ },
  { name: "switch with an empty value", args: ["--help="], want: /--help takes no value/ },
  {
    name: "unknown storage",
    args: ["--storage", "disk"],
    want: /--storage must be memory, file or kv/,
  },
  { name: "empty host", args: ["--host="], want: /--host must not be empty/ },
  { name: "empty data dir", args: ["--data", ""], want: /--data must not be empty/ },
  {
    name: "advertise not a URL",
    args: ["--advertise", "node1:6969"],
    want: /--advertise must be an http/,
  },
  {
    name: "advertise with a query",
    args: ["--advertise", "http://a:1/?x=1"],
    want: /--advertise must be a base URL without query/,
  },
  { name: "join not http", args: ["--join", "ftp://a"], want: /--join must be an http/ },
  {
    name: "join with an empty item",
    args: ["--join", "http://a:1,"],
    want: /--join must be an http:\/\/ or https:\/\/ URL, got ""/,
  },
  { name: "read-only without join", args: ["--read-only"], want: /--read-only needs --join/ },
  {
    name: "tls-cert without tls-key",
    args: ["--tls-cert", "c.pem"],
    want: /--tls-cert and --tls-key go together/,
  },
  {
    name: "http advertise with tls",
    args: ["--tls-cert", "c.pem", "--tls-key", "k.pem", "--advertise", "http://a:1"],
    want: /--advertise must be an https: URL when serving HTTPS/,
  },
  { name: "empty secret", args: ["--secret="], want: /--secret must not be empty/ },
  {
    name: "an idle timeout that would cut peer streams",
    args: ["--idle-timeout-ms", "5000"],
    want: /^--idle-timeout-ms must be 0 \(never\) or at least 10000: peer streams/,
  },
  {
    name: "a negative cap",
    args: ["--max-connections=-1"],
    want: /--max-connections must be a whole number from 0 to 1000000, got "-1"/,
  },
  {
    name: "a head timeout over a day",
    args: ["--headers-timeout-ms", "86400001"],
    want: /--headers-timeout-ms must be a whole number from 0 to 86400000/,
  },
  {
    name: "a client token no Bearer header can carry",
    args: ["--client-token", "p@ss:w0rd!"],
    want: /--client-token must hold letters, digits and - \. _ ~ \+ \/ only/,
  },
  { name: "empty ca", args: ["--ca="], want: /--ca must not be empty/ },
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
