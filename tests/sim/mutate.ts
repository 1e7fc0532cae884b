/**
 * Mutation testing for both simulators: builds a copy of a module of `src/`
 * (the core's `core/raft.ts`, the node's `node/node.ts`) with one rule
 * broken, so a test can show the simulator notices.
 *
 * Every file a mutation changes is copied with textual replacements, and so
 * is every file that reaches a copied one through imports on the way from
 * the entry module (which is always copied): copies import copies, so every
 * caller of a mutated function reaches the mutant; every other import points
 * back at the originals, so errors, entries and the key-value machine are
 * shared with the real code. Nothing in `src/` is touched.
 *
 * @module
 */

/** One textual change to a file of `src/`. `from` must occur exactly once. */
export interface SourceMutation {
  /** The file to change, relative to `src/`, e.g. `node/node.ts`. */
  readonly file: string;
  /** The text to replace. */
  readonly from: string;
  /** Its replacement. */
  readonly to: string;
}

const SRC_DIR = new URL("../../src/", import.meta.url);

/** A relative import or re-export (the path is group 1). */
const IMPORT = /from "(\.\.?\/[^"]+\.ts)"/g;

/**
 * Builds and imports a mutant of `entry`.
 *
 * @param name Used in the temporary files' names.
 * @param entry The module to import, relative to `src/`, e.g. `node/node.ts`.
 * @param mutations The changes.
 * @returns The mutant module's exports.
 * @throws {Error} When a mutation's `from` text is not found exactly once,
 *   so a refactor cannot silently turn a mutant into the original.
 */
export async function loadMutantModule(
  name: string,
  entry: string,
  mutations: readonly SourceMutation[],
): Promise<Record<string, unknown>> {
  const sources = await readClosure(entry);
  const copied = new Set([entry]);
  for (const { file, from, to } of mutations) {
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
      if (!copied.has(file) && importsOf(file, source).some((f) => copied.has(f))) {
        copied.add(file);
        grew = true;
      }
    }
  }
  const copyOf = (file: string) =>
    new URL(`./.mutant_${name}_${file.replaceAll("/", "__")}`, import.meta.url);
  for (const file of copied) {
    const rewired = sources.get(file)!.replaceAll(IMPORT, (whole: string, path: string) => {
      const target = resolve(file, path);
      if (target === null) return whole;
      const url = copied.has(target) ? copyOf(target) : new URL(target, SRC_DIR);
      return `from "${url.href}"`;
    });
    await Deno.writeTextFile(copyOf(file), rewired);
  }
  try {
    return await import(copyOf(entry).href);
  } finally {
    for (const file of copied) await Deno.remove(copyOf(file));
  }
}

/** `path` imported from `file`, relative to `src/`; null outside `src/` (a doc example's import). */
function resolve(file: string, path: string): string | null {
  const url = new URL(path, new URL(file, SRC_DIR));
  return url.href.startsWith(SRC_DIR.href) ? url.href.slice(SRC_DIR.href.length) : null;
}

/** The files of `src/` that `source` (the text of `file`) imports. */
function importsOf(file: string, source: string): string[] {
  return Array.from(source.matchAll(IMPORT), (m) => resolve(file, m[1]!))
    .filter((f): f is string => f !== null);
}

/** Every file of `src/` that `entry` reaches through relative imports. */
async function readClosure(entry: string): Promise<Map<string, string>> {
  const sources = new Map<string, string>();
  const queue = [entry];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (sources.has(file)) continue;
    const source = await Deno.readTextFile(new URL(file, SRC_DIR));
    sources.set(file, source);
    queue.push(...importsOf(file, source));
  }
  return sources;
}
