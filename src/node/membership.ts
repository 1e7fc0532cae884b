/**
 * Cluster operations of a node: leadership transfer, adding and removing
 * members (one change at a time, decided against the committed
 * configuration, retried while another change is pending), eviction of
 * silent voters, and the configuration a forced new cluster starts from.
 *
 * Only the leader runs a change or a transfer; any other member forwards
 * it to the leader (as it forwards writes) and answers with the leader's
 * answer, so that an operator or a joining node may ask any member. What
 * was forwarded is run with `relay: false`: a member that has lost its
 * leadership meanwhile refuses it rather than bouncing it on.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { type Configuration, decodeConfig, type Member } from "../core/config.ts";
import type { Entry } from "../core/entry.ts";
import { ProposalDroppedError } from "../core/errors.ts";
import type { Raft } from "../core/raft.ts";
import type { MembershipChange } from "../core/types.ts";
import { fromRaftError, type LeaderHint, UnavailableError, WaterCraftError } from "../errors.ts";
import type { PersistedState } from "../storage/storage.ts";
import type {
  ForwardedLeaderTransfer,
  ForwardedMemberAddition,
  ForwardedMemberRemoval,
  ForwardedProposal,
  Transport,
} from "../transport/transport.ts";
import { forwardToLeader, remainingMs } from "./forward.ts";
import type { PeerDirectory } from "./peers.ts";

/** What cluster operations need of their node. */
export interface ClusterHost {
  /** The node's id. */
  readonly id: string;
  /** The node's core (created when the node starts). */
  raft(): Raft;
  /** Time for deadlines and retries. */
  readonly clock: Clock;
  /** The tick, ms: how long to wait before retrying a change. */
  readonly heartbeatMs: number;
  /** The election timeout, ms: a transfer gets two. */
  readonly electionMs: number;
  /** The members as this node knows them: the configuration in force, and those a join learned. */
  readonly peers: PeerDirectory;
  /** The leader, for refusals that tell the client where to go. */
  leaderHint(): LeaderHint | null;
  /** Waits until a leader is known. */
  awaitLeader(deadline: number): Promise<string>;
  /** Waits until `entry` is applied. */
  awaitCommitted(entry: Entry, deadline: number): Promise<unknown>;
  /** Waits until `target` leads. */
  awaitTransfer(target: string, deadline: number): Promise<void>;
  /**
   * Waits until this node has applied everything committed when it is
   * called (a linearizable read barrier).
   */
  awaitCaughtUp(deadline: number): Promise<void>;
  /** Makes the node run its loop. */
  schedule(): void;
  /** How the node reaches members, for joining. */
  readonly transport: Transport;
  /** The node's advertised URL. */
  readonly url: string | null;
  /** Whether the node joins as a read-only member. */
  readonly readOnly: boolean;
}

/** When and how far the leader evicts silent voters (the node's options). */
export interface EvictionPolicy {
  /** Remove a voter silent for longer than this, ms; no eviction without it. */
  readonly evictAfterMs?: number;
  /** The fewest voters eviction leaves. Default 3. */
  readonly minVoters?: number;
  /** Where evictions are reported. Default `console.warn`. */
  readonly onWarning?: (message: string) => void;
}

/** How a membership change or a transfer runs. */
export interface ClusterOpOptions {
  /** How long to wait, ms. */
  readonly timeoutMs: number;
  /**
   * Forward to the leader when this node does not lead. Default true; false
   * for what another member forwarded here, so that it is never forwarded
   * twice (two members with stale views could bounce it between them).
   */
  readonly relay?: boolean;
}

/** The membership changes and transfers of one node. */
export class ClusterOps {
  readonly #host: ClusterHost;
  /** Membership changes run one at a time. */
  #chain: Promise<unknown> = Promise.resolve();
  #evicting = false;
  #leaderSinceMs = 0;

  /**
   * Creates the operations of a node.
   *
   * @param host What they need of the node.
   */
  constructor(host: ClusterHost) {
    this.#host = host;
  }

  /**
   * Hears that this node became leader, for eviction: a voter it has never
   * heard from has been silent at least this long.
   */
  becameLeader(): void {
    this.#leaderSinceMs = this.#host.clock.now();
  }

