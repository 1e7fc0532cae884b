/**
 * A hand-driven cluster for the scenario tests in `raft_test.ts`: Raft cores
 * in one process and a driver that persists nothing (each core keeps its own
 * log), hands every `ready()` batch to `advance()` at once, and delivers
 * messages in the order they were sent until the cluster is quiet. Time moves
 * only when a test calls `tick()`; randomness is a seeded PRNG per node.
 *
 * @module
 */

import { encodeConfig } from "../../src/core/config.ts";
import { createEntry, type Entry, GENESIS_HASH, type HashedFields } from "../../src/core/entry.ts";
import type { Message } from "../../src/core/messages.ts";
import { seededPrng } from "../../src/core/prng.ts";
import { Raft } from "../../src/core/raft.ts";
import type { HardState, RaftOptions, ReadState } from "../../src/core/types.ts";

/** Every Raft option except identity and randomness, which the harness sets. */
export type NodeOptions = Omit<RaftOptions, "id" | "prng">;

/** The election timeout the scenario tests set where timing matters. */
export const ELECTION_TICKS = 10;

/** Bound on delivery rounds in {@linkcode Cluster.settle}. */
const MAX_ROUNDS = 500;
/** Bound on `ready()` batches one node may produce in one drain. */
const MAX_BATCHES = 50;

const encoder = new TextEncoder();

/**
 * The messages of one type, typed.
 *
 * @param messages Messages of any type.
 * @param type The type to keep.
 * @returns Those of `type`, in order.
 */
export function ofType<T extends Message["type"]>(
  messages: readonly Message[],
  type: T,
): Extract<Message, { type: T }>[] {
  return messages.filter((m): m is Extract<Message, { type: T }> => m.type === type);
}

/**
 * Builds a valid hash-chained log from the terms of its entries (index 1
 * first). Index 1 is the bootstrap `config` entry naming `voters`, exactly as
 * the `bootstrap` option would create it when its term is 1; later entries
 * are commands whose data is `"<index>@<term>"`. Two logs built from term
 * lists with a common prefix therefore share those entries (same hashes), and
 * differ from the first differing term on, as the Log Matching Property says.
 *
 * @param voters The voters of the configuration at index 1.
 * @param terms The term of each entry, from index 1.
 * @returns The entries.
 */
export function buildLog(voters: readonly string[], terms: readonly number[]): Entry[] {
  const entries: Entry[] = [];
  let prevHash = GENESIS_HASH;
  for (const [i, term] of terms.entries()) {
    const index = i + 1;
    const fields: HashedFields = index === 1
      ? {
        term,
        kind: "config",
        proposer: "",
        timeMs: 0,
        data: encodeConfig({ members: voters.map((id) => ({ id, voter: true })) }),
      }
      : {
        term,
        kind: "command",
        proposer: "",
        timeMs: 0,
        data: encoder.encode(`${index}@${term}`),
      };
    const entry = createEntry(index, prevHash, fields);
    entries.push(entry);
    prevHash = entry.hash;
  }
  return entries;
}

/** One node's recovered state, for {@linkcode recoveredCluster}. */
export interface RecoveredNode {
  /** The node's id. */
  readonly id: string;
  /** Term of each log entry, from index 1 (see {@linkcode buildLog}). */
  readonly terms: readonly number[];
  /** The durable term, vote and commit index. */
  readonly hardState: HardState;
}

/**
 * Makes a cluster of freshly bootstrapped voters, node `i` seeded with `i + 1`.
 *
 * @param ids The node ids, all voters.
 * @param options Options every node gets.
 * @returns The cluster, with the bootstrap batch already drained.
 */
export function bootstrapCluster(ids: readonly string[], options: NodeOptions = {}): Cluster {
  const members = ids.map((id) => ({ id, voter: true }));
  return new Cluster(
    ids.map((id, i) =>
      new Raft({ ...options, id, prng: seededPrng(i + 1), bootstrap: { members } })
    ),
  );
}

