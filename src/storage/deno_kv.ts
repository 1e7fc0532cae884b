/**
 * Storage in Deno KV: for nodes on Deno (a local SQLite-backed KV file, from
 * `Deno.openKv(path)`) and on Deno Deploy (the managed KV, from
 * `Deno.openKv()`). Bun and Node have no Deno KV; they use the file storage.
 *
 * ## Keys
 *
 * Under a caller-chosen `prefix` (default none):
 *
 * - `[...prefix, "hard"]`: `{ term, vote, commit, last }`, the hard state and
 *   the **marker**: the log is the entries at indexes `(snapshot, last]`;
 *   anything outside that range is leftover and ignored.
 * - `[...prefix, "log", index]`: an entry without its index, `{ term, kind,
 *   proposer, timeMs, hash, data, parts }`. Data that would take the value past
 *   KV's 64 KiB limit moves to `parts` chunks of 60,000 bytes at
 *   `[...prefix, "log", index, n]`, `n` from 1.
 * - `[...prefix, "snap"]`: the snapshot's metadata, `{ gen, index, term, hash,
 *   config, bytes, parts }`, and its data in chunks at
 *   `[...prefix, "snap", gen, n]`, `n` from 0. Each snapshot gets a new `gen`,
 *   so a new snapshot never overwrites the chunks of the one in force.
 *
 * ## What is atomic
 *
 * KV bounds one atomic operation (1000 mutations, 800 KiB, 80 KiB of keys);
 * this adapter keeps each commit well inside those bounds:
 *
 * - A `save` that fits in one commit is one atomic operation: entries, hard
 *   state and marker together.
 * - A larger `save` is several commits: first, if it replaces entries, the
 *   marker moves back to just before them (the old hard state stays); then the
 *   entries, above the marker, where load ignores them; last, the hard state
 *   and the new marker. A crash in between leaves the old hard state and the
 *   old log, cut short where the batch was to replace it, never a part of the
 *   batch. Only uncommitted entries are ever replaced, so losing them is safe.
 * - `saveSnapshot` writes the chunks first, then switches the snapshot and
 *   the marker in one commit, then deletes what the snapshot made obsolete.
 *   `saveSnapshotBeside` does the same, with saves going on while the
 *   chunks are written: they go under a new generation, which no load reads
 *   before the switch.
 *
 * Every commit also checks that the marker key still has the versionstamp
 * this storage last saw (a snapshot's chunks: the snapshot's key, which
 * saves do not move), so two nodes writing under one prefix make the
 * second writer's call fail instead of interleaving their logs.
 *
 * ## Durability
 *
 * A call resolves after its last commit resolves. On Deno Deploy a committed
 * write is replicated before the commit resolves. A local KV file is an
 * SQLite database: a committed write survives the process crashing; whether
 * it survives power loss depends on the SQLite synchronisation Deno uses.
 *
 * ## Damage
 *
 * `load` throws a {@linkcode CorruptLogError} naming the key when a key the
 * marker covers is missing or the log does not hash-chain from the snapshot.
 *
 * @module
 */

import type { Configuration } from "../core/config.ts";
import { chainFault, type Entry, type EntryKind, GENESIS_HASH } from "../core/entry.ts";
import type { HardState } from "../core/types.ts";
import {
  CorruptLogError,
  type PersistedState,
  type Snapshot,
  type SnapshotSteps,
  type Storage,
  type StorageBackend,
  StorageGuard,
  type StorageNames,
} from "./storage.ts";

/** Options of {@linkcode denoKvStorage}. */
export interface DenoKvStorageOptions {
  /** Key prefix under which this node's state lives; one node per prefix. Default `[]`. */
  readonly prefix?: Deno.KvKey;
}

/** Bytes of entry data or snapshot data per chunk: under KV's 64 KiB value limit. */
export const KV_CHUNK_BYTES = 60_000;
/** Mutations per commit (KV allows 1000). */
const COMMIT_MUTATIONS_MAX = 500;
/** Key and value bytes per commit (KV allows 800 KiB). */
const COMMIT_BYTES_MAX = 600 * 1024;
/** Key bytes per commit (KV allows 80 KiB). */
const COMMIT_KEY_BYTES_MAX = 60 * 1024;
/** Estimated bytes of an object value, all but its strings and data. */
const OBJECT_OVERHEAD_BYTES = 256;

/** The marker value: hard state plus the last index of the log. */
interface HardRecord {
  readonly term: number;
  readonly vote: string | null;
  readonly commit: number;
  readonly last: number;
}

