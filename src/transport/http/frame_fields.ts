/**
 * Field checks the peer frames' payloads share (`frames.ts`,
 * `message_frames.ts`, `forward_frames.ts`): node ids, counted lists of
 * items, text bounded in characters, and field paths for errors inside
 * nested items. Each
 * throws `MalformedError`, which `frames.ts` turns into a `FrameError`.
 *
 * @module
 */

import { type ByteReader, MalformedError } from "../../binary/mod.ts";
import { NODE_ID_PATTERN, NODE_ID_RULE } from "../../core/config.ts";

/** The most UTF-8 bytes of a node id: 64 characters of the id pattern, all ASCII. */
export const NODE_ID_BYTES_MAX = 64;

/**
 * Reads a u32 count, refusing one above `max` or more items than the rest
 * of the input could hold, before anything loops over it.
 *
 * @param r The reader, at the count.
 * @param what The field, for the error.
 * @param max The most items allowed.
 * @param itemBytesMin The fewest bytes one item can take.
 * @returns The count.
 * @throws {MalformedError} When the count is refused.
 */
export function readCount(r: ByteReader, what: string, max: number, itemBytesMin: number): number {
  const at = r.offset;
  const n = r.u32(what);
  if (n > max) throw new MalformedError(what, at, `${n} items, more than the ${max} allowed`);
  if (n * itemBytesMin > r.remaining) {
    throw new MalformedError(
      what,
      at,
      `${n} items cannot fit in the ${r.remaining} bytes that remain`,
    );
  }
  return n;
}

/**
 * Reads a counted list: a u32 count (checked by {@linkcode readCount}),
 * then the items, naming an item's index in the path of what it refuses
 * (`entries.3.kind`).
 *
 * @param r The reader, at the count.
 * @param what The list's field, for the error.
 * @param max The most items allowed.
 * @param itemBytesMin The fewest bytes one item can take.
 * @param readItem Reads one item.
 * @returns The items.
 * @throws {MalformedError} When the count or an item is refused.
 */
export function readList<T>(
  r: ByteReader,
  what: string,
  max: number,
  itemBytesMin: number,
  readItem: (r: ByteReader) => T,
): T[] {
  const count = readCount(r, what, max, itemBytesMin);
  const items: T[] = [];
  for (let i = 0; i < count; i++) {
    try {
      items.push(readItem(r));
    } catch (error) {
      throw within(error, `${what}.${i}`);
    }
  }
  return items;
}

/**
 * Reads a node id: a short string that matches `NODE_ID_PATTERN`.
 *
 * @param r The reader, at the id.
 * @param what The field, for the error.
 * @returns The id.
 * @throws {MalformedError} When it is cut short, too long or not an id.
 */
export function readId(r: ByteReader, what: string): string {
  const at = r.offset;
  const id = r.shortString(what, NODE_ID_BYTES_MAX);
  if (!NODE_ID_PATTERN.test(id)) throw new MalformedError(what, at, `must match ${NODE_ID_RULE}`);
  return id;
}

/**
 * Checks a string's UTF-16 length, as zod's `.max()` counts. The caller has
 * already bounded its UTF-8 at 3 bytes per character (the most one UTF-16
 * unit takes), so nothing huge was decoded.
 *
 * @param text The string read, or null.
 * @param what The field, for the error.
 * @param at Where the field starts.
 * @param max The most characters allowed.
 * @throws {MalformedError} When `text` is longer.
 */
export function boundedText(text: string | null, what: string, at: number, max: number): void {
  if (text !== null && text.length > max) {
    throw new MalformedError(what, at, `${text.length} characters, more than the ${max} allowed`);
  }
}

/**
 * Prefixes the field path of a `MalformedError` thrown inside an item, e.g.
 * `kind` becomes `entries.3.kind`.
 *
 * @param error What was thrown.
 * @param prefix The item's path.
 * @returns The error with its path prefixed; anything else as it is.
 */
export function within(error: unknown, prefix: string): unknown {
  if (!(error instanceof MalformedError)) return error;
  return new MalformedError(`${prefix}.${error.what}`, error.offset, error.problem);
}