/**
 * Makes a cluster of nodes restarted from the given durable state.
 *
 * @param nodes Each node's log terms and hard state; all of them are voters.
 * @param options Options every node gets.
 * @returns The cluster.
 */
export function recoveredCluster(
  nodes: readonly RecoveredNode[],
  options: NodeOptions = {},
): Cluster {
  const voters = nodes.map((n) => n.id);
  return new Cluster(nodes.map((n, i) =>
    new Raft({
      ...options,
      id: n.id,
      prng: seededPrng(i + 1),
      hardState: n.hardState,
      entries: buildLog(voters, n.terms),
    })
  ));
}

/**
 * Raft nodes wired together by hand. Messages from or to a node in
 * `isolated` are dropped: that models both a partition and a crash (a
 * crashed node is simply never ticked).
 */
export class Cluster {
  /** The nodes by id. */
  readonly nodes: ReadonlyMap<string, Raft>;
  /** Nodes cut off from every other node. */
  readonly isolated: Set<string> = new Set();
  /** Every message delivered so far, in delivery order. */
  readonly delivered: Message[] = [];
  /** Read states released to each node by its `ready()` batches, in order. */
  readonly readStates: Map<string, ReadState[]> = new Map();

  /**
   * Wires the nodes together and drains their first batch.
   *
   * @param nodes The nodes; ids must be distinct.
   */
  constructor(nodes: readonly Raft[]) {
    this.nodes = new Map(nodes.map((n) => [n.id, n]));
    for (const n of nodes) this.readStates.set(n.id, []);
    this.drain();
  }

  /**
   * Returns a node.
   *
   * @param id Its id.
   * @returns The node.
   * @throws {Error} If there is no such node (a bug in the test).
   */
  node(id: string): Raft {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`No node ${id} in the cluster`);
    return node;
  }

  /**
   * Runs `ready()` and `advance()` on every node until none has work.
   *
   * @returns The messages the batches carried, in order.
   */
  drain(): Message[] {
    const outbox: Message[] = [];
    for (const node of this.nodes.values()) {
      for (let i = 0; node.hasReady(); i++) {
        if (i === MAX_BATCHES) throw new Error(`${node.id} still has work after ${i} batches`);
        const rd = node.ready();
        outbox.push(...rd.messages);
        this.readStates.get(node.id)!.push(...rd.readStates);
        node.advance();
      }
    }
    return outbox;
  }

  /**
   * Steps each message on its recipient, unless either end is isolated.
   *
   * @param messages The messages, delivered in order.
   */
  deliver(messages: readonly Message[]): void {
    for (const m of messages) {
      if (this.isolated.has(m.from) || this.isolated.has(m.to)) continue;
      this.node(m.to).step(m);
      this.delivered.push(m);
    }
  }

  /**
   * Drains and delivers until no node has anything to send.
   *
   * @param hold Decides, when a message is about to be delivered, to keep it
   *   back instead.
   * @returns The messages held back, in order.
   * @throws {Error} If the cluster is still busy after a bounded number of rounds.
   */
  settle(hold?: (m: Message) => boolean): Message[] {
    const held: Message[] = [];
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const outbox = this.drain();
      if (outbox.length === 0) return held;
      for (const m of outbox) {
        if (hold?.(m)) held.push(m);
        else this.deliver([m]);
      }
    }
    throw new Error(`Cluster still busy after ${MAX_ROUNDS} rounds`);
  }

  /**
   * Ticks the given nodes once each, then settles.
   *
   * @param ids The nodes to tick (default: all).
   */
  tick(ids: readonly string[] = [...this.nodes.keys()]): void {
    for (const id of ids) this.node(id).tick();
    this.settle();
  }

  /**
   * Has `id` campaign, then settles.
   *
   * @param id The node to elect.
   * @returns The node, now leader.
   * @throws {Error} If it did not win.
   */
  elect(id: string): Raft {
    const node = this.node(id);
    node.campaign();
    this.settle();
    if (node.role !== "leader") throw new Error(`${id} did not win: it is ${node.role}`);
    return node;
  }
}
