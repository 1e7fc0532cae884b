/**
 * Tests for `RaftLog` (src/core/log.ts): appending and truncating, the
 * conflict searches, the §5.4.1 up-to-date rule, commit, stability and apply
 * bookkeeping, the hash index, the configuration in force, and the read-only
 * view the core hands out.
 *
 * @module
 */

import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { AssertionError } from "../../src/core/assert.ts";
import { type Configuration, EMPTY_CONFIG, encodeConfig } from "../../src/core/config.ts";
import { createEntry, type Entry, GENESIS_HASH } from "../../src/core/entry.ts";
import { EMPTY_SNAPSHOT, RaftLog, readOnlyLog } from "../../src/core/log.ts";

const encoder = new TextEncoder();

/**
 * Creates command entries with the given terms that follow `prefix`. `tag`
 * goes into the data, so two branches with equal terms still differ.
 */
function extend(prefix: readonly Entry[], terms: readonly number[], tag = ""): Entry[] {
  const out: Entry[] = [];
  let prev = prefix.at(-1);
  for (const term of terms) {
    const index = (prev?.index ?? 0) + 1;
    const entry = createEntry(index, prev?.hash ?? GENESIS_HASH, {
      term,
      kind: "command",
      proposer: "n1",
      timeMs: 0,
      data: encoder.encode(`${tag}${index}`),
    });
    out.push(entry);
    prev = entry;
  }
  return out;
}

/** Creates a config entry following `prefix`. */
function configEntry(prefix: readonly Entry[], term: number, config: Configuration): Entry {
  const prev = prefix.at(-1);
  return createEntry((prev?.index ?? 0) + 1, prev?.hash ?? GENESIS_HASH, {
    term,
    kind: "config",
    proposer: "n1",
    timeMs: 0,
    data: encodeConfig(config),
  });
}

/** A log recovered with `entries`, all durable, committed up to `committed`. */
function logOf(entries: readonly Entry[], committed = 0): RaftLog {
  return new RaftLog(EMPTY_SNAPSHOT, entries, committed);
}

/** The terms of every entry in the log, from index 1. */
function termsOf(log: RaftLog): (number | undefined)[] {
  const out = [];
  for (let i = 1; i <= log.lastIndex(); i++) out.push(log.term(i));
  return out;
}

Deno.test("RaftLog.append() appends, and truncates a conflicting suffix first", async (t) => {
  const rows = [
    {
      name: "appends after the last index",
      base: [1, 1],
      at: 3,
      terms: [2, 2],
      want: [1, 1, 2, 2],
    },
    {
      name: "truncates from the first new index",
      base: [1, 1, 2, 2],
      at: 3,
      terms: [3],
      want: [1, 1, 3],
    },
    {
      name: "replaces a longer suffix with a longer one",
      base: [1, 2, 2],
      at: 2,
      terms: [3, 3, 3],
      want: [1, 3, 3, 3],
    },
    {
      name: "replaces everything when nothing is committed",
      base: [1, 1],
      at: 1,
      terms: [2],
      want: [2],
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const base = extend([], row.base);
      const log = logOf(base);
      const fresh = extend(base.slice(0, row.at - 1), row.terms, "x");
      const truncated = log.append(fresh);
      strictEqual(truncated, row.at <= base.length);
      deepStrictEqual(termsOf(log), row.want);
      strictEqual(log.lastIndex(), row.want.length);
      strictEqual(log.lastHash(), fresh.at(-1)!.hash);
      strictEqual(log.hash(row.at), fresh[0]!.hash);
      strictEqual(log.entry(row.want.length + 1), undefined);
    });
  }
});

Deno.test("RaftLog.append() refuses to overwrite a committed index or leave a gap", async (t) => {
  const base = extend([], [1, 1, 2, 2]);
  const rows = [
    { name: "at the commit index", at: 2, refused: true },
    { name: "below the commit index", at: 1, refused: true },
    { name: "just after the commit index is allowed", at: 3, refused: false },
    { name: "past the last index plus one (a gap)", at: 6, refused: true },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const log = logOf(base, 2);
      const entry = row.at <= base.length + 1
        ? extend(base.slice(0, row.at - 1), [3], "x")[0]!
        : { ...extend(base, [3], "x")[0]!, index: row.at };
      if (row.refused) {
        throws(() => log.append([entry]), AssertionError);
        deepStrictEqual(termsOf(log), [1, 1, 2, 2]);
        strictEqual(log.lastHash(), base[3]!.hash);
      } else {
        strictEqual(log.append([entry]), true);
        deepStrictEqual(termsOf(log), [1, 1, 3]);
      }
      strictEqual(log.committed, 2);
    });
  }
});

