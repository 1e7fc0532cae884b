/**
 * Whether a node has been removed from its cluster, as far as it can tell.
 *
 * The newest configuration in its log may leave it out, which counts once
 * this node knows it committed. The member may never learn that, nor see
 * the entry at all (a leader stops sending to a member as soon as it
 * appends the change): then the word of another member that follows a
 * leader counts, until a leader is heard again. A removed node does not campaign, since the new
 * configuration's voters elect without it; it still answers votes and
 * takes a leader's messages, so an old configuration's election that needs
 * it still works, and it comes back if added again or if the change is
 * overwritten. A leader that removed itself leads until the removal commits.
 *
 * @module
 */

import type { Raft } from "../core/raft.ts";

/** Tracks whether this node is out of its cluster's configuration. */
export class Removal {
  readonly #id: string;
  readonly #raft: () => Raft | undefined;
  /** The configuration index a member said leaves this node out (0: none said so). */
  #saidAtConfig = 0;

  /**
   * Creates the tracker.
   *
   * @param id This node's id.
   * @param raft The core, once the node has started (undefined before).
   */
  constructor(id: string, raft: () => Raft | undefined) {
    this.#id = id;
    this.#raft = raft;
  }

  /** Whether this node is removed; false while joining (no configuration yet) and before start. */
  get removed(): boolean {
    const raft = this.#raft();
    if (raft === undefined) return false;
    const { index, config } = raft.log.config();
    if (this.#saidAtConfig > index && raft.leader === null) return true;
    // Only once the removal is committed: before that this node may be the
    // one whose vote or log an election of the old configuration needs
    // (the node simulator found such a seed), and PreVote already keeps a
    // removed node's campaigns from disturbing a working leader.
    return config.members.length > 0 && raft.role !== "leader" && raft.log.committed >= index &&
      !config.members.some((m) => m.id === this.#id);
  }

  /**
   * Takes another member's word that a configuration newer than this
   * node's own leaves it out.
   *
   * @param configIndex The index of that configuration.
   */
  note(configIndex: number): void {
    const raft = this.#raft();
    if (raft !== undefined && configIndex > raft.log.config().index) {
      this.#saidAtConfig = configIndex;
    }
  }
}
