/**
 * The payload of a messages frame (kind 1, `frames.ts` holds the envelope
 * and the count): how each Raft message is written and read. The
 * primitives are those of `src/binary/`; `sstr` is a short string (a u8
 * length), `str` a u32-length string, `str?` one that may be null.
 *
 * Each message: u8 type, `sstr` from, `sstr` to, u53 term, then by type:
 *
 * - 1 vote: bool preVote, bool transfer, u53 lastIndex, u53 lastTerm
 * - 2 voteResponse: bool preVote, bool granted
 * - 3 append: u53 prevIndex, u53 prevTerm, hash prevHash, u53 commit, u32
 *   entry count, then per entry: u53 index (at least 1), u53 term, u8 kind
 *   (0 command, 1 noop, 2 config), f64 timeMs (finite, at least 0), hash,
 *   `sstr` proposer (a node id, or empty for the bootstrap entry), `bytes` data
 * - 4 appendResponse: bool success, u53 index, u53 hintIndex, u53 hintTerm
 * - 5 snapshot: u53 meta.index, u53 meta.term, hash meta.hash, u32 member
 *   count (at most 4096), then per member: `sstr` id, bool voter, u8 readOnly
 *   (0 absent, 1 false, 2 true), `str?` url (at most 2048 characters);
 *   then u53 offset, u53 total, `bytes` data
 * - 6 snapshotResponse: u53 index, u53 received
 * - 7 heartbeat: u53 commit, `str?` context (at most 1024 characters), u32
 *   seen count (at most 4096), then per member: `sstr` id, u53 ticks
 * - 8 heartbeatResponse: `str?` context (at most 1024 characters), u53 configIndex
 * - 9 timeoutNow: nothing more
 * - 10 readIndex: `str` context (at most 1024 characters)
 * - 11 readIndexResponse: `str` context (at most 1024 characters), u53 index
 * - 12 transferLeader: `sstr` target
 *
 * Every id matches `NODE_ID_PATTERN`. The bounds are those the JSON codec
 * enforced before these frames replaced it. Its string bounds count UTF-16
 * code units; here the UTF-8 length is first held to 3 bytes per unit (the
 * most one unit takes), before anything is decoded, then the decoded length
 * is checked.
 *
 * @module
 */

import {
  type ByteReader,
  type ByteWriter,
  ENTRY_KIND_CODES,
  MalformedError,
  readEntryKind,
} from "../../binary/mod.ts";
import { type Member, NODE_ID_PATTERN, NODE_ID_RULE } from "../../core/config.ts";
import type { Entry } from "../../core/entry.ts";
import { type Message, type MessageType, TERM_WIRE_MAX } from "../../core/messages.ts";
import {
  boundedText,
  NODE_ID_BYTES_MAX,
  readCount,
  readId,
  readList,
  within,
} from "./frame_fields.ts";

const TYPE_CODES: Readonly<Record<MessageType, number>> = {
  vote: 1,
  voteResponse: 2,
  append: 3,
  appendResponse: 4,
  snapshot: 5,
  snapshotResponse: 6,
  heartbeat: 7,
  heartbeatResponse: 8,
  timeoutNow: 9,
  readIndex: 10,
  readIndexResponse: 11,
  transferLeader: 12,
};
const TYPE_COUNT = 12;

const MEMBERS_MAX = 4096;
const READ_CONTEXT_CHARS_MAX = 1024;
const URL_CHARS_MAX = 2048;
const U32_MAX = 0xffff_ffff;

/** The fewest bytes a message takes (type, two one-character ids, term). */
export const MESSAGE_BYTES_MIN = 1 + 2 + 2 + 8;
// The fewest bytes each repeated item can take, to refuse a count the rest
// of the frame cannot hold before looping over it.
const ENTRY_BYTES_MIN = 8 + 8 + 1 + 8 + 32 + 1 + 4;
const MEMBER_BYTES_MIN = 2 + 1 + 1 + 4;
const SEEN_BYTES_MIN = 2 + 8;

// ------------------------------------------------------------------ writing

/**
 * A size to start the writer at: close above most batches, so it rarely grows.
 *
 * @param messages The messages to write.
 * @returns Bytes to allocate for their payload, the count included.
 */
export function estimateMessagesBytes(messages: readonly Message[]): number {
  let n = 4;
  for (const m of messages) {
    n += 160;
    if (m.type === "append") {
      n += m.entries.length * 130;
      for (const e of m.entries) n += e.data.length;
    } else if (m.type === "snapshot") {
      n += m.data.length + m.meta.config.members.length * 80;
    } else if (m.type === "heartbeat") {
      for (const _ in m.seen) n += 80;
    }
  }
  return n;
}

/**
 * Writes one message as the module doc lays it out.
 *
 * @param w The writer.
 * @param m The message.
 * @throws {TypeError} When a number is not what its field holds or a hash
 *   is not 64 lowercase hex digits.
 * @throws {RangeError} When a string is too long for its length prefix.
 */
