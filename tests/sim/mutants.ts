/**
 * Mutation testing for the simulator: builds a copy of the Raft core with one
 * safety rule broken, so a test can show the simulator notices.
 *
 * The copy is `src/core/raft.ts`, plus every other core file a mutation
 * changes, with textual replacements, written next to this file and
 * imported. The copy of `raft.ts` imports the mutated copies; every other
 * import points back at the originals, so errors and entries are shared with
 * the real core.
 *
 * @module
 */

import type { RaftClass } from "./cluster.ts";

/** One textual change to the core. `from` must occur exactly once. */
export interface Mutation {
  /** The core file to change, relative to `src/core/`; default `raft.ts`. */
  readonly file?: string;
  readonly from: string;
  readonly to: string;
}

const CORE_DIR = new URL("../../src/core/", import.meta.url);

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
  const sources = new Map<string, string>([["raft.ts", ""]]);
  for (const { file = "raft.ts" } of mutations) sources.set(file, "");
  for (const file of sources.keys()) {
    sources.set(file, await Deno.readTextFile(new URL(file, CORE_DIR)));
  }
  for (const { file = "raft.ts", from, to } of mutations) {
    const source = sources.get(file)!;
    const at = source.indexOf(from);
    if (at < 0 || source.indexOf(from, at + 1) >= 0) {
      throw new Error(
        `Mutation ${name}: expected exactly one occurrence of ${JSON.stringify(from)} in ${file}`,
      );
    }
    sources.set(file, source.slice(0, at) + to + source.slice(at + from.length));
  }
  const copyOf = (file: string) => new URL(`./.mutant_${name}_${file}`, import.meta.url);
  for (const [file, source] of sources) {
    const rewired = source.replaceAll(/from "\.\/([a-z_]+\.ts)"/g, (_, imported: string) => {
      const target = file === "raft.ts" && sources.has(imported)
        ? copyOf(imported)
        : new URL(imported, CORE_DIR);
      return `from "${target.href}"`;
    });
    await Deno.writeTextFile(copyOf(file), rewired);
  }
  try {
    const module = await import(copyOf("raft.ts").href);
    return module.Raft as RaftClass;
  } finally {
    for (const file of sources.keys()) await Deno.remove(copyOf(file));
  }
}
