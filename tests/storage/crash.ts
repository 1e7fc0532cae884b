/**
 * Crash tests for the file storage: torn writes at every interesting byte
 * offset, and damage the storage must refuse to start on.
 *
 * A scenario writes seeded batches and records, after each `save` resolves,
 * how far the log files reach and what the reference storage holds. The
 * files, laid end to end, form one byte stream; a crash at offset `x` leaves a
 * copy of that stream cut at `x` (the file holding byte `x` is cut, later
 * files do not exist). Loading the copy must give exactly the state of the
 * last save whose bytes end at or before `x`: nothing of a resolved save
 * lost, nothing of an unresolved one visible, and a warning whenever a torn
 * record was cut off.
 *
 * @module
 */

import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { createEntry, type Entry, GENESIS_HASH } from "../../src/core/entry.ts";
import type { HardState } from "../../src/core/types.ts";
import { RECORD_HEADER_BYTES } from "../../src/storage/file/records.ts";
import { SNAPSHOT_FILE } from "../../src/storage/file/segments.ts";
import { fileStorage } from "../../src/storage/file/storage.ts";
import { memoryStorage } from "../../src/storage/memory.ts";
import { CorruptLogError, type PersistedState } from "../../src/storage/storage.ts";
import { assertSameState } from "./conformance.ts";

/** A seeded PRNG (mulberry32): one seed decides the whole scenario. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One log file as the scenario left it. */
interface LogFile {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** Offset of its first byte in the stream of all files. */
  readonly start: number;
}

/** Where one resolved save's record lies. */
interface SaveRecord {
  readonly file: string;
  /** Offset of the record in its file. */
  readonly offset: number;
  /** Offset just past the record in its file. */
  readonly end: number;
  /** Whether the save started a new segment (its header precedes the record). */
  readonly rotated: boolean;
}

/** The outcome of a scenario. */
interface Scenario {
  readonly dir: string;
  readonly files: readonly LogFile[];
  readonly total: number;
  /** Stream offset after each resolved save (index 0: before any), with the state then. */
  readonly checkpoints: readonly { readonly end: number; readonly state: PersistedState }[];
  readonly saves: readonly SaveRecord[];
  /** Stream offsets where a cut leaves whole records only. */
  readonly boundaries: ReadonlySet<number>;
}

function segmentNames(names: Iterable<string>): string[] {
  return [...names].filter((n) => /^log-\d{16}\.wal$/.test(n)).sort();
}

async function fileSizes(dir: string): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for await (const e of Deno.readDir(dir)) {
    if (segmentNames([e.name]).length === 1) {
      sizes.set(e.name, (await Deno.stat(`${dir}/${e.name}`)).size);
    }
  }
  return sizes;
}

