/**
 * Shows that the node simulator can fail: each test breaks one rule of the
 * driver (or, for the errata, of the core beneath it) in a mutant copy of
 * the node, or plants a disk that lies, and asserts that the simulator
 * reports a violation within a bounded number of seeds.
 *
 * @module
 */

import { notStrictEqual } from "node:assert/strict";
import { loadNodeMutant, type NodeMutation } from "../mutants.ts";
import {
  type NodeClass,
  type NodeSimOptions,
  runNodeSeed,
  type ScheduleName,
} from "./simulation.ts";

/** Seeds tried per mutant before the simulator is declared blind to it. */
const MAX_SEEDS = 60;

/**
 * Returns the first seed whose run reports a safety violation, or null.
 *
 * @param options What to run besides the seed.
 * @param maxSeeds Seeds to try, from 1.
 * @returns The first seed that fails and its violation.
 */
export async function firstNodeCatch(
  options: Omit<NodeSimOptions, "seed">,
  maxSeeds = MAX_SEEDS,
): Promise<{ seed: number; violation: string } | null> {
  for (let seed = 1; seed <= maxSeeds; seed++) {
    const result = await runNodeSeed({ ...options, seed });
    if (result.violation !== null) return { seed, violation: result.violation };
  }
  return null;
}

/** A driver (or core) rule broken in a mutant copy of the node. */
export interface NodeMutant {
  /** Names the mutant's temporary files. */
  readonly name: string;
  /** The rule it breaks, as the test's name says it. */
  readonly rule: string;
  /** The changes to `src/` that break it. */
  readonly mutations: readonly NodeMutation[];
  /** The schedule that reaches the broken rule; default: drawn per seed. */
  readonly schedule?: ScheduleName;
}

/** The mutants, each a rule the node must keep. */
export const NODE_MUTANTS: readonly NodeMutant[] = [
  {
    name: "voteBeforeSave",
    rule: "a vote is sent before it is saved",
    mutations: [{
      file: "node/ready_loop.ts",
      from: 'const early = raft.role === "leader" && voteDurable;',
      to: 'const early = (raft.role === "leader" && voteDurable) ||\n' +
        '          rd.messages.some((m) => m.type === "voteResponse");',
    }],
  },
  {
    name: "readBeforeApply",
    rule: "a read is answered before the state machine applied what it must reflect",
    mutations: [{
      file: "node/reads.ts",
      from: "if (r.index !== null && r.index <= applied) {",
      to: "if (r.index !== null) {",
    }],
  },
  {
    name: "writeBeforeApply",
    rule: "a write is answered once accepted, before it is committed and applied",
    mutations: [{
      file: "node/writes.ts",
      from: 'if (w.wait !== "accepted" || w.entry.hash !== e.hash) continue;',
      to: "if (w.entry.hash !== e.hash) continue;",
    }],
  },
  {
    name: "applyTwiceAfterRestart",
    rule: "a restarted node replays its committed log while the core hands it out again",
    mutations: [{
      file: "node/node.ts",
      from: "this.#ready.recovered(state.hardState);",
      to: "this.#ready.recovered(state.hardState);\n" +
        "    for (const e of state.entries) if (e.index <= state.hardState.commit) this.#applier.apply(e);",
    }],
  },
  {
    name: "snapshotIndexAfterAwait",
    rule: "a snapshot takes its index after awaiting the state machine",
    schedule: "snapshots",
    mutations: [
      {
        file: "node/snapshots.ts",
        from: "if (raft.snapshot.index >= index) return;",
        to: "",
      },
      {
        file: "node/snapshots.ts",
        from: "const meta = raft.compact(index, data,",
        to: "const meta = raft.compact(raft.log.applied, data,",
      },
    ],
  },
  {
    name: "changeBeforeOwnTermCommit",
    rule: "a new leader changes the membership before it committed an entry of its term " +
      "(the dissertation's errata)",
    schedule: "errata",
    mutations: [
      {
        file: "core/leader.ts",
        from: "if (r.log.term(r.log.committed) !== r.term) {\n    throw new ProposalDroppedError(",
        to: "if (false) {\n    throw new ProposalDroppedError(",
      },
      {
        file: "core/leader.ts",
        from: "if (r.log.term(r.log.committed) !== r.term) return;",
        to: "",
      },
    ],
  },
];

for (const { name, rule, mutations, schedule } of NODE_MUTANTS) {
  Deno.test(`node simulator catches a node where ${rule}`, async () => {
    const nodeClass: NodeClass = await loadNodeMutant(name, mutations);
    const caught = await firstNodeCatch({ nodes: 3, nodeClass, ...(schedule ? { schedule } : {}) });
    notStrictEqual(caught, null, `no violation in ${MAX_SEEDS} seeds`);
  });
}

Deno.test("node simulator catches a disk that acknowledges saves it never wrote", async () => {
  const caught = await firstNodeCatch({ nodes: 3, skipSaveRate: 0.2 });
  notStrictEqual(caught, null, `no violation in ${MAX_SEEDS} seeds`);
});
