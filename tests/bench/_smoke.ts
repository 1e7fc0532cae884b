/**
 * Runs a benchmark's smoke mode as a user would, and hands back its last
 * line (the JSON report) with the output for failure messages.
 *
 * @module
 */

import { strictEqual } from "node:assert/strict";
import { fileURLToPath } from "node:url";

/** The repository's root, where the benchmarks run. */
const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Runs `deno run -A <args>` in the repository to its end.
 *
 * @param args The script and its flags.
 * @param deadlineMs When the run gets SIGTERM (the benchmarks then kill the nodes they started).
 * @returns Its exit code and output.
 */
export async function runBench(
  args: readonly string[],
  deadlineMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(deadlineMs),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/**
 * Runs a benchmark (see {@linkcode runBench}), checks that it exits with 0,
 * and parses its last line.
 *
 * @param args The script and its flags.
 * @param deadlineMs When the run gets SIGTERM.
 * @returns Every line of its output, the parsed last line, and a context for messages.
 */
export async function runSmoke(
  args: readonly string[],
  deadlineMs: number,
): Promise<{ lines: string[]; report: unknown; context: string }> {
  const { code, stdout, stderr } = await runBench(args, deadlineMs);
  const context = `exit ${code}\nstdout:\n${stdout}\nstderr:\n${stderr.slice(-4000)}`;
  strictEqual(code, 0, context);
  const lines = stdout.trim().split("\n");
  return { lines, report: JSON.parse(lines[lines.length - 1]!), context };
}
