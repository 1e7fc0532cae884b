/**
 * WaterCraft: an embeddable Raft consensus module with a hash-chained log.
 *
 * - {@linkcode createNode} runs a node: the Raft core wired to storage, a
 *   transport, your {@linkcode StateMachine} and timers.
 * - {@linkcode createApp} gives it an HTTP surface (a Hono app, fit for an
 *   edge function), and {@linkcode serve} serves that on Deno, Bun or Node.
 * - Storage adapters ({@linkcode memoryStorage}, {@linkcode fileStorage};
 *   Deno KV at `@watercraft/raft/deno-kv`) and the HTTP transport
 *   ({@linkcode httpTransport}) plug into it.
 *
 * Fewer users need the rest, at sub-paths: `./core` (the pure Raft state
 * machine, to drive yourself), `./kv` (the built-in key-value state
 * machine's types), `./testing` (an in-memory network and a manual clock),
 * `./cli` and `./deno-kv`.
 *
 * @module
 */

export type { Member } from "./src/core/config.ts";
export type { Clock, TimerId } from "./src/clock.ts";
export {
  type ErrorCode,
  errorFromCode,
  type LeaderHint,
  ReadOnlyError,
  RejectedError,
  TimeoutError,
  UnavailableError,
  WaterCraftError,
} from "./src/errors.ts";
export type { EntryMeta, StateMachine } from "./src/state_machine.ts";
export { createNode } from "./src/node/create_node.ts";
export { WaterCraftNode } from "./src/node/node.ts";
export type {
  EntryStatus,
  MemberStatus,
  NodeOptions,
  NodeStatus,
  ProposeOptions,
  ProposeResult,
  ReadOptions,
} from "./src/node/options.ts";
export { type AppOptions, createApp } from "./src/http/app.ts";
export { type ChainCheck, type ChainLink, verifyChain } from "./src/chain.ts";
export { type CommandSchema, validateWith } from "./src/command_schema.ts";
export {
  type CallOptions,
  type ClientOptions,
  type Consistency,
  type KvClient,
  type ProposeAnswer,
  type ReadAnswer,
  type WatchCallOptions,
  WaterCraftClient,
  type WriteAnswer,
  type WriteOptions,
} from "./src/client/client.ts";
export type { DropReason, WatchedEntry, WatchEvent, WatchOptions } from "./src/node/watch.ts";
export { CasFailedError, KvStateMachine, kvStateMachine } from "./src/kv/mod.ts";
export { fileStorage, type FileStorageOptions } from "./src/storage/file/storage.ts";
export {
  type FileSystem,
  nodeFileSystem,
  type NodeFileSystemOptions,
  type OpenFile,
  type OpenFlags,
} from "./src/storage/file/file_system.ts";
export { memoryStorage } from "./src/storage/memory.ts";
export {
  CorruptLogError,
  type PersistedState,
  type SaveOptions,
  type Snapshot,
  type Storage,
} from "./src/storage/storage.ts";
export {
  type HttpPeerStats,
  type HttpTransport,
  httpTransport,
  type HttpTransportOptions,
  type HttpTransportStats,
  type PeerFailure,
} from "./src/transport/http/sender.ts";
export type { JoinRetry } from "./src/transport/http/join.ts";
export { type TrustingFetch, trustingFetch } from "./src/transport/http/tls.ts";
export { type FetchHandler, serve, type ServeOptions, type Server } from "./src/serve.ts";
export type {
  ForwardedAnswer,
  ForwardedLeaderTransfer,
  ForwardedMemberAddition,
  ForwardedMemberRemoval,
  ForwardedProposal,
  ForwardedWrite,
  JoinAnswer,
  JoinRequest,
  PeerHandler,
  PeerSecurity,
  Transport,
} from "./src/transport/transport.ts";
