/**
 * Recovery of a file storage directory: reading the snapshot and replaying
 * the segments into the state `load` returns.
 *
 * Segments are replayed in order. A record that is cut short, or whose
 * checksum fails with no intact record after it and no single flipped bit to
 * explain it (see `records.ts`), at the tail of the last segment is a torn
 * write: it is reported through `onWarning` and the file is
 * truncated to the last good record (and fsynced). Any other bad record, a
 * missing segment, or a log that does not hash-chain from the snapshot is a
 * {@linkcode CorruptLogError} naming the file and byte offset: the node does
 * not start on a log with a hole.
 *
 * @module
 */

import { join } from "node:path";
import { chainFault, type Entry, entryHash, GENESIS_HASH } from "../../core/entry.ts";
import type { HardState } from "../../core/types.ts";
import { CorruptLogError, type PersistedState, type Snapshot } from "../storage.ts";
import {
  decodeLogRecord,
  decodeSnapshot,
  type LogRecord,
  MalformedError,
  scanRecords,
} from "./records.ts";
import {
  type Segment,
  segmentName,
  segmentSeqs,
  type Settings,
  SNAPSHOT_FILE,
  SNAPSHOT_TMP_FILE,
  syncDir,
  syncFile,
} from "./segments.ts";

/** What replaying a directory gives: the state to return from `load`, and where the log lies. */
export interface Replayed {
  /** Hard state, snapshot and the entries after it. */
  readonly state: PersistedState;
  /** The segments left, oldest first; the last is the active one. */
  readonly segments: Segment[];
  /**
   * The active segment's last write as read (its last record, with the
   * segment header when that record is the segment's first batch), or null
   * without a segment: the bytes a failed fsync may have left only in the
   * operating system's cache, for the storage to write again.
   */
  readonly lastWrite: { readonly position: number; readonly bytes: Uint8Array } | null;
}

/** The replayed log before the snapshot rule is applied. */
interface Replay {
  hard: HardState;
  /** A contiguous run of entries (a suffix of the log as written). */
  entries: Entry[];
}

/**
 * Replays the directory: deletes a leftover temporary snapshot, reads the
 * snapshot, replays every segment and cuts a torn tail off the last one.
 * The caller holds the lock and has no segment open.
 *
 * @param settings The directory, and where warnings and fsyncs go.
 * @returns The recovered state and the segments left.
 * @throws {CorruptLogError} When the files are damaged in a way a crash cannot explain.
 */
export async function replayDir(settings: Settings): Promise<Replayed> {
  const { dir, fs } = settings;
  const names = await fs.readdir(dir);
  if (names.includes(SNAPSHOT_TMP_FILE)) await fs.unlink(join(dir, SNAPSHOT_TMP_FILE));
  const snapshot = names.includes(SNAPSHOT_FILE) ? await readSnapshot(settings) : null;
  const snapIndex = snapshot?.meta.index ?? 0;
  const snapHash = snapshot?.meta.hash ?? GENESIS_HASH;
  const seqs = segmentSeqs(dir, names);
  const replay: Replay = { hard: { term: 0, vote: null, commit: 0 }, entries: [] };
  const segments: Segment[] = [];
  let lastWrite: Replayed["lastWrite"] = null;
  for (let i = 0; i < seqs.length; i++) {
    const replayed = await replaySegment(settings, {
      seq: seqs[i]!,
      isLast: i === seqs.length - 1,
      snapIndex,
      replay,
    });
    if (replayed !== null) {
      segments.push(replayed.segment);
      lastWrite = replayed.lastWrite;
    }
  }
  const entries = afterSnapshot(dir, replay.entries, { index: snapIndex, hash: snapHash });
  return { state: { hardState: replay.hard, snapshot, entries }, segments, lastWrite };
}

async function readSnapshot(settings: Settings): Promise<Snapshot> {
  const path = join(settings.dir, SNAPSHOT_FILE);
  const bytes = await settings.fs.readFile(path);
  const scan = scanRecords(bytes);
  const first = scan.records[0];
  // The file was fsynced before it was renamed into place: any damage is corruption.
  if (scan.fault !== null) throw new CorruptLogError(path, scan.goodEnd, scan.fault);
  if (first === undefined || scan.records.length !== 1) {
    throw new CorruptLogError(path, null, `it holds ${scan.records.length} records, not 1`);
  }
  try {
    return decodeSnapshot(bytes, first);
  } catch (error) {
    if (error instanceof MalformedError) throw new CorruptLogError(path, 0, error.message);
    throw error;
  }
}

/** One segment to replay, and the replay it adds to. */
interface SegmentReplay {
  readonly seq: number;
  /** Only the last segment may end in a torn write. */
  readonly isLast: boolean;
  readonly snapIndex: number;
  readonly replay: Replay;
}

/**
 * Replays one segment into `replay`. Returns the segment and its last write,
 * or null when it was the last one and held nothing intact (a crash as it was
 * created): its file is deleted.
 */
