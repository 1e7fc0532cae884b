/**
 * Runs the deterministic simulator over many seeds:
 *
 * ```sh
 * deno task sim --seeds 500 --nodes 5 [--steps 2000] [--seed X] [--membership]
 * ```
 *
 * Prints one line per failing seed with the command that replays it, and as
 * its last line one JSON object with the totals. Exits 1 on any violation or
 * liveness failure.
 *
 * @module
 */

import { runSeed, type SimResult } from "./cluster.ts";

/** Parsed command line. */
interface Args {
  seeds: number;
  nodes: number;
  steps: number;
  seed: number | null;
  first: number;
  membership: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { seeds: 100, nodes: 3, steps: 2000, seed: null, first: 1, membership: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === "--membership") {
      args.membership = true;
      continue;
    }
    const value = Number(argv[++i]);
    if (!Number.isSafeInteger(value) || value < 0) usage(`${flag} needs a whole number`);
    switch (flag) {
      case "--seeds":
        args.seeds = value;
        break;
      case "--nodes":
        args.nodes = value;
        break;
      case "--steps":
        args.steps = value;
        break;
      case "--seed":
        args.seed = value;
        break;
      case "--first":
        args.first = value;
        break;
      default:
        usage(`unknown flag ${flag}`);
    }
  }
  if (args.nodes < 1 || args.nodes > 9) usage("--nodes must be 1 to 9");
  return args;
}

function usage(problem: string): never {
  console.error(
    `sim: ${problem}\nusage: deno task sim [--seeds N] [--nodes 3|5] [--steps S] [--seed X] [--first F] [--membership]`,
  );
  Deno.exit(2);
}

const args = parseArgs(Deno.args);
const seeds = args.seed === null
  ? Array.from({ length: args.seeds }, (_, i) => args.first + i)
  : [args.seed];
let violations = 0;
let livenessFailures = 0;
let snapshotsInstalled = 0;
const started = performance.now();
for (const seed of seeds) {
  const result: SimResult = runSeed({
    seed,
    nodes: args.nodes,
    steps: args.steps,
    membership: args.membership,
  });
  snapshotsInstalled += result.snapshotsInstalled;
  if (result.violation !== null || result.livenessFailure !== null) {
    if (result.violation !== null) violations++;
    else livenessFailures++;
    console.log(
      `seed ${seed} failed: ${result.violation ?? result.livenessFailure}\n` +
        `  replay: deno task sim --nodes ${args.nodes} --steps ${args.steps} --seed ${seed}` +
        (args.membership ? " --membership" : ""),
    );
  }
}
const ms = performance.now() - started;
console.log(JSON.stringify({
  seeds: seeds.length,
  steps: args.steps,
  violations,
  livenessFailures,
  snapshotsInstalled,
  msPerSeed: Math.round((ms / Math.max(1, seeds.length)) * 10) / 10,
}));
if (violations + livenessFailures > 0) Deno.exit(1);
