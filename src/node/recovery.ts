/**
 * A node's start from its storage: the core is rebuilt from the saved hard
 * state, entries and snapshot; empty storage bootstraps a new cluster
 * (unless the node waits to be added); `forceNewCluster` replaces the
 * configuration after the loss of a majority.
 *
 * @module
 */

import type { Configuration, Member } from "../core/config.ts";
import { seededPrng } from "../core/prng.ts";
import { Raft } from "../core/raft.ts";
import type { PersistedState } from "../storage/storage.ts";
import { forcedConfig } from "./membership.ts";
import type { NodeOptions, NodeSettings } from "./options.ts";

/**
 * Builds the core of a node from what its storage recovered.
 *
 * @param options What the node is made of.
 * @param settings Its checked settings.
 * @param state What storage recovered.
 * @param acceptSnapshot Checks a leader's snapshot before it replaces the log.
 * @returns The core, ready to tick (leading already when it is its cluster's only voter).
 * @throws {TypeError} When a read-only node would have to start a cluster.
 */
export function recoverRaft(
  options: NodeOptions,
  settings: NodeSettings,
  state: PersistedState,
  acceptSnapshot: (data: Uint8Array) => boolean,
): Raft {
  const empty = state.entries.length === 0 && state.hardState.term === 0 &&
    state.snapshot === null;
  let bootstrap: Configuration | undefined;
  if (empty && options.bootstrap !== false) {
    if (options.readOnly) {
      throw new TypeError("A read-only node cannot start a cluster: join an existing one");
    }
    const self: Member = {
      id: options.id,
      voter: true,
      ...(options.url ? { url: options.url } : {}),
    };
    bootstrap = { members: options.members ? [...options.members] : [self] };
  }
  const force = options.forceNewCluster;
  const forceConfig = force ? forcedConfig(options.id, state, force) : null;
  const { heartbeatMs, electionMs } = settings;
  const raft = new Raft({
    id: options.id,
    prng: seededPrng(options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0]!),
    electionTicks: Math.max(2, Math.round(electionMs / heartbeatMs)),
    heartbeatTicks: 1,
    maxUncommittedBytes: options.maxUncommittedBytes ?? 64 << 20,
    ...(options.maxMsgBytes === undefined ? {} : { maxMsgBytes: options.maxMsgBytes }),
    ...(options.verifyHashes === undefined ? {} : { verifyHashes: options.verifyHashes }),
    hardState: state.hardState,
    entries: state.entries,
    ...(state.snapshot === null ? {} : {
      snapshot: state.snapshot.meta,
      snapshotData: state.snapshot.data,
      applied: state.snapshot.meta.index,
    }),
    ...(bootstrap ? { bootstrap } : {}),
    ...(forceConfig ? { forceConfig } : {}),
    acceptSnapshot,
  });
  // The only voter of its cluster (the original node of a new one) leads at once.
  const voters = raft.log.config().config.members.filter((m) => m.voter);
  if (voters.length === 1 && voters[0]!.id === options.id) raft.campaign();
  return raft;
}
