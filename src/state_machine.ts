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
 * A command is encoded once, on the node that takes the client's request:
 * `validate` checks it and `encode` turns it into the bytes that are
 * forwarded, hashed, logged, replicated and stored; on every node `decode`
 * turns those bytes back into the command that `apply` gets. Without
 * `encode` and `decode`, commands travel as UTF-8 JSON.
 *
 * Contract: `decode` and `apply` must be deterministic (the same bytes in
 * the same order give the same state and results on every node) and must
 * not depend on clocks, randomness or I/O. To refuse a command, `validate`
 * or `apply` throws a `RejectedError`; a refusal from `apply` (or any error
 * from `decode`) happens on every node alike, so the entry stays in the log
 * without effect. Any other error from `apply` is a bug: the node stops
 * rather than diverge.
 *
 * @typeParam Command The commands it applies.
 * @typeParam Result What applying one returns to the client (a JSON value).
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
   * to log (possibly normalised). Runs on the node that takes the request,
   * against that node's applied state, which may trail the leader's: a rule
   * that depends on the state must be checked again by `apply`. Throw
   * `RejectedError` to refuse (HTTP 422).
   */
  validate?(command: unknown): Command;
  /** Encodes a validated command as the bytes to log. Default: UTF-8 JSON. */
  encode?(command: Command): Uint8Array;
  /**
   * Decodes logged bytes into the command to apply. Default: UTF-8 JSON.
   * Must accept whatever `encode` made; bytes it cannot decode (an entry
   * that bypassed `validate`) should throw, which refuses the entry on every
   * node alike.
   */
  decode?(data: Uint8Array): Command;
  /** Applies a committed command and returns the client's result. */
  apply(command: Command, entry: EntryMeta): Result;
  /** Answers a read against the current state; never changes it. */
  query?(query: Query): Answer;
  /**
   * Serialises the whole state (for snapshots and new members). The node
   * applies nothing until the promise, if any, settles.
   */
  snapshot(): Uint8Array | Promise<Uint8Array>;
  /**
   * Optional: captures the state when called and serialises it while the
   * node goes on applying, so that a large state does not hold up writes for
   * as long as serialising it takes. The bytes must be what `snapshot()`
   * would have returned at the call, whatever `apply` runs before the
   * promise settles. The node uses it for the snapshots it takes every
   * `snapshotEvery` entries.
   */
  snapshotInBackground?(): Promise<Uint8Array>;
  /** Replaces the whole state with a snapshot's. */
  restore(data: Uint8Array): void | Promise<void>;
  /**
   * Tells whether `restore(data)` would succeed, without changing the
   * state: a node checks a snapshot sent by its leader before it replaces
   * its log, so that a snapshot it cannot restore (a forgery, a bug) is
   * refused instead of stopping the node. Synchronous and deterministic.
   * Without it, only the node's own framing of the snapshot is checked.
   */
  checkSnapshot?(data: Uint8Array): boolean;
}
