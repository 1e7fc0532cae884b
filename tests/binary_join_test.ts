/**
 * Joining large byte arrays a few megabytes at a time.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { joinInSlices } from "../src/binary/join.ts";

Deno.test("joinInSlices() gives the event loop a turn every 512 KiB and joins the parts exactly", async () => {
  const parts = [1152 * 1024, 1, 0, 384 * 1024].map((n, k) =>
    new Uint8Array(n).map((_, i) => (i * 31 + k) % 256)
  );
  let pauses = 0;
  const joined = await joinInSlices(parts, 4, () => {
    pauses++;
    return Promise.resolve();
  });
  // 1.5 MiB and 1 byte: three full slices, then the last byte.
  strictEqual(pauses, 3);
  const expected = new Uint8Array(4 + 1536 * 1024 + 1);
  let at = 4;
  for (const part of parts) {
    expected.set(part, at);
    at += part.length;
  }
  deepStrictEqual(joined, expected);
});

Deno.test("joinInSlices() joins up to 512 KiB without a pause", async () => {
  let pauses = 0;
  const joined = await joinInSlices([new Uint8Array(512 * 1024).fill(1)], 0, () => {
    pauses++;
    return Promise.resolve();
  });
  strictEqual(pauses, 0);
  strictEqual(joined.length, 512 * 1024);
});
