/**
 * Raft messages for fuzzing, drawn by fast-check: well-formed shapes (every
 * field of the right type, every number a non-negative safe integer, so
 * every message also encodes as a peer frame) with extreme and near-miss
 * values. Numbers are drawn as {@linkcode NumSpec}s, either absolute (0, 1,
 * `TERM_MAX`, just past `TERM_WIRE_MAX`, `Number.MAX_SAFE_INTEGER`, ...) or
 * relative to what the recipient holds when the message is injected (its
 * last index plus one, its term minus one, ...): random values alone would
 * almost never hit the boundaries where bugs live, such as a commit index
 * one past the log.
 *
 * The module also mutates messages a real node sent (a field set to an
 * extreme value, entries duplicated or reordered, another sender) and says
 * which messages are forgeries that Raft trusts by design
 * ({@linkcode trustedForgery}): a fake vote or a fake commit index from a
 * member breaks any Raft implementation; only the cluster secret keeps them
 * out.
 *
 * @module
 */

import fc from "fast-check";
import {
  createEntry,
  type Entry,
  type EntryKind,
  GENESIS_HASH,
  type LogView,
  type Member,
  type Message,
  type MessageType,
  TERM_MAX,
  TERM_STEP_MAX,
  TERM_WIRE_MAX,
} from "../../src/core/mod.ts";
import { EMPTY_SNAPSHOT, RaftLog, readOnlyLog } from "../../src/core/log.ts";

const MAX = Number.MAX_SAFE_INTEGER;

/** The members of the fuzzed clusters. */
export const MEMBERS: readonly string[] = ["n1", "n2", "n3"];

/**
 * Ids of no member: valid ones (some of them names that objects and maps
 * treat specially), and the empty string, which no decoder lets through
 * but which a buggy transport could hand over.
 */
const OUTSIDERS: readonly string[] = [
  "n4",
  "evil",
  "__proto__",
  "constructor",
  "N1",
  "n1.",
  "x".repeat(64),
  "",
];

/** Values at and just past every bound the core and the wire know of. */
const EXTREMES: readonly number[] = [
  0,
  1,
  2,
  2 ** 31 - 1,
  2 ** 32 - 1,
  2 ** 32,
  TERM_MAX - 1,
  TERM_MAX,
  TERM_MAX + 1,
  TERM_MAX + TERM_STEP_MAX,
  TERM_MAX + TERM_STEP_MAX + 1,
  TERM_WIRE_MAX,
  TERM_WIRE_MAX + 1,
  MAX - 1,
  MAX,
];

/** What a relative number counts from: the recipient's state when the message arrives. */
export type NumBase = "last" | "commit" | "term" | "lastTerm";

/** A number to put in a message: absolute, or relative to the recipient. */
export type NumSpec =
  | { readonly abs: number }
  | { readonly base: NumBase; readonly delta: number };

/** Whom a message goes to and what it can be checked against: a core's id, term and log. */
export interface Recipient {
  /** Its id. */
  readonly id: string;
  /** Its current term. */
  readonly term: number;
  /** Its log. */
  readonly log: LogView;
}

/** Numbers: extremes, small ones, and ones next to the recipient's own. */
export const numArb: fc.Arbitrary<NumSpec> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...EXTREMES).map((abs) => ({ abs })) },
  { weight: 2, arbitrary: fc.nat(12).map((abs) => ({ abs })) },
  {
    weight: 6,
    arbitrary: fc.record({
      base: fc.constantFrom<NumBase>("last", "commit", "term", "lastTerm"),
      delta: fc.integer({ min: -2, max: 3 }),
    }),
  },
);

/** Terms: mostly next to the recipient's, so that many messages are current. */
const termArb: fc.Arbitrary<NumSpec> = fc.oneof(
  { weight: 2, arbitrary: numArb },
  {
    weight: 3,
    arbitrary: fc.integer({ min: -1, max: 1 }).map((delta) => ({
      base: "term" as const,
      delta,
    })),
  },
);

/** Sender and target ids: mostly members, sometimes anyone. */
export const idArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...MEMBERS) },
  { weight: 1, arbitrary: fc.constantFrom(...OUTSIDERS) },
);

