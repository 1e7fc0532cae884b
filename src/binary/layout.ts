/**
 * The constants both sides of the binary layout agree on: what stands for
 * null behind a length prefix, and how wide a hash and the high word of a
 * `u53` are. The layout itself is described in `mod.ts`.
 *
 * @module
 */

/** The length that stands for null in a nullable string (`ByteWriter.nullableString`). */
export const NULL_LENGTH = 0xffff_ffff;

/** 2^32: a `u53` is its low u32 plus its high u32 times this. */
export const TWO_TO_32 = 0x1_0000_0000;
