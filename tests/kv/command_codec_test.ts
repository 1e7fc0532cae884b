/**
 * The key-value machine's log bytes: every command kind round-trips with its
 * values as canonical text, and bytes no edge made are refused with a
 * RangeError (which the node turns into a refusal on every node alike).
 *
 * @module
 */

import { deepStrictEqual, throws } from "node:assert/strict";
import { decodeKvCommand, encodeKvCommand } from "../../src/kv/command_codec.ts";
import type { ParsedCommand } from "../../src/kv/schemas.ts";

Deno.test("encodeKvCommand() and decodeKvCommand() round-trip every command kind", async (t) => {
  const rows: { name: string; command: ParsedCommand }[] = [
    { name: "put", command: { op: "put", key: "a", value: '{"x":[1,"é"]}' } },
    { name: "put of a long key", command: { op: "put", key: "k".repeat(1024), value: "1" } },
    { name: "delete", command: { op: "delete", key: "日本" } },
    { name: "cas", command: { op: "cas", key: "a", expect: "null", value: '"v"' } },
    {
      name: "cas on revision 0",
      command: { op: "cas", key: "a", expectModified: 0, value: '{"n":1}' },
    },
    {
      name: "cas on a revision past 32 bits",
      command: { op: "cas", key: "日本", expectModified: 2 ** 40 + 3, value: "null" },
    },
    {
      name: "cas on the largest safe revision",
      command: { op: "cas", key: "a", expectModified: Number.MAX_SAFE_INTEGER, value: "1" },
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      deepStrictEqual(decodeKvCommand(encodeKvCommand(row.command)), row.command);
    });
  }
});

Deno.test("encodeKvCommand() keeps the op codes of older releases and lays a revision out as a u64", () => {
  // Logs written before revisions must decode the same forever.
  deepStrictEqual([...encodeKvCommand({ op: "put", key: "a", value: "1" })], [1, 0, 1, 97, 49]);
  deepStrictEqual([...encodeKvCommand({ op: "delete", key: "a" })], [2, 0, 1, 97]);
  deepStrictEqual(
    [...encodeKvCommand({ op: "cas", key: "a", expect: "1", value: "2" })],
    [3, 0, 1, 97, 0, 0, 0, 1, 49, 50],
  );
  deepStrictEqual(
    [...encodeKvCommand({ op: "cas", key: "a", expectModified: 258, value: "2" })],
    [4, 0, 1, 97, 0, 0, 0, 0, 0, 0, 1, 2, 50],
  );
});

Deno.test("decodeKvCommand() refuses bytes that no edge made", async (t) => {
  const put = encodeKvCommand({ op: "put", key: "ab", value: "1" });
  const cas = encodeKvCommand({ op: "cas", key: "a", expect: "1", value: "2" });
  const rows: { name: string; data: Uint8Array; want: RegExp }[] = [
    { name: "empty", data: new Uint8Array(0), want: /truncated/ },
    { name: "unknown op", data: Uint8Array.of(9, 0, 1, 97, 49), want: /Unknown key-value op 9/ },
    { name: "key past the end", data: Uint8Array.of(1, 0, 9, 97), want: /key runs past/ },
    { name: "empty key", data: Uint8Array.of(2, 0, 0), want: /key must be 1 to 1024/ },
    { name: "put without a value", data: put.subarray(0, 5), want: /value is empty/ },
    { name: "delete with trailing bytes", data: Uint8Array.of(2, 0, 1, 97, 0), want: /trailing/ },
    { name: "cas cut in its length", data: cas.subarray(0, 5), want: /cas is truncated/ },
    {
      name: "cas expect past the end",
      data: Uint8Array.of(3, 0, 1, 97, 0, 0, 0, 9, 49),
      want: /expect runs past/,
    },
    {
      name: "cas on a revision cut in its revision",
      data: Uint8Array.of(4, 0, 1, 97, 0, 0, 0, 0, 0, 0, 1),
      want: /cas is truncated/,
    },
    {
      name: "cas on a revision without a value",
      data: Uint8Array.of(4, 0, 1, 97, 0, 0, 0, 0, 0, 0, 0, 1),
      want: /value is empty/,
    },
    {
      name: "cas on a revision past the safe integers",
      data: Uint8Array.of(4, 0, 1, 97, 0, 0x20, 0, 0, 0, 0, 0, 0, 49),
      want: /not a safe integer/,
    },
    { name: "not UTF-8", data: Uint8Array.of(1, 0, 1, 0xff, 49), want: /./ },
    { name: "a value that is not JSON", data: Uint8Array.of(1, 0, 1, 97, 123), want: /not JSON/ },
    {
      name: "a value that is JSON but not canonical",
      data: new Uint8Array([1, 0, 1, 97, ...new TextEncoder().encode('{"b":1,"a":2}')]),
      want: /not canonical/,
    },
    {
      name: "a value that would splice into a snapshot",
      data: new Uint8Array([1, 0, 1, 97, ...new TextEncoder().encode('1],["zz",2')]),
      want: /not JSON/,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      throws(() => decodeKvCommand(row.data), (e: unknown) => {
        return (e instanceof RangeError || e instanceof TypeError) && row.want.test(e.message);
      });
    });
  }
});