const hexArb: fc.Arbitrary<string> = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")
);

/** A hash: random, the genesis hash, or the recipient's own at some index. */
type HashSpec = { readonly hex: string } | { readonly at: NumSpec };

const hashArb: fc.Arbitrary<HashSpec> = fc.oneof(
  hexArb.map((hex) => ({ hex })),
  fc.constant({ hex: GENESIS_HASH }),
  numArb.map((at) => ({ at })),
);

const kindArb = fc.constantFrom<EntryKind>("command", "noop", "config");

const contextArb: fc.Arbitrary<string | null> = fc.oneof(
  fc.constant(null),
  fc.constantFrom("", "r0", "r1", "r2", "c".repeat(1024)),
  fc.string({ maxLength: 8 }),
);

/** How entries taken from a real log are bent. */
export type EntriesShape =
  | "as is"
  | "duplicated"
  | "first dropped"
  | "reversed"
  | "index shifted"
  | "hash changed"
  | "data changed";

const shapeArb = fc.constantFrom<EntriesShape>(
  "as is",
  "duplicated",
  "first dropped",
  "reversed",
  "index shifted",
  "hash changed",
  "data changed",
);

/** The entries of an append. */
type EntriesSpec =
  | { readonly k: "none" }
  | {
    /** Arbitrary entries, whose hashes will almost never chain. */
    readonly k: "random";
    readonly items: readonly {
      readonly index: NumSpec;
      readonly term: NumSpec;
      readonly kind: EntryKind;
      readonly proposer: string;
      readonly timeMs: number;
      readonly data: Uint8Array;
      readonly hash: string;
    }[];
  }
  | {
    /** Forged entries that chain from the recipient's entry at `prevIndex`: a Byzantine leader's. */
    readonly k: "chained";
    readonly count: number;
    readonly term: NumSpec;
    readonly kind: EntryKind;
    readonly data: Uint8Array;
  }
  | {
    /** Entries of a real log (some node's), after `prevIndex`, maybe bent. */
    readonly k: "real";
    readonly source: number;
    readonly count: number;
    readonly shape: EntriesShape;
  };

const entriesArb: fc.Arbitrary<EntriesSpec> = fc.oneof(
  fc.constant({ k: "none" as const }),
  fc.record({
    k: fc.constant("random" as const),
    items: fc.array(
      fc.record({
        index: numArb,
        term: numArb,
        kind: kindArb,
        proposer: fc.constantFrom("", "n1", "n2"),
        timeMs: fc.constantFrom(0, 1, 1.5, 2 ** 53),
        data: fc.uint8Array({ maxLength: 16 }),
        hash: hexArb,
      }),
      { maxLength: 3 },
    ),
  }),
  fc.record({
    k: fc.constant("chained" as const),
    count: fc.integer({ min: 1, max: 3 }),
    term: numArb,
    kind: kindArb,
    data: fc.uint8Array({ maxLength: 16 }),
  }),
  fc.record({
    k: fc.constant("real" as const),
    source: fc.nat(2),
    count: fc.integer({ min: 1, max: 4 }),
    shape: shapeArb,
  }),
);

const memberArb: fc.Arbitrary<Member> = fc.record({ id: idArb, voter: fc.boolean() }, {
  noNullPrototype: true,
});

/** A message before its numbers are resolved against a recipient. */
export interface Template {
  readonly type: MessageType;
  readonly from: string;
  /** Another recipient than the node it is stepped on (it must drop it), or null. */
  readonly misaddressed: string | null;
  readonly term: NumSpec;
  /** The type's numeric fields, in the order `resolve()` assigns them. */
  readonly nums: readonly [NumSpec, NumSpec, NumSpec, NumSpec];
  /** The type's booleans (preVote, transfer, granted, success). */
  readonly flags: readonly [boolean, boolean];
  readonly hash: HashSpec;
  /** An append's previous entry (or a snapshot's last one) is the recipient's own, so it matches. */
  readonly matching: boolean;
  readonly entries: EntriesSpec;
  readonly context: string | null;
  readonly target: string;
  readonly seen: readonly (readonly [string, NumSpec])[];
  readonly members: readonly Member[];
  readonly data: Uint8Array;
  /** A snapshot chunk that is the whole snapshot (offset 0, total its size). */
  readonly whole: boolean;
}