Deno.test("RaftLog.findConflict() returns the first new or conflicting index", async (t) => {
  const base = extend([], [1, 1, 2, 2, 3]);
  const log = logOf(base);
  const sameTermOtherHash = createEntry(4, base[2]!.hash, {
    term: 2,
    kind: "command",
    proposer: "n1",
    timeMs: 0,
    data: encoder.encode("other"),
  });
  const rows: { name: string; entries: Entry[]; want: number }[] = [
    { name: "no entries", entries: [], want: 0 },
    { name: "all present", entries: base, want: 0 },
    { name: "a present suffix", entries: base.slice(3), want: 0 },
    { name: "present, then new", entries: [...base.slice(3), ...extend(base, [3, 3])], want: 6 },
    { name: "only new", entries: extend(base, [4]), want: 6 },
    { name: "term mismatch", entries: [base[1]!, ...extend(base.slice(0, 2), [3, 3])], want: 3 },
    { name: "hash mismatch under the same term", entries: [base[2]!, sameTermOtherHash], want: 4 },
  ];
  for (const row of rows) {
    await t.step(row.name, () => strictEqual(log.findConflict(row.entries), row.want));
  }
});

Deno.test("RaftLog.findConflictByTerm() finds the last index with a term at most the given one", async (t) => {
  // The leader's log of Raft paper Figure 7.
  const log = logOf(extend([], [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]));
  const rows = [
    {
      name: "the term at the index is low enough",
      index: 10,
      term: 6,
      want: { index: 10, term: 6 },
    },
    { name: "skips whole terms above", index: 10, term: 3, want: { index: 3, term: 1 } },
    { name: "term between two present terms", index: 7, term: 4, want: { index: 5, term: 4 } },
    {
      name: "index past the end starts at the last index",
      index: 12,
      term: 6,
      want: { index: 10, term: 6 },
    },
    { name: "index within a higher term", index: 6, term: 4, want: { index: 5, term: 4 } },
    {
      name: "term below every entry gives index 0",
      index: 10,
      term: 0,
      want: { index: 0, term: 0 },
    },
  ];
  for (const row of rows) {
    await t.step(
      row.name,
      () => deepStrictEqual(log.findConflictByTerm(row.index, row.term), row.want),
    );
  }
});

Deno.test("RaftLog.isUpToDate() compares last terms, then lengths (§5.4.1)", async (t) => {
  // Last entry: index 5, term 3.
  const log = logOf(extend([], [1, 1, 2, 3, 3]));
  const rows = [
    { name: "higher last term, shorter log", lastIndex: 3, lastTerm: 4, want: true },
    { name: "higher last term, longer log", lastIndex: 9, lastTerm: 4, want: true },
    { name: "same last term, longer log", lastIndex: 6, lastTerm: 3, want: true },
    { name: "same last term, same length", lastIndex: 5, lastTerm: 3, want: true },
    { name: "same last term, shorter log", lastIndex: 4, lastTerm: 3, want: false },
    { name: "lower last term, longer log", lastIndex: 9, lastTerm: 2, want: false },
    { name: "lower last term, shorter log", lastIndex: 1, lastTerm: 1, want: false },
    { name: "empty log", lastIndex: 0, lastTerm: 0, want: false },
  ];
  for (const row of rows) {
    await t.step(
      row.name,
      () => strictEqual(log.isUpToDate(row.lastIndex, row.lastTerm), row.want),
    );
  }
  await t.step("an empty log is behind nothing", () => {
    strictEqual(logOf([]).isUpToDate(0, 0), true);
  });
});

Deno.test("RaftLog.commitTo() never lowers the commit index", async (t) => {
  const rows = [
    { name: "raises", calls: [3], want: 3 },
    { name: "ignores a lower index", calls: [3, 2], want: 3 },
    { name: "ignores zero", calls: [4, 0], want: 4 },
    { name: "repeats are no-ops", calls: [3, 3], want: 3 },
    { name: "raises up to the last index", calls: [2, 5], want: 5 },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const log = logOf(extend([], [1, 1, 1, 2, 2]));
      for (const index of row.calls) log.commitTo(index);
      strictEqual(log.committed, row.want);
    });
  }
  await t.step("refuses to commit past the last index", () => {
    const log = logOf(extend([], [1, 1]));
    throws(() => log.commitTo(3), AssertionError);
    strictEqual(log.committed, 0);
  });
  await t.step("recovered commit index is capped at the last index", () => {
    strictEqual(logOf(extend([], [1, 1]), 9).committed, 2);
  });
});

