/**
 * The process's memory as metrics, where the runtime can tell it (Deno, Bun
 * and Node expose `process.memoryUsage()`; a Workers isolate does not, and
 * then there is nothing to report): the resident set, and the JavaScript
 * heap reserved and in use, so an operator can tell a leak (in use keeps
 * growing) from a heap that is merely large (reserved but free).
 *
 * @module
 */

/** What `process.memoryUsage()` returns, in bytes. */
interface MemoryUsage {
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
}

/**
 * The process's memory gauges in the Prometheus text format.
 *
 * @returns Their lines, ending in a newline; empty where the runtime has no
 *   `process.memoryUsage()`.
 *
 * @example
 * ```ts
 * import { match } from "node:assert/strict";
 * import { processMetrics } from "./process_metrics.ts";
 *
 * match(processMetrics(), /^process_resident_memory_bytes \d+$/m);
 * ```
 */
export function processMetrics(): string {
  let usage: MemoryUsage | undefined;
  try {
    usage = (globalThis as { process?: { memoryUsage?: () => MemoryUsage } }).process
      ?.memoryUsage?.();
  } catch {
    // A runtime that emulates `process` but cannot measure: nothing to report.
  }
  if (usage === undefined || !(usage.rss > 0)) return "";
  const gauge = (name: string, help: string, value: number) =>
    `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${Math.round(value)}\n`;
  return gauge("process_resident_memory_bytes", "Resident memory size in bytes.", usage.rss) +
    gauge(
      "watercraft_js_heap_total_bytes",
      "JavaScript heap reserved by the engine, in bytes.",
      usage.heapTotal,
    ) +
    gauge("watercraft_js_heap_used_bytes", "JavaScript heap in use, in bytes.", usage.heapUsed) +
    gauge(
      "watercraft_js_external_bytes",
      "Memory held outside the JavaScript heap by its objects (buffers), in bytes.",
      usage.external,
    );
}
