/**
 * Joining large byte arrays without holding the event loop: copying into
 * fresh memory costs a page fault per 4 KiB, and under load a 3 MB copy took
 * 8 ms of a node's thread, so a snapshot is joined half a MiB at a time,
 * with the event loop free in between.
 *
 * @module
 */

/** How much is copied between two turns of the event loop. */
const SLICE_BYTES = 512 * 1024;

/**
 * Gives the event loop a turn: I/O and timers run before what follows.
 *
 * @returns A promise that resolves on a later turn.
 */
export function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Joins `parts` into one array after `offset` free bytes (zero), copying
 * half a MiB at a time with `pause` in between. Input of at most half a MiB
 * is joined without a pause.
 *
 * @param parts The arrays, in order.
 * @param offset Bytes left free at the start, for the caller's header.
 * @param pause Gives the event loop a turn (default {@linkcode macrotask}).
 * @returns The joined bytes.
 *
 * @example A header's room, then two parts
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { joinInSlices } from "./join.ts";
 *
 * const joined = await joinInSlices([new Uint8Array([1, 2]), new Uint8Array([3])], 1);
 * deepStrictEqual(joined, new Uint8Array([0, 1, 2, 3]));
 * ```
 */
export async function joinInSlices(
  parts: readonly Uint8Array[],
  offset = 0,
  pause: () => Promise<void> = macrotask,
): Promise<Uint8Array> {
  let size = offset;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let at = offset;
  let sinceTurn = 0;
  for (const part of parts) {
    for (let from = 0; from < part.length;) {
      if (sinceTurn >= SLICE_BYTES) {
        await pause();
        sinceTurn = 0;
      }
      const n = Math.min(part.length - from, SLICE_BYTES - sinceTurn);
      out.set(part.subarray(from, from + n), at);
      from += n;
      at += n;
      sinceTurn += n;
    }
  }
  return out;
}
