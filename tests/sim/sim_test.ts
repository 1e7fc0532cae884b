/**
 * Runs the simulator over a few hundred seeds, replays seeds that once
 * failed, and checks the simulator's own determinism.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { assertSeedClean } from "./checkers.ts";
import { runSeed, type SimResult } from "./cluster.ts";

/** Steps (ticks) of the faulty phase for the seeds run in the test suite. */
const STEPS = 2000;

/**
 * Seeds that once failed, kept as regression tests: [seed, nodes, what broke].
 * They replay the same schedule only while the simulator draws the same
 * faults, so the reason is kept too.
 */
const REGRESSIONS: [number, number, string][] = [
  [325, 3, "pipelined appends reordered by the network kept collapsing to probing"],
  [1788, 3, "every node crashed before persisting its bootstrap entry and came back empty"],
  [300, 5, "a follower far behind with one-entry messages needs a backlog-sized budget"],
  [352, 3, "commits wait for an entry of the new term behind a 600-entry backlog"],
  [88, 3, "a senior node with a stale log and no PreVote disrupted every election"],
  [268, 5, "all voters a stale senior's PreVote reached campaigned at once: split votes"],
];

function assertClean(result: SimResult, nodes: number): void {
  assertSeedClean(result, `deno task sim --nodes ${nodes} --steps ${STEPS} --seed ${result.seed}`);
}

for (const [nodes, seeds] of [[3, 200], [5, 150]] as const) {
  Deno.test(`simulator: ${seeds} seeds of a ${nodes}-node cluster keep every safety property`, () => {
    let committed = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const result = runSeed({ seed, nodes, steps: STEPS });
      assertClean(result, nodes);
      committed += result.committed;
    }
    // The faults must leave room for real work, or the run proves nothing.
    strictEqual(committed > seeds * 50, true, `only ${committed} entries committed in all`);
  });
}

Deno.test("simulator: 100 seeds of a 5-node cluster changing its membership keep every safety property", () => {
  let changes = 0;
  for (let seed = 1; seed <= 100; seed++) {
    const result = runSeed({ seed, nodes: 5, steps: STEPS, membership: true });
    assertClean(result, 5);
    changes += result.configChanges;
  }
  strictEqual(changes > 100, true, `only ${changes} membership changes committed in all`);
});

Deno.test("simulator: regression seeds stay clean", () => {
  for (const [seed, nodes] of REGRESSIONS) {
    assertClean(runSeed({ seed, nodes, steps: STEPS }), nodes);
  }
});

Deno.test("simulator: a seed replays exactly", () => {
  const a = runSeed({ seed: 42, nodes: 5, steps: 1500 });
  const b = runSeed({ seed: 42, nodes: 5, steps: 1500 });
  deepStrictEqual(a, b);
  strictEqual(a.leaders > 0 && a.committed > 0, true);
});
