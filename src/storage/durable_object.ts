/**
 * Storage in a Cloudflare Durable Object: a node that runs as a Durable
 * Object (under Cloudflare Workers, or `workerd` locally) keeps its log in
 * the object's own SQLite database, through the `ctx.storage.sql` API of a
 * SQLite-backed object (`new_sqlite_classes` in the Worker's migrations).
 * It uses no other API of the runtime, so it type-checks and bundles
 * anywhere; it runs only where that storage exists.
 *
 * ## Tables
 *
 * Under a caller-chosen table prefix (default `watercraft_`):
 *
 * - `hard`: one row, the hard state (`term`, `vote`, `commit_index`), the
 *   log's last index (`last_index`) and the writer **version**, which every
 *   write moves on by one.
 * - `log`: one row per entry after the snapshot, `idx` its index. Data over
 *   {@linkcode DURABLE_OBJECT_CHUNK_BYTES} moves to rows of `log_part`,
 *   keyed `(idx, n)` with `n` from 1, so that no row nears the platform's
 *   2 MB row limit.
 * - `snap`: one row, the snapshot's metadata; its data in `snap_part` rows
 *   `n` from 0.
 *
 * ## What the Durable Object storage guarantees, and how the contract maps to it
 *
 * - **One call, one transaction.** Every `save` and `saveSnapshot` is one
 *   `transactionSync()`: hard state, entries, the removal of a replaced
 *   suffix or of covered entries, and the version all commit together or
 *   not at all. So there is no torn write to detect: a crash (the object
 *   reset or evicted mid-call, the process killed) leaves the state of the
 *   previous call, which the conformance suite's torn-write and crash
 *   cases reduce to "what resolved is there after a restart, nothing else
 *   is". Checksums would guard against a medium that tears records; SQLite
 *   and the platform's replication already do.
 * - **Durable when it resolves.** After the transaction the call awaits
 *   `storage.sync()` where the runtime has it: on Cloudflare it resolves
 *   once the write is confirmed durable (replicated); under local `workerd`
 *   once it is in the object's SQLite file. Besides, the runtime's output
 *   gate holds back every message and response the object sends until its
 *   writes are durable, so no vote or acknowledgement leaves before the
 *   write it depends on.
 * - **One writer.** The platform runs at most one instance of an object at
 *   a time, and an instance that lost that right fails its storage calls.
 *   The version is a second fence that does not depend on that promise: each
 *   write checks, inside its transaction, that the version is the one this
 *   storage last read or wrote, so if a second instance ever loads the same
 *   storage and writes, the first one's next write is refused (and the node
 *   stops) instead of interleaving two logs. Its message says "another
 *   writer changed".
 * - **Damage.** `load` throws a {@linkcode CorruptLogError} naming the table
 *   and index when a row the hard state's last index covers is missing, a
 *   chunk is missing, or the log does not hash-chain from the snapshot.
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
  type Storage,
  type StorageBackend,
  StorageGuard,
  type StorageNames,
} from "./storage.ts";

/** A value bound to or read from a SQL statement of a Durable Object. */
export type DurableObjectSqlValue = string | number | null | ArrayBuffer;

/** The part of a Durable Object's `ctx.storage.sql` this adapter uses. */
export interface DurableObjectSqlLike {
  /**
   * Runs one statement.
   *
   * @param query The statement, with `?` placeholders.
   * @param bindings The placeholders' values.
   * @returns A cursor over the rows.
   */
  exec(
    query: string,
    ...bindings: DurableObjectSqlValue[]
  ): { toArray(): Record<string, DurableObjectSqlValue>[] };
}

/**
 * The part of a Durable Object's `ctx.storage` (a SQLite-backed object) this
 * adapter uses: structurally the runtime's `DurableObjectStorage`, so that the
 * adapter needs no type package.
 */
export interface DurableObjectStorageLike {
  /** The object's SQLite database. */
  readonly sql: DurableObjectSqlLike;
  /**
   * Runs `fn` in one transaction: committed when it returns, rolled back
   * when it throws.
   *
   * @param fn The work.
   * @returns What `fn` returned.
   */
  transactionSync<T>(fn: () => T): T;
  /** Resolves when every write so far is durable (absent on older runtimes). */
  sync?(): Promise<void>;
}

