/**
 * What the node simulator checks as it runs, against what nodes truly did:
 * what their disks hold (not what they believe), what they send, what they
 * report committed and applied. Each check throws a {@linkcode NodeViolation}
 * at the first event that breaks it.
 *
 * - A committed entry is durable on a majority of the voters (of the
 *   configuration in force at its index, or of a later one).
 * - Saved hard states: terms never go back; one vote per term.
 * - A granted vote leaves only once it is durable; a successful append
 *   answer only once its entries are (or they are committed already, or
 *   the answer's term is stale: see `sent`).
 * - Saved entries chain by hash (a corrupted entry never reaches a disk),
 *   and equal (index, term) means equal entry (log matching).
 * - One leader per term; a node's committed prefix never changes; the heads
 *   (applied index and hash) agree across nodes and lives.
 * - Snapshots of equal index hold equal bytes on every node.
 *
 * @module
 */

import {
  type Configuration,
  decodeConfig,
  type Entry,
  entryHash,
  GENESIS_HASH,
  type HardState,
  type Message,
  type Raft,
} from "../../../src/core/mod.ts";
import type { Snapshot } from "../../../src/storage/storage.ts";
import type { DurableView, DurableWatcher } from "./sim_storage.ts";

/** A broken property of the simulated cluster. */
export class NodeViolation extends Error {
  /**
   * Creates the violation.
   *
   * @param property Which property broke.
   * @param detail What was seen.
   */
  constructor(property: string, detail: string) {
    super(`${property}: ${detail}`);
    this.name = "NodeViolation";
  }
}

/** The checkers' view of one node. */
export interface CheckedNode {
  /** The node's id. */
  readonly id: string;
  /** Its disk's durable state. */
  readonly durable: DurableView;
  /** Its core, while a life runs. */
  readonly raft: Raft | null;
  /** Its head (applied index and hash), while a life runs. */
  head(): { index: number; head: string } | null;
}

/** The cluster-wide record of what happened, and the checks against it. */
export class NodeInvariants implements DurableWatcher {
  readonly #nodes: () => readonly CheckedNode[];
  /**
   * Hash of every committed index, as first seen committed. Sparse: a node
   * may commit, apply and compact within one event, and a snapshot may skip
   * a node past indexes no running node holds any more.
   */
  readonly committed = new Map<number, string>([[0, GENESIS_HASH]]);
  #maxCommitted = 0;
  /** Leader of each term. */
  readonly leaders = new Map<number, string>();
  /** Configurations committed, by the index of their entry, in index order. */
  readonly #configs: { index: number; config: Configuration }[] = [];
  readonly #byIndexTerm = new Map<string, string>();
  readonly #entries = new Map<string, Entry>();
  readonly #hard = new Map<string, HardState>();
  readonly #snapshots = new Map<number, Uint8Array>();
  /** Per node life, the commit index already checked against history. */
  readonly #checkedCommit = new Map<string, number>();
  /** Snapshots saved, entries refused for a bad hash are counted by the network. */
  snapshotsSaved = 0;

  /**
   * Creates the checkers.
   *
   * @param nodes Every node of the simulation, running or not.
   * @param bootstrap The configuration the cluster starts from.
   */
  constructor(nodes: () => readonly CheckedNode[], bootstrap: Configuration) {
    this.#nodes = nodes;
    this.#configs.push({ index: 0, config: bootstrap });
  }

  /** Highest index known committed. */
  get maxCommitted(): number {
    return this.#maxCommitted;
  }

  /** The committed configuration in force now. */
  get config(): Configuration {
    return this.#configs.at(-1)!.config;
  }

  // ------------------------------------------------------------ disks

