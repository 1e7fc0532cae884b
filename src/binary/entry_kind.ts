/**
 * The byte that stands for an entry's kind in every binary format of
 * WaterCraft, the peer frames and the file log alike: 0 command, 1 noop,
 * 2 config.
 *
 * @module
 */

import type { EntryKind } from "../core/entry.ts";
import type { ByteReader } from "./reader.ts";
import { MalformedError } from "./reader.ts";

/** The byte of each entry kind. */
export const ENTRY_KIND_CODES: Readonly<Record<EntryKind, number>> = {
  command: 0,
  noop: 1,
  config: 2,
};

const ENTRY_KINDS: readonly EntryKind[] = ["command", "noop", "config"];

/**
 * Reads an entry kind's byte.
 *
 * @param r The reader, at the byte.
 * @param what The field, for the error. Default "kind".
 * @returns The kind.
 * @throws {MalformedError} When the input ends first or the byte stands
 *   for no kind.
 *
 * @example
 * ```ts
 * import { strictEqual, throws } from "node:assert/strict";
 * import { ByteReader } from "./reader.ts";
 * import { readEntryKind } from "./entry_kind.ts";
 *
 * strictEqual(readEntryKind(new ByteReader(new Uint8Array([2]))), "config");
 * throws(() => readEntryKind(new ByteReader(new Uint8Array([3]))), /kind at offset 0: 3 is not a known entry kind/);
 * ```
 */
export function readEntryKind(r: ByteReader, what = "kind"): EntryKind {
  const at = r.offset;
  const code = r.u8(what);
  const kind = ENTRY_KINDS[code];
  if (kind === undefined) throw new MalformedError(what, at, `${code} is not a known entry kind`);
  return kind;
}