const TYPES: readonly MessageType[] = [
  "vote",
  "voteResponse",
  "append",
  "appendResponse",
  "snapshot",
  "snapshotResponse",
  "heartbeat",
  "heartbeatResponse",
  "timeoutNow",
  "readIndex",
  "readIndexResponse",
  "transferLeader",
];

/** Any message, as a template. */
export const templateArb: fc.Arbitrary<Template> = fc.record({
  type: fc.constantFrom(...TYPES),
  from: idArb,
  misaddressed: fc.option(idArb, { freq: 8 }),
  term: termArb,
  nums: fc.tuple(numArb, numArb, numArb, numArb),
  flags: fc.tuple(fc.boolean(), fc.boolean()),
  hash: hashArb,
  matching: fc.boolean(),
  entries: entriesArb,
  context: contextArb,
  target: idArb,
  seen: fc.array(fc.tuple(idArb, numArb), { maxLength: 3 }),
  members: fc.array(memberArb, { maxLength: 4 }),
  data: fc.uint8Array({ maxLength: 64 }),
  whole: fc.boolean(),
});

/**
 * Resolves a number against the recipient, clamped to the safe integers
 * at or above 0 that the wire carries.
 *
 * @param spec The number.
 * @param r The recipient.
 * @returns The number.
 */
export function resolveNum(spec: NumSpec, r: Recipient): number {
  if ("abs" in spec) return spec.abs;
  const base = spec.base === "last"
    ? r.log.lastIndex()
    : spec.base === "commit"
    ? r.log.committed
    : spec.base === "term"
    ? r.term
    : r.log.lastTerm();
  return Math.min(MAX, Math.max(0, base + spec.delta));
}

function resolveHash(spec: HashSpec, r: Recipient): string {
  if ("hex" in spec) return spec.hex;
  return r.log.hash(resolveNum(spec.at, r)) ?? GENESIS_HASH;
}

/**
 * Bends a run of entries taken from a real log.
 *
 * @param entries The entries, consecutive.
 * @param shape How to bend them.
 * @returns New entries (the originals are shared with the logs that hold them).
 */
export function bend(entries: readonly Entry[], shape: EntriesShape): Entry[] {
  switch (shape) {
    case "as is":
      return [...entries];
    case "duplicated":
      return entries.flatMap((e) => [e, e]);
    case "first dropped":
      return entries.slice(1);
    case "reversed":
      return entries.toReversed();
    case "index shifted":
      return entries.map((e) => ({ ...e, index: Math.min(MAX, e.index + 1) }));
    case "hash changed":
      return entries.map((e) => ({
        ...e,
        hash: e.hash.startsWith("0") ? "1" + e.hash.slice(1) : "0" + e.hash.slice(1),
      }));
    case "data changed":
      return entries.map((e) => ({ ...e, data: new Uint8Array([...e.data, 1]) }));
  }
}

function resolveEntries(
  spec: EntriesSpec,
  prevIndex: number,
  r: Recipient,
  sources: readonly Recipient[],
): Entry[] {
  switch (spec.k) {
    case "none":
      return [];
    case "random":
      return spec.items.map((e) => ({
        index: resolveNum(e.index, r),
        term: resolveNum(e.term, r),
        kind: e.kind,
        proposer: e.proposer,
        timeMs: e.timeMs,
        data: e.data,
        hash: e.hash,
      }));
    case "chained": {
      const out: Entry[] = [];
      let prevHash = r.log.hash(prevIndex) ?? GENESIS_HASH;
      for (let i = 1; i <= spec.count && prevIndex + i <= MAX; i++) {
        const e = createEntry(prevIndex + i, prevHash, {
          term: resolveNum(spec.term, r),
          kind: spec.kind,
          proposer: "n1",
          timeMs: 0,
          data: spec.data,
        });
        out.push(e);
        prevHash = e.hash;
      }
      return out;
    }
    case "real": {
      const source = sources[spec.source % Math.max(1, sources.length)];
      if (source === undefined) return [];
      const out: Entry[] = [];
      for (let i = 1; i <= spec.count; i++) {
        const e = source.log.entry(prevIndex + i);
        if (e === undefined) break;
        out.push(e);
      }
      return bend(out, spec.shape);
    }
  }
}

