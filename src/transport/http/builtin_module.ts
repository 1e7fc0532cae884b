/**
 * The runtime's own modules (`node:crypto`, `node:net`) reached through
 * `process.getBuiltinModule`, which Deno, Bun and Node have, rather than
 * imported: where they are missing (an edge runtime) the transport loads
 * anyway and does without them.
 *
 * @module
 */

/**
 * Loads a built-in module, if the runtime has it.
 *
 * @param id The module's id, e.g. `node:net`.
 * @param has Whether what came back offers what the caller uses.
 * @returns The module, or null where it is missing.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { builtinModule } from "./builtin_module.ts";
 *
 * const net = builtinModule<{ connect: unknown }>("node:net", (m) => typeof m.connect === "function");
 * ok(net !== null);
 * ```
 */
export function builtinModule<T>(id: string, has: (module: T) => boolean): T | null {
  try {
    const process = (globalThis as {
      process?: { getBuiltinModule?: (id: string) => unknown };
    }).process;
    const module = process?.getBuiltinModule?.(id) as T | undefined;
    return module !== undefined && module !== null && has(module) ? module : null;
  } catch {
    return null;
  }
}
