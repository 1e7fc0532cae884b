/**
 * The state machine of a simulated node: the built-in key-value machine,
 * watched and slowed down. It checks that one node life applies entries in
 * strictly increasing index order (each at most once) and that a restore
 * never moves it backwards, and its snapshots are asynchronous, finishing
 * when the scheduler says: a real application's `snapshot()` may take time,
 * and the node must take messages meanwhile.
 *
 * Its snapshot is the key-value snapshot behind the index of the last
 * command applied (8 bytes), so a restore knows where it stands. Half the
 * lives offer it in the background too, captured at the call and handed
 * over when the scheduler says, while the node goes on applying.
 *
 * @module
 */

import type { EntryMeta, StateMachine } from "../../../src/state_machine.ts";
import {
  type KvAnswer,
  type KvCommand,
  type KvQuery,
  type KvResult,
  KvStateMachine,
} from "../../../src/kv/state_machine.ts";
import type { SimScheduler } from "./scheduler.ts";

/** Where a state machine reports what no node may do. */
export type ApplyViolation = (detail: string) => void;

/** How slow a simulated state machine's snapshots are. */
export interface SnapshotTiming {
  /** Probability that a snapshot finishes at once (in a microtask). */
  readonly immediateRate: number;
  /** Largest snapshot time otherwise, ms. */
  readonly maxMs: number;
}

/** The key-value machine of one node life, watched. */
export class SimStateMachine implements StateMachine<KvCommand, KvResult, KvQuery, KvAnswer> {
  readonly #kv = new KvStateMachine();
  readonly #node: string;
  readonly #life: string;
  readonly #scheduler: SimScheduler;
  readonly #timing: SnapshotTiming;
  readonly #violation: ApplyViolation;
  readonly #draw: () => number;
  /** Index of the last command applied (or restored to); -1 before the first. */
  #last = -1;
  /** Commands applied in this life. */
  applied = 0;

  /**
   * Creates the state machine of one node life.
   *
   * @param options Who it belongs to, the scheduler, how slow snapshots are,
   *   where violations go, and a seeded draw in `[0, 1)`.
   */
  constructor(options: {
    node: string;
    life: string;
    scheduler: SimScheduler;
    timing: SnapshotTiming;
    violation: ApplyViolation;
    draw: () => number;
    background: boolean;
  }) {
    this.#node = options.node;
    this.#life = options.life;
    this.#scheduler = options.scheduler;
    this.#timing = options.timing;
    this.#violation = options.violation;
    this.#draw = options.draw;
    if (options.background) {
      this.snapshotInBackground = () => Promise.resolve(this.snapshot());
    }
  }

  /**
   * Set on lives that snapshot in the background: the same capture as
   * {@linkcode SimStateMachine.snapshot}, while the node goes on applying.
   */
  snapshotInBackground?: () => Promise<Uint8Array>;

  /** Index of the last command applied or restored to, -1 before any. */
  get lastIndex(): number {
    return this.#last;
  }

  /**
   * Checks a command as the key-value machine does.
   *
   * @param command The client's command.
   * @returns The command to log.
   */
  validate(command: unknown): KvCommand {
    return this.#kv.validate(command);
  }

  /**
   * Encodes a command.
   *
   * @param command The command.
   * @returns Its bytes.
   */
  encode(command: KvCommand): Uint8Array {
    return this.#kv.encode(command);
  }

  /**
   * Decodes a command.
   *
   * @param data Its bytes.
   * @returns The command.
   */
  decode(data: Uint8Array): KvCommand {
    return this.#kv.decode(data);
  }

  /**
   * Applies a command, checking that this life never applies an index twice
   * or goes back.
   *
   * @param command The command.
   * @param entry The entry that carried it.
   * @returns The key-value result.
   */
  apply(command: KvCommand, entry: EntryMeta): KvResult {
    if (entry.index <= this.#last) {
      this.#violation(
        `${this.#life} applied entry ${entry.index} after ${this.#last} (applied twice or out of order)`,
      );
    }
    this.#last = entry.index;
    this.applied++;
    return this.#kv.apply(command, entry);
  }

  /**
   * Answers a read.
   *
   * @param query The query.
   * @returns The answer.
   */
  query(query: KvQuery): KvAnswer {
    return this.#kv.query(query);
  }

  /**
   * Snapshots the state at once and hands it over when the scheduler says.
   *
   * @returns The snapshot.
   */
  snapshot(): Uint8Array | Promise<Uint8Array> {
    const data = this.#frame();
    if (this.#draw() < this.#timing.immediateRate) return data;
    return new Promise<Uint8Array>((resolve) => {
      this.#scheduler.at(
        this.#draw() * this.#timing.maxMs,
        `sm snapshot ${this.#node}`,
        () => resolve(data),
        { owner: this.#life, holder: this.#node },
      );
    });
  }

  /**
   * Replaces the state with a snapshot's; within a life, never backwards.
   *
   * @param data A snapshot of this machine.
   */
  restore(data: Uint8Array): void {
    const index = Number(new DataView(data.buffer, data.byteOffset, 8).getBigInt64(0));
    if (this.#last >= 0 && index < this.#last) {
      this.#violation(`${this.#life} restored a snapshot at ${index} after applying ${this.#last}`);
    }
    this.#last = Math.max(this.#last, index);
    this.#kv.restore(data.subarray(8));
  }

  /**
   * Tells whether a snapshot can be restored.
   *
   * @param data Snapshot bytes.
   * @returns True for a framed key-value snapshot.
   */
  checkSnapshot(data: Uint8Array): boolean {
    return data.byteLength >= 8 && this.#kv.checkSnapshot(data.subarray(8));
  }

  /** The key-value snapshot alone, to compare states across nodes. */
  kvSnapshot(): Uint8Array {
    return this.#kv.snapshot();
  }

  #frame(): Uint8Array {
    const kv = this.#kv.snapshot();
    const out = new Uint8Array(8 + kv.length);
    new DataView(out.buffer).setBigInt64(0, BigInt(this.#last));
    out.set(kv, 8);
    return out;
  }
}
