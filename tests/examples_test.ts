/**
 * Keeps the examples alive: each runs as a real subprocess, as a user would
 * run it, and its output must show what its doc comment promises.
 *
 * @module
 */

import { deepStrictEqual, match, notStrictEqual, ok, strictEqual } from "node:assert/strict";
import { ensureTools } from "./process/tools.ts";

const root = new URL("../", import.meta.url);

/** How an example ended. */
interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * Runs a command in the repository to its end. At the deadline it gets
 * SIGTERM (the shell example then stops its nodes), so nothing outlives the
 * test.
 */
async function run(
  command: string,
  args: readonly string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Run> {
  const started = performance.now();
  const out = await new Deno.Command(command, {
    args: [...args],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", WATERCRAFT_SECRET: "", WATERCRAFT_CLIENT_TOKEN: "", ...options.env },
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
    ms: Math.round(performance.now() - started),
  };
}

/** Runs `deno run <flags> examples/<name>`. */
function runExample(name: string, flags: readonly string[] = []): Promise<Run> {
  return run(Deno.execPath(), ["run", ...flags, `examples/${name}`]);
}

/** Asserts a clean exit ending in "ok", with the output in the message otherwise. */
function assertOk(r: Run): string {
  const context = `exit ${r.code} after ${r.ms} ms\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  strictEqual(r.code, 0, context);
  strictEqual(r.stdout.trimEnd().split("\n").at(-1), "ok", context);
  return r.stdout;
}

Deno.test("examples/kv_cluster.ts keeps every acknowledged write through a leader failure", async () => {
  const text = assertOk(await runExample("kv_cluster.ts"));
  const first = text.match(/^leader: (n\d) in term (\d+)$/m);
  ok(first, text);
  match(text, /^acknowledged 9 writes through 3 nodes$/m);
  const stopped = text.match(/^stopped the leader (n\d)$/m);
  ok(stopped, text);
  const next = text.match(/^new leader: (n\d) in term (\d+)$/m);
  ok(next, text);
  notStrictEqual(next[1], stopped[1], text);
  ok(Number(next[2]) > Number(first[2]), text);
  const reads = [...text.matchAll(/^(n\d) reads 10 of 10 acknowledged writes at index \d+$/gm)];
  strictEqual(reads.length, 2, text);
  const heads = [...text.matchAll(/^(n\d): index (\d+) head ([0-9a-f]{64})$/gm)];
  deepStrictEqual(heads.map((m) => m[1]).sort(), reads.map((m) => m[1]).sort(), text);
  ok(!heads.some((m) => m[1] === stopped[1]), "the stopped leader reports no head");
  strictEqual(new Set(heads.map((m) => `${m[2]} ${m[3]}`)).size, 1, text);
});

Deno.test("examples/custom_state_machine.ts refuses overdrafts (422) and restores balances from a snapshot", async () => {
  const text = assertOk(await runExample("custom_state_machine.ts", ["-A"]));
  match(
    text,
    /^two concurrent transfers of 50 from alice's 70: 1 applied, 1 refused \(by apply: 1\)$/m,
  );
  match(text, /^overdraft refused by propose\(\): rejected: Cannot transfer 1000 from bob/m);
  match(text, /^overdraft refused over HTTP: 422 rejected$/m);
  match(text, /^transfer 5 bob -> alice over HTTP: 201 /m);
  const disk = text.match(/^on disk: snapshot at index (\d+), (\d+) entries after it$/m);
  ok(disk, text);
  // Snapshots every 10 entries of 34: the log kept on disk is the tail after
  // the latest. That is the one at 30, or at 20 when the node stopped
  // between writing that one beside the log and taking the next.
  const [snapshotIndex, entriesAfter] = [Number(disk[1]), Number(disk[2])];
  ok(snapshotIndex >= 20 && snapshotIndex + entriesAfter === 34, text);
  match(text, /^restore\(\) brought back 2 accounts$/m);
  const before = text.match(/^balances before restart: (.+)$/m);
  const after = text.match(/^balances after restart: (.+)$/m);
  ok(before && after, text);
  deepStrictEqual(JSON.parse(after[1]!), JSON.parse(before[1]!));
  deepStrictEqual(JSON.parse(before[1]!), { alice: 25, bob: 400 });
});

Deno.test("examples/embed_in_hono.ts serves its own routes and two nodes under prefixes", async () => {
  const text = assertOk(await runExample("embed_in_hono.ts", ["-A"]));
  strictEqual(text.match(/^GET http:\/\/127\.0\.0\.1:\d+\/hello -> 200 hello from /gm)?.length, 2);
  match(text, /^member a at http:\/\/127\.0\.0\.1:\d+\/raft, voter: true$/m);
  match(text, /^member b at http:\/\/127\.0\.0\.1:\d+\/cluster, voter: true$/m);
  match(text, /^unsigned POST http:\/\/127\.0\.0\.1:\d+\/raft\/raft\/messages -> 401$/m);
  match(text, /^PUT http:\/\/127\.0\.0\.1:\d+\/cluster\/v1\/kv\/greeting -> 200 \{"index"/m);
  match(text, /^GET http:\/\/127\.0\.0\.1:\d+\/raft\/v1\/kv\/greeting -> 200 \{"value":"hi"/m);
  match(text, /^GET http:\/\/127\.0\.0\.1:\d+\/cluster\/v1\/kv\/greeting -> 200 \{"value":"hi"/m);
  const heads = [...text.matchAll(/^([ab]): index (\d+) head ([0-9a-f]{64})$/gm)];
  strictEqual(heads.length, 2, text);
  strictEqual(new Set(heads.map((m) => `${m[2]} ${m[3]}`)).size, 1, text);
});

Deno.test("examples/three_runtimes.sh forms one cluster of Deno, Bun and Node that agrees", async () => {
  const tools = await ensureTools();
  const r = await run("bash", ["examples/three_runtimes.sh"], {
    env: { DENO: Deno.execPath(), BUN: tools.bun, NODE: tools.node, TSX_LOADER: tools.tsxLoader },
    timeoutMs: 90_000,
  });
  const text = assertOk(r);
  strictEqual(text.match(/"voter":true/g)?.length, 3, text);
  for (const name of ["deno", "bun", "node"]) {
    match(text, new RegExp(`^PUT ${name} /v1/kv/${name}: \\{"index"`, "m"));
    const reads = text.match(
      new RegExp(`^GET \\w+ /v1/kv/${name}: \\{"value":"written through ${name}"`, "gm"),
    );
    strictEqual(reads?.length, 2, text);
  }
  const heads = [...text.matchAll(/^head (deno|bun|node): (.+)$/gm)];
  deepStrictEqual(heads.map((m) => m[1]), ["deno", "bun", "node"], text);
  strictEqual(new Set(heads.map((m) => m[2])).size, 1, text);
  match(heads[0]![2]!, /^\{"head":"[0-9a-f]{64}","index":\d+,"term":\d+\}$/);
  match(text, /^agreed: one head on deno, bun and node$/m);
  strictEqual(text.match(/^stopped n-(deno|bun|node) \(pid \d+\): exit 0$/gm)?.length, 3, text);
});

Deno.test("examples/client_watch.ts sees every key change through the client and checks the hash chain", async () => {
  const text = assertOk(await runExample("client_watch.ts", ["-A"]));
  match(
    text,
    /^changes under cart\/: put cart\/apples=3, put cart\/pears=1, put cart\/apples=5, delete cart\/pears$/m,
  );
  match(text, /^hash chain checked: \d+ entries, head [0-9a-f]{64}$/m);
});