  /**
   * Checks a save that reached a disk: terms and votes, the hash chain, log
   * matching.
   *
   * @param node The node.
   * @param hardState The hard state saved, if any.
   * @param entries The entries saved.
   */
  saved(node: string, hardState: HardState | null, entries: readonly Entry[]): void {
    if (hardState !== null) {
      const before = this.#hard.get(node);
      if (before !== undefined) {
        if (hardState.term < before.term) {
          throw new NodeViolation(
            "monotonic terms",
            `${node} saved term ${hardState.term} after ${before.term}`,
          );
        }
        if (
          hardState.term === before.term && before.vote !== null && hardState.vote !== before.vote
        ) {
          throw new NodeViolation(
            "one vote per term",
            `${node} saved a vote for ${hardState.vote} in term ${hardState.term} after one for ${before.vote}`,
          );
        }
      }
      this.#hard.set(node, hardState);
    }
    const durable = this.#durableOf(node);
    for (const e of entries) {
      const prev = e.index === entries[0]!.index
        ? durable === undefined ? undefined : hashBefore(durable, e.index, entries)
        : entries[entries.indexOf(e) - 1]!.hash;
      if (prev !== undefined && entryHash(prev, e) !== e.hash) {
        throw new NodeViolation(
          "hash chain",
          `${node} saved entry ${e.index} whose hash does not match its bytes`,
        );
      }
      const key = `${e.index}:${e.term}`;
      const seen = this.#byIndexTerm.get(key);
      if (seen === undefined) this.#byIndexTerm.set(key, e.hash);
      else if (seen !== e.hash) {
        throw new NodeViolation(
          "log matching",
          `${node} saved another entry at index ${e.index} term ${e.term}`,
        );
      }
      this.#entries.set(e.hash, e);
    }
  }

  /**
   * Checks a snapshot that reached a disk: equal indexes, equal bytes.
   *
   * @param node The node.
   * @param snapshot The snapshot.
   */
  snapshotSaved(node: string, snapshot: Snapshot): void {
    this.snapshotsSaved++;
    const { index, hash } = snapshot.meta;
    const known = this.committed.get(index);
    if (known !== undefined && known !== hash) {
      throw new NodeViolation(
        "snapshot of committed state",
        `${node} saved a snapshot at ${index} whose head is not the committed entry`,
      );
    }
    const seen = this.#snapshots.get(index);
    if (seen === undefined) this.#snapshots.set(index, snapshot.data);
    else if (!equalBytes(seen, snapshot.data)) {
      throw new NodeViolation(
        "state machine safety",
        `${node} saved a snapshot at ${index} whose state differs from another node's`,
      );
    }
  }

  // ------------------------------------------------------------ messages

  /**
   * Checks a message as it leaves: what it acknowledges must be durable.
   *
   * @param m The message.
   */
  sent(m: Message): void {
    if (m.type === "voteResponse" && m.granted && !m.preVote) {
      const hard = this.#durableOf(m.from)?.hardState;
      if (
        hard === undefined || hard.term < m.term || (hard.term === m.term && hard.vote !== m.to)
      ) {
        throw new NodeViolation(
          "vote durable before sent",
          `${m.from} granted its term-${m.term} vote to ${m.to} with ${JSON.stringify(hard)} saved`,
        );
      }
    }
    if (m.type === "appendResponse" && m.success && m.index > this.maxCommitted) {
      const durable = this.#durableOf(m.from);
      // An answer of a term older than the one the sender has saved is stale:
      // one batch held it and a newer leader's entries, which replaced what it
      // answers for before the batch was sent (as a delayed message outlives
      // what it says). Its leader can commit nothing with it: the newer
      // leader's log lacks those entries, so none of its voters (a majority)
      // held them when voting, and none answers the older term since.
      if (durable !== undefined && m.term < durable.hardState.term) return;
      const holds = durable !== undefined &&
        (durable.hashAt(m.index) !== undefined || (durable.snapshot?.index ?? 0) >= m.index);
      if (!holds) {
        throw new NodeViolation(
          "append durable before acknowledged",
          `${m.from} acknowledged index ${m.index} (term ${m.term}) that its disk does not hold`,
        );
      }
    }
  }

  // ------------------------------------------------------------ after each event

  /**
   * Checks every running node after an event: leaders, committed prefixes,
   * durability of what is committed, heads.
   *
   * @param lives The running nodes, with the key of their life.
   */
  afterEvent(lives: readonly { life: string; node: CheckedNode }[]): void {
    for (const { life, node } of lives) {
      const raft = node.raft;
      if (raft === null) continue;
      if (raft.role === "leader") {
        const previous = this.leaders.get(raft.term);
        if (previous !== undefined && previous !== node.id) {
          throw new NodeViolation(
            "election safety",
            `term ${raft.term} has leaders ${previous} and ${node.id}`,
          );
        }
        this.leaders.set(raft.term, node.id);
      }
      this.#checkCommitted(life, node, raft);
      const head = node.head();
      if (head !== null && head.index > 0) {
        const known = this.committed.get(head.index);
        if (known !== undefined && known !== head.head) {
          throw new NodeViolation(
            "equal heads",
            `${node.id} reports head ${head.head.slice(0, 8)} at ${head.index}, committed is ${
              known.slice(0, 8)
            } (its log: snapshot ${raft.log.snapshot.index}, applied ${raft.log.applied}, commit ${raft.log.committed})`,
          );
        }
      }
    }
  }

