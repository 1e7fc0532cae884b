/**
 * Mutation testing for the simulator: builds a copy of the Raft core with one
 * safety rule broken, so a test can show the simulator notices.
 *
 * The copy is `src/core/raft.ts` with textual replacements, written next to
 * this file and imported; its imports of the other core files point back at
 * the originals, so errors and entries are shared with the real core.
 *
 * @module
 */

import type { RaftClass } from "./cluster.ts";

/** One textual change to the core. `from` must occur exactly once. */
export interface Mutation {
  readonly from: string;
  readonly to: string;
}

const CORE_DIR = new URL("../../src/core/", import.meta.url);

/**
 * Builds and imports a mutant core.
 *
 * @param name Used in the temporary file's name.
 * @param mutations The changes to make to `raft.ts`.
 * @returns The mutant's Raft class.
 * @throws {Error} When a mutation's `from` text is not found exactly once,
 *   so a refactor of the core cannot silently turn a mutant into the original.
 */
export async function loadMutant(name: string, mutations: readonly Mutation[]): Promise<RaftClass> {
  let source = await Deno.readTextFile(new URL("raft.ts", CORE_DIR));
  for (const { from, to } of mutations) {
    const at = source.indexOf(from);
    if (at < 0 || source.indexOf(from, at + 1) >= 0) {
      throw new Error(
        `Mutation ${name}: expected exactly one occurrence of ${JSON.stringify(from)}`,
      );
    }
    source = source.slice(0, at) + to + source.slice(at + from.length);
  }
  source = source.replaceAll(/from "\.\/([a-z_]+\.ts)"/g, (_, file: string) => {
    return `from "${new URL(file, CORE_DIR).href}"`;
  });
  const path = new URL(`./.mutant_${name}.ts`, import.meta.url);
  await Deno.writeTextFile(path, source);
  try {
    const module = await import(path.href);
    return module.Raft as RaftClass;
  } finally {
    await Deno.remove(path);
  }
}
