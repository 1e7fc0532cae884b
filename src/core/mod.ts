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
export { EMPTY_SNAPSHOT, RaftLog, type SnapshotMeta, type TermIndex } from "./log.ts";
export type * from "./messages.ts";
export { type Prng, seededPrng } from "./prng.ts";
export {
  type FollowerView,
  type HardState,
  type MembershipChange,
  Raft,
  type RaftOptions,
  type RaftStatus,
  type ReadState,
  type Ready,
  type Role,
  type SoftState,
} from "./raft.ts";