  #checkCommitted(life: string, node: CheckedNode, raft: Raft): void {
    const log = raft.log;
    const from = this.#checkedCommit.get(life) ?? 0;
    const to = log.committed;
    // Every configuration committed in the range is recorded before any entry
    // of it is checked: a change just after an entry may be what made its
    // quorum (and is a configuration "in force later").
    const fresh: { index: number; hash: string }[] = [];
    for (let i = from + 1; i <= to; i++) {
      const hash = log.hash(i) ?? (log.snapshot.index === i ? log.snapshot.hash : undefined) ??
        this.#committedElsewhere(i);
      if (hash === undefined) continue;
      const known = this.committed.get(i);
      if (known === undefined) {
        this.committed.set(i, hash);
        this.#maxCommitted = Math.max(this.#maxCommitted, i);
        const entry = log.entry(i) ?? this.#entries.get(hash);
        // A configuration is in force from its own entry on (thesis §4.1).
        if (entry?.kind === "config") {
          this.#configs.push({ index: i, config: decodeConfig(entry.data) });
          this.#configs.sort((a, b) => a.index - b.index);
        }
        // The bootstrap entry is committed by fiat on every founder, before any save.
        if (entry?.proposer !== "") fresh.push({ index: i, hash });
      } else if (known !== hash) {
        throw new NodeViolation(
          "committed entry changed",
          `${node.id} (term ${raft.term}) holds another entry committed at ${i}`,
        );
      }
    }
    for (const { index, hash } of fresh) this.#checkDurableOnMajority(index, hash, raft);
    this.#checkedCommit.set(life, Math.max(from, to));
  }

  /** The hash another running node holds committed at `index`, if one does. */
  #committedElsewhere(index: number): string | undefined {
    for (const n of this.#nodes()) {
      const log = n.raft?.log;
      if (log === undefined || log.committed < index) continue;
      const hash = log.hash(index);
      if (hash !== undefined) return hash;
    }
    return undefined;
  }

  /** A newly committed entry must be on the disks of a majority of voters. */
  #checkDurableOnMajority(index: number, hash: string, raft: Raft): void {
    const holders = new Set<string>();
    for (const n of this.#nodes()) {
      const d = n.durable;
      const snap = d.snapshot;
      if (d.hashAt(index) === hash || (snap !== null && snap.index >= index)) holders.add(n.id);
    }
    const candidates: Configuration[] = [raft.log.config().config];
    // The configuration in force at the leader's snapshot, when it covers the
    // entry: a change between the two may have been committed, applied and
    // compacted within one event, before any checker saw it committed.
    const snapshot = raft.log.snapshot;
    if (snapshot.index >= index) candidates.push(snapshot.config);
    let inForce = this.#configs[0]!.config;
    for (const c of this.#configs) if (c.index <= index) inForce = c.config;
    candidates.push(inForce);
    for (const c of this.#configs) if (c.index > index) candidates.push(c.config);
    const ok = candidates.some((c) => {
      const voters = c.members.filter((m) => m.voter).map((m) => m.id);
      return 2 * voters.filter((v) => holders.has(v)).length > voters.length;
    });
    if (!ok) {
      throw new NodeViolation(
        "committed is durable",
        `entry ${index} committed by ${raft.id} is durable only on [${[...holders].join(",")}]`,
      );
    }
  }

  #durableOf(node: string): DurableView | undefined {
    return this.#nodes().find((n) => n.id === node)?.durable;
  }
}

/** The durable hash just before `index`, where a batch starting at `index` goes. */
function hashBefore(
  durable: DurableView,
  index: number,
  _entries: readonly Entry[],
): string | undefined {
  const prev = index - 1;
  if (prev === 0) return GENESIS_HASH;
  if (durable.snapshot?.index === prev) return durable.snapshot.hash;
  return durable.hashAt(prev);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
