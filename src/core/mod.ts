/**
 * The pure Raft core: no I/O, no clock, no timers.
 *
 * @module
 */

export { AssertionError } from "./assert.ts";
export {
  type Configuration,
  decodeConfig,
  EMPTY_CONFIG,
  encodeConfig,
  type Member,
  voterIds,
} from "./config.ts";
export {
  chainFault,
  createEntry,
  type Entry,
  entryHash,
  type EntryKind,
  GENESIS_HASH,
  type HashedFields,
} from "./entry.ts";
export {
  MembershipError,
  type MembershipProblem,
  NotLeaderError,
  ProposalDroppedError,
  RaftError,
} from "./errors.ts";
export { EMPTY_SNAPSHOT, type LogView, type SnapshotMeta, type TermIndex } from "./log.ts";
export type * from "./messages.ts";
export { INDEX_MAX, TERM_MAX, TERM_STEP_MAX, TERM_WIRE_MAX } from "./messages.ts";
export { type Prng, seededPrng } from "./prng.ts";
export { Raft } from "./raft.ts";
export type {
  EarlyReady,
  FollowerView,
  HardState,
  MembershipChange,
  RaftOptions,
  RaftStatus,
  ReadState,
  Ready,
  Role,
  SoftState,
} from "./types.ts";
