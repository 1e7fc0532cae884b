#!/usr/bin/env -S npx --yes tsx
/**
 * The `watercraft` command (API.md section 1): `watercraft serve` (the
 * default) runs a node with the built-in key-value state machine behind
 * the HTTP API, on Deno, Bun or Node; `status`, `members`, `leader`, `kv`
 * and `snapshot` operate a running cluster; `--version` prints the
 * release. The node's flags live in `cli/flags.ts`, its process wiring in
 * `cli/serve.ts`, the commands in `cli/main.ts`; this file is the program
 * and the `./cli` entry point.
 *
 * ```sh
 * deno run -A src/cli.ts --id n1 --port 6969
 * deno run -A src/cli.ts --id n2 --port 6970 --join http://localhost:6969
 * deno run -A src/cli.ts status --endpoints http://localhost:6969
 * bun src/cli.ts --help
 * npx tsx src/cli.ts --help
 * ```
 *
 * Bad flags print one line on stderr and exit with code 2; a failed join
 * or a refused request exits with code 1; SIGINT or SIGTERM stops the
 * node and exits with 0.
 *
 * @module
 */

import process from "node:process";
import { commandLineArgs, isMainModule, main } from "./cli/main.ts";

export {
  type CliOptions,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  HELP,
  parseArgs,
  type StorageKind,
  UsageError,
} from "./cli/flags.ts";
export { main } from "./cli/main.ts";

if (isMainModule(import.meta)) {
  process.exit(await main(commandLineArgs(), process.env));
}
