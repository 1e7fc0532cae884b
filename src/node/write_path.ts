/**
 * Where a write's bytes go once the node that took it has encoded them: on
 * the leader, into the log, waiting for the entry to commit (or the answer
 * kept for a repeated idempotency key); elsewhere, forwarded to the leader,
 * and remembered as `pending` until this node's log holds the entry.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Entry } from "../core/entry.ts";
import type { Raft } from "../core/raft.ts";
import { fromRaftError, type LeaderHint, UnavailableError } from "../errors.ts";
import type { Transport } from "../transport/transport.ts";
import type { Applier } from "./apply.ts";
import { sealEnvelope } from "./envelope.ts";
import { forwardWrite, type RelayedWrites, type WriteRequest } from "./forward.ts";
import type { ProposeResult } from "./options.ts";
import type { PendingWrites } from "./writes.ts";

/** What the write path needs of its node. */
export interface WritePathParts {
  /** This node's id. */
  readonly id: string;
  /** The node's clock. */
  readonly clock: Clock;
  /** How it reaches the leader. */
  readonly transport: Transport;
  /** The state machine's side, with the idempotency keys. */
  readonly applier: Applier;
  /** Writes waiting for their entry. */
  readonly writes: PendingWrites;
  /** Writes forwarded from here, until the log holds them. */
  readonly relayed: RelayedWrites;
  /** The core. */
  raft(): Raft;
  /** Where the leader is, for refusals. */
  leaderHint(): LeaderHint | null;
  /** Throws when too many clients wait already. */
  assertRoom(): void;
  /** The head's hash, for answers kept with an idempotency key. */
  headHash(): string;
  /** Asks the ready loop to run. */
  schedule(): void;
}

/** A write's path from encoded bytes to its outcome. */
export class WritePath {
  readonly #parts: WritePathParts;

  /**
   * Creates the path.
   *
   * @param parts What it needs of the node.
   */
  constructor(parts: WritePathParts) {
    this.#parts = parts;
  }

  /**
   * Writes encoded command bytes through `leader`.
   *
   * @param leader The leader's id (this node's, or another's).
   * @param request The command's bytes, its key, what to wait for and until when.
   * @returns Where it landed.
   */
  async write(leader: string, request: WriteRequest): Promise<ProposeResult> {
    const parts = this.#parts;
    if (leader === parts.id) return await this.asLeader(request);
    const result = await forwardWrite(parts.transport, leader, request, parts.clock);
    if (parts.raft().log.indexOfHash(result.id) === undefined) parts.relayed.remember(result);
    return result;
  }

  /**
   * Appends a write to this leader's log, or answers a repeat of its key
   * with the first one's outcome.
   *
   * @param request The command's bytes, its key, what to wait for and until when.
   * @returns Where it landed.
   * @throws {UnavailableError} When this node no longer leads, or too many wait.
   */
  asLeader(request: WriteRequest): Promise<ProposeResult> {
    const { command, idempotencyKey: key, wait, deadline } = request;
    const parts = this.#parts;
    const raft = parts.raft();
    if (raft.role !== "leader") {
      throw new UnavailableError("Cannot write: leadership changed", parts.leaderHint());
    }
    const sessions = parts.applier.sessions;
    const retried = key === undefined ? undefined : sessions.retry(key, parts.headHash);
    if (retried !== undefined) return retried;
    parts.assertRoom();
    let entry: Entry;
    try {
      entry = raft.propose(sealEnvelope(command, key), parts.clock.now());
    } catch (e) {
      throw fromRaftError(e, parts.leaderHint());
    }
    const promise = parts.writes.wait(entry, wait, deadline);
    if (key !== undefined) sessions.track(key, promise);
    parts.schedule();
    return promise;
  }
}
