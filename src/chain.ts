/**
 * Checking a run of the hash chain from outside a node: recompute each
 * entry's hash from the previous one and its own fields, and compare. Two
 * nodes whose runs check and end at the same hash hold the same history.
 *
 * Runs anywhere `fetch` does (a browser, an edge function): only the hash
 * function of the log itself.
 *
 * @module
 */

import { entryHash, type EntryKind } from "./core/entry.ts";

/** An entry as the log listing and the watch stream give it. */
export interface ChainLink {
  /** Position in the log. */
  readonly index: number;
  /** Term of the leader that created it. */
  readonly term: number;
  /** Its hash. */
  readonly id: string;
  /** The previous entry's hash. */
  readonly prev: string;
  /** What it carries. */
  readonly kind: EntryKind;
  /** The node that created it. */
  readonly proposer: string;
  /** The proposer's clock at proposal, ms. */
  readonly timeMs: number;
  /** The bytes the hash covers, base64. */
  readonly bytes: string;
}

/** What {@linkcode verifyChain} found. */
export type ChainCheck =
  | {
    readonly ok: true;
    /** Entries checked. */
    readonly checked: number;
    /** The last entry's hash: compare it with another node's at the same index. */
    readonly last: string | null;
  }
  | {
    readonly ok: false;
    /** The first entry that does not check. */
    readonly index: number;
    /** What is wrong with it. */
    readonly reason: string;
  };

/**
 * Checks a run of consecutive entries.
 *
 * @param entries The entries, in log order.
 * @param prevHash The hash before the first one, when known (from an
 *   earlier run, or 64 zeros before index 1); by default the first entry's
 *   own `prev` is taken on trust.
 * @returns Whether every entry's hash is right and links to the one before.
 *
 * @example A run that checks, and one altered
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { entryHash, GENESIS_HASH } from "./core/entry.ts";
 * import { verifyChain } from "./chain.ts";
 *
 * const fields = { term: 1, kind: "noop" as const, proposer: "n1", timeMs: 0, data: new Uint8Array() };
 * const id = entryHash(GENESIS_HASH, fields);
 * const link = { index: 1, id, prev: GENESIS_HASH, ...fields, bytes: "" };
 * strictEqual(verifyChain([link], GENESIS_HASH).ok, true);
 * strictEqual(verifyChain([{ ...link, term: 2 }]).ok, false);
 * ```
 */
export function verifyChain(entries: readonly ChainLink[], prevHash?: string): ChainCheck {
  let expectedPrev = prevHash ?? entries[0]?.prev;
  let expectedIndex = entries[0]?.index;
  for (const e of entries) {
    if (e.index !== expectedIndex) {
      return { ok: false, index: e.index, reason: `expected index ${expectedIndex}` };
    }
    if (e.prev !== expectedPrev) {
      return {
        ok: false,
        index: e.index,
        reason: `links to ${e.prev}, but the entry before is ${expectedPrev}`,
      };
    }
    let data: Uint8Array;
    try {
      data = Uint8Array.from(atob(e.bytes), (c) => c.charCodeAt(0));
    } catch {
      return { ok: false, index: e.index, reason: "bytes are not base64" };
    }
    const hash = entryHash(e.prev, { ...e, data });
    if (hash !== e.id) {
      return { ok: false, index: e.index, reason: `its fields hash to ${hash}, not ${e.id}` };
    }
    expectedPrev = e.id;
    expectedIndex = e.index + 1;
  }
  return { ok: true, checked: entries.length, last: entries.at(-1)?.id ?? null };
}
