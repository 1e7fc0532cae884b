/**
 * Plain-text tables for the operator commands: a header row, then one row
 * per item, columns padded to their widest cell.
 *
 * @module
 */

/**
 * Renders rows as a table.
 *
 * @param header The column names.
 * @param rows The cells, one array per row, as many as `header` has.
 * @returns The lines, joined with newlines, without a final one.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { renderTable } from "./table.ts";
 *
 * strictEqual(renderTable(["ID", "ROLE"], [["n1", "leader"]]), "ID  ROLE\nn1  leader");
 * ```
 */
export function renderTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) => i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}
