/**
 * Runs the deterministic simulator over many seeds:
 *
 * ```sh
 * deno task sim --seeds 500 --nodes 5 [--steps 2000] [--seed X] [--membership]
 * deno task sim --node --seeds 500 --nodes 5 [--seed X] [--schedule errata] [--memory]
 * ```
 *
 * `--node` runs the node simulator (`node/simulation.ts`: real nodes, with
 * clients and a linearizability check) instead of the core simulator; its
 * `steps` are the faulty phase's length in election timeouts. Its nodes keep
 * their logs in the real file adapter on simulated disks with faults, or,
 * with `--memory`, in memory-backed storage (faster, no disk faults).
 *
 * Prints one line per failing seed with the command that replays it, and as
 * its last line one JSON object with the totals. Exits 1 on any violation or
 * liveness failure.
 *
 * @module
 */

import { runSeed, type SimResult } from "./cluster.ts";
import { runNodeSeed, type ScheduleName, SCHEDULES } from "./node/simulation.ts";

/** Parsed command line. */
interface Args {
  seeds: number;
  nodes: number;
  steps: number;
  seed: number | null;
  first: number;
  membership: boolean;
  node: boolean;
  memory: boolean;
  schedule: ScheduleName | null;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    seeds: 100,
    nodes: 3,
    steps: 0,
    seed: null,
    first: 1,
    membership: false,
    node: false,
    memory: false,
    schedule: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === "--membership") {
      args.membership = true;
      continue;
    }
    if (flag === "--node") {
      args.node = true;
      continue;
    }
    if (flag === "--memory") {
      args.memory = true;
      continue;
    }
    if (flag === "--schedule") {
      const name = argv[++i] as ScheduleName;
      if (!SCHEDULES.includes(name)) usage(`--schedule must be one of ${SCHEDULES.join(", ")}`);
      args.schedule = name;
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
  // Core runs count ticks; node runs count election timeouts of faults.
  if (args.steps === 0) args.steps = args.node ? 30 : 2000;
  return args;
}

function usage(problem: string): never {
  console.error(
    `sim: ${problem}\nusage: deno task sim [--node [--schedule S]] [--seeds N] [--nodes 3|5] [--steps S] [--seed X] [--first F] [--membership] [--memory]`,
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
/** Node runs only: disk faults injected, fail-stops they caused, nodes lost to a corrupt log. */
const disk = { diskFaults: 0, faultStops: 0, lost: 0 };
const started = performance.now();
for (const seed of seeds) {
  const result = args.node
    ? await runNodeSeed({
      seed,
      nodes: args.nodes,
      faultyElections: args.steps,
      storage: args.memory ? "memory" : "file",
      ...(args.schedule === null ? {} : { schedule: args.schedule }),
    })
    : runSeed({
      seed,
      nodes: args.nodes,
      steps: args.steps,
      membership: args.membership,
    });
  if ("snapshotsSaved" in result) {
    snapshotsInstalled += result.snapshotsSaved;
    disk.diskFaults += result.diskFaults;
    disk.faultStops += result.faultStops;
    disk.lost += result.lost;
  } else {
    snapshotsInstalled += (result as SimResult).snapshotsInstalled;
  }
  if (result.violation !== null || result.livenessFailure !== null) {
    if (result.violation !== null) violations++;
    else livenessFailures++;
    const mode = args.node
      ? "--node " + (args.schedule === null ? "" : `--schedule ${args.schedule} `) +
        (args.memory ? "--memory " : "")
      : "";
    console.log(
      `seed ${seed} failed: ${result.violation ?? result.livenessFailure}\n` +
        `  replay: deno task sim ${mode}--nodes ${args.nodes} --steps ${args.steps} --seed ${seed}` +
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
  ...(args.node && !args.memory ? disk : {}),
  msPerSeed: Math.round((ms / Math.max(1, seeds.length)) * 10) / 10,
}));
if (violations + livenessFailures > 0) Deno.exit(1);
