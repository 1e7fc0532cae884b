/**
 * Tests for `crc32c` (src/storage/file/crc.ts): the published CRC-32C check
 * values.
 *
 * @module
 */

import { strictEqual } from "node:assert/strict";
import { crc32c } from "../../../src/storage/file/crc.ts";

Deno.test("crc32c() gives the CRC-32C check values", async (t) => {
  const rows = [
    { name: "empty", input: new Uint8Array(0), want: 0 },
    { name: "123456789", input: new TextEncoder().encode("123456789"), want: 0xe3069283 },
    { name: "32 zeros", input: new Uint8Array(32), want: 0x8a9136aa },
    { name: "32 0xff", input: new Uint8Array(32).fill(0xff), want: 0x62a8ab43 },
  ];
  for (const row of rows) {
    await t.step(row.name, () => strictEqual(crc32c(row.input), row.want));
  }
});
