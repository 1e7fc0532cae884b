/**
 * Keeps the README honest: its code sample is the example file, and the
 * example runs and does what the README says.
 *
 * @module
 */

import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { CliProcess, fromFileUrl, waitFor } from "./process/harness.ts";
import { ensureTools } from "./process/tools.ts";

const root = new URL("../", import.meta.url);

Deno.test("README shows examples/core_cluster.ts as it is", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const example = await Deno.readTextFile(new URL("examples/core_cluster.ts", root));
  const body = example.slice(example.indexOf("import "));
  strictEqual(
    readme.includes("```ts ignore\n" + body + "```"),
    true,
    "README code block differs from the example",
  );
});

Deno.test("examples/core_cluster.ts elects n1 and ends with one head on all nodes", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", new URL("examples/core_cluster.ts", root).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  strictEqual(out.code, 0, new TextDecoder().decode(out.stderr));
  strictEqual(text.includes("leader: n1 in term 2"), true, text);
  const heads = [...text.matchAll(/^n\d: commit 5 head ([0-9a-f]{16})$/gm)].map((m) => m[1]);
  strictEqual(heads.length, 3, text);
  strictEqual(new Set(heads).size, 1, text);
  strictEqual(text.match(/applies #\d+/g)?.length, 9, text);
});

// ------------------------------------------------- the README's commands, run as written

/** The lines of every ```sh block under the README heading `heading`, comments dropped. */
async function shellLines(heading: string): Promise<string[]> {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const start = readme.indexOf(`\n## ${heading}\n`);
  ok(start >= 0, `README has no section "${heading}"`);
  const end = readme.indexOf("\n## ", start + 4);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const lines: string[] = [];
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block[1]!.split("\n")) {
      const command = line.replace(/\s+#\s.*$/, "").trim();
      if (command !== "") lines.push(command);
    }
  }
  return lines;
}

/**
 * Runs `deno task NAME ARGS` from the README with this test's Deno, in the
 * repository. The task's own command is spawned directly (as `deno task`
 * would run it), so the process's pid is the program's and stopping it
 * leaves no child behind.
 */
async function denoTask(line: string, env: Record<string, string> = {}): Promise<CliProcess> {
  const [name, ...args] = line.replace(/^deno task /, "").split(/\s+/);
  ok(line.startsWith("deno task ") && name !== undefined, line);
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const task: string | undefined = config.tasks[name];
  if (task === undefined || !task.startsWith("deno ")) throw new Error(`No deno task ${name}`);
  return new CliProcess(Deno.execPath(), [...task.slice("deno ".length).split(/\s+/), ...args], {
    label: line,
    env,
  });
}