/** Options of {@linkcode durableObjectStorage}. */
export interface DurableObjectStorageOptions {
  /**
   * Prefix of the adapter's table names, so that the object can keep tables
   * of its own: letters, digits and `_`, not starting with a digit nor with
   * `_cf_` (reserved by the platform). Default `watercraft_`.
   */
  readonly tablePrefix?: string;
}

/**
 * Bytes of entry or snapshot data per row: well under the platform's 2 MB
 * limit on a row (and on a bound value).
 */
export const DURABLE_OBJECT_CHUNK_BYTES = 1_000_000;

const TABLE_PREFIX = /^(?!_cf_)[A-Za-z_][A-Za-z0-9_]{0,40}$/i;

/** The SQL statements, with the table prefix applied. */
interface Statements {
  readonly schema: readonly string[];
  readonly readHard: string;
  readonly writeHard: string;
  readonly readSnap: string;
  readonly readSnapParts: string;
  readonly writeSnap: string;
  readonly insertSnapPart: string;
  readonly clearSnapParts: string;
  readonly readEntries: string;
  readonly readEntryParts: string;
  readonly readHashAt: string;
  readonly insertEntry: string;
  readonly insertEntryPart: string;
  readonly deleteFrom: readonly string[];
  readonly deleteUpTo: readonly string[];
}

