/**
 * Who the members are and where each is reached: the configuration in
 * force (from the node's log), the peers learned while joining (until the
 * log names them), what the transport is told, and the leader hint that
 * refusals carry.
 *
 * @module
 */

import { type Configuration, EMPTY_CONFIG } from "../core/config.ts";
import type { LogView } from "../core/log.ts";
import type { LeaderHint } from "../errors.ts";
import type { JoinAnswer, Transport } from "../transport/transport.ts";

/** The members of one node's cluster, as that node knows them. */
export class PeerDirectory {
  readonly #id: string;
  readonly #url: string | null;
  readonly #transport: Transport;
  #configIndex = -1;
  #config: Configuration = EMPTY_CONFIG;
  /** Peers known from joining, until the replicated configuration names them. */
  readonly #joined = new Map<string, string>();
  /** Ids that left a configuration this node had, and are not back in it. */
  readonly #removed = new Set<string>();

  /**
   * Creates an empty directory.
   *
   * @param id This node's id.
   * @param url This node's advertised URL, if any.
   * @param transport The transport to tell where the peers are.
   */
  constructor(id: string, url: string | null, transport: Transport) {
    this.#id = id;
    this.#url = url;
    this.#transport = transport;
  }

  /** The configuration in force. */
  get config(): Configuration {
    return this.#config;
  }

  /** Log index of the configuration in force (-1 before the first). */
  get configIndex(): number {
    return this.#configIndex;
  }

  /**
   * Takes the configuration in force from the log; tells the transport
   * when it changed.
   *
   * @param log The node's log.
   */
  refresh(log: LogView): void {
    const { index, config } = log.config();
    if (index === this.#configIndex) return;
    for (const m of this.#config.members) this.#removed.add(m.id);
    for (const m of config.members) this.#removed.delete(m.id);
    this.#configIndex = index;
    this.#config = config;
    this.#tellTransport();
  }

  /**
   * Remembers the members a join learned of: until this node's log holds
   * the configuration, this is how it answers the leader.
   *
   * @param members What the member that accepted the join listed.
   */
  learn(members: JoinAnswer["members"]): void {
    for (const m of members) if (m.url && m.id !== this.#id) this.#joined.set(m.id, m.url);
    this.#tellTransport();
  }

  /**
   * Whether a message from `from` may disrupt this node: start an election
   * or take leadership. Refused for a member that was removed (it may run
   * on, unaware), and for a transfer from anyone this node's configuration
   * does not list; allowed for an id this node has never seen, which may be
   * a member added while this node was cut off, whose vote request it must
   * answer for the cluster to stay available. A node that has no
   * configuration yet (it is joining) knows no one and allows everything.
   * Messages only a leader sends are never refused here: a node behind may
   * not know its new leader yet, and Raft itself rejects stale ones.
   *
   * @param from The sender's id.
   * @param type The message's type.
   * @returns False when the message must be dropped.
   */
  admits(from: string, type: string): boolean {
    if (type !== "vote" && type !== "timeoutNow" && type !== "transferLeader") return true;
    if (this.#config.members.length === 0) return true;
    if (this.#removed.has(from)) return false;
    if (type === "vote") return true;
    return this.#config.members.some((m) => m.id === from);
  }

  /**
   * Where the leader is, for a refusal to tell the client.
   *
   * @param leader The leader's id, if one is known.
   * @returns Its id and URL (null when no member lists one).
   */
  leaderHint(leader: string | null): LeaderHint | null {
    if (leader === null) return null;
    const member = this.#config.members.find((m) => m.id === leader);
    return { id: leader, url: member?.url ?? (leader === this.#id ? this.#url : null) };
  }

  #tellTransport(): void {
    const peers = new Map<string, string>(this.#joined);
    for (const m of this.#config.members) if (m.url) peers.set(m.id, m.url);
    peers.delete(this.#id);
    this.#transport.setPeers(peers);
  }
}
