/**
 * The `watercraft` program: picks the command from the first argument and
 * runs it. `serve` (a node) is the default, so that flags alone run a node
 * as they always have; `status`, `members`, `leader`, `kv`, `snapshot` and
 * `log` are the operator's commands, which talk to a running cluster over its
 * HTTP API; `--version` prints the release.
 *
 * @module
 */

import { resolve as resolvePath } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { runtimeInfo, VERSION } from "../http/build_info.ts";
import { fail } from "./fail.ts";
import { EXIT_OK } from "./flags.ts";
import { kvCommand } from "./kv_command.ts";
import { leaderCommand } from "./leader_command.ts";
import { logCommand } from "./log_command.ts";
import { membersCommand } from "./members_command.ts";
import { serveCommand } from "./serve.ts";
import { snapshotCommand } from "./snapshot_command.ts";
import { statusCommand } from "./status_command.ts";

/** A command: its arguments and the environment in, an exit code out. */
type Command = (
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
) => Promise<number>;

/** The commands by name. */
const COMMANDS: Readonly<Record<string, Command>> = {
  serve: serveCommand,
  status: statusCommand,
  members: membersCommand,
  leader: leaderCommand,
  kv: kvCommand,
  snapshot: snapshotCommand,
  log: logCommand,
};

/**
 * Runs the program: `watercraft [command] [args]`.
 *
 * @param args The arguments after the script name.
 * @param env Environment variables.
 * @returns The exit code: 0 when done, 2 on bad arguments, 1 when the node
 *   or the cluster fails (a refused request, no member reachable).
 *
 * @example Bad flags exit with code 2
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { EXIT_USAGE } from "./flags.ts";
 * import { main } from "./main.ts";
 *
 * strictEqual(await main(["--port", "http"], {}), EXIT_USAGE);
 * strictEqual(await main(["kv", "frob"], {}), EXIT_USAGE);
 * ```
 */
export async function main(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  const first = args[0];
  if (first === "--version" || first === "-V" || first === "version") {
    const runtime = runtimeInfo();
    console.log(`watercraft ${VERSION} (${runtime.name} ${runtime.version})`);
    return EXIT_OK;
  }
  const command = first !== undefined && Object.hasOwn(COMMANDS, first)
    ? COMMANDS[first]!
    : undefined;
  // Anything else, flags included, is the node's: `watercraft --port 1` serves.
  if (command === undefined) return await serveCommand(args, env);
  try {
    return await command(args.slice(1), env);
  } catch (error) {
    return fail(error);
  }
}

/**
 * Returns the arguments after the script name, on any runtime.
 *
 * @returns `Deno.args` on Deno, else `process.argv` without the runtime and the script.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { commandLineArgs } from "./main.ts";
 *
 * ok(Array.isArray(commandLineArgs()));
 * ```
 */
export function commandLineArgs(): string[] {
  const deno = (globalThis as { Deno?: { args: string[] } }).Deno;
  return deno !== undefined ? [...deno.args] : process.argv.slice(2);
}

/**
 * Returns whether a module is the program that was started, not one a test
 * or a user imported.
 *
 * @param meta The module's `import.meta`.
 * @returns `import.meta.main` where the runtime has it; on Node 20, which
 *   has not, whether the module is the script the process was started with.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { isMainModule } from "./main.ts";
 *
 * strictEqual(isMainModule(import.meta), import.meta.main);
 * ```
 */
export function isMainModule(meta: ImportMeta): boolean {
  const flag = (meta as ImportMeta & { main?: boolean }).main;
  if (typeof flag === "boolean") return flag;
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(resolvePath(script)).href === meta.url;
}
