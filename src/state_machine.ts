/**
 * The state machine an embedding program supplies, and how the node hands it
 * committed commands.
 *
 * @module
 */

/** What the state machine learns about the entry it applies. */
export interface EntryMeta {
  /** Log index of the entry. */
  readonly index: number;
  /** Term of the leader that created it. */
  readonly term: number;
  /** The entry's hash: its cluster-wide transaction id. */
  readonly id: string;
  /** Id of the node that created the entry. */
  readonly proposer: string;
  /** Proposal time in ms on the proposer's clock (informational only). */
  readonly timeMs: number;
}

/**
 * A deterministic state machine fed by the replicated log.
 *
 * Contract: `apply` must be deterministic (same commands in the same order
 * give the same state and results on every node) and must not depend on
 * clocks, randomness or I/O. To refuse a command, `validate` or `apply`
 * throws a `RejectedError`; a refusal from `apply` happens on every
 * node alike, so the entry stays in the log without effect. Any other error
 * from `apply` is a bug: the node stops rather than diverge.
 *
 * @typeParam Command The commands it applies (JSON values).
 * @typeParam Result What applying one returns to the client (JSON value).
 * @typeParam Query What `query` takes.
 * @typeParam Answer What `query` returns.
 */
export interface StateMachine<
  Command = unknown,
  Result = unknown,
  Query = unknown,
  Answer = unknown,
> {
  /**
   * Checks a client's command before it is proposed, and returns the command
   * to log (possibly normalised). Runs on the leader against its applied
   * state; throw `RejectedError` to refuse (HTTP 422).
   */
  validate?(command: unknown): Command;
  /** Applies a committed command and returns the client's result. */
  apply(command: Command, entry: EntryMeta): Result;
  /** Answers a read against the current state; never changes it. */
  query?(query: Query): Answer;
  /** Serialises the whole state (for snapshots and new members). */
  snapshot(): Uint8Array | Promise<Uint8Array>;
  /** Replaces the whole state with a snapshot's. */
  restore(data: Uint8Array): void | Promise<void>;
}