async function replaySegment(
  settings: Settings,
  { seq, isLast, snapIndex, replay }: SegmentReplay,
): Promise<{ segment: Segment; lastWrite: Replayed["lastWrite"] } | null> {
  const path = join(settings.dir, segmentName(seq));
  const bytes = await settings.fs.readFile(path);
  let scan = scanRecords(bytes);
  if (bytes.length === 0) {
    // Created, but the crash came before its first write reached the disk.
    scan = { ...scan, fault: "the segment is empty", torn: true };
  }
  if (scan.fault !== null && !(isLast && scan.torn)) {
    throw new CorruptLogError(path, scan.goodEnd, scan.fault);
  }
  const segment: Segment = { seq, path, bytes: scan.goodEnd, maxIndex: 0, hasBatch: false };
  for (const [i, span] of scan.records.entries()) {
    let record: LogRecord;
    try {
      record = decodeLogRecord(bytes, span);
    } catch (error) {
      if (error instanceof MalformedError) {
        throw new CorruptLogError(path, span.offset, error.message);
      }
      throw error;
    }
    const fault = applyRecord(record, i === 0, seq, snapIndex, replay, segment);
    if (fault !== null) throw new CorruptLogError(path, span.offset, fault);
  }
  pruneAtOrBelow(replay.entries, snapIndex);
  if (scan.fault !== null && await cutTornTail(settings, segment, scan.fault) === null) return null;
  // One write put the header and the first batch; every later batch is a write of its own.
  const records = scan.records;
  const position = records.length <= 2 ? 0 : records.at(-1)!.offset;
  return { segment, lastWrite: { position, bytes: bytes.subarray(position, scan.goodEnd) } };
}

/** Discards a torn tail: truncates (and fsyncs) the file, or deletes it when nothing is left. */
async function cutTornTail(
  settings: Settings,
  segment: Segment,
  fault: string,
): Promise<Segment | null> {
  settings.warn(
    `Discarding a torn write at the tail of ${segment.path} from offset ${segment.bytes}: ${fault}`,
  );
  if (segment.bytes === 0) {
    await settings.fs.unlink(segment.path);
    await syncDir(settings);
    return null;
  }
  const handle = await settings.fs.open(segment.path, "r+");
  try {
    await handle.truncate(segment.bytes);
    await syncFile(settings, { handle, path: segment.path });
  } finally {
    await handle.close();
  }
  return segment;
}

/**
 * Applies the snapshot rule to the replayed entries: keep those after the
 * snapshot when they continue its chain, drop them all when they do not (a
 * crash came between writing a snapshot that superseded them and deleting
 * their segments). Whatever is kept must chain from the snapshot.
 */
function afterSnapshot(
  dir: string,
  replayed: readonly Entry[],
  snap: { readonly index: number; readonly hash: string },
): Entry[] {
  const from = replayed.findIndex((e) => e.index > snap.index);
  let entries = from < 0 ? [] : replayed.slice(from);
  const head = entries[0];
  if (
    snap.index > 0 && head !== undefined && head.index === snap.index + 1 &&
    entryHash(snap.hash, head) !== head.hash
  ) {
    entries = [];
  }
  const fault = chainFault(snap.index, snap.hash, entries);
  if (fault !== null) {
    throw new CorruptLogError(
      dir,
      null,
      `the log does not chain from ${
        snap.index === 0 ? "the start" : `the snapshot at index ${snap.index}`
      }: ${fault}`,
    );
  }
  return entries;
}

/**
 * Applies one record to the replay. Returns a description of what is wrong
 * with it, or null.
 */
function applyRecord(
  record: LogRecord,
  first: boolean,
  seq: number,
  snapIndex: number,
  replay: Replay,
  segment: Segment,
): string | null {
  if (record.type === "segment") {
    if (!first) return "a segment header in the middle of a segment";
    if (record.seq !== seq) return `the header says segment ${record.seq}`;
    replay.hard = record.hard;
    return null;
  }
  if (first) return "the segment does not start with a segment header";
  segment.hasBatch = true;
  if (record.hard !== null) replay.hard = record.hard;
  const head = record.entries[0];
  if (head === undefined) return null;
  for (let i = 1; i < record.entries.length; i++) {
    if (record.entries[i]!.index !== head.index + i) return "the batch is not consecutive";
  }
  segment.maxIndex = Math.max(segment.maxIndex, record.entries.at(-1)!.index);
  return appendReplayed(replay.entries, record.entries, snapIndex);
}

/**
 * Appends a batch to the replayed run, truncating what it replaces. The run
 * is a suffix of the log as written (older segments may be gone), so a batch
 * that starts before the run replaces all of it, and one that starts past its
 * end is fine only below the snapshot (the entries in between were compacted)
 * or when nothing was replayed yet.
 */
function appendReplayed(run: Entry[], batch: readonly Entry[], snapIndex: number): string | null {
  const f = batch[0]!.index;
  const base = run[0]?.index;
  const last = run.at(-1)?.index;
  if (base === undefined || last === undefined || f < base) {
    run.length = 0;
  } else if (f <= last + 1) {
    run.length = f - base;
  } else if (f <= snapIndex + 1) {
    run.length = 0;
  } else {
    return `the batch starts at index ${f} but the log ends at ${last}`;
  }
  for (const e of batch) run.push(e);
  return null;
}

/** Drops replayed entries the snapshot covers, so replay memory stays near the live log. */
function pruneAtOrBelow(run: Entry[], snapIndex: number): void {
  const base = run[0]?.index;
  if (base === undefined || base > snapIndex) return;
  run.splice(0, Math.min(run.length, snapIndex - base + 1));
}
