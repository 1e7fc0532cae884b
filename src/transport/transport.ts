/**
 * How nodes reach each other. A transport carries Raft messages (one way,
 * best effort: Raft tolerates loss, duplication and reordering) and
 * forwarded client requests (request and response, so a follower can relay
 * the leader's answer).
 *
 * @module
 */

import type { Message } from "../core/messages.ts";
import type { Clock } from "../clock.ts";

/**
 * A client write forwarded by a follower to the leader. `kind` is optional
 * so that writes built before the other kinds existed still type-check.
 */
export interface ForwardedWrite {
  /** What is forwarded: a write (the default). */
  readonly kind?: "write";
  /** The command's bytes: validated and encoded by the node that took the request. */
  readonly command: Uint8Array;
  /** Idempotency key, if the client gave one. */
  readonly idempotencyKey?: string;
  /** Answer once the entry is in the leader's log, or once it is applied. */
  readonly wait: "accepted" | "committed";
  /** How long the leader may take, in ms, before the answer is `timeout`. */
  readonly timeoutMs: number;
}

/** A member addition forwarded to the leader (`POST /v1/members` on another member). */
export interface ForwardedMemberAddition {
  /** What is forwarded. */
  readonly kind: "addMember";
  /** Who joins, at which URL, and whether as a read-only member. */
  readonly member: { readonly id: string; readonly url: string; readonly readOnly: boolean };
  /** How long the leader may take, in ms, before the answer is `timeout`. */
  readonly timeoutMs: number;
}

/** A member removal forwarded to the leader (`DELETE /v1/members/:id` on another member). */
export interface ForwardedMemberRemoval {
  /** What is forwarded. */
  readonly kind: "removeMember";
  /** The member to remove. */
  readonly id: string;
  /** How long the leader may take, in ms, before the answer is `timeout`. */
  readonly timeoutMs: number;
}

/** A leadership transfer forwarded to the leader (`POST /v1/leader/transfer` on another member). */
export interface ForwardedLeaderTransfer {
  /** What is forwarded. */
  readonly kind: "transferLeader";
  /** The voter to lead next; absent: the leader picks the most caught-up one. */
  readonly target?: string;
  /** How long the leader may take, in ms, before the answer is `timeout`. */
  readonly timeoutMs: number;
}

/**
 * A request a member relays to the leader, which alone may run it: a write,
 * a membership change or a leadership transfer. The leader answers with a
 * {@linkcode ForwardedAnswer}: a write's result, `{ configIndex }` for a
 * committed membership change, `{ leader }` (the new leader's id) for a
 * transfer.
 */
export type ForwardedProposal =
  | ForwardedWrite
  | ForwardedMemberAddition
  | ForwardedMemberRemoval
  | ForwardedLeaderTransfer;

/**
 * The leader's answer to a forwarded request: either a result or an error
 * with the stable code of API.md section 2.
 */
export type ForwardedAnswer =
  | { readonly ok: true; readonly value: unknown }
  | {
    readonly ok: false;
    readonly code: string;
    readonly message: string;
    readonly details?: Record<string, unknown>;
  };

/** What a node offers its transport: where incoming traffic goes. */
export interface PeerHandler {
  /**
   * Raft messages from `from`. Must not throw on bad input from a peer.
   * Returns false once this handler takes no more messages (its node
   * stopped), so that a stream to it ends and its sender reconnects,
   * perhaps to the handler that replaced it.
   */
  receive(from: string, messages: readonly Message[]): boolean | void;
  /**
   * A proposal forwarded by `from`, to run as leader. Never throws: a
   * refusal is an answer with the error's code.
   */
  forwarded(from: string, proposal: ForwardedProposal): Promise<ForwardedAnswer>;
}

/**
 * How a node's peers prove they belong to its cluster: by the cluster
 * secret, or not at all in an open cluster (`insecure`, for experiments).
 */
export type PeerSecurity =
  | { readonly secret: string }
  | { readonly insecure: true };

/** A node's request to be added to a running cluster. */
export interface JoinRequest {
  /** The joining node's id. */
  readonly id: string;
  /** The URL the cluster will reach it at. */
  readonly url: string;
  /** Join as a read-only member. */
  readonly readOnly: boolean;
  /** Members to contact first (their URLs). */
  readonly seeds: readonly string[];
  /** Give up after this long, ms. */
  readonly timeoutMs: number;
  /** Time and timers, for back-off and the deadline. */
  readonly clock: Clock;
}

/** The cluster as the member that accepted a join knew it. */
export interface JoinAnswer {
  /** The leader, if known. */
  readonly leader: { readonly id: string; readonly url: string | null } | null;
  /** The members of its configuration. */
  readonly members: readonly { readonly id: string; readonly url: string | null }[];
}

/** Moves messages between nodes. */
export interface Transport {
  /**
   * True when messages leave the process (the HTTP transport): a node on
   * such a transport needs the cluster secret or an explicit `insecure`.
   */
  readonly networked?: boolean;
  /**
   * Starts the transport for node `id`; incoming traffic goes to `handler`.
   * Transports that receive through the HTTP app (which calls the node
   * directly) may ignore `handler`. `security` is the node's (null when
   * it has neither a secret nor `insecure`, which only a transport that is
   * not `networked` may accept): a networked transport signs with it.
   */
  start(id: string, handler: PeerHandler, security: PeerSecurity | null): void | Promise<void>;
  /** Tells the transport where each peer is (id to URL); called on every membership change. */
  setPeers(peers: ReadonlyMap<string, string>): void;
  /**
   * Queues messages for their recipients and returns at once. Delivery is
   * best effort; a slow or dead peer must not delay the others or grow
   * memory without bound (drop instead).
   */
  send(messages: readonly Message[]): void;
  /**
   * Forwards a proposal of any kind to `to` (the leader) and returns its answer.
   *
   * @throws {WaterCraftError} `unavailable` when the peer cannot be reached
   *   before anything was sent, `timeout` when the outcome is unknown.
   */
  forward(to: string, proposal: ForwardedProposal, signal: AbortSignal): Promise<ForwardedAnswer>;
  /**
   * Gets this node added to a running cluster through any of
   * `request.seeds`, retrying until the addition is committed. Transports
   * that cannot reach members by URL leave it out.
   *
   * @throws {WaterCraftError} `conflict` when the id is taken by a member at
   *   another URL, `unauthorized` for a wrong secret, `unavailable` when no
   *   member accepted before the deadline.
   */
  join?(request: JoinRequest): Promise<JoinAnswer>;
  /**
   * Hears that the node has not heard from `peer` for an election timeout:
   * a connection that looks open may be dead (a half-open TCP connection, a
   * peer that stopped reading). Transports with long-lived connections drop
   * it and reconnect on the next send; others may ignore it.
   */
  unreachable?(peer: string): void;
  /** Stops sending and frees resources. */
  close(): Promise<void>;
}

/**
 * Names what a forwarded proposal asks for, for error messages.
 *
 * @param proposal The proposal.
 * @returns "write", "member addition", "member removal" or "leadership transfer".
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { describeProposal } from "./transport.ts";
 *
 * strictEqual(describeProposal({ kind: "removeMember", id: "n2", timeoutMs: 100 }), "member removal");
 * ```
 */
export function describeProposal(proposal: ForwardedProposal): string {
  switch (proposal.kind) {
    case "addMember":
      return "member addition";
    case "removeMember":
      return "member removal";
    case "transferLeader":
      return "leadership transfer";
    default:
      return "write";
  }
}
