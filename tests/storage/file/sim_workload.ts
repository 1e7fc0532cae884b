/**
 * One seeded life story of a file storage on the simulated disk: random
 * batches, truncations, hard states and snapshots through the real adapter
 * and its real record format, cut short by crashes at a random disk
 * operation, killed processes, failed fsyncs, a full disk and bits flipped at
 * rest; after every restart, what `load` returns is checked against what the
 * resolved calls promised.
 *
 * The rule checked (the storage contract and issue 13): a load returns the
 * state of the calls that resolved, plus at most the one call in flight when
 * the process stopped (whole, never in part), or, only when a bit was flipped
 * at rest, throws a {@linkcode CorruptLogError} naming the file. It never
 * returns anything else: no lost acknowledged write, no wrong byte.
 *
 * @module
 */

import { createEntry, type Entry, GENESIS_HASH } from "../../../src/core/entry.ts";
import { type Prng, seededPrng } from "../../../src/core/mod.ts";
import type { HardState } from "../../../src/core/types.ts";
import { fileStorage } from "../../../src/storage/file/storage.ts";
import { memoryStorage } from "../../../src/storage/memory.ts";
import {
  CorruptLogError,
  type PersistedState,
  type Snapshot,
  type Storage,
} from "../../../src/storage/storage.ts";
import { type FlippedBit, SimDisk } from "../../sim/disk.ts";
import { assertSameState } from "../conformance.ts";

/** The storage's directory on the simulated disk. */
export const SIM_DIR = "/var/lib/watercraft/n1";

/** Lives (starts of a storage) per seed. */
const LIVES_MAX = 6;
/** Calls per life before a clean stop. */
const CALLS_PER_LIFE_MAX = 30;

/** What a seed did, summed over seeds for the test's report. */
export interface SeedCounts {
  /** Calls that resolved. */
  resolved: number;
  /** Machine crashes (power loss) at a random disk operation or between calls. */
  crashes: number;
  /** Process kills, the machine running on. */
  kills: number;
  /** Clean closes. */
  closes: number;
  /** Loads that found the call in flight at the stop, whole. */
  inFlightKept: number;
  /** Loads that reported a torn write and cut it off. */
  tornCut: number;
  /** Calls rejected by a failed fsync. */
  syncFailures: number;
  /** Calls rejected by a full disk. */
  diskFull: number;
  /** Loads that failed on a failed fsync (the node would not start; the next start did). */
  loadFailures: number;
  /** Bits flipped at rest. */
  flips: number;
  /** Flips that load detected (CorruptLogError; the node refuses to start). */
  flipsDetected: number;
  /** Flips after which load returned a correct state (the bit was in data no call acknowledged). */
  flipsHarmless: number;
}

/** Counts of no seed. */
export function zeroCounts(): SeedCounts {
  return {
    resolved: 0,
    crashes: 0,
    kills: 0,
    closes: 0,
    inFlightKept: 0,
    tornCut: 0,
    syncFailures: 0,
    diskFull: 0,
    loadFailures: 0,
    flips: 0,
    flipsDetected: 0,
    flipsHarmless: 0,
  };
}

/** One storage call. */
type Call =
  | { readonly kind: "save"; readonly hard: HardState | null; readonly entries: readonly Entry[] }
  | { readonly kind: "snapshot"; readonly snapshot: Snapshot };

function int(prng: Prng, n: number): number {
  return Math.floor(prng.next() * n);
}

function randomBytes(prng: Prng, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => int(prng, 256));
}

/** The state after `call`, computed on the in-memory reference storage. */
async function after(state: PersistedState, call: Call): Promise<PersistedState> {
  const model = memoryStorage();
  if (state.snapshot !== null) await model.saveSnapshot(state.snapshot);
  await model.save(state.hardState, state.entries);
  if (call.kind === "save") await model.save(call.hard, call.entries);
  else await model.saveSnapshot(call.snapshot);
  return await model.load();
}

function chain(prev: { index: number; hash: string }, count: number, term: number, prng: Prng) {
  const out: Entry[] = [];
  let { index, hash } = prev;
  for (let i = 0; i < count; i++) {
    const entry = createEntry(++index, hash, {
      term,
      kind: "command",
      proposer: "n1",
      timeMs: index,
      data: randomBytes(prng, int(prng, 4) === 0 ? 0 : int(prng, 300)),
    });
    out.push(entry);
    hash = entry.hash;
  }
  return out;
}

