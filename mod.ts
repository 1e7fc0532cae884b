/**
 * WaterCraft: an embeddable Raft consensus module with a hash-chained log.
 *
 * - {@linkcode createNode} runs a node: the Raft core wired to storage, a
 *   transport, your state machine and timers.
 * - `src/core` (re-exported here) is the pure, deterministic Raft state
 *   machine, for those who drive it themselves.
 *
 * @module
 */

export * from "./src/core/mod.ts";
export {
  type Clock,
  type ManualClock,
  manualClock,
  systemClock,
  type TimerId,
} from "./src/clock.ts";
export { type LeaderHint, LeaderHintError, ReadOnlyError, TimeoutError } from "./src/errors.ts";
export { type EntryMeta, RejectedError, type StateMachine } from "./src/state_machine.ts";
export {
  createNode,
  type EntryStatus,
  type MemberStatus,
  type NodeOptions,
  type NodeStatus,
  type ProposeOptions,
  type ProposeResult,
  type ReadOptions,
  WaterCraftNode,
} from "./src/node.ts";
export { type AppOptions, createApp } from "./src/http/app.ts";
export {
  CasFailedError,
  type JsonValue,
  type KvAnswer,
  type KvCommand,
  type KvGetAnswer,
  type KvGetQuery,
  type KvListAnswer,
  type KvListItem,
  type KvListQuery,
  type KvQuery,
  type KvResult,
  KvStateMachine,
  kvStateMachine,
} from "./src/kv.ts";
export { fileStorage, type FileStorageOptions } from "./src/storage/file/storage.ts";
export { memoryStorage } from "./src/storage/memory.ts";
export {
  CorruptLogError,
  type PersistedState,
  type Snapshot,
  type Storage,
} from "./src/storage/storage.ts";
export { MemoryNetwork, type MemoryNetworkOptions } from "./src/transport/memory.ts";
export {
  type HttpPeerStats,
  type HttpTransport,
  httpTransport,
  type HttpTransportOptions,
  type HttpTransportStats,
  type PeerFailure,
} from "./src/transport/http.ts";
export { type TrustingFetch, trustingFetch } from "./src/transport/tls_fetch.ts";
export { peerRoutes, type PeerRoutesOptions } from "./src/http/peer_routes.ts";
export { type FetchHandler, serve, type ServeOptions, type Server } from "./src/serve.ts";
export type {
  ForwardedAnswer,
  ForwardedProposal,
  PeerHandler,
  Transport,
} from "./src/transport/transport.ts";
