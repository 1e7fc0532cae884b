/**
 * CRC-32C (Castagnoli), the checksum of every record the file storage
 * writes, so that torn and flipped bytes are caught on load. Castagnoli's
 * polynomial (also in etcd's WAL and ext4) detects more error patterns than
 * zlib's CRC-32 at the same cost.
 *
 * @module
 */

/** Slicing-by-8 tables for CRC-32C (reflected polynomial 0x82F63B78). */
const CRC_TABLES: Uint32Array = makeCrcTables();

function makeCrcTables(): Uint32Array {
  const tables = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    tables[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[n]!;
    for (let k = 1; k < 8; k++) {
      c = tables[c & 0xff]! ^ (c >>> 8);
      tables[k * 256 + n] = c;
    }
  }
  return tables;
}

/**
 * Computes the CRC-32C (Castagnoli) of `bytes[start, end)`, the checksum of
 * every record. Slicing-by-8 keeps it near a byte per cycle in JavaScript.
 *
 * @param bytes The input.
 * @param start First byte (default 0).
 * @param end One past the last byte (default `bytes.length`).
 * @returns The checksum as an unsigned 32-bit integer.
 *
 * @example The standard check value
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { crc32c } from "./crc.ts";
 *
 * strictEqual(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
 * ```
 */
export function crc32c(bytes: Uint8Array, start = 0, end: number = bytes.length): number {
  const t = CRC_TABLES;
  let crc = 0xffffffff;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const lo = crc ^
      (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    crc = t[1792 + (lo & 0xff)]! ^ t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^ t[1024 + (lo >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^ t[512 + bytes[i + 5]!]! ^ t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!;
  }
  for (; i < end; i++) crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