function statements(p: string): Statements {
  return {
    schema: [
      `CREATE TABLE IF NOT EXISTS ${p}hard (id INTEGER PRIMARY KEY CHECK (id = 0), ` +
      `term INTEGER NOT NULL, vote TEXT, commit_index INTEGER NOT NULL, ` +
      `last_index INTEGER NOT NULL, version INTEGER NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${p}log (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, ` +
      `kind TEXT NOT NULL, proposer TEXT NOT NULL, time_ms REAL NOT NULL, hash TEXT NOT NULL, ` +
      `data BLOB NOT NULL, parts INTEGER NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${p}log_part (idx INTEGER NOT NULL, n INTEGER NOT NULL, ` +
      `data BLOB NOT NULL, PRIMARY KEY (idx, n))`,
      `CREATE TABLE IF NOT EXISTS ${p}snap (id INTEGER PRIMARY KEY CHECK (id = 0), ` +
      `idx INTEGER NOT NULL, term INTEGER NOT NULL, hash TEXT NOT NULL, config TEXT NOT NULL, ` +
      `bytes INTEGER NOT NULL, parts INTEGER NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${p}snap_part (n INTEGER PRIMARY KEY, data BLOB NOT NULL)`,
    ],
    readHard: `SELECT term, vote, commit_index, last_index, version FROM ${p}hard WHERE id = 0`,
    writeHard: `INSERT OR REPLACE INTO ${p}hard ` +
      `(id, term, vote, commit_index, last_index, version) VALUES (0, ?, ?, ?, ?, ?)`,
    readSnap: `SELECT idx, term, hash, config, bytes, parts FROM ${p}snap WHERE id = 0`,
    readSnapParts: `SELECT n, data FROM ${p}snap_part ORDER BY n`,
    writeSnap: `INSERT OR REPLACE INTO ${p}snap (id, idx, term, hash, config, bytes, parts) ` +
      `VALUES (0, ?, ?, ?, ?, ?, ?)`,
    insertSnapPart: `INSERT INTO ${p}snap_part (n, data) VALUES (?, ?)`,
    clearSnapParts: `DELETE FROM ${p}snap_part`,
    readEntries: `SELECT idx, term, kind, proposer, time_ms, hash, data, parts FROM ${p}log ` +
      `WHERE idx > ? AND idx <= ? ORDER BY idx`,
    readEntryParts: `SELECT n, data FROM ${p}log_part WHERE idx = ? ORDER BY n`,
    readHashAt: `SELECT hash FROM ${p}log WHERE idx = ?`,
    insertEntry: `INSERT OR REPLACE INTO ${p}log ` +
      `(idx, term, kind, proposer, time_ms, hash, data, parts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    insertEntryPart: `INSERT OR REPLACE INTO ${p}log_part (idx, n, data) VALUES (?, ?, ?)`,
    deleteFrom: [`DELETE FROM ${p}log WHERE idx >= ?`, `DELETE FROM ${p}log_part WHERE idx >= ?`],
    deleteUpTo: [`DELETE FROM ${p}log WHERE idx <= ?`, `DELETE FROM ${p}log_part WHERE idx <= ?`],
  };
}

/**
 * Creates a storage in a SQLite-backed Durable Object's storage (see the
 * module doc for the tables and what each guarantee rests on). One node per
 * object and table prefix.
 *
 * @param storage The object's `ctx.storage`.
 * @param options The table prefix.
 * @returns The storage.
 * @throws {TypeError} When `storage` has no SQL API (an object not backed by
 *   SQLite) or the prefix is not a plain identifier.
 *
 * @example Inside a Durable Object
 * ```ts ignore
 * import { DurableObject } from "cloudflare:workers";
 * import { durableObjectStorage } from "@watercraft/raft/durable-object";
 *
 * export class Member extends DurableObject {
 *   storage = durableObjectStorage(this.ctx.storage);
 * }
 * ```
 */
export function durableObjectStorage(
  storage: DurableObjectStorageLike,
  options: DurableObjectStorageOptions = {},
): Storage {
  if (typeof storage?.sql?.exec !== "function" || typeof storage.transactionSync !== "function") {
    throw new TypeError(
      "Cannot use a Durable Object's storage without its SQL API: declare the class in " +
        "new_sqlite_classes",
    );
  }
  const prefix = options.tablePrefix ?? "watercraft_";
  if (!TABLE_PREFIX.test(prefix)) {
    throw new TypeError(`The table prefix must be a plain SQL identifier: ${prefix}`);
  }
  return new StorageGuard(new DurableObjectBackend(storage, prefix));
}

/** A copy of `bytes` as an ArrayBuffer of its own, which is what SQL binds as a BLOB. */
function blob(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer;
}

function bytesOf(value: DurableObjectSqlValue | undefined): Uint8Array {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  // Some runtimes hand BLOBs back as views.
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice();
  }
  return new Uint8Array(0);
}

/** How the SQL database reads and writes; the {@linkcode StorageGuard} keeps the call protocol. */
class DurableObjectBackend implements StorageBackend {
  readonly names: StorageNames;
  readonly #storage: DurableObjectStorageLike;
  readonly #sql: Statements;
  readonly #prefix: string;

  /** The version this storage last read or wrote: the one-writer fence. */
  #version = 0;
  #hard: HardState = { term: 0, vote: null, commit: 0 };
  #last = 0;
  #snapIndex = 0;
  #snapHash = GENESIS_HASH;

  constructor(storage: DurableObjectStorageLike, prefix: string) {
    this.#storage = storage;
    this.#prefix = prefix;
    this.#sql = statements(prefix);
    const at = `the Durable Object tables ${prefix}*`;
    this.names = { store: at, target: `to ${at}`, busy: null };
  }

  get snapshotIndex(): number {
    return this.#snapIndex;
  }

  get lastIndex(): number {
    return this.#last;
  }

  #rows(query: string, ...bindings: DurableObjectSqlValue[]) {
    return this.#storage.sql.exec(query, ...bindings).toArray();
  }

  // ----------------------------------------------------------------- load

  open(): Promise<PersistedState> {
    try {
      return Promise.resolve(this.#storage.transactionSync(() => this.#read()));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #read(): PersistedState {
    for (const statement of this.#sql.schema) this.#rows(statement);
    const hardRow = this.#rows(this.#sql.readHard)[0];
    const hard: HardState = hardRow === undefined ? { term: 0, vote: null, commit: 0 } : {
      term: hardRow.term as number,
      vote: hardRow.vote as string | null,
      commit: hardRow.commit_index as number,
    };
    const last = (hardRow?.last_index as number | undefined) ?? 0;
    const snapshot = this.#readSnapshot();
    const snapIndex = snapshot?.meta.index ?? 0;
    const snapHash = snapshot?.meta.hash ?? GENESIS_HASH;
    const entries = last > snapIndex ? this.#readEntries(snapIndex, last) : [];
    const fault = chainFault(snapIndex, snapHash, entries);
    if (fault !== null) {
      throw new CorruptLogError(
        `${this.#prefix}log`,
        null,
        `the log does not chain from ${
          snapIndex === 0 ? "the start" : `the snapshot at index ${snapIndex}`
        }: ${fault}`,
      );
    }
    this.#version = (hardRow?.version as number | undefined) ?? 0;
    this.#hard = hard;
    this.#last = Math.max(last, snapIndex);
    this.#snapIndex = snapIndex;
    this.#snapHash = snapHash;
    return { hardState: hard, snapshot, entries };
  }

  #readSnapshot(): Snapshot | null {
    const row = this.#rows(this.#sql.readSnap)[0];
    if (row === undefined) return null;
    const bytes = row.bytes as number;
    const parts = row.parts as number;
    const data = new Uint8Array(bytes);
    let at = 0;
    let n = 0;
    for (const part of this.#rows(this.#sql.readSnapParts)) {
      const chunk = bytesOf(part.data);
      if (part.n !== n || at + chunk.length > bytes) {
        throw new CorruptLogError(`${this.#prefix}snap_part`, null, `chunk ${n} is missing`);
      }
      data.set(chunk, at);
      at += chunk.length;
      n++;
    }
    if (n !== parts || at !== bytes) {
      throw new CorruptLogError(
        `${this.#prefix}snap_part`,
        null,
        `the snapshot has ${n} chunks and ${at} bytes, not ${parts} and ${bytes}`,
      );
    }
    const config = JSON.parse(row.config as string) as Configuration;
    return {
      meta: {
        index: row.idx as number,
        term: row.term as number,
        hash: row.hash as string,
        config,
      },
      data,
    };
  }

  /** Reads entries `(after, last]`, chunks included; a hole is an error naming the index. */
  #readEntries(after: number, last: number): Entry[] {
    const entries: Entry[] = [];
    for (const row of this.#rows(this.#sql.readEntries, after, last)) {
      const index = row.idx as number;
      if (index !== after + entries.length + 1) break;
      let data = bytesOf(row.data);
      const parts = row.parts as number;
      if (parts > 0) data = this.#readParts(index, parts);
      entries.push({
        index,
        term: row.term as number,
        kind: row.kind as EntryKind,
        proposer: row.proposer as string,
        timeMs: row.time_ms as number,
        data,
        hash: row.hash as string,
      });
    }
    if (entries.length !== last - after) {
      throw new CorruptLogError(
        `${this.#prefix}log`,
        null,
        `the entry at index ${after + entries.length + 1} is missing (the log ends at ${last})`,
      );
    }
    return entries;
  }

  #readParts(index: number, parts: number): Uint8Array {
    const chunks = this.#rows(this.#sql.readEntryParts, index).map((row) => bytesOf(row.data));
    if (chunks.length !== parts) {
      throw new CorruptLogError(
        `${this.#prefix}log_part`,
        null,
        `entry ${index} has ${chunks.length} chunks, not ${parts}`,
      );
    }
    const data = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const chunk of chunks) {
      data.set(chunk, at);
      at += chunk.length;
    }
    return data;
  }

  // ---------------------------------------------------------------- write

  prepareSave(hardState: HardState | null, entries: readonly Entry[]): () => Promise<void> {
    const hard = hardState ?? this.#hard;
    return () =>
      this.#transact(() => {
        const head = entries[0];
        let last = this.#last;
        if (head !== undefined) {
          // Raft replaces only entries that were never committed (§5.3).
          if (head.index <= last) {
            for (const statement of this.#sql.deleteFrom) this.#rows(statement, head.index);
          }
          for (const entry of entries) this.#insertEntry(entry);
          last = entries.at(-1)!.index;
        }
        this.#writeHard(hard, last);
        this.#hard = hard;
        this.#last = last;
      });
  }

  prepareSnapshot(snapshot: Snapshot): () => Promise<void> {
    const { meta, data } = snapshot;
    const config = JSON.stringify(meta.config);
    return () =>
      this.#transact(() => {
        const continues = this.#hashAt(meta.index) === meta.hash;
        this.#rows(this.#sql.clearSnapParts);
        const parts = Math.ceil(data.length / DURABLE_OBJECT_CHUNK_BYTES);
        for (let n = 0; n < parts; n++) {
          const chunk = data.subarray(
            n * DURABLE_OBJECT_CHUNK_BYTES,
            (n + 1) * DURABLE_OBJECT_CHUNK_BYTES,
          );
          this.#rows(this.#sql.insertSnapPart, n, blob(chunk));
        }
        this.#rows(
          this.#sql.writeSnap,
          meta.index,
          meta.term,
          meta.hash,
          config,
          data.length,
          parts,
        );
        // Entries after the snapshot stay only when they continue its chain.
        const dropUpTo = continues ? meta.index : Math.max(meta.index, this.#last);
        for (const statement of this.#sql.deleteUpTo) this.#rows(statement, dropUpTo);
        const last = continues ? Math.max(this.#last, meta.index) : meta.index;
        this.#writeHard(this.#hard, last);
        this.#snapIndex = meta.index;
        this.#snapHash = meta.hash;
        this.#last = last;
      });
  }

  /** The caller owns the object's storage: nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Runs `write` in one transaction behind the one-writer fence, then waits
   * until it is durable. The in-memory fields change only inside a transaction
   * that commits.
   */
  async #transact(write: () => void): Promise<void> {
    this.#storage.transactionSync(() => {
      const stored = (this.#rows(this.#sql.readHard)[0]?.version as number | undefined) ?? 0;
      if (stored !== this.#version) {
        throw new Error(
          `Cannot write to the Durable Object tables ${this.#prefix}*: another writer changed ` +
            `them (version ${stored}, this storage last saw ${this.#version}); do two instances ` +
            `of this object run at once?`,
        );
      }
      const before = {
        hard: this.#hard,
        last: this.#last,
        snapIndex: this.#snapIndex,
        snapHash: this.#snapHash,
      };
      try {
        write();
      } catch (error) {
        // Rolled back: so are the fields.
        this.#hard = before.hard;
        this.#last = before.last;
        this.#snapIndex = before.snapIndex;
        this.#snapHash = before.snapHash;
        this.#version = stored;
        throw error;
      }
    });
    await this.#storage.sync?.();
  }

  #writeHard(hard: HardState, last: number): void {
    this.#version++;
    this.#rows(this.#sql.writeHard, hard.term, hard.vote, hard.commit, last, this.#version);
  }

  #insertEntry(entry: Entry): void {
    const { index, term, kind, proposer, timeMs, hash, data } = entry;
    if (data.length <= DURABLE_OBJECT_CHUNK_BYTES) {
      this.#rows(this.#sql.insertEntry, index, term, kind, proposer, timeMs, hash, blob(data), 0);
      return;
    }
    const parts = Math.ceil(data.length / DURABLE_OBJECT_CHUNK_BYTES);
    this.#rows(
      this.#sql.insertEntry,
      index,
      term,
      kind,
      proposer,
      timeMs,
      hash,
      new ArrayBuffer(0),
      parts,
    );
    for (let n = 1; n <= parts; n++) {
      const chunk = data.subarray(
        (n - 1) * DURABLE_OBJECT_CHUNK_BYTES,
        n * DURABLE_OBJECT_CHUNK_BYTES,
      );
      this.#rows(this.#sql.insertEntryPart, index, n, blob(chunk));
    }
  }

  /** Hash of the entry at `index`, or undefined when the log does not hold it. */
  #hashAt(index: number): string | undefined {
    if (index === this.#snapIndex) return this.#snapHash;
    if (index < this.#snapIndex || index > this.#last) return undefined;
    return this.#rows(this.#sql.readHashAt, index)[0]?.hash as string | undefined;
  }
}
