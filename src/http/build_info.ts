/**
 * What this build of WaterCraft is: its version, and the
 * `watercraft_build_info` metric that carries it with the runtime.
 *
 * @module
 */

/** The release, as in `deno.json` (a test keeps them equal). */
export const VERSION = "0.1.0";

/**
 * The runtime this process runs on, and its version.
 *
 * @returns E.g. `{ name: "deno", version: "2.1.0" }`.
 */
export function runtimeInfo(): { name: string; version: string } {
  const g = globalThis as {
    Deno?: { version: { deno: string } };
    Bun?: { version: string };
    process?: { versions?: { node?: string } };
  };
  if (g.Deno !== undefined) return { name: "deno", version: g.Deno.version.deno };
  if (g.Bun !== undefined) return { name: "bun", version: g.Bun.version };
  return { name: "node", version: g.process?.versions?.node ?? "unknown" };
}

/**
 * The `watercraft_build_info` gauge in the Prometheus text format: always
 * 1, its labels say what runs.
 *
 * @returns Its lines, ending in a newline.
 *
 * @example
 * ```ts
 * import { match } from "node:assert/strict";
 * import { buildInfoMetric } from "./build_info.ts";
 *
 * match(buildInfoMetric(), /^watercraft_build_info\{version="[^"]+",runtime="\w+",runtime_version="[^"]+"\} 1$/m);
 * ```
 */
export function buildInfoMetric(): string {
  const runtime = runtimeInfo();
  return "# HELP watercraft_build_info 1, labelled with the release and the runtime.\n" +
    "# TYPE watercraft_build_info gauge\n" +
    `watercraft_build_info{version="${VERSION}",runtime="${runtime.name}",runtime_version="${
      runtime.version.replaceAll('"', "")
    }"} 1\n`;
}
