/**
 * Keeps the README honest: its code sample is the example file, and the
 * example runs and does what the README says.
 *
 * @module
 */

import { strictEqual } from "node:assert/strict";

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