export function writeMessage(w: ByteWriter, m: Message): void {
  w.u8(TYPE_CODES[m.type]);
  w.shortString(m.from);
  w.shortString(m.to);
  w.u53(m.term, "term");
  switch (m.type) {
    case "vote":
      w.bool(m.preVote);
      w.bool(m.transfer);
      w.u53(m.lastIndex, "lastIndex");
      w.u53(m.lastTerm, "lastTerm");
      return;
    case "voteResponse":
      w.bool(m.preVote);
      w.bool(m.granted);
      return;
    case "append":
      w.u53(m.prevIndex, "prevIndex");
      w.u53(m.prevTerm, "prevTerm");
      w.hash(m.prevHash, "prevHash");
      w.u53(m.commit, "commit");
      w.u32(m.entries.length);
      for (const e of m.entries) writeEntry(w, e);
      return;
    case "appendResponse":
      w.bool(m.success);
      w.u53(m.index, "index");
      w.u53(m.hintIndex, "hintIndex");
      w.u53(m.hintTerm, "hintTerm");
      return;
    case "snapshot": {
      const { meta } = m;
      w.u53(meta.index, "meta.index");
      w.u53(meta.term, "meta.term");
      w.hash(meta.hash, "meta.hash");
      w.u32(meta.config.members.length);
      for (const member of meta.config.members) writeMember(w, member);
      w.u53(m.offset, "offset");
      w.u53(m.total, "total");
      w.bytes(m.data);
      return;
    }
    case "snapshotResponse":
      w.u53(m.index, "index");
      w.u53(m.received, "received");
      return;
    case "heartbeat": {
      w.u53(m.commit, "commit");
      w.nullableString(m.context);
      const ids = Object.keys(m.seen);
      w.u32(ids.length);
      for (const id of ids) {
        w.shortString(id);
        w.u53(m.seen[id]!, "seen");
      }
      return;
    }
    case "heartbeatResponse":
      w.nullableString(m.context);
      w.u53(m.configIndex, "configIndex");
      return;
    case "timeoutNow":
      return;
    case "readIndex":
      w.string(m.context);
      return;
    case "readIndexResponse":
      w.string(m.context);
      w.u53(m.index, "index");
      return;
    case "transferLeader":
      w.shortString(m.target);
      return;
    default: {
      const unknown: never = m;
      throw new TypeError(`Cannot encode message type ${(unknown as Message).type}`);
    }
  }
}

function writeEntry(w: ByteWriter, e: Entry): void {
  w.u53(e.index, "entry index");
  w.u53(e.term, "entry term");
  w.u8(ENTRY_KIND_CODES[e.kind]);
  w.f64(e.timeMs);
  w.hash(e.hash, "entry hash");
  w.shortString(e.proposer);
  w.bytes(e.data);
}

function writeMember(w: ByteWriter, m: Member): void {
  w.shortString(m.id);
  w.bool(m.voter);
  w.u8(m.readOnly === undefined ? 0 : m.readOnly ? 2 : 1);
  w.nullableString(m.url ?? null);
}

// ------------------------------------------------------------------ reading

/**
 * Reads one message, checking every field's bounds.
 *
 * @param r The reader, at the message.
 * @returns The message, a fresh object; entry and snapshot data are copies.
 * @throws {MalformedError} For anything malformed, naming the field's path
 *   within the message (e.g. `entries.0.kind`).
 */
