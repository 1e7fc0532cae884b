/**
 * Byte-level primitives for WaterCraft's binary formats: a growable
 * {@linkcode ByteWriter} and a {@linkcode ByteReader} that checks every read
 * against the end of its input and throws {@linkcode MalformedError} (naming
 * the field and the offset) instead of reading past it. The peer frames
 * (`src/transport/http/frames.ts`) and the file storage's records
 * (`src/storage/file/records.ts`) are written and read with them.
 *
 * The layout of each primitive, all integers little-endian:
 *
 * | primitive          | bytes                                                         |
 * | ------------------ | ------------------------------------------------------------- |
 * | `u8` `u16` `u32`   | 1, 2, 4                                                        |
 * | `bool`             | u8, 0 or 1 (anything else is malformed)                        |
 * | `u53`              | 8: a non-negative safe integer, low u32 then high u32          |
 * | `f64`              | 8: IEEE 754 binary64                                           |
 * | `bytes`            | u32 length `n`, then `n` bytes                                 |
 * | `string`           | u32 UTF-8 length `n`, then `n` bytes of UTF-8                  |
 * | `nullableString`   | as `string`, with length `0xFFFFFFFF` (and no bytes) for null  |
 * | `shortString`      | u8 UTF-8 length `n` (at most 255), then `n` bytes (node ids)   |
 * | `hash`             | 32 raw bytes, a 64-digit lowercase hex string in memory        |
 *
 * Why `u53` is a fixed 8 bytes and not a varint: the file storage's format
 * (version 1) already stored its integers this way, so both formats share
 * this code without a format change; a fixed width lets encoders size their
 * buffer before writing and lets readers decode without a loop or a branch
 * per byte; there is no overlong or non-canonical encoding to refuse; and in
 * the messages that carry volume (appends, snapshot chunks) the payload
 * bytes dwarf the 8 bytes per number.
 *
 * The files: `writer.ts` and `reader.ts` hold the two classes, `layout.ts`
 * the constants they share, `hex.ts` the hash conversions, `utf8.ts` UTF-8
 * lengths, and `entry_kind.ts` the byte of an entry's kind, which both
 * formats write the same way.
 *
 * @example Round trip
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { ByteReader, ByteWriter } from "./mod.ts";
 *
 * const w = new ByteWriter();
 * w.u53(2 ** 40, "term");
 * w.nullableString(null);
 * w.shortString("n1");
 * const r = new ByteReader(w.finish());
 * deepStrictEqual([r.u53("term"), r.nullableString("vote"), r.shortString("id")], [2 ** 40, null, "n1"]);
 * r.end();
 * ```
 *
 * @module
 */

export { ENTRY_KIND_CODES, readEntryKind } from "./entry_kind.ts";
export { HASH_BYTES } from "./hex.ts";
export { NULL_LENGTH } from "./layout.ts";
export { ByteReader, MalformedError } from "./reader.ts";
export { utf8Length } from "./utf8.ts";
export { ByteWriter } from "./writer.ts";