/** An entry as stored, without its index (the key has it). */
interface EntryRecord {
  readonly term: number;
  readonly kind: EntryKind;
  readonly proposer: string;
  readonly timeMs: number;
  readonly hash: string;
  readonly data: Uint8Array;
  /** Chunks of data stored under sub-keys (0: data is inline). */
  readonly parts: number;
}

/** The snapshot's metadata, pointing at its chunks. */
interface SnapshotRecord {
  readonly gen: number;
  readonly index: number;
  readonly term: number;
  readonly hash: string;
  readonly config: Configuration;
  readonly bytes: number;
  readonly parts: number;
}

/** One set (value present) or delete, with its estimated size. */
interface Mutation {
  readonly key: Deno.KvKey;
  readonly value?: unknown;
  readonly keyBytes: number;
  readonly bytes: number;
}

function keyBytes(key: Deno.KvKey): number {
  let bytes = 1;
  for (const part of key) {
    if (typeof part === "string") bytes += 2 + 3 * part.length;
    else if (part instanceof Uint8Array) bytes += 2 + 2 * part.length;
    else bytes += 10;
  }
  return bytes;
}

function set(key: Deno.KvKey, value: unknown, valueBytes: number): Mutation {
  const k = keyBytes(key);
  return { key, value, keyBytes: k, bytes: k + valueBytes };
}

function remove(key: Deno.KvKey): Mutation {
  const k = keyBytes(key);
  return { key, keyBytes: k, bytes: k };
}

/** Splits mutations into commits that stay inside KV's per-commit bounds. */
function batches(mutations: readonly Mutation[]): Mutation[][] {
  const out: Mutation[][] = [];
  let current: Mutation[] = [];
  let bytes = 0;
  let keys = 0;
  for (const m of mutations) {
    if (
      current.length > 0 &&
      (current.length + 1 > COMMIT_MUTATIONS_MAX || bytes + m.bytes > COMMIT_BYTES_MAX ||
        keys + m.keyBytes > COMMIT_KEY_BYTES_MAX)
    ) {
      out.push(current);
      current = [];
      bytes = 0;
      keys = 0;
    }
    current.push(m);
    bytes += m.bytes;
    keys += m.keyBytes;
  }
  if (current.length > 0) out.push(current);
  return out;
}

function fits(mutations: readonly Mutation[]): boolean {
  return batches(mutations).length <= 1;
}

/** A copy when `bytes` is a view: a value must not drag its whole backing buffer along. */
function own(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes
    : bytes.slice();
}

function formatKey(key: Deno.KvKey): string {
  return `[${
    key.map((part) => typeof part === "string" ? JSON.stringify(part) : String(part))
      .join(", ")
  }]`;
}

/**
 * Creates a storage in Deno KV (see the module doc for the keys and what is
 * atomic). The caller owns `kv`: `close` leaves it open.
 *
 * @param kv An open KV store: `await Deno.openKv(path)` locally, or
 *   `await Deno.openKv()` on Deno Deploy. Needs `--unstable-kv` (or
 *   `"unstable": ["kv"]` in deno.json) outside Deploy.
 * @param options The key prefix.
 * @returns The storage.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { denoKvStorage } from "./deno_kv.ts";
 *
 * const kv = await Deno.openKv(":memory:");
 * const storage = denoKvStorage(kv, { prefix: ["node", "n1"] });
 * await storage.load();
 * await storage.save({ term: 2, vote: "n1", commit: 0 }, []);
 * strictEqual((await denoKvStorage(kv, { prefix: ["node", "n1"] }).load()).hardState.term, 2);
 * kv.close();
 * ```
 */
export function denoKvStorage(kv: Deno.Kv, options: DenoKvStorageOptions = {}): Storage {
  return new StorageGuard(new DenoKvBackend(kv, options.prefix ?? []));
}

/** How KV reads and writes; the {@linkcode StorageGuard} keeps the call protocol. */
class DenoKvBackend implements StorageBackend {
  readonly names: StorageNames;
  readonly #kv: Deno.Kv;
  readonly #prefix: Deno.KvKey;
  readonly #hardKey: Deno.KvKey;
  readonly #snapKey: Deno.KvKey;

  /** Versionstamp of the marker as this storage last wrote or read it. */
  #stamp: string | null = null;
  /** The snapshot key's versionstamp when last read or written. */
  #snapStamp: string | null = null;
  #hard: HardState = { term: 0, vote: null, commit: 0 };
  #last = 0;
  #snapIndex = 0;
  #snapHash = GENESIS_HASH;
  #snapGen = 0;

