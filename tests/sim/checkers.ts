/**
 * Raft's safety properties (paper Figure 3), checked as the simulation runs.
 * Each check sees one event (a node became leader, persisted entries,
 * committed, applied, released a read) and compares it with what the whole
 * cluster has done so far. The hash chain makes log matching cheap: equal
 * (index, term) must mean equal hash, and equal hash means equal prefix.
 *
 * @module
 */

import { strictEqual } from "node:assert/strict";
import { type Entry, entryHash, GENESIS_HASH, type Raft } from "../../src/core/mod.ts";

/** A broken safety property, with enough detail to debug it. */
export class Violation extends Error {
  /**
   * Creates the violation.
   *
   * @param property Which property broke.
   * @param detail What was seen.
   */
  constructor(property: string, detail: string) {
    super(`${property}: ${detail}`);
    this.name = "Violation";
  }
}

/** Cluster-wide record of what happened, and the checks against it. */
export class SafetyChecker {
  /** Leader of each term. */
  readonly leaders = new Map<number, string>();
  /** Hash of every (index, term) ever persisted by any node. */
  readonly #byIndexTerm = new Map<string, string>();
  /** Hash of every committed index, as first seen committed. */
  readonly committed: string[] = [GENESIS_HASH];
  /** Entries already checked to chain to a given previous hash (entries are shared objects here). */
  readonly #chained = new WeakMap<Entry, string>();
  /** Hash of every applied index, as first applied. */
  readonly #applied: string[] = [GENESIS_HASH];

  readonly #committedIndex = new Map<string, number>();

  /** The index an entry committed at, if it did. */
  committedIndex(hash: string): number | undefined {
    return this.#committedIndex.get(hash);
  }

  /** Highest index any node has reported committed. */
  get maxCommitted(): number {
    return this.committed.length - 1;
  }

  /** Election safety: at most one leader per term. Leader completeness too. */
  becameLeader(raft: Raft): void {
    const term = raft.term;
    const previous = this.leaders.get(term);
    if (previous !== undefined && previous !== raft.id) {
      throw new Violation("election safety", `term ${term} has leaders ${previous} and ${raft.id}`);
    }
    this.leaders.set(term, raft.id);
    const snap = raft.log.snapshot;
    if (
      snap.index > 0 && snap.index <= this.maxCommitted && snap.hash !== this.committed[snap.index]
    ) {
      throw new Violation(
        "leader completeness",
        `${raft.id} leads term ${term} from a foreign snapshot at ${snap.index}`,
      );
    }
    for (let i = snap.index + 1; i <= this.maxCommitted; i++) {
      if (raft.log.hash(i) !== this.committed[i]) {
        throw new Violation(
          "leader completeness",
          `${raft.id} leads term ${term} without committed entry ${i}`,
        );
      }
    }
  }

  /**
   * Log matching: each persisted entry chains to the node's previous entry,
   * and any two entries with the same index and term are the same entry.
   */
  persisted(node: string, prevHash: string, entries: readonly Entry[]): void {
    let prev = prevHash;
    for (const e of entries) {
      if (this.#chained.get(e) !== prev) {
        if (entryHash(prev, e) !== e.hash) {
          throw new Violation(
            "hash chain",
            `${node} persisted entry ${e.index} that does not chain`,
          );
        }
        this.#chained.set(e, prev);
      }
      prev = e.hash;
      const key = `${e.index}:${e.term}`;
      const seen = this.#byIndexTerm.get(key);
      if (seen === undefined) this.#byIndexTerm.set(key, e.hash);
      else if (seen !== e.hash) {
        throw new Violation(
          "log matching",
          `${node} has another entry at index ${e.index} term ${e.term}`,
        );
      }
    }
  }

  /** Committed entries are never lost or changed: a node's log up to its commit index agrees with history. */
  committedUpTo(raft: Raft, from: number): void {
    const to = raft.log.committed;
    for (let i = Math.max(1, from + 1); i <= to; i++) {
      const hash = raft.log.hash(i);
      if (hash === undefined) continue;
      const known = this.committed[i];
      if (known === undefined) {
        if (i !== this.committed.length) {
          throw new Violation(
            "commit order",
            `${raft.id} committed ${i} past unknown ${this.committed.length}`,
          );
        }
        this.committed.push(hash);
        this.#committedIndex.set(hash, i);
      } else if (known !== hash) {
        throw new Violation(
          "committed entry changed",
          `${raft.id} has another entry committed at ${i}`,
        );
      }
    }
  }

