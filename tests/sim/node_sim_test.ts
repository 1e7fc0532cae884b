/**
 * Runs the node simulator (real `WaterCraftNode`s on a simulated network,
 * disks and clocks) over a few hundred seeds, replays the seeds that once
 * found bugs in the node, and checks that a seed replays exactly.
 *
 * @module
 */

import { deepStrictEqual, notStrictEqual, strictEqual } from "node:assert/strict";
import { loadNodeMutant, type NodeMutation } from "./node/mutants.ts";
import { type NodeSimResult, runNodeSeed } from "./node/simulation.ts";

function assertClean(result: NodeSimResult, nodes: number): void {
  const replay = `deno task sim --node --nodes ${nodes} --seed ${result.seed}`;
  strictEqual(
    result.violation,
    null,
    `seed ${result.seed}: ${result.violation}\n  replay: ${replay}`,
  );
  strictEqual(
    result.livenessFailure,
    null,
    `seed ${result.seed}: ${result.livenessFailure}\n  replay: ${replay}`,
  );
}

for (const [nodes, seeds] of [[3, 250], [5, 100]] as const) {
  Deno.test(`node simulator: ${seeds} seeds of ${nodes} real nodes keep every property`, async () => {
    let acknowledged = 0;
    let snapshots = 0;
    const started = performance.now();
    for (let seed = 1; seed <= seeds; seed++) {
      const result = await runNodeSeed({ seed, nodes });
      assertClean(result, nodes);
      acknowledged += result.acknowledged;
      snapshots += result.snapshotsSaved;
    }
    const msPerSeed = (performance.now() - started) / seeds;
    // The faults must leave room for real work, or the run proves nothing.
    strictEqual(acknowledged > seeds * 20, true, `only ${acknowledged} writes acknowledged`);
    strictEqual(snapshots > seeds, true, `only ${snapshots} snapshots saved`);
    strictEqual(msPerSeed < 1000, true, `${msPerSeed.toFixed(0)} ms per seed`);
  });
}

/**
 * Seeds that found bugs in the node, each with the old code as a mutant:
 * the seed must still reach the bug in the old code (else the simulator
 * drifted and the seed no longer tests anything) and stay clean in the new.
 */
const REGRESSIONS: {
  seed: number;
  nodes: number;
  bug: string;
  oldCode: NodeMutation[];
}[] = [
  ...[116, 134].map((seed) => ({
    seed,
    nodes: 3,
    bug: "a snapshot installed while the state machine took one made compact() assert",
    oldCode: [
      { file: "node/snapshots.ts", from: "if (raft.snapshot.index >= index) return;", to: "" },
      {
        file: "node/snapshots.ts",
        from: "const meta = raft.compact(index, data,",
        to: "const meta = raft.compact(raft.log.applied, data,",
      },
    ],
  })),
  ...[2, 4].map((seed) => ({
    seed,
    nodes: 3,
    bug: "head() paired the applied index with the hash of a snapshot still installing",
    oldCode: [{
      file: "node/node.ts",
      from:
        "return { head: this.#appliedHead.hash, index: this.#applied, term: this.#appliedHead.term };",
      to: "const log = this.#raft.log;\n    const index = this.#applied;\n" +
        "    return { head: log.hash(index) ?? log.snapshot.hash, index, term: log.term(index) ?? 0 };",
    }],
  })),
];

for (const [i, { seed, nodes, bug, oldCode }] of REGRESSIONS.entries()) {
  Deno.test(`node simulator: regression seed ${seed} (${bug}) stays clean`, async () => {
    assertClean(await runNodeSeed({ seed, nodes }), nodes);
    const old = await loadNodeMutant(`regression${i}`, oldCode);
    const before = await runNodeSeed({ seed, nodes, nodeClass: old });
    notStrictEqual(before.violation, null, `seed ${seed} no longer reaches the old bug`);
  });
}

Deno.test("node simulator: a seed replays exactly", async () => {
  for (const seed of [7, 11]) {
    const a = await runNodeSeed({ seed, nodes: 5 });
    const b = await runNodeSeed({ seed, nodes: 5 });
    deepStrictEqual(a, b);
    strictEqual(a.events > 1000 && a.acknowledged > 0, true);
  }
  const other = await runNodeSeed({ seed: 8, nodes: 5 });
  notStrictEqual(other.trace, (await runNodeSeed({ seed: 7, nodes: 5 })).trace);
});