/** A random call that the storage must accept on `state`. */
function nextCall(state: PersistedState, prng: Prng): Call {
  const snapIndex = state.snapshot?.meta.index ?? 0;
  const snapHash = state.snapshot?.meta.hash ?? GENESIS_HASH;
  const entries = state.entries;
  const lastIndex = snapIndex + entries.length;
  const at = (index: number) =>
    index === snapIndex
      ? { index, hash: snapHash, term: state.snapshot?.meta.term ?? 0 }
      : entries[index - snapIndex - 1]!;
  const term = Math.max(state.hardState.term, entries.at(-1)?.term ?? 0, 1);
  const hard = (t: number): HardState => ({
    term: t,
    vote: [null, "n1", "n2"][int(prng, 3)]!,
    commit: int(prng, lastIndex + 1),
  });
  const r = prng.next();
  if (r < 0.12 && entries.length > 0) {
    // A new leader's conflicting suffix.
    const from = snapIndex + 1 + int(prng, entries.length);
    return {
      kind: "save",
      hard: hard(term + 1),
      entries: chain(at(from - 1), 1 + int(prng, 3), term + 1, prng),
    };
  }
  if (r < 0.25) return { kind: "save", hard: hard(term + int(prng, 2)), entries: [] };
  if (r < 0.33 && snapIndex + entries.length > 0) {
    // Not at index 0, where the memory and file adapters differ (no node saves one).
    const index = Math.max(1, snapIndex + int(prng, entries.length + 1));
    const point = at(index);
    return {
      kind: "snapshot",
      snapshot: {
        meta: {
          index,
          term: "term" in point ? point.term : term,
          hash: point.hash,
          config: { members: [] },
        },
        data: randomBytes(prng, int(prng, 1500)),
      },
    };
  }
  if (r < 0.36) {
    // A leader's snapshot past the log: every entry goes.
    const index = lastIndex + 1 + int(prng, 5);
    const hash = [...randomBytes(prng, 32)].map((b) => b.toString(16).padStart(2, "0")).join("");
    return {
      kind: "snapshot",
      snapshot: {
        meta: { index, term, hash, config: { members: [] } },
        data: randomBytes(prng, 100),
      },
    };
  }
  const batch = chain(at(lastIndex), 1 + int(prng, 4), term, prng);
  return { kind: "save", hard: prng.next() < 0.4 ? hard(term) : null, entries: batch };
}

function sameState(a: PersistedState, b: PersistedState): boolean {
  try {
    assertSameState(a, b, "");
    return true;
  } catch {
    return false;
  }
}

function describe(state: PersistedState): string {
  const snap = state.snapshot?.meta.index ?? 0;
  const hard = state.hardState;
  return `hard ${hard.term}/${hard.vote}/${hard.commit}, snapshot ${snap}, entries ${snap + 1}..${
    snap + state.entries.length
  } (last hash ${state.entries.at(-1)?.hash.slice(0, 8) ?? "-"})`;
}

function errorCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

/** Settings of {@linkcode runSeed}, drawn from the seed unless given. */
export interface SeedSettings {
  readonly segmentBytes?: number;
  readonly syncFailureRate?: number;
  readonly capacityBytes?: number;
  readonly flipRate?: number;
  /** Segments opened for synchronized writes (`O_DSYNC`, as on Node and Bun). Default false. */
  readonly synchronizedWrites?: boolean;
  /** Told what happens, to debug a failing seed. */
  readonly trace?: (line: string) => void;
}

/**
 * Runs one seed's story; throws (naming the seed) when a load returns a
 * state that the resolved calls do not explain.
 *
 * @param seed Decides everything.
 * @param counts Added to.
 * @param settings Overrides of what the seed would draw.
 */