/** Runs one curl line from the README through bash. */
async function curl(line: string): Promise<string> {
  ok(line.startsWith("curl "), line);
  const out = await new Deno.Command("bash", {
    args: ["-c", line.replace(/^curl /, "curl -sS --max-time 10 ")],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  strictEqual(out.code, 0, `${line}: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

/** Runs the README's `export WATERCRAFT_SECRET=...` line through bash and returns the value. */
async function exportedSecret(line: string): Promise<string> {
  ok(line.startsWith("export WATERCRAFT_SECRET="), line);
  const out = await new Deno.Command("bash", {
    args: ["-c", `${line}; printf %s "$WATERCRAFT_SECRET"`],
    stdout: "piped",
  }).output();
  const secret = new TextDecoder().decode(out.stdout);
  match(secret, /^[0-9a-f]{64}$/);
  return secret;
}

Deno.test("README: the 3-node cluster and its curl commands work as written", async () => {
  const lines = await shellLines("A 3-node cluster on one machine");
  const [exports, starts, calls] = [
    lines.filter((l) => l.startsWith("export ")),
    lines.filter((l) => l.startsWith("deno ")).map((l) => l.replace(/\s*&$/, "")),
    lines.filter((l) => l.startsWith("curl ")),
  ];
  strictEqual(exports.length, 1);
  const env = { WATERCRAFT_SECRET: await exportedSecret(exports[0]!) };
  strictEqual(starts.length, 3);
  strictEqual(calls.length, 6);
  // The only change: data in a temporary directory, so the checkout stays clean.
  const data = await Deno.makeTempDir({ prefix: "watercraft-readme-" });
  const nodes: CliProcess[] = [];
  try {
    for (const [i, line] of starts.entries()) {
      const node = await denoTask(`${line} --data ${data}/n${i + 1}`, env);
      nodes.push(node);
      await waitFor(`${line} to listen`, () => node.stdout.includes("watercraft listening on"));
    }
    await waitFor("3 voters", async () => {
      const res = await fetch("http://127.0.0.1:6969/v1/members");
      const body = await res.json();
      return body.members.filter((m: { voter: boolean }) => m.voter).length === 3;
    }, { timeoutMs: 30_000 });

    const out: string[] = [];
    for (const line of calls) out.push(await curl(line));
    const json = out.slice(0, 5).map((text) => JSON.parse(text));
    deepStrictEqual(Object.keys(json[0]).sort(), [
      "created",
      "head",
      "id",
      "index",
      "modified",
      "prev",
      "term",
    ]);
    strictEqual(json[0].prev, null);
    strictEqual(json[1].value, 1);
    ok(json[2].value === 1 || json[2].value === undefined, out[2]);
    strictEqual(json[3].result !== undefined || json[3].id !== undefined, true, out[3]);
    strictEqual(json[4].members.length, 3);
    ok(out[5]!.includes("watercraft_commit_index"), out[5]);
  } finally {
    for (const node of nodes) node.kill("SIGTERM");
    for (const node of nodes) {
      const status = await node.status;
      strictEqual(status.code, 0, `a node did not exit 0 on SIGTERM: ${node.describe()}`);
    }
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("README: the simulator and benchmark commands run as written and report no failure", async () => {
  const lines = [
    ...(await shellLines("How it is tested")).filter((l) => l.startsWith("deno task sim")),
    ...(await shellLines("Benchmarks")),
  ];
  strictEqual(lines.length, 7, lines.join("\n"));
  for (const line of lines) {
    const run = await denoTask(line);
    const status = await run.status;
    strictEqual(status.code, 0, `${line}\n${run.stdout}\n${run.stderr}`);
    if (line.startsWith("deno task sim")) {
      const summary = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
      deepStrictEqual([summary.violations, summary.livenessFailures], [0, 0], line);
    }
  }
});

Deno.test("README: the embedding example runs as written on Deno, Bun and Node", async (t) => {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const section = readme.slice(readme.indexOf("\n## Embedding it as a library\n"));
  const code = section.match(/```ts ignore\n([\s\S]*?)```/)?.[1];
  if (code === undefined || !code.includes('from "@watercraft/raft"')) {
    throw new Error("README has no embedding example importing @watercraft/raft");
  }
  const tools = await ensureTools();
  // The repository's mod.ts stands for the published name; the process then ends itself.
  const dir = await Deno.makeTempDir({ prefix: "watercraft-readme-embed-" });
  // .mts: an ES module wherever it lies (top-level await), on every runtime.
  const file = `${dir}/embed.mts`;
  await Deno.writeTextFile(
    file,
    code.replace('"@watercraft/raft"', JSON.stringify(new URL("mod.ts", root).href)) +
      '\nconsole.log("embedded example done");\n' +
      "// deno-lint-ignore no-explicit-any\n" +
      "const g = globalThis as any;\n" +
      "if (g.Deno) g.Deno.exit(0);\nelse g.process.exit(0);\n",
  );
  const runs: [string, string, string[]][] = [
    ["Deno", Deno.execPath(), [
      "run",
      "-A",
      `--config=${new URL("deno.json", root).pathname}`,
      file,
    ]],
    ["Bun", tools.bun, [file]],
    ["Node", tools.node, ["--import", tools.tsxLoader, file]],
  ];
  try {
    for (const [runtime, command, args] of runs) {
      await t.step(runtime, async () => {
        const out = await new Deno.Command(command, {
          args,
          cwd: fromFileUrl(root),
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(30_000),
        }).output();
        const text = new TextDecoder().decode(out.stdout);
        strictEqual(out.code, 0, new TextDecoder().decode(out.stderr));
        ok(text.includes("embedded example done"), text);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
