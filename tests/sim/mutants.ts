/**
 * Mutation testing for the simulator: builds a copy of the Raft core with one
 * safety rule broken, so a test can show the simulator notices.
 *
 * The copy is every core file a mutation changes, with textual replacements,
 * plus every core file that `raft.ts` reaches through imports and that
 * imports a copied file (`raft.ts` itself always), written next to this file
 * and imported. Copies import copies, so every caller of a mutated function
 * reaches the mutant; every other import points back at the originals, so
 * errors and entries are shared with the real core.
 *
 * @module
 */

import type { RaftClass } from "./cluster.ts";

/** One textual change to the core. `from` must occur exactly once. */
export interface Mutation {
  /** The core file to change, relative to `src/core/`; default `raft.ts`. */
  readonly file?: string;
  /** The text to replace. */
  readonly from: string;
  /** Its replacement. */
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
  const sources = await readCore();
  const copied = new Set(["raft.ts"]);
  for (const { file = "raft.ts", from, to } of mutations) {
    const source = sources.get(file);
    const at = source?.indexOf(from) ?? -1;
    if (source === undefined || at < 0 || source.indexOf(from, at + 1) >= 0) {
      throw new Error(
        `Mutation ${name}: expected exactly one occurrence of ${JSON.stringify(from)} in ${file}`,
      );
    }
    sources.set(file, source.slice(0, at) + to + source.slice(at + from.length));
    copied.add(file);
  }
  // Whatever imports a copy is copied too, until nothing changes.
  for (let grew = true; grew;) {
    grew = false;
    for (const [file, source] of sources) {
      if (!copied.has(file) && importsOf(source).some((imported) => copied.has(imported))) {
        copied.add(file);
        grew = true;
      }
    }
  }
  const copyOf = (file: string) => new URL(`./.mutant_${name}_${file}`, import.meta.url);
  for (const file of copied) {
    const rewired = sources.get(file)!.replaceAll(IMPORT, (_, imported: string) => {
      const target = copied.has(imported) ? copyOf(imported) : new URL(imported, CORE_DIR);
      return `from "${target.href}"`;
    });
    await Deno.writeTextFile(copyOf(file), rewired);
  }
  try {
    const module = await import(copyOf("raft.ts").href);
    return module.Raft as RaftClass;
  } finally {
    for (const file of copied) await Deno.remove(copyOf(file));
  }
}

/** A relative import of a core file (the file name is group 1). */
const IMPORT = /from "\.\/([a-z_]+\.ts)"/g;

/** The core files a relative import in `source` names. */
function importsOf(source: string): string[] {
  return Array.from(source.matchAll(IMPORT), (m) => m[1]!);
}

/** The source of `raft.ts` and of every core file it reaches through imports, by file name. */
async function readCore(): Promise<Map<string, string>> {
  const sources = new Map<string, string>();
  const queue = ["raft.ts"];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (sources.has(file)) continue;
    const source = await Deno.readTextFile(new URL(file, CORE_DIR));
    sources.set(file, source);
    queue.push(...importsOf(source));
  }
  return sources;
}