/**
 * Builds the message a template describes, for one recipient.
 *
 * @param t The template.
 * @param r The recipient, whose state relative numbers count from.
 * @param sources Logs to take real entries from (the cluster's nodes).
 * @returns The message; every number a safe integer at or above 0.
 */
export function resolve(t: Template, r: Recipient, sources: readonly Recipient[]): Message {
  const num = (s: NumSpec) => resolveNum(s, r);
  const envelope = { from: t.from, to: t.misaddressed ?? r.id, term: num(t.term) };
  const [a, b, c, d] = t.nums.map(num) as [number, number, number, number];
  const [f0, f1] = t.flags;
  const hash = resolveHash(t.hash, r);
  switch (t.type) {
    case "vote":
      return { ...envelope, type: "vote", preVote: f0, transfer: f1, lastIndex: a, lastTerm: b };
    case "voteResponse":
      return { ...envelope, type: "voteResponse", preVote: f0, granted: f1 };
    case "append": {
      const prevIndex = a;
      return {
        ...envelope,
        type: "append",
        prevIndex,
        prevTerm: t.matching ? r.log.term(prevIndex) ?? b : b,
        prevHash: t.matching ? r.log.hash(prevIndex) ?? hash : hash,
        entries: resolveEntries(t.entries, prevIndex, r, sources),
        commit: c,
      };
    }
    case "appendResponse":
      return {
        ...envelope,
        type: "appendResponse",
        success: f0,
        index: a,
        hintIndex: b,
        hintTerm: c,
      };
    case "snapshot":
      return {
        ...envelope,
        type: "snapshot",
        meta: {
          index: a,
          term: t.matching ? r.log.term(a) ?? b : b,
          hash: t.matching ? r.log.hash(a) ?? hash : hash,
          config: { members: t.members },
        },
        offset: t.whole ? 0 : c,
        total: t.whole ? t.data.length : d,
        data: t.data,
      };
    case "snapshotResponse":
      return { ...envelope, type: "snapshotResponse", index: a, received: b };
    case "heartbeat": {
      const seen: Record<string, number> = {};
      for (const [id, ticks] of t.seen) {
        // Defined, not assigned: "__proto__" must become a key, as the decoder makes it.
        Object.defineProperty(seen, id, {
          value: num(ticks),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return { ...envelope, type: "heartbeat", commit: a, context: t.context, seen };
    }
    case "heartbeatResponse":
      return { ...envelope, type: "heartbeatResponse", context: t.context, configIndex: a };
    case "timeoutNow":
      return { ...envelope, type: "timeoutNow" };
    case "readIndex":
      return { ...envelope, type: "readIndex", context: t.context ?? "" };
    case "readIndexResponse":
      return { ...envelope, type: "readIndexResponse", context: t.context ?? "", index: a };
    case "transferLeader":
      return { ...envelope, type: "transferLeader", target: t.target };
  }
}

/** How to bend a message a real node sent. */
export interface Mutation {
  /** Which field to change, modulo the message's fields. */
  readonly field: number;
  /** A number field's new value. */
  readonly value: NumSpec;
  /** An id field's new value (`from`, `to`, `target`). */
  readonly id: string;
  /** How to bend an append's entries. */
  readonly shape: EntriesShape;
  /** A text field's new value. */
  readonly text: string | null;
}

/** Mutations of real messages. */
export const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  field: fc.nat(20),
  value: numArb,
  id: idArb,
  shape: shapeArb,
  text: contextArb,
});

/**
 * Changes one field of a message: a number to another value, a boolean
 * flipped, an id to another, entries bent, a snapshot's position moved.
 *
 * @param m The message, left unchanged.
 * @param mutation What to change.
 * @param r The recipient, for relative numbers.
 * @returns The bent copy.
 */
export function mutate(m: Message, mutation: Mutation, r: Recipient): Message {
  const fields = Object.keys(m).filter((k) => k !== "type");
  const key = fields[mutation.field % fields.length]!;
  const value = (m as unknown as Record<string, unknown>)[key];
  let bent: unknown;
  if (typeof value === "number") bent = resolveNum(mutation.value, r);
  else if (typeof value === "boolean") bent = !value;
  else if (key === "from" || key === "to" || key === "target") bent = mutation.id;
  else if (key === "prevHash") bent = r.log.hash(resolveNum(mutation.value, r)) ?? GENESIS_HASH;
  else if (key === "context") bent = mutation.text ?? (m.type === "readIndex" ? "" : null);
  else if (key === "entries") {
    bent = bend((m as unknown as { entries: Entry[] }).entries, mutation.shape);
  } else if (key === "meta") {
    const meta = (m as { meta: { index: number } }).meta;
    bent = { ...meta, index: resolveNum(mutation.value, r) };
  } else if (key === "seen") bent = { ...(m as { seen: object }).seen, [mutation.id]: 0 };
  else if (key === "data") bent = new Uint8Array(resolveNum(mutation.value, r) % 97);
  else bent = value;
  return { ...m, [key]: bent } as Message;
}

/**
 * Whether a message, stepped on `r` now, is a forgery that Raft trusts by
 * design: the word of a member (or of whoever the recipient takes for the
 * leader) about the current term that no check can refute. A fake granted
 * vote elects a second leader; a fake vote request, claiming a longer log
 * than the real candidate's, earns that candidate a vote its log does not
 * deserve; a fake append, heartbeat or snapshot that matches the
 * recipient's log moves its commit index past what a majority holds; a
 * fake acknowledgement makes a leader count a copy that does not exist.
 * Authentication (the cluster secret) keeps these out, not the core.
 *
 * Everything else must leave Raft's safety intact however it is bent: stale
 * messages, terms past the bounds, term 0 on a type that carries a term,
 * commit indexes past the log, acknowledgements past the leader's log,
 * refusals, PreVote requests and answers (a won PreVote only starts a real
 * election), words from ids that are not voters, and exact replays of what
 * nodes really sent (duplication and delay are faults Raft tolerates).
 *
 * @param r The recipient.
 * @param m The message.
 * @returns True for a forgery the core cannot be expected to refuse.
 */
export function trustedForgery(r: Recipient, m: Message): boolean {
  if (m.to !== r.id) return false;
  if (m.term > Math.max(TERM_MAX, r.term + TERM_STEP_MAX)) return false;
  // Term 0 marks the term-less requests only; on any other type no correct
  // peer sends it, so the core must refuse it rather than trust it.
  if (m.term < r.term) return false;
  if (m.term === 0) return false;
  switch (m.type) {
    case "vote":
      // The voter takes the candidate's word for its log: a granted vote
      // goes to the real candidate, which may hold a stale log. (A PreVote
      // only starts an election in which the real log is checked.)
      return !m.preVote;
    case "voteResponse":
      return m.granted && !m.preVote;
    case "append":
      return m.prevIndex >= r.log.committed && r.log.term(m.prevIndex) === m.prevTerm &&
        r.log.hash(m.prevIndex) === m.prevHash;
    case "heartbeat":
      return m.commit > r.log.committed && m.commit <= r.log.lastIndex();
    case "snapshot":
      return true;
    case "appendResponse":
      // An acknowledgement past the leader's own log is refutable: the leader
      // never sent those entries.
      return m.success && m.index <= r.log.lastIndex();
    default:
      return false;
  }
}

/** A recipient with an empty log, for messages drawn without a node (the decoder and route fuzzers). */
export const EMPTY_RECIPIENT: Recipient = {
  id: "n1",
  term: 3,
  log: readOnlyLog(new RaftLog(EMPTY_SNAPSHOT, [], 0)),
};

/** Whole messages, resolved against {@linkcode EMPTY_RECIPIENT}: each encodes as a peer frame. */
export const messageArb: fc.Arbitrary<Message> = templateArb.map((t) =>
  resolve(t, EMPTY_RECIPIENT, [])
);
