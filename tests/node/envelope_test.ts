/**
 * Command entries: the command's bytes behind their idempotency key, read
 * without a copy; 0.1's JSON entries are still read.
 *
 * @module
 */

import { deepStrictEqual, throws } from "node:assert/strict";
import { openEnvelope, sealEnvelope } from "../../src/node/envelope.ts";

const encoder = new TextEncoder();

Deno.test("sealEnvelope() and openEnvelope() round-trip commands with and without a key", async (t) => {
  const rows: { name: string; command: Uint8Array; key: string | undefined }[] = [
    { name: "no key", command: Uint8Array.of(1, 2, 3), key: undefined },
    { name: "a key", command: Uint8Array.of(1), key: "retry-1" },
    { name: "a UTF-8 key and an empty command", command: new Uint8Array(0), key: "clé" },
    { name: "the longest key", command: Uint8Array.of(7), key: "k".repeat(0xffff) },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      deepStrictEqual(openEnvelope(sealEnvelope(row.command, row.key)), {
        key: row.key,
        command: row.command,
      });
    });
  }
  await t.step("a key over 64 KiB is refused", () => {
    throws(() => sealEnvelope(new Uint8Array(0), "k".repeat(0x10000)), RangeError);
  });
});

Deno.test("openEnvelope() reads 0.1's JSON entries and refuses anything else", async (t) => {
  await t.step("0.1's JSON entry", () => {
    const data = encoder.encode('{"c":{"op":"put","key":"a","value":1},"k":"r1"}');
    deepStrictEqual(openEnvelope(data), {
      key: "r1",
      command: encoder.encode('{"op":"put","key":"a","value":1}'),
    });
  });
  const rows: { name: string; data: Uint8Array }[] = [
    { name: "empty", data: new Uint8Array(0) },
    { name: "another first byte", data: Uint8Array.of(0x00, 0, 0) },
    { name: "a key past the end", data: Uint8Array.of(0xc1, 0, 9, 97) },
    { name: "a tag alone", data: Uint8Array.of(0xc1) },
  ];
  for (const row of rows) {
    await t.step(row.name, () => throws(() => openEnvelope(row.data), RangeError));
  }
});