  constructor(kv: Deno.Kv, prefix: Deno.KvKey) {
    this.#kv = kv;
    this.#prefix = prefix;
    this.#hardKey = [...prefix, "hard"];
    this.#snapKey = [...prefix, "snap"];
    const at = formatKey(prefix);
    this.names = { store: `the storage at ${at}`, target: `under ${at}`, busy: null };
  }

  get snapshotIndex(): number {
    return this.#snapIndex;
  }

  get lastIndex(): number {
    return this.#last;
  }

  prepareSave(hardState: HardState | null, entries: readonly Entry[]): () => Promise<void> {
    const mutations = entries.flatMap((e) => this.#entryMutations(e));
    return () => this.#write(hardState ?? this.#hard, entries, mutations);
  }

  prepareSnapshotBeside(snapshot: Snapshot): SnapshotSteps {
    // A generation no load reads until the switch: saves may go on meanwhile.
    const gen = this.#snapGen + 1;
    return {
      write: () => this.#writeChunks(gen, snapshot.data),
      install: () => this.#switchSnapshot(gen, snapshot),
    };
  }

  /** The caller owns the KV handle: nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  // ------------------------------------------------------------- plumbing

  /**
   * Commits mutations in as many atomic operations as the bounds need, each
   * checking that the marker (or, for a snapshot's chunks, the snapshot's
   * key) still has the versionstamp this storage last saw.
   */
  async #commit(
    mutations: readonly Mutation[],
    checked: "marker" | "snapshot" = "marker",
  ): Promise<void> {
    const key = checked === "marker" ? this.#hardKey : this.#snapKey;
    for (const batch of batches(mutations)) {
      const versionstamp = checked === "marker" ? this.#stamp : this.#snapStamp;
      let op = this.#kv.atomic().check({ key, versionstamp });
      let setsMarker = false;
      let setsSnapshot = false;
      for (const m of batch) {
        op = "value" in m ? op.set(m.key, m.value) : op.delete(m.key);
        if (m.key === this.#hardKey) setsMarker = true;
        if (m.key === this.#snapKey) setsSnapshot = true;
      }
      const result = await op.commit();
      if (!result.ok) {
        throw new Error(
          `Cannot write under ${formatKey(this.#prefix)}: another writer changed ${
            formatKey(key)
          } (do two nodes share this prefix?)`,
        );
      }
      if (setsMarker) this.#stamp = result.versionstamp;
      if (setsSnapshot) this.#snapStamp = result.versionstamp;
    }
  }

  #marker(hard: HardState, last: number): Mutation {
    const value: HardRecord = { term: hard.term, vote: hard.vote, commit: hard.commit, last };
    return set(this.#hardKey, value, OBJECT_OVERHEAD_BYTES + 3 * (hard.vote?.length ?? 0));
  }

  // ----------------------------------------------------------------- load

  async open(): Promise<PersistedState> {
    const [hardEntry, snapEntry] = await this.#kv.getMany<[HardRecord, SnapshotRecord]>([
      this.#hardKey,
      this.#snapKey,
    ]);
    this.#stamp = hardEntry.versionstamp;
    this.#snapStamp = snapEntry.versionstamp;
    const record = hardEntry.value;
    const hard: HardState = record === null
      ? { term: 0, vote: null, commit: 0 }
      : { term: record.term, vote: record.vote, commit: record.commit };
    const last = record?.last ?? 0;
    const snapRecord = snapEntry.value;
    const snapshot = snapRecord === null ? null : await this.#readSnapshot(snapRecord);
    const snapIndex = snapshot?.meta.index ?? 0;
    const snapHash = snapshot?.meta.hash ?? GENESIS_HASH;
    const entries = last > snapIndex ? await this.#readEntries(snapIndex + 1, last) : [];
    const fault = chainFault(snapIndex, snapHash, entries);
    if (fault !== null) {
      throw new CorruptLogError(
        formatKey(this.#prefix),
        null,
        `the log does not chain from ${
          snapIndex === 0 ? "the start" : `the snapshot at index ${snapIndex}`
        }: ${fault}`,
      );
    }
    this.#hard = hard;
    this.#last = Math.max(last, snapIndex);
    this.#snapIndex = snapIndex;
    this.#snapHash = snapHash;
    this.#snapGen = snapRecord?.gen ?? 0;
    await this.#collectGarbage();
    return { hardState: hard, snapshot, entries };
  }

  async #readSnapshot(record: SnapshotRecord): Promise<Snapshot> {
    const data = new Uint8Array(record.bytes);
    let at = 0;
    let n = 0;
    for await (
      const chunk of this.#kv.list<Uint8Array>({ prefix: [...this.#snapKey, record.gen] })
    ) {
      // Chunks past `parts` are leftovers of an attempt that crashed; the marker never pointed at them.
      if (n === record.parts) break;
      const expected = [...this.#snapKey, record.gen, n];
      if (chunk.key.at(-1) !== n || !(chunk.value instanceof Uint8Array)) {
        throw new CorruptLogError(formatKey(expected), null, "the snapshot chunk is missing");
      }
      if (at + chunk.value.length > data.length) {
        throw new CorruptLogError(formatKey(expected), null, "the snapshot chunk is too long");
      }
      data.set(chunk.value, at);
      at += chunk.value.length;
      n++;
    }
    if (n !== record.parts || at !== record.bytes) {
      throw new CorruptLogError(
        formatKey(this.#snapKey),
        null,
        `the snapshot has ${n} chunks and ${at} bytes, not ${record.parts} and ${record.bytes}`,
      );
    }
    const { index, term, hash, config } = record;
    return { meta: { index, term, hash, config }, data };
  }

  /** Reads entries `[first, last]`, their chunks included; a gap is an error naming the key. */
  async #readEntries(first: number, last: number): Promise<Entry[]> {
    const entries: Entry[] = [];
    const headLength = this.#prefix.length + 2;
    let head: { index: number; record: EntryRecord; parts: Uint8Array[] } | null = null;
    const finish = () => {
      if (head === null) return;
      entries.push(this.#assemble(head.index, head.record, head.parts));
      head = null;
    };
    const iter = this.#kv.list<EntryRecord | Uint8Array>({
      start: [...this.#prefix, "log", first],
      end: [...this.#prefix, "log", last + 1],
    });
    for await (const item of iter) {
      const index = item.key[this.#prefix.length + 1] as number;
      if (item.key.length === headLength) {
        finish();
        const expected = first + entries.length;
        if (index !== expected) throw this.#missingEntry(expected);
        head = { index, record: item.value as EntryRecord, parts: [] };
      } else if (head !== null && head.index === index) {
        // Sub-keys past `parts` are left by a larger entry this one replaced.
        const n = item.key.at(-1) as number;
        if (n === head.parts.length + 1 && n <= head.record.parts) {
          head.parts.push(item.value as Uint8Array);
        }
      }
    }
    finish();
    if (entries.length !== last - first + 1) throw this.#missingEntry(first + entries.length);
    return entries;
  }

  /** The error for a hole in the log: the marker covers `index`, yet its key is gone. */
  #missingEntry(index: number): CorruptLogError {
    const key = formatKey([...this.#prefix, "log", index]);
    return new CorruptLogError(key, null, "the entry is missing");
  }

  #assemble(index: number, record: EntryRecord, parts: readonly Uint8Array[]): Entry {
    let data = record.data;
    if (record.parts > 0) {
      if (parts.length !== record.parts) {
        const key = [...this.#prefix, "log", index, parts.length + 1];
        throw new CorruptLogError(formatKey(key), null, "the entry chunk is missing");
      }
      data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const part of parts) {
        data.set(part, at);
        at += part.length;
      }
    }
    const { term, kind, proposer, timeMs, hash } = record;
    return { index, term, kind, proposer, timeMs, data, hash };
  }

  /**
   * Deletes what no load will read: entries outside `(snapshot, last]` (left
   * by a crash mid-save or by truncation) and chunks of older snapshots.
   */
  async #collectGarbage(): Promise<void> {
    const log = [...this.#prefix, "log"];
    const doomed: Mutation[] = [];
    const ranges: Deno.KvListSelector[] = [
      { prefix: log, end: [...log, this.#snapIndex + 1] },
      { prefix: log, start: [...log, this.#last + 1] },
    ];
    for (const selector of ranges) {
      for await (const item of this.#kv.list(selector)) doomed.push(remove(item.key));
    }
    for await (const item of this.#kv.list({ prefix: this.#snapKey })) {
      if (item.key[this.#snapKey.length] !== this.#snapGen) doomed.push(remove(item.key));
    }
    if (doomed.length > 0) await this.#commit(doomed);
  }

  // ---------------------------------------------------------------- write

  #entryMutations(entry: Entry): Mutation[] {
    const key = [...this.#prefix, "log", entry.index];
    const fixed = OBJECT_OVERHEAD_BYTES + 3 * (entry.proposer.length + entry.hash.length + 8);
    if (fixed + KV_CHUNK_BYTES > 64 * 1024) {
      throw new RangeError(`Cannot save entry ${entry.index}: its proposer id is too long`);
    }
    const { term, kind, proposer, timeMs, hash, data } = entry;
    if (data.length <= KV_CHUNK_BYTES) {
      const record: EntryRecord = { term, kind, proposer, timeMs, hash, data: own(data), parts: 0 };
      return [set(key, record, fixed + data.length)];
    }
    const parts = Math.ceil(data.length / KV_CHUNK_BYTES);
    const record: EntryRecord = {
      term,
      kind,
      proposer,
      timeMs,
      hash,
      data: new Uint8Array(0),
      parts,
    };
    const out = [set(key, record, fixed)];
    for (let n = 1; n <= parts; n++) {
      const chunk = data.slice((n - 1) * KV_CHUNK_BYTES, n * KV_CHUNK_BYTES);
      out.push(set([...key, n], chunk, chunk.length));
    }
    return out;
  }

  async #write(hard: HardState, entries: readonly Entry[], mutations: Mutation[]): Promise<void> {
    const head = entries[0];
    const last = entries.at(-1)?.index ?? this.#last;
    const marker = this.#marker(hard, last);
    if (fits([...mutations, marker])) {
      await this.#commit([...mutations, marker]);
    } else {
      // Hide the entries being replaced before overwriting them in separate commits.
      if (head !== undefined && head.index <= this.#last) {
        await this.#commit([this.#marker(this.#hard, head.index - 1)]);
        this.#last = head.index - 1;
      }
      await this.#commit(mutations);
      await this.#commit([marker]);
    }
    this.#hard = hard;
    this.#last = last;
  }

  /**
   * Writes a snapshot's chunks under generation `gen`, which nothing reads
   * before {@linkcode #switchSnapshot}. Each commit checks the snapshot's
   * key, not the marker: saves running meanwhile move the marker, and
   * another writer under this prefix would move the snapshot's key.
   */
  async #writeChunks(gen: number, data: Uint8Array): Promise<void> {
    const chunks: Mutation[] = [];
    for (let n = 0; n * KV_CHUNK_BYTES < data.length; n++) {
      const chunk = data.slice(n * KV_CHUNK_BYTES, (n + 1) * KV_CHUNK_BYTES);
      chunks.push(set([...this.#snapKey, gen, n], chunk, chunk.length));
    }
    await this.#commit(chunks, "snapshot");
  }

  /** Makes generation `gen` the snapshot in force, then deletes what it made obsolete. */
  async #switchSnapshot(gen: number, snapshot: Snapshot): Promise<void> {
    const { meta, data } = snapshot;
    const parts = Math.ceil(data.length / KV_CHUNK_BYTES);
    const continues = (await this.#hashAt(meta.index)) === meta.hash;
    const oldLast = this.#last;
    const last = continues ? this.#last : meta.index;
    const record: SnapshotRecord = {
      gen,
      index: meta.index,
      term: meta.term,
      hash: meta.hash,
      config: meta.config,
      bytes: data.length,
      parts,
    };
    const configBytes = 3 * JSON.stringify(meta.config).length;
    if (OBJECT_OVERHEAD_BYTES + configBytes > KV_CHUNK_BYTES) {
      throw new RangeError(`Cannot save a snapshot whose configuration takes ${configBytes} bytes`);
    }
    await this.#commit([
      set(this.#snapKey, record, OBJECT_OVERHEAD_BYTES + configBytes),
      this.#marker(this.#hard, last),
    ]);
    const oldGen = this.#snapGen;
    this.#snapGen = gen;
    this.#snapIndex = meta.index;
    this.#snapHash = meta.hash;
    this.#last = Math.max(last, meta.index);
    await this.#dropObsolete(oldGen, continues ? meta.index : Math.max(meta.index, oldLast));
  }

  /** Hash of the entry at `index`, or undefined when the log does not hold it. */
  async #hashAt(index: number): Promise<string | undefined> {
    if (index === this.#snapIndex) return this.#snapHash;
    if (index < this.#snapIndex || index > this.#last) return undefined;
    const entry = await this.#kv.get<EntryRecord>([...this.#prefix, "log", index]);
    return entry.value?.hash;
  }

  /** Deletes the previous snapshot's chunks and the entries at or below `upTo`. */
  async #dropObsolete(oldGen: number, upTo: number): Promise<void> {
    const log = [...this.#prefix, "log"];
    const doomed: Mutation[] = [];
    for await (const item of this.#kv.list({ prefix: log, end: [...log, upTo + 1] })) {
      doomed.push(remove(item.key));
    }
    for await (const item of this.#kv.list({ prefix: [...this.#snapKey, oldGen] })) {
      doomed.push(remove(item.key));
    }
    if (doomed.length > 0) await this.#commit(doomed);
  }
}