  /** State machine safety: all nodes apply the same entry at each index, in order; heads agree. */
  applied(node: string, expectedIndex: number, entry: Entry): void {
    if (entry.index !== expectedIndex) {
      throw new Violation(
        "apply order",
        `${node} applied ${entry.index}, expected ${expectedIndex}`,
      );
    }
    const known = this.#applied[entry.index];
    if (known === undefined) this.#applied[entry.index] = entry.hash;
    else if (known !== entry.hash) {
      throw new Violation(
        "state machine safety",
        `${node} applied another entry (head) at ${entry.index}`,
      );
    }
    const committed = this.committed[entry.index];
    if (committed !== undefined && committed !== entry.hash) {
      throw new Violation(
        "state machine safety",
        `${node} applied an uncommitted entry at ${entry.index}`,
      );
    }
  }

  /**
   * Membership safety when a configuration entry commits: one voter changed
   * at most, the holders are a majority of the new voters, and they meet
   * every majority of the old voters (at least half of them).
   */
  configCommitted(
    index: number,
    c: {
      changed: number;
      oldVoters: number;
      newVoters: number;
      oldHolders: number;
      newHolders: number;
    },
  ): void {
    if (c.changed > 1) {
      throw new Violation("single-server change", `config ${index} changes ${c.changed} voters`);
    }
    if (2 * c.newHolders <= c.newVoters) {
      throw new Violation(
        "config commit",
        `config ${index} committed on ${c.newHolders} of ${c.newVoters} new voters`,
      );
    }
    if (2 * c.oldHolders < c.oldVoters) {
      throw new Violation(
        "config commit",
        `config ${index} committed on ${c.oldHolders} of ${c.oldVoters} old voters`,
      );
    }
  }

  /** A leader's log holds at most one configuration entry that is not known committed. */
  oneChangeAtATime(raft: Raft): void {
    let pending = 0;
    for (
      let i = Math.max(raft.log.committed, this.maxCommitted) + 1;
      i <= raft.log.lastIndex();
      i++
    ) {
      if (raft.log.entry(i)?.kind === "config") pending++;
    }
    if (pending > 1) {
      throw new Violation(
        "single-server change",
        `${raft.id} has ${pending} uncommitted configurations`,
      );
    }
  }

  /**
   * A snapshot a node installs stands for committed history: its hash is
   * the committed head at its index, and its data is the state there.
   */
  snapshotInstalled(node: string, meta: { index: number; hash: string }, data: Uint8Array): void {
    if (this.committed[meta.index] !== meta.hash) {
      throw new Violation(
        "snapshot",
        `${node} installed a snapshot at ${meta.index} that is not the committed head`,
      );
    }
    const want = simSnapshotData(meta.index);
    if (data.length !== want.length || data.some((b, i) => b !== want[i])) {
      throw new Violation(
        "snapshot",
        `${node} installed snapshot data of another index than ${meta.index}`,
      );
    }
  }

  /** Linearizable reads: a read point covers every commit known before the read began. */
  readReleased(node: string, index: number, mustSee: number): void {
    if (index < mustSee) {
      throw new Violation("linearizable read", `${node} got read index ${index} below ${mustSee}`);
    }
  }
}

/**
 * The simulated state machine's snapshot at `index`: it names the index, and
 * its length varies (up to a few kB) so that transfers take many chunks.
 */
export function simSnapshotData(index: number): Uint8Array {
  return new TextEncoder().encode(`${index}|${"s".repeat((index * 37) % 3000)}`);
}

/** What both simulators report of one seed, as far as passing it goes. */
export interface SeedOutcome {
  /** The seed. */
  readonly seed: number;
  /** The safety violation found, if any. */
  readonly violation: string | null;
  /** Why the cluster made no progress when it should have, if so. */
  readonly livenessFailure: string | null;
}

/**
 * Fails a test with the command that replays the seed when it found a
 * violation or a liveness failure.
 *
 * @param result The seed's outcome.
 * @param replay The `deno task sim` command line that replays it.
 * @throws {AssertionError} When the seed did not pass.
 */
export function assertSeedClean(result: SeedOutcome, replay: string): void {
  strictEqual(
    result.violation,
    null,
    `seed ${result.seed}: ${result.violation}\n  replay: ${replay}`,
  );
  strictEqual(
    result.livenessFailure,
    null,
    `seed ${result.seed}: ${result.livenessFailure}\n  replay: ${replay}`,
  );
}