/** Writes `count` seeded batches (appends, truncations, hard-state-only saves), then one small final batch. */
async function runScenario(seed: number, segmentBytes: number, count: number): Promise<Scenario> {
  const random = prng(seed);
  const dir = await Deno.makeTempDir({ prefix: "watercraft_crash_" });
  const storage = fileStorage(dir, { segmentBytes, onWarning: () => {} });
  const model = memoryStorage();
  await storage.load();
  const states: PersistedState[] = [await model.load()];
  const saves: SaveRecord[] = [];
  const sizesAfter: Map<string, number>[] = [new Map()];
  let log: Entry[] = [];
  let term = 1;
  let commit = 0;
  for (let i = 0; i <= count; i++) {
    const final = i === count;
    const r = random();
    let hard: HardState | null = null;
    let batch: Entry[] = [];
    if (!final && r < 0.15 && log.length > 3) {
      term++;
      const from = log.length - 1 - Math.floor(random() * 3);
      batch = chain(log[from - 1], 1 + Math.floor(random() * 3), term, random, 300);
      log = [...log.slice(0, from), ...batch];
      hard = { term, vote: random() < 0.5 ? null : "n2", commit };
    } else if (!final && r < 0.25) {
      commit = log.length;
      hard = { term, vote: "n1", commit };
    } else {
      batch = chain(
        log.at(-1),
        final ? 1 : 1 + Math.floor(random() * 4),
        term,
        random,
        final ? 0 : 400,
      );
      log = [...log, ...batch];
      if (random() < 0.4) hard = { term, vote: "n1", commit };
    }
    const before = sizesAfter.at(-1)!;
    await storage.save(hard, batch);
    await model.save(hard, batch);
    const after = await fileSizes(dir);
    const changed = [...after].find(([name, size]) => before.get(name) !== size);
    ok(changed !== undefined, `save ${i} wrote nothing`);
    const [file, end] = changed;
    const rotated = !before.has(file);
    const offset = rotated ? headerBytes(await Deno.readFile(`${dir}/${file}`)) : before.get(file)!;
    saves.push({ file, offset, end, rotated });
    sizesAfter.push(after);
    states.push(await model.load());
  }
  await storage.close();
  const files: LogFile[] = [];
  let total = 0;
  for (const name of segmentNames(sizesAfter.at(-1)!.keys())) {
    const bytes = await Deno.readFile(`${dir}/${name}`);
    files.push({ name, bytes, start: total });
    total += bytes.length;
  }
  const startOf = (name: string) => files.find((f) => f.name === name)!.start;
  const checkpoints = states.map((state, i) => ({
    end: i === 0 ? 0 : startOf(saves[i - 1]!.file) + saves[i - 1]!.end,
    state,
  }));
  const boundaries = new Set(checkpoints.map((c) => c.end));
  for (const f of files) boundaries.add(f.start + headerBytes(f.bytes));
  return { dir, files, total, checkpoints, saves, boundaries };
}

/** Bytes of the segment header record at the start of a segment file. */
function headerBytes(file: Uint8Array): number {
  return RECORD_HEADER_BYTES + new DataView(file.buffer, file.byteOffset).getUint32(0, true);
}

function chain(
  after: Entry | undefined,
  count: number,
  term: number,
  random: () => number,
  maxBytes: number,
): Entry[] {
  const out: Entry[] = [];
  let index = after?.index ?? 0;
  let hash = after?.hash ?? GENESIS_HASH;
  for (let i = 0; i < count; i++) {
    const size = maxBytes === 0 ? 60 : Math.floor(random() * maxBytes);
    const data = Uint8Array.from({ length: size }, () => Math.floor(random() * 256));
    const entry = createEntry(++index, hash, {
      term,
      kind: "command",
      proposer: "n1",
      timeMs: index,
      data,
    });
    out.push(entry);
    hash = entry.hash;
  }
  return out;
}

/** Writes the stream cut at `cut` into a new directory: the file holding byte `cut` is cut, later ones are absent. */
async function copyCut(scenario: Scenario, cut: number): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "watercraft_cut_" });
  for (const f of scenario.files) {
    if (f.start > cut) break;
    const keep = Math.min(f.bytes.length, cut - f.start);
    await Deno.writeFile(`${dir}/${f.name}`, f.bytes.subarray(0, keep));
    if (keep < f.bytes.length) break;
  }
  return dir;
}

/** Loads a directory, returning the state and the warnings. */
async function loadDir(dir: string): Promise<{ state: PersistedState; warnings: string[] }> {
  const warnings: string[] = [];
  const storage = fileStorage(dir, { onWarning: (w) => warnings.push(w) });
  try {
    return { state: await storage.load(), warnings };
  } finally {
    await storage.close();
  }
}

function expectedAt(scenario: Scenario, cut: number): PersistedState {
  let state = scenario.checkpoints[0]!.state;
  for (const c of scenario.checkpoints) if (c.end <= cut) state = c.state;
  return state;
}

/**
 * The cut offsets: every offset inside the final save's bytes, every record
 * boundary and the bytes either side of it, and a seeded sample of the rest.
 */