Deno.test("RaftLog.stableTo() marks only entries still in the log as durable", async (t) => {
  await t.step("recovered entries are stable", () => {
    const log = logOf(extend([], [1, 1]));
    strictEqual(log.stable, 2);
    deepStrictEqual(log.unstableEntries(), []);
  });
  await t.step("appended entries are unstable until stableTo()", () => {
    const base = extend([], [1, 1]);
    const log = logOf(base);
    const more = extend(base, [2, 2]);
    log.append(more);
    strictEqual(log.stable, 2);
    deepStrictEqual(log.unstableEntries(), more);
    log.stableTo(more);
    strictEqual(log.stable, 4);
    deepStrictEqual(log.unstableEntries(), []);
  });
  await t.step("entries truncated after ready() are not marked stable", () => {
    const base = extend([], [1, 1]);
    const log = logOf(base);
    log.append(extend(base, [2, 2]));
    const handedOut = log.unstableEntries();
    const replacement = extend(base, [3], "x");
    log.append(replacement);
    log.stableTo(handedOut);
    strictEqual(log.stable, 2);
    deepStrictEqual(log.unstableEntries(), replacement);
  });
  await t.step("only the prefix that survived a truncation becomes stable", () => {
    const base = extend([], [1]);
    const log = logOf(base);
    const handedOut = extend(base, [2, 2, 2]);
    log.append(handedOut);
    const replacement = extend(handedOut.slice(0, 2), [3], "x");
    log.append(replacement);
    log.stableTo(handedOut);
    strictEqual(log.stable, 3);
    deepStrictEqual(log.unstableEntries(), replacement);
  });
  await t.step("truncating below the stable index lowers it", () => {
    const base = extend([], [1, 1, 1]);
    const log = logOf(base);
    log.append(extend(base.slice(0, 1), [2], "x"));
    strictEqual(log.stable, 1);
    strictEqual(log.unstableEntries().length, 1);
  });
});

Deno.test("RaftLog.nextCommitted() and appliedTo() hand out each committed entry once", async (t) => {
  const entries = extend([], [1, 1, 1, 2, 2]);
  await t.step("hands out committed entries after the applied index", () => {
    const log = logOf(entries, 3);
    deepStrictEqual(log.nextCommitted(), entries.slice(0, 3));
    log.appliedTo(2);
    deepStrictEqual(log.nextCommitted(), entries.slice(2, 3));
    log.appliedTo(3);
    deepStrictEqual(log.nextCommitted(), []);
    log.commitTo(5);
    deepStrictEqual(log.nextCommitted(), entries.slice(3));
  });
  await t.step("appliedTo() never lowers the applied index", () => {
    const log = logOf(entries, 3);
    log.appliedTo(3);
    log.appliedTo(1);
    strictEqual(log.applied, 3);
  });
  await t.step("appliedTo() refuses to pass the commit index", () => {
    const log = logOf(entries, 3);
    throws(() => log.appliedTo(4), AssertionError);
    strictEqual(log.applied, 0);
  });
  await t.step("maxBytes bounds a batch, but at least one entry comes out", () => {
    const log = logOf(entries, 5);
    deepStrictEqual(log.nextCommitted(1), entries.slice(0, 1));
    const two = entries[0]!.data.length + entries[1]!.data.length + 2 * (2 + 64);
    deepStrictEqual(log.nextCommitted(two), entries.slice(0, 2));
  });
});

Deno.test("RaftLog.indexOfHash() forgets truncated entries", () => {
  const base = extend([], [1, 1, 2, 2]);
  const log = logOf(base);
  strictEqual(log.indexOfHash(base[2]!.hash), 3);
  const replacement = extend(base.slice(0, 2), [3], "x");
  log.append(replacement);
  strictEqual(log.indexOfHash(base[2]!.hash), undefined);
  strictEqual(log.indexOfHash(base[3]!.hash), undefined);
  strictEqual(log.indexOfHash(replacement[0]!.hash), 3);
  strictEqual(log.indexOfHash(base[1]!.hash), 2);
});