export function readMessage(r: ByteReader): Message {
  const at = r.offset;
  const code = r.u8("type");
  if (code < 1 || code > TYPE_COUNT) {
    throw new MalformedError("type", at, `${code} is not a known message type`);
  }
  const from = readId(r, "from");
  const to = readId(r, "to");
  const termAt = r.offset;
  const term = r.u53("term");
  if (term > TERM_WIRE_MAX) {
    throw new MalformedError("term", termAt, `${term} is over ${TERM_WIRE_MAX}`);
  }
  // Object literals evaluate their values in order: each read follows the layout.
  switch (code) {
    case 1:
      return {
        type: "vote",
        from,
        to,
        term,
        preVote: r.bool("preVote"),
        transfer: r.bool("transfer"),
        lastIndex: r.u53("lastIndex"),
        lastTerm: r.u53("lastTerm"),
      };
    case 2:
      return {
        type: "voteResponse",
        from,
        to,
        term,
        preVote: r.bool("preVote"),
        granted: r.bool("granted"),
      };
    case 3:
      return {
        type: "append",
        from,
        to,
        term,
        prevIndex: r.u53("prevIndex"),
        prevTerm: r.u53("prevTerm"),
        prevHash: r.hash("prevHash"),
        commit: r.u53("commit"),
        entries: readEntries(r),
      };
    case 4:
      return {
        type: "appendResponse",
        from,
        to,
        term,
        success: r.bool("success"),
        index: r.u53("index"),
        hintIndex: r.u53("hintIndex"),
        hintTerm: r.u53("hintTerm"),
      };
    case 5:
      return {
        type: "snapshot",
        from,
        to,
        term,
        meta: {
          index: r.u53("meta.index"),
          term: r.u53("meta.term"),
          hash: r.hash("meta.hash"),
          config: { members: readMembers(r) },
        },
        offset: r.u53("offset"),
        total: r.u53("total"),
        data: r.bytes("data"),
      };
    case 6:
      return {
        type: "snapshotResponse",
        from,
        to,
        term,
        index: r.u53("index"),
        received: r.u53("received"),
      };
    case 7:
      return {
        type: "heartbeat",
        from,
        to,
        term,
        commit: r.u53("commit"),
        context: readNullableContext(r),
        seen: readSeen(r),
      };
    case 8:
      return {
        type: "heartbeatResponse",
        from,
        to,
        term,
        context: readNullableContext(r),
        configIndex: r.u53("configIndex"),
      };
    case 9:
      return { type: "timeoutNow", from, to, term };
    case 10:
      return { type: "readIndex", from, to, term, context: readContext(r) };
    case 11:
      return {
        type: "readIndexResponse",
        from,
        to,
        term,
        context: readContext(r),
        index: r.u53("index"),
      };
    default:
      return { type: "transferLeader", from, to, term, target: readId(r, "target") };
  }
}

function readContext(r: ByteReader): string {
  const at = r.offset;
  const context = r.string("context", 3 * READ_CONTEXT_CHARS_MAX);
  boundedText(context, "context", at, READ_CONTEXT_CHARS_MAX);
  return context;
}

function readNullableContext(r: ByteReader): string | null {
  const at = r.offset;
  const context = r.nullableString("context", 3 * READ_CONTEXT_CHARS_MAX);
  boundedText(context, "context", at, READ_CONTEXT_CHARS_MAX);
  return context;
}

function readEntries(r: ByteReader): Entry[] {
  return readList(r, "entries", U32_MAX, ENTRY_BYTES_MIN, readEntry);
}

function readEntry(r: ByteReader): Entry {
  const indexAt = r.offset;
  const index = r.u53("index");
  if (index < 1) throw new MalformedError("index", indexAt, "must be at least 1");
  const term = r.u53("term");
  const kind = readEntryKind(r);
  const timeAt = r.offset;
  const timeMs = r.f64("timeMs");
  if (!(timeMs >= 0 && timeMs < Infinity)) {
    throw new MalformedError("timeMs", timeAt, `${timeMs} is not a finite number at least 0`);
  }
  const hash = r.hash("hash");
  const proposerAt = r.offset;
  const proposer = r.shortString("proposer", NODE_ID_BYTES_MAX);
  // The bootstrap entry has no proposer.
  if (proposer !== "" && !NODE_ID_PATTERN.test(proposer)) {
    throw new MalformedError("proposer", proposerAt, `must be empty or match ${NODE_ID_RULE}`);
  }
  const data = r.bytes("data");
  return { index, term, kind, proposer, timeMs, data, hash };
}

function readMembers(r: ByteReader): Member[] {
  return readList(r, "meta.config.members", MEMBERS_MAX, MEMBER_BYTES_MIN, readMember);
}

function readMember(r: ByteReader): Member {
  const id = readId(r, "id");
  const voter = r.bool("voter");
  const readOnlyAt = r.offset;
  const readOnly = r.u8("readOnly");
  if (readOnly > 2) {
    throw new MalformedError("readOnly", readOnlyAt, `${readOnly} is not 0 (absent), 1 or 2`);
  }
  const urlAt = r.offset;
  const url = r.nullableString("url", 3 * URL_CHARS_MAX);
  boundedText(url, "url", urlAt, URL_CHARS_MAX);
  return {
    id,
    voter,
    ...(readOnly === 0 ? {} : { readOnly: readOnly === 2 }),
    ...(url === null ? {} : { url }),
  };
}

function readSeen(r: ByteReader): Record<string, number> {
  const count = readCount(r, "seen", MEMBERS_MAX, SEEN_BYTES_MIN);
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const at = r.offset;
    let id: string;
    let ticks: number;
    try {
      id = readId(r, "id");
      ticks = r.u53("ticks");
    } catch (error) {
      throw within(error, `seen.${i}`);
    }
    if (Object.hasOwn(seen, id)) throw new MalformedError(`seen.${i}.id`, at, "is a duplicate");
    // "__proto__" is a valid id: define it, as assigning it would set the prototype.
    if (id === "__proto__") {
      Object.defineProperty(seen, id, {
        value: ticks,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else {
      seen[id] = ticks;
    }
  }
  return seen;
}