function cutOffsets(scenario: Scenario, seed: number, sample: number): number[] {
  const offsets = new Set<number>();
  const finalFrom = scenario.checkpoints.at(-2)!.end;
  for (let x = finalFrom; x <= scenario.total; x++) offsets.add(x);
  const random = prng(seed ^ 0x5eed);
  // Every record boundary and its neighbours: the clean cuts and the smallest tears.
  for (const b of scenario.boundaries) {
    for (const x of [b - 1, b, b + 1]) if (x >= 0 && x <= scenario.total) offsets.add(x);
  }
  for (let i = 0; i < sample; i++) offsets.add(Math.floor(random() * (scenario.total + 1)));
  return [...offsets].sort((a, b) => a - b);
}

/** Checks one cut; returns whether it tore a record. */
async function checkCut(scenario: Scenario, cut: number): Promise<boolean> {
  const dir = await copyCut(scenario, cut);
  try {
    const context = `cut at stream offset ${cut} of ${scenario.total}`;
    const first = await loadDir(dir);
    assertSameState(first.state, expectedAt(scenario, cut), context);
    const torn = !scenario.boundaries.has(cut) || scenario.files.some((f) => f.start === cut);
    strictEqual(first.warnings.length > 0, torn, `${context}: warnings ${first.warnings}`);
    if (torn) ok(/torn write/.test(first.warnings[0]!), `${context}: ${first.warnings[0]}`);
    // The torn tail was cut off the file: a second start is clean.
    const second = await loadDir(dir);
    assertSameState(second.state, first.state, `${context}, second load`);
    deepStrictEqual(second.warnings, [], `${context}: second load warns`);
    return torn;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function withScenario(
  seed: number,
  segmentBytes: number,
  count: number,
  fn: (scenario: Scenario) => Promise<void>,
): Promise<void> {
  const scenario = await runScenario(seed, segmentBytes, count);
  try {
    await fn(scenario);
  } finally {
    await Deno.remove(scenario.dir, { recursive: true });
  }
}

/** Copies the scenario's files, applies `damage` to the copy, and returns the copy's directory. */
async function damagedCopy(
  scenario: Scenario,
  damage: (files: Map<string, Uint8Array>) => void,
): Promise<string> {
  const files = new Map(scenario.files.map((f) => [f.name, f.bytes.slice()]));
  damage(files);
  const dir = await Deno.makeTempDir({ prefix: "watercraft_damaged_" });
  for (const [name, bytes] of files) await Deno.writeFile(`${dir}/${name}`, bytes);
  return dir;
}

async function expectCorrupt(dir: string, file: string, offset: number | null): Promise<void> {
  try {
    await rejects(loadDir(dir), (error: unknown) => {
      ok(error instanceof CorruptLogError, `not a CorruptLogError: ${error}`);
      ok(error.message.includes(file), `${error.message} does not name ${file}`);
      if (offset !== null) {
        strictEqual(error.offset, offset);
        ok(error.message.includes(`offset ${offset}`), `${error.message} does not name ${offset}`);
      }
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function flip(files: Map<string, Uint8Array>, name: string, at: number): void {
  const bytes = files.get(name)!;
  bytes[at] = bytes[at]! ^ 0x5a;
}

/** A save in the middle of the log that appended to an existing segment. */
function middleSave(scenario: Scenario, segment: string): SaveRecord {
  const candidates = scenario.saves.filter((s) => s.file === segment && !s.rotated);
  const save = candidates[Math.floor(candidates.length / 2)];
  ok(save !== undefined && save !== scenario.saves.at(-1), "no save in the middle of the log");
  return save;
}

/**
 * Registers the crash tests of the file storage.
 *
 * @param name Prefix of the test names.
 */
export function runFileCrashTests(name: string): void {
  const layouts = [
    { label: "one segment", segmentBytes: 1 << 20, seed: 11 },
    { label: "2 KiB segments", segmentBytes: 2048, seed: 23 },
  ];
  for (const { label, segmentBytes, seed } of layouts) {
    Deno.test(
      `${name}: load() after a crash at any byte offset keeps exactly the resolved saves (${label})`,
      () =>
        withScenario(seed, segmentBytes, 40, async (scenario) => {
          if (segmentBytes < scenario.total) ok(scenario.files.length > 3, "too few segments");
          let torn = 0;
          const cuts = cutOffsets(scenario, seed, 200);
          for (const cut of cuts) if (await checkCut(scenario, cut)) torn++;
          ok(
            cuts.length > 300 && torn > 250 && cuts.length - torn > 5,
            `${torn} of ${cuts.length}`,
          );
        }),
    );
  }

  Deno.test(`${name}: load() rejects a damaged record in the middle of the last segment`, () =>
    withScenario(5, 1 << 20, 20, async (scenario) => {
      const file = scenario.files[0]!.name;
      const save = middleSave(scenario, file);
      const payload = await damagedCopy(scenario, (f) => flip(f, file, save.offset + 20));
      await expectCorrupt(payload, file, save.offset);
      const length = await damagedCopy(scenario, (f) => flip(f, file, save.offset + 1));
      await expectCorrupt(length, file, save.offset);
    }));

  Deno.test(`${name}: load() rejects a damaged record in an earlier segment`, () =>
    withScenario(7, 2048, 40, async (scenario) => {
      ok(scenario.files.length > 2, "too few segments");
      const file = scenario.files[0]!.name;
      const last = scenario.saves.filter((s) => s.file === file).at(-1)!;
      const dir = await damagedCopy(scenario, (f) => flip(f, file, last.end - 1));
      await expectCorrupt(dir, file, last.offset);
    }));

  Deno.test(`${name}: load() rejects a log with a missing segment`, () =>
    withScenario(7, 2048, 40, async (scenario) => {
      const missing = scenario.files[1]!.name;
      const dir = await damagedCopy(scenario, (f) => f.delete(missing));
      await expectCorrupt(dir, missing, null);
    }));

  Deno.test(`${name}: load() discards a final record whose checksum fails, with a warning`, () =>
    withScenario(9, 1 << 20, 20, async (scenario) => {
      const final = scenario.saves.at(-1)!;
      const dir = await damagedCopy(scenario, (f) => flip(f, final.file, final.end - 3));
      try {
        const { state, warnings } = await loadDir(dir);
        assertSameState(state, scenario.checkpoints.at(-2)!.state, "after the damaged tail");
        strictEqual(warnings.length, 1);
        ok(warnings[0]!.includes(final.file) && warnings[0]!.includes(`offset ${final.offset}`));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }));

  Deno.test(`${name}: load() discards zeros and garbage after the last record, with a warning`, () =>
    withScenario(13, 1 << 20, 10, async (scenario) => {
      const random = prng(99);
      const tails = [
        new Uint8Array(4096),
        Uint8Array.from({ length: 777 }, () => Math.floor(random() * 256)),
      ];
      for (const tail of tails) {
        const dir = await damagedCopy(scenario, (files) => {
          const last = scenario.files.at(-1)!.name;
          const bytes = files.get(last)!;
          const grown = new Uint8Array(bytes.length + tail.length);
          grown.set(bytes);
          grown.set(tail, bytes.length);
          files.set(last, grown);
        });
        try {
          const { state, warnings } = await loadDir(dir);
          assertSameState(state, scenario.checkpoints.at(-1)!.state, "after the garbage tail");
          strictEqual(warnings.length, 1);
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      }
    }));

  Deno.test(`${name}: load() rejects a damaged snapshot file`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "watercraft_snap_" });
    try {
      const storage = fileStorage(dir);
      await storage.load();
      const entries = chain(undefined, 5, 1, prng(1), 50);
      await storage.save({ term: 1, vote: "n1", commit: 5 }, entries);
      await storage.saveSnapshot({
        meta: { index: 3, term: 1, hash: entries[2]!.hash, config: { members: [] } },
        data: new Uint8Array(500).fill(7),
      });
      await storage.close();
      const path = `${dir}/${SNAPSHOT_FILE}`;
      const bytes = await Deno.readFile(path);
      bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 1;
      await Deno.writeFile(path, bytes);
      await expectCorrupt(dir, SNAPSHOT_FILE, 0);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
}
