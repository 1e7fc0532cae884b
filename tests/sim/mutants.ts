/**
 * The mutants the simulators' tests load: a copy of the Raft core (from
 * `core/raft.ts`) or of the node (from `node/node.ts`) with one rule broken,
 * built by `mutate.ts`.
 *
 * @module
 */

import type { RaftClass } from "./cluster.ts";
import { loadMutantModule, type SourceMutation } from "./mutate.ts";
import type { NodeClass } from "./node/simulation.ts";

/** One textual change to the core. `from` must occur exactly once. */
export interface Mutation {
  /** The core file to change, relative to `src/core/`; default `raft.ts`. */
  readonly file?: string;
  /** The text to replace. */
  readonly from: string;
  /** Its replacement. */
  readonly to: string;
}

/** One textual change to a file of `src/` (`file` relative to it, e.g. `node/node.ts`). */
export type NodeMutation = SourceMutation;

/**
 * Builds and imports a mutant core.
 *
 * @param name Used in the temporary files' names.
 * @param mutations The changes to make to the core's files.
 * @returns The mutant's Raft class.
 * @throws {Error} When a mutation's `from` text is not found exactly once,
 *   so a refactor of the core cannot silently turn a mutant into the original.
 */
export async function loadMutant(name: string, mutations: readonly Mutation[]): Promise<RaftClass> {
  const inSrc = mutations.map(({ file = "raft.ts", from, to }) => ({
    file: `core/${file}`,
    from,
    to,
  }));
  return (await loadMutantModule(name, "core/raft.ts", inSrc)).Raft as RaftClass;
}

/**
 * Builds and imports a mutant node (the driver, and the core beneath it
 * when a mutation reaches there).
 *
 * @param name Used in the temporary files' names.
 * @param mutations The changes, to any file of `src/`.
 * @returns The mutant's node class.
 * @throws {Error} When a mutation's `from` text is not found exactly once.
 */
export async function loadNodeMutant(
  name: string,
  mutations: readonly NodeMutation[],
): Promise<NodeClass> {
  return (await loadMutantModule(name, "node/node.ts", mutations)).WaterCraftNode as NodeClass;
}