export async function runSeed(
  seed: number,
  counts: SeedCounts,
  settings: SeedSettings = {},
): Promise<void> {
  const prng = seededPrng(seed ^ 0x51d15c);
  const disk = new SimDisk({
    seed,
    syncFailureRate: settings.syncFailureRate ?? (prng.next() < 0.3 ? 0.04 : 0),
    capacityBytes: settings.capacityBytes ??
      (prng.next() < 0.2 ? 3000 + int(prng, 20_000) : Infinity),
    synchronizedWrites: settings.synchronizedWrites ?? false,
  });
  const segmentBytes = settings.segmentBytes ?? [300, 1024, 4096, 1 << 20][int(prng, 4)]!;
  const flipRate = settings.flipRate ?? 0.2;
  const empty: PersistedState = {
    hardState: { term: 0, vote: null, commit: 0 },
    snapshot: null,
    entries: [],
  };
  const trace = settings.trace ?? (() => {});
  trace(
    `segmentBytes ${segmentBytes}, capacity ${disk.capacityBytes}, sync failures ${disk.syncFailureRate}`,
  );
  let acked = empty;
  let candidates = [empty];
  const fail = (message: string): never => {
    throw new Error(`seed ${seed}: ${message}`);
  };
  /** The bit flipped since the last load that succeeded (a failed load leaves it on the disk). */
  let flipped: FlippedBit | null = null;
  for (let life = 0; life < LIVES_MAX; life++) {
    if (life > 0 && flipped === null && prng.next() < flipRate) {
      flipped = disk.flipBit();
      if (flipped !== null) counts.flips++;
      trace(`flipped ${JSON.stringify(flipped)}`);
    }
    const warnings: string[] = [];
    let storage: Storage = fileStorage(SIM_DIR, {
      fs: disk,
      segmentBytes,
      onWarning: (w) => warnings.push(w),
    });
    let loaded: PersistedState;
    try {
      loaded = await storage.load();
    } catch (error) {
      if (error instanceof CorruptLogError) {
        if (flipped === null) fail(`load found corruption with no bit flipped: ${error.message}`);
        if (!error.message.includes(SIM_DIR)) fail(`the error names no file: ${error.message}`);
        counts.flipsDetected++;
        return;
      }
      if (errorCode(error) !== "EIO") throw error;
      // The start failed on a failed fsync: the node does not start; try again.
      counts.loadFailures++;
      if (prng.next() < 0.5) disk.crash();
      else disk.killProcess();
      continue;
    }
    trace(
      `life ${life}: loaded ${describe(loaded)}; warnings ${warnings.join("; ")}; files ${
        [...disk.durableFiles().keys()].join(" ")
      }`,
    );
    const match = candidates.findIndex((c) => sameState(loaded, c));
    if (match < 0) {
      fail(
        `life ${life} loaded ${describe(loaded)}; expected ${
          candidates.map(describe).join(" or ")
        }${
          flipped === null
            ? ""
            : ` (bit ${flipped.bit} of ${flipped.path} at ${flipped.offset} flipped)`
        }`,
      );
    }
    if (match === 1) counts.inFlightKept++;
    if (flipped !== null) counts.flipsHarmless++;
    flipped = null;
    if (warnings.some((w) => w.includes("torn write"))) counts.tornCut++;
    acked = loaded;
    candidates = [acked];
    const killAt = prng.next() < 0.3;
    const crashed = prng.next() < 0.7
      ? disk.crashAfter(1 + int(prng, 150), { process: killAt })
      : null;
    let stopped = false;
    const calls = 1 + int(prng, CALLS_PER_LIFE_MAX);
    for (let i = 0; i < calls && !stopped; i++) {
      const call = nextCall(acked, prng);
      const write = call.kind === "save"
        ? storage.save(call.hard, call.entries)
        : storage.saveSnapshot(call.snapshot);
      trace(
        call.kind === "save"
          ? `save ${call.hard?.term ?? "-"} ${call.entries[0]?.index ?? "-"}..${
            call.entries.at(-1)?.index ?? "-"
          }`
          : `snapshot at ${call.snapshot.meta.index}`,
      );
      const outcome = await Promise.race([
        write.then(() => "resolved" as const, (error: unknown) => ({ error })),
        ...(crashed === null ? [] : [crashed.then(() => "crashed" as const)]),
      ]);
      if (outcome === "resolved") {
        counts.resolved++;
        acked = await after(acked, call);
        candidates = [acked];
        continue;
      }
      stopped = true;
      trace(`  ${outcome === "crashed" ? "crashed" : String(outcome.error)}`);
      candidates = [acked, await after(acked, call)];
      if (outcome === "crashed") {
        if (killAt) counts.kills++;
        else counts.crashes++;
        break;
      }
      const code = errorCode(outcome.error);
      if (code === "EIO") counts.syncFailures++;
      else if (code === "ENOSPC") counts.diskFull++;
      else throw outcome.error;
      // Fail-stop: after a failed write the storage refuses every write.
      const refused = await storage.save(acked.hardState, []).then(() => null, (e: Error) => e);
      if (refused === null || !/after an earlier write failed/.test(refused.message)) {
        fail(`a write after a failed one was not refused: ${refused}`);
      }
      if (code === "ENOSPC" && prng.next() < 0.5) disk.capacityBytes += 20_000;
      disk.cancelCrash();
      if (prng.next() < 0.5) {
        counts.crashes++;
        disk.crash();
      } else {
        counts.kills++;
        disk.killProcess();
      }
    }
    if (stopped) continue;
    disk.cancelCrash();
    const stop = int(prng, 3);
    trace(`stop ${["close", "kill", "crash"][stop]}`);
    if (stop === 0) {
      counts.closes++;
      await storage.close();
    } else if (stop === 1) {
      counts.kills++;
      disk.killProcess();
    } else {
      counts.crashes++;
      disk.crash();
    }
    storage = null as unknown as Storage;
  }
}
