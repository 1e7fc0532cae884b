/**
 * UTF-8 byte lengths, for sizing a buffer before anything is encoded into
 * it (the file storage sizes each record exactly, so its writer never
 * grows).
 *
 * @module
 */

/**
 * Returns how many bytes the UTF-8 encoding of a string takes, without
 * encoding it (a lone surrogate counts 3, as `TextEncoder` writes U+FFFD).
 *
 * @param text The string.
 * @returns Its UTF-8 byte length.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { utf8Length } from "./utf8.ts";
 *
 * strictEqual(utf8Length("n1"), 2);
 * strictEqual(utf8Length("é€😀"), 2 + 3 + 4);
 * ```
 */
export function utf8Length(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1;
      continue;
    }
    // A surrogate pair is 4 bytes for 2 code units; anything else from
    // U+0800 on (a lone surrogate included) is 3 bytes for 1.
    n += 2;
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
  }
  return n;
}