  /**
   * Gets this node added to a running cluster, unless it already has state
   * (a restarted member rejoins through its own log).
   *
   * @param seeds URLs of members to ask first.
   * @param timeoutMs How long to keep trying.
   * @returns True when this node was added, false when it already had state.
   * @throws {WaterCraftError} `conflict` when the id is taken at another URL,
   *   `unavailable` when no member accepted in time.
   */
  async join(seeds: readonly string[], timeoutMs: number): Promise<boolean> {
    const raft = this.#host.raft();
    if (raft.log.lastIndex() > 0 || raft.term > 0) return false;
    const { transport, url } = this.#host;
    if (url === null) throw new TypeError("A node needs a url to join a cluster");
    if (transport.join === undefined) {
      throw new TypeError(
        "This node's transport cannot join a cluster: it reaches no member by URL",
      );
    }
    const answer = await transport.join({
      id: this.#host.id,
      url,
      readOnly: this.#host.readOnly,
      seeds,
      timeoutMs,
      clock: this.#host.clock,
    });
    this.#host.peers.learn(answer.members);
    return true;
  }

  /**
   * Moves leadership to `target`, or to the most caught-up other voter; on
   * a member that does not lead, through the leader.
   *
   * @param target The voter to lead next.
   * @param options How long to wait (default and most: two election
   *   timeouts) and whether to forward.
   * @returns The id of the new leader.
   * @throws {WaterCraftError} `not_found` for an unknown voter, `unavailable`
   *   when leadership did not move in time or no leader is known, `timeout`
   *   when a forwarded transfer's outcome is unknown.
   */
  async transfer(
    target: string | undefined,
    options: Partial<ClusterOpOptions> = {},
  ): Promise<string> {
    const { clock } = this.#host;
    const raft = this.#host.raft();
    const limitMs = 2 * this.#host.electionMs;
    const deadline = clock.now() + Math.min(options.timeoutMs ?? limitMs, limitMs);
    const leader = await this.#host.awaitLeader(deadline);
    if (leader !== this.#host.id) {
      if (options.relay === false) {
        throw new UnavailableError(
          "Cannot transfer leadership: this node is not the leader",
          this.#host.leaderHint(),
        );
      }
      const answer = await forwardToLeader(this.#host.transport, leader, {
        kind: "transferLeader",
        ...(target === undefined ? {} : { target }),
        timeoutMs: remainingMs(deadline, clock),
      });
      const moved = newLeaderOf(answer) ?? target ?? leader;
      // Best effort, so that this node names the new leader when it answers:
      // leadership has moved whether or not this node has heard of it yet.
      if (raft.leader !== moved) await this.#host.awaitTransfer(moved, deadline).catch(() => {});
      return moved;
    }
    let to = target;
    if (to === undefined) {
      const voters = new Set(
        this.#host.peers.config.members.filter((m) => m.voter).map((m) => m.id),
      );
      // Most caught up among those heard from lately: a silent voter cannot take over.
      const seen = raft.seenTicks();
      const aliveTicks = Math.ceil(this.#host.electionMs / this.#host.heartbeatMs);
      const candidates = [...raft.followers()].filter(([id]) => voters.has(id));
      const alive = candidates.filter(([id]) => (seen.get(id) ?? Infinity) <= aliveTicks);
      const best = (alive.length > 0 ? alive : candidates)
        .sort((a, b) => b[1].match - a[1].match)[0];
      if (best === undefined) {
        throw new UnavailableError("Cannot transfer leadership: there is no other voter");
      }
      to = best[0];
    }
    if (leader === to) return to;
    try {
      raft.transferLeader(to);
    } catch (e) {
      throw fromRaftError(e, this.#host.leaderHint());
    }
    this.#host.schedule();
    await this.#host.awaitTransfer(to, deadline);
    return to;
  }

  /**
   * Runs a change or a transfer that another member forwarded to this
   * leader, without forwarding it again (`relay: false`).
   *
   * @param proposal What was forwarded.
   * @param timeoutMs How long it may take.
   * @returns The answer's value: the configuration index of the change, or
   *   the new leader.
   */
  async runForwarded(
    proposal: ForwardedMemberAddition | ForwardedMemberRemoval | ForwardedLeaderTransfer,
    timeoutMs: number,
  ): Promise<{ configIndex: number } | { leader: string }> {
    const once = { timeoutMs, relay: false };
    switch (proposal.kind) {
      case "addMember":
        return { configIndex: await this.add(proposal.member, once) };
      case "removeMember":
        return { configIndex: await this.remove(proposal.id, once) };
      case "transferLeader":
        return { leader: await this.transfer(proposal.target, once) };
    }
  }

  /**
   * Adds a member as a learner; adding one that exists at the same URL
   * succeeds without a change. On a member that does not lead, through the
   * leader.
   *
   * @param member Who joins.
   * @param options How long to wait and whether to forward.
   * @returns The index of the configuration that holds the member.
   * @throws {WaterCraftError} `conflict` when the id exists at another URL.
   * @throws {UnavailableError} When no leader is known, or (`relay: false`)
   *   this node does not lead.
   * @throws {TimeoutError} When the outcome is unknown.
   */
  add(
    member: { id: string; url: string; readOnly?: boolean },
    options: ClusterOpOptions,
  ): Promise<number> {
    const readOnly = member.readOnly ?? false;
    return this.#change((members) => {
      const current = members.find((m) => m.id === member.id);
      if (current === undefined) {
        return {
          type: "add",
          member: { id: member.id, url: member.url, voter: false, readOnly },
        };
      }
      if (current.url !== member.url || (current.readOnly ?? false) !== readOnly) {
        throw new WaterCraftError(
          "conflict",
          `Cannot add ${member.id} at ${member.url}: it is already a member at ${
            current.url ?? "no URL"
          }`,
        );
      }
      return null;
    }, {
      ...options,
      forward: (timeoutMs) => ({
        kind: "addMember",
        member: { id: member.id, url: member.url, readOnly },
        timeoutMs,
      }),
    });
  }

  /**
   * Removes a member, the leader included. On a member that does not lead,
   * through the leader.
   *
   * @param id The member to remove.
   * @param options How long to wait and whether to forward.
   * @returns The index of the configuration without the member.
   * @throws {WaterCraftError} `not_found` for an unknown member.
   * @throws {UnavailableError} When no leader is known, or (`relay: false`)
   *   this node does not lead.
   * @throws {TimeoutError} When the outcome is unknown.
   */
  remove(id: string, options: ClusterOpOptions): Promise<number> {
    return this.#change((members) => {
      if (!members.some((m) => m.id === id)) {
        throw new WaterCraftError("not_found", `No member ${id}`);
      }
      return { type: "remove", id };
    }, { ...options, forward: (timeoutMs) => ({ kind: "removeMember", id, timeoutMs }) });
  }

  /**
   * Removes a voter silent for longer than the policy allows, if this node
   * leads and the cluster keeps enough voters. At most one at a time.
   *
   * @param policy When and how far to evict.
   * @param timeoutMs How long the removal may take.
   */
  maybeEvict(policy: EvictionPolicy, timeoutMs: number): void {
    const { clock, heartbeatMs } = this.#host;
    const raft = this.#host.raft();
    const afterMs = policy.evictAfterMs;
    if (afterMs === undefined || this.#evicting || raft.role !== "leader") return;
    const voters = this.#host.peers.config.members.filter((m) => m.voter);
    if (voters.length <= (policy.minVoters ?? 3)) return;
    const warn = policy.onWarning ?? ((message: string) => console.warn(`watercraft: ${message}`));
    const seen = raft.seenTicks();
    const sinceLeading = clock.now() - this.#leaderSinceMs;
    const silent = voters.find((m) => {
      if (m.id === this.#host.id) return false;
      const ticks = seen.get(m.id);
      return (ticks === undefined ? sinceLeading : ticks * heartbeatMs) > afterMs;
    });
    if (silent === undefined) return;
    this.#evicting = true;
    // Only a leader evicts: were it deposed meanwhile, the removal is dropped, not forwarded.
    this.remove(silent.id, { timeoutMs, relay: false }).then(
      () => warn(`evicted member ${silent.id}: silent for over ${afterMs} ms`),
      (e) => warn(`could not evict ${silent.id}: ${e instanceof Error ? e.message : String(e)}`),
    ).finally(() => this.#evicting = false);
  }

  #change(
    decide: (members: readonly Member[]) => MembershipChange | null,
    options: ClusterOpOptions & { readonly forward: (timeoutMs: number) => ForwardedProposal },
  ): Promise<number> {
    const { clock } = this.#host;
    const raft = this.#host.raft();
    const run = async (): Promise<number> => {
      const deadline = clock.now() + options.timeoutMs;
      for (let attempt = 0; attempt < 10_000; attempt++) {
        const leader = await this.#host.awaitLeader(deadline);
        if (leader !== this.#host.id) {
          if (options.relay === false) {
            throw new UnavailableError(
              "Cannot change the membership: this node is not the leader",
              this.#host.leaderHint(),
            );
          }
          const answer = await forwardToLeader(
            this.#host.transport,
            leader,
            options.forward(remainingMs(deadline, clock)),
          );
          const configIndex = configIndexOf(answer);
          // Best effort, so that this node lists the change when it answers:
          // it is committed whether or not this node has heard of it yet.
          if (this.#host.peers.configIndex < configIndex) {
            await this.#host.awaitCaughtUp(deadline).catch(() => {});
          }
          return configIndex;
        }
        // Decide against a committed configuration only: a retry must not
        // answer "done" (or "no such member") for a change still pending.
        const pending = raft.log.config().index;
        if (pending > raft.log.committed) {
          try {
            await this.#host.awaitCommitted(raft.log.entry(pending)!, deadline);
          } catch (e) {
            if (!(e instanceof UnavailableError)) throw e;
          }
          continue;
        }
        const change = decide(raft.log.config().config.members);
        if (change === null) return pending;
        let entry: Entry | null;
        try {
          entry = raft.changeMembers(change, clock.now());
        } catch (e) {
          // Another change (an automatic promotion) or the new leader's first
          // commit is pending: try again shortly.
          if (!(e instanceof ProposalDroppedError) || clock.now() >= deadline) {
            throw fromRaftError(e, this.#host.leaderHint());
          }
          await new Promise((r) => clock.setTimer(() => r(undefined), this.#host.heartbeatMs));
          continue;
        }
        if (entry === null) return pending;
        this.#host.schedule();
        await this.#host.awaitCommitted(entry, deadline);
        return entry.index;
      }
      throw new UnavailableError("Cannot change the membership: too many attempts");
    };
    const result = this.#chain.then(run, run);
    this.#chain = result.catch(() => {});
    return result;
  }
}

/** The configuration index a leader answered a forwarded change with, or 0. */
function configIndexOf(answer: unknown): number {
  const index = (answer as { configIndex?: unknown } | null)?.configIndex;
  return Number.isSafeInteger(index) ? index as number : 0;
}

/** The new leader a leader answered a forwarded transfer with, if it said. */
function newLeaderOf(answer: unknown): string | null {
  const leader = (answer as { leader?: unknown } | null)?.leader;
  return typeof leader === "string" ? leader : null;
}

/**
 * The configuration `forceNewCluster` asks for: this node (and the named
 * ids) as the only voters, taken from the last configuration in the log or
 * else the snapshot's.
 *
 * @param id This node's id.
 * @param state What storage recovered.
 * @param force `true` for this node alone, or the other voters to keep.
 * @returns The forced configuration.
 */
export function forcedConfig(
  id: string,
  state: PersistedState,
  force: true | readonly string[],
): Configuration {
  const last = state.entries.findLast((e) => e.kind === "config");
  const known = last !== undefined
    ? decodeConfig(last.data).members
    : state.snapshot?.meta.config.members ?? [];
  const keep = new Set(force === true ? [id] : [id, ...force]);
  const members = known.filter((m) => keep.has(m.id)).map((m) => ({ ...m, voter: true }));
  if (!members.some((m) => m.id === id)) members.unshift({ id, voter: true });
  return { members };
}
