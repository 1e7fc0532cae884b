/**
 * A small metrics registry that renders the Prometheus text format.
 *
 * @module
 */

/** Upper bounds (seconds) of the latency histogram buckets. */
const BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** A latency histogram in seconds. */
export class Histogram {
  readonly #counts = new Array<number>(BUCKETS_S.length).fill(0);
  #sum = 0;
  #count = 0;

  /** Records one observation, in milliseconds. */
  observeMs(ms: number): void {
    const s = Math.max(0, ms) / 1000;
    this.#sum += s;
    this.#count++;
    for (let i = 0; i < BUCKETS_S.length; i++) if (s <= BUCKETS_S[i]!) this.#counts[i]!++;
  }

  /** Number of observations. */
  get count(): number {
    return this.#count;
  }

  /** Renders the histogram's sample lines under `name`. */
  render(name: string): string[] {
    const lines = BUCKETS_S.map((b, i) => `${name}_bucket{le="${b}"} ${this.#counts[i]}`);
    lines.push(`${name}_bucket{le="+Inf"} ${this.#count}`);
    lines.push(`${name}_sum ${this.#sum}`, `${name}_count ${this.#count}`);
    return lines;
  }
}

/** One metric family for rendering. */
export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  readonly value: number | Histogram | ReadonlyMap<string, number>;
  /** Label name for map values. */
  readonly label?: string;
}

/**
 * Renders metric families in the Prometheus text exposition format (0.0.4).
 *
 * @param families The metrics.
 * @returns The text, ending with a newline.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { renderMetrics } from "./metrics.ts";
 *
 * const text = renderMetrics([{ name: "x_total", help: "X.", type: "counter", value: 3 }]);
 * strictEqual(text, "# HELP x_total X.\n# TYPE x_total counter\nx_total 3\n");
 * ```
 */
export function renderMetrics(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    if (f.value instanceof Histogram) out.push(...f.value.render(f.name));
    else if (typeof f.value === "number") out.push(`${f.name} ${f.value}`);
    else {
      for (const [k, v] of f.value) {
        out.push(`${f.name}{${f.label ?? "label"}="${escapeLabel(k)}"} ${v}`);
      }
    }
  }
  return out.join("\n") + "\n";
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}
