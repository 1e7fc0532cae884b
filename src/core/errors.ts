/**
 * Why the core refused an input, in Raft's words. The core knows nothing of
 * HTTP or of the wire contract's codes: the driver turns these into the
 * errors its callers see (`src/errors.ts`).
 *
 * @module
 */

/** Base class of every refusal of the Raft core. */
export class RaftError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was refused, and why.
   */
  constructor(message: string) {
    super(message);
    this.name = "RaftError";
  }
}

/**
 * A proposal, read or transfer was sent to a node that is not the leader.
 * `leader` is the id of the leader this node knows of, or null.
 */
export class NotLeaderError extends RaftError {
  /** The leader this node follows, or null when none is known. */
  readonly leader: string | null;

  /**
   * Creates the error.
   *
   * @param action What was attempted, e.g. "propose".
   * @param leader The known leader id, or null.
   */
  constructor(action: string, leader: string | null) {
    super(
      `Cannot ${action} as this node is not the leader: ` +
        (leader === null ? "no leader is known" : `leader is ${leader}`),
    );
    this.name = "NotLeaderError";
    this.leader = leader;
  }
}

/**
 * The leader cannot take the proposal now (a leadership transfer is under
 * way, or the uncommitted log is over its bound). Nothing was appended.
 */
export class ProposalDroppedError extends RaftError {
  /**
   * Creates the error.
   *
   * @param message Why the proposal was dropped.
   */
  constructor(message: string) {
    super(message);
    this.name = "ProposalDroppedError";
  }
}

/** Why a membership change is not allowed (see {@linkcode MembershipError}). */
export type MembershipProblem =
  /** The node to add is a member already. */
  | "already_member"
  /** The node to change, remove or hand leadership to is not a member (or not a voter). */
  | "not_member"
  /** The change is malformed: promoting a read-only member, removing the last voter. */
  | "not_allowed";

/** A membership change or leadership transfer that the configuration does not allow. */
export class MembershipError extends RaftError {
  /** Which rule refused it. */
  readonly problem: MembershipProblem;

  /**
   * Creates the error.
   *
   * @param problem Which rule refused the change.
   * @param message The change and the rule, for people.
   */
  constructor(problem: MembershipProblem, message: string) {
    super(message);
    this.name = "MembershipError";
    this.problem = problem;
  }
}