Deno.test("RaftLog.indexOfHash() forgets compacted entries, whether few or most of the log go", () => {
  const entries = extend([], Array(10).fill(1));
  for (const to of [2, 8]) {
    const log = logOf(entries, 10);
    log.appliedTo(10);
    log.compact(to);
    for (const e of entries) {
      strictEqual(log.indexOfHash(e.hash), e.index > to ? e.index : undefined, `${to}: ${e.index}`);
    }
  }
});

Deno.test("RaftLog.config() follows the last config entry and reverts when it is truncated", async (t) => {
  const a: Configuration = { members: [{ id: "n1", voter: true }] };
  const b: Configuration = { members: [{ id: "n1", voter: true }, { id: "n2", voter: false }] };
  const c: Configuration = { members: [{ id: "n3", voter: true }] };
  const e1 = configEntry([], 1, a);
  const e2 = extend([e1], [1])[0]!;
  const e3 = configEntry([e1, e2], 2, b);
  const e4 = extend([e1, e2, e3], [2])[0]!;

  await t.step("an empty log has the empty configuration", () => {
    deepStrictEqual(logOf([]).config(), { index: 0, config: EMPTY_CONFIG });
  });
  await t.step("the latest config entry is in force, committed or not", () => {
    const log = logOf([e1, e2, e3, e4]);
    deepStrictEqual(log.config(), { index: 3, config: b });
  });
  await t.step("truncating entries after it keeps it", () => {
    const log = logOf([e1, e2, e3, e4]);
    log.config();
    log.append(extend([e1, e2, e3], [3], "x"));
    deepStrictEqual(log.config(), { index: 3, config: b });
  });
  await t.step("truncating it reverts to the previous one", () => {
    const log = logOf([e1, e2, e3, e4]);
    log.config();
    log.append(extend([e1, e2], [3], "x"));
    deepStrictEqual(log.config(), { index: 1, config: a });
  });
  await t.step("replacing it with another config entry at the same index", () => {
    const log = logOf([e1, e2, e3, e4]);
    log.config();
    log.append([configEntry([e1, e2], 3, c)]);
    deepStrictEqual(log.config(), { index: 3, config: c });
  });
  await t.step("truncating every config entry reverts to the snapshot's", () => {
    const log = logOf([e1, e2, e3]);
    log.config();
    log.append(extend([], [2], "x"));
    deepStrictEqual(log.config(), { index: 0, config: EMPTY_CONFIG });
  });
  await t.step("a log with only a snapshot uses the snapshot's", () => {
    const log = new RaftLog({ index: 5, term: 2, hash: e4.hash, config: c }, [], 5);
    deepStrictEqual(log.config(), { index: 5, config: c });
    strictEqual(log.lastIndex(), 5);
    strictEqual(log.lastTerm(), 2);
  });
});

Deno.test("readOnlyLog() reads the log as it changes and offers no way to change it", async (t) => {
  const base = extend([], [1, 1, 2]);
  const log = logOf(base, 1);
  const view = readOnlyLog(log);

  await t.step("it answers as the log does", () => {
    deepStrictEqual(
      {
        snapshot: view.snapshot,
        committed: view.committed,
        applied: view.applied,
        stable: view.stable,
        lastIndex: view.lastIndex(),
        lastTerm: view.lastTerm(),
        lastHash: view.lastHash(),
        term: view.term(2),
        hash: view.hash(2),
        entry: view.entry(3),
        indexOfHash: view.indexOfHash(base[1]!.hash),
        config: view.config(),
      },
      {
        snapshot: EMPTY_SNAPSHOT,
        committed: 1,
        applied: 0,
        stable: 3,
        lastIndex: 3,
        lastTerm: 2,
        lastHash: base[2]!.hash,
        term: 1,
        hash: base[1]!.hash,
        entry: base[2],
        indexOfHash: 2,
        config: { index: 0, config: EMPTY_CONFIG },
      },
    );
  });
  await t.step("it follows later changes", () => {
    log.append(extend(base, [3]));
    log.commitTo(4);
    strictEqual(view.lastIndex(), 4);
    strictEqual(view.committed, 4);
    strictEqual(view.stable, 3);
  });
  await t.step("it has no mutator and cannot be changed", () => {
    for (const name of ["append", "commitTo", "stableTo", "appliedTo", "compact", "restore"]) {
      strictEqual(name in view, false, name);
    }
    strictEqual(Object.isFrozen(view), true);
    throws(() => {
      (view as unknown as { lastIndex: () => number }).lastIndex = () => 0;
    }, TypeError);
  });
});
