/**
 * Shows that the simulator can fail: each test breaks one safety rule (in a
 * mutant copy of the core, or in the simulated driver) and asserts that the
 * simulator reports a violation within a bounded number of seeds.
 *
 * @module
 */

import { notStrictEqual } from "node:assert/strict";
import { type PlantedBug, type RaftClass, runSeed } from "./cluster.ts";
import { loadMutant, type Mutation } from "./mutants.ts";

/** Seeds tried per planted bug before the simulator is declared blind to it. */
const MAX_SEEDS = 400;

/** Returns the first seed whose run reports a safety violation, or null. */
function firstCatch(
  options: { core?: RaftClass; bug?: PlantedBug; membership?: boolean },
): { seed: number; violation: string } | null {
  for (let seed = 1; seed <= MAX_SEEDS; seed++) {
    const result = runSeed({ seed, nodes: options.membership ? 5 : 3, steps: 2000, ...options });
    if (result.violation !== null) return { seed, violation: result.violation };
  }
  return null;
}

const MUTANTS: { name: string; rule: string; mutations: Mutation[]; membership?: boolean }[] = [
  {
    name: "concurrentChanges",
    rule: "a membership change starts while another is uncommitted (§4.1)",
    membership: true,
    mutations: [{
      file: "leader.ts",
      from: "if (r.log.config().index > r.log.committed) {\n    throw new ProposalDroppedError(",
      to: "if (false) {\n    throw new ProposalDroppedError(",
    }],
  },
  {
    name: "staleVotes",
    rule: "vote answers from an older term are counted",
    mutations: [{
      from: "} else if (term !== 0 && term < r.term) {",
      to: '} else if (term !== 0 && term < r.term && m.type !== "voteResponse") {',
    }],
  },
  {
    name: "noUpToDateCheck",
    rule: "votes go to candidates with stale logs (§5.4.1)",
    mutations: [{
      file: "election.ts",
      from: "const upToDate = r.log.isUpToDate(m.lastIndex, m.lastTerm);",
      to: "const upToDate = true;",
    }],
  },
  {
    name: "commitOldTerm",
    rule: "entries of an earlier term commit by counting replicas (§5.4.2, Figure 8)",
    mutations: [{
      file: "replication.ts",
      from: "if (index <= r.log.committed || r.log.term(index) !== r.term) return;",
      to: "if (index <= r.log.committed) return;",
    }],
  },
  {
    name: "readWithoutQuorum",
    rule: "a leader serves ReadIndex without confirming its leadership (§6.4)",
    mutations: [{
      file: "leader.ts",
      from: "  if (hasQuorum(voters, new Set(vouch === null ? [r.id] : [r.id, vouch]))) {",
      to: "  if (voters.length >= 1) {",
    }],
  },
  {
    name: "restoreOverMatchingLog",
    rule: "a follower that holds a snapshot's last entry replaces its log with the snapshot (§7)",
    mutations: [{
      file: "follower.ts",
      from: "if (r.log.matches(meta.index, meta.term, meta.hash)) {",
      to: "if (false) {",
    }],
  },
  {
    name: "chunksOutOfOrder",
    rule: "snapshot chunks are joined whatever their offset",
    mutations: [{
      file: "snapshot_transfer.ts",
      from: "if (m.offset === r.received && r.received + m.data.length <= r.total) {",
      to: "if (r.received + m.data.length <= r.total) {",
    }],
  },
];

for (const { name, rule, mutations, membership } of MUTANTS) {
  Deno.test(`simulator catches a core where ${rule}`, async () => {
    const core = await loadMutant(name, mutations);
    const caught = firstCatch({ core, membership: membership ?? false });
    notStrictEqual(caught, null, `no violation in ${MAX_SEEDS} seeds`);
  });
}

const DRIVER_BUGS: { bug: PlantedBug; rule: string }[] = [
  { bug: "forgetVote", rule: "the vote is not persisted" },
  { bug: "ackBeforePersist", rule: "messages leave before what they acknowledge is durable" },
];

for (const { bug, rule } of DRIVER_BUGS) {
  Deno.test(`simulator catches a driver where ${rule}`, () => {
    const caught = firstCatch({ bug });
    notStrictEqual(caught, null, `no violation in ${MAX_SEEDS} seeds`);
  });
}
