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
