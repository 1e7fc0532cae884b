/**
 * Leader election (thesis §3.4): the role changes (`becomeFollower`,
 * `becomePreCandidate`, `becomeCandidate`, `becomeLeader`), campaigns with
 * their PreVote round (§9.6), granting votes under the election restriction
 * (§3.6.1), counting them, and the election timeout, ranked by seniority.
 *
 * @module
 */

import { assert } from "./assert.ts";
import { voterIds } from "./config.ts";
import { handleAppend, handleHeartbeat, handleSnapshot } from "./follower.ts";
import type { Message, VoteMessage, VoteResponseMessage } from "./messages.ts";
import { randomInt } from "./prng.ts";
import { tallyVotes } from "./quorum.ts";
import { syncProgress } from "./replication.ts";
import { appendOwn, currentVoters, isVoter, type RaftState, send } from "./state.ts";

/**
 * Clears what belongs to one role in one term: the leader, the timers, the
 * votes and the leader's bookkeeping. A new term also clears the vote and
 * any snapshot half received (§3.3: one vote per term).
 *
 * @param r The node's state.
 * @param term The term to be in: the current one or a later one.
 * @param leader The leader to follow, if known (default none).
 */
export function reset(r: RaftState, term: number, leader: string | null = null): void {
  if (term !== r.term) {
    r.term = term;
    r.vote = null;
    r.receiver.reset();
  }
  // Before the draw below: seniority leaves a known leader out of it.
  r.leader = leader;
  r.electionElapsed = 0;
  r.heartbeatElapsed = 0;
  resetRandomizedElectionTimeout(r);
  r.transferee = null;
  r.votes.clear();
  r.progress.clear();
  r.wantsAppend.clear();
  r.reads.reset();
  r.uncommittedBytes = 0;
}

/**
 * Becomes a follower of `leader` in `term` (§3.3: any node that sees a
 * higher term, or a leader of its own term, follows).
 *
 * @param r The node's state.
 * @param term The term to follow in.
 * @param leader The leader, or null while unknown.
 */
export function becomeFollower(r: RaftState, term: number, leader: string | null): void {
  reset(r, term, leader);
  r.role = "follower";
}

/**
 * Becomes a pre-candidate: it asks whether it could win before it disturbs
 * anyone's term (thesis §9.6).
 *
 * @param r The node's state, not a leader's.
 * @throws {AssertionError} On a leader.
 */
function becomePreCandidate(r: RaftState): void {
  assert(r.role !== "leader", "A leader cannot become a pre-candidate");
  // Neither the term nor the vote changes until PreVote succeeds.
  r.votes.clear();
  r.leader = null;
  r.role = "preCandidate";
  resetRandomizedElectionTimeout(r);
}

/**
 * Becomes a candidate in the next term, voting for itself (§3.4).
 *
 * @param r The node's state, not a leader's.
 * @throws {AssertionError} On a leader.
 */
function becomeCandidate(r: RaftState): void {
  assert(r.role !== "leader", "A leader cannot become a candidate");
  reset(r, r.term + 1);
  r.vote = r.id;
  r.role = "candidate";
}

/**
 * Becomes the leader of the current term (§3.4) and appends a no-op.
 *
 * @param r The state of a candidate that won a majority.
 * @throws {AssertionError} On anything but a candidate.
 */
function becomeLeader(r: RaftState): void {
  assert(r.role === "candidate", "Only a candidate can become leader");
  reset(r, r.term);
  r.role = "leader";
  r.leader = r.id;
  syncProgress(r);
  // Commit an entry of the new term at once: earlier terms' entries commit
  // only through it (§5.4.2), and ReadIndex waits for it (§6.4).
  appendOwn(r, "noop", new Uint8Array(0));
}

/**
 * Whether this node may start elections: it votes in the configuration in
 * force, or that configuration removes it but is not committed yet. A
 * leader that removed itself and lost leadership before the removal
 * committed may hold the only up-to-date log; it must be able to win
 * (counting only the new voters), commit the removal and step down, or no
 * one could ever be elected (thesis §4.2.2).
 *
 * @param r The node's state.
 * @returns Whether it may campaign.
 */
function isPromotable(r: RaftState): boolean {
  if (isVoter(r)) return true;
  if (r.log.config().index <= r.log.committed) return false;
  return voterIds(r.log.previousConfig() ?? { members: [] }).includes(r.id);
}

/**
 * Starts a campaign: a PreVote round first (when enabled), a real election
 * once that succeeds, or straight away for a leadership transfer, whose
 * vote requests alone may override leader leases.
 *
 * @param r The node's state, not a leader's.
 * @param kind `preVote` on an election timeout (a real election when PreVote
 *   is off), `election` once PreVote won, `transfer` on a leader's request.
 */
export function campaign(r: RaftState, kind: "preVote" | "election" | "transfer"): void {
  if (!isPromotable(r)) return;
  const pre = kind === "preVote" && r.preVote;
  if (pre) becomePreCandidate(r);
  else becomeCandidate(r);
  const term = pre ? r.term + 1 : r.term;
  const transfer = kind === "transfer";
  r.votes.set(r.id, true);
  if (tally(r) === "won") {
    if (pre) campaign(r, "election");
    else becomeLeader(r);
    return;
  }
  for (const id of currentVoters(r)) {
    if (id === r.id) continue;
    send(r, {
      type: "vote",
      to: id,
      term,
      preVote: pre,
      transfer,
      lastIndex: r.log.lastIndex(),
      lastTerm: r.log.lastTerm(),
    });
  }
}

/**
 * Counts the votes of this campaign against the voters in force.
 *
 * @param r The candidate's state.
 * @returns "won" with a majority granted, "lost" with a majority refused,
 *   else "pending".
 */
export function tally(r: RaftState): "won" | "lost" | "pending" {
  return tallyVotes(currentVoters(r), r.votes);
}

/**
 * Answers a vote request (§3.4) or a PreVote (§9.6): granted to a candidate
 * whose log is at least as up to date as ours (§3.6.1), if this node has
 * voted for it already, or for no one and knows no leader. A PreVote for a
 * later term may be granted whatever our vote, since it changes nothing. A
 * follower that refuses a PreVote because its own log is newer, and has
 * heard no leader for an election timeout, campaigns at once.
 *
 * @param r The voter's state; `step()` has already applied the term rules.
 * @param m The request.
 */
export function handleVote(r: RaftState, m: VoteMessage): void {
  const canVote = r.vote === m.from ||
    (r.vote === null && r.leader === null) ||
    (m.preVote && m.term > r.term);
  const upToDate = r.log.isUpToDate(m.lastIndex, m.lastTerm);
  if (canVote && upToDate) {
    // A granted answer carries the term asked about, so a pre-candidate can
    // tell it from answers to an older round.
    send(r, {
      type: "voteResponse",
      to: m.from,
      term: m.term,
      preVote: m.preVote,
      granted: true,
    });
    if (!m.preVote) {
      r.electionElapsed = 0;
      r.vote = m.from;
    }
  } else {
    send(r, {
      type: "voteResponse",
      to: m.from,
      term: r.term,
      preVote: m.preVote,
      granted: false,
    });
    // The first to time out may be a follower that missed the lost
    // leader's last entries, which no majority can elect. This voter holds
    // a newer log and has heard no leader for the minimum election timeout
    // either: it brings its campaign forward. Timing only; PreVote still
    // asks the others first.
    if (m.preVote && !upToDate && r.role === "follower" && leaseExpired(r)) {
      hurryCampaign(r, m.from);
    }
  }
}

/**
 * Steps a message on a candidate or pre-candidate: a leader of the term
 * ends the campaign (§3.4), votes are counted.
 *
 * @param r The candidate's state.
 * @param m A message of the current term.
 */
export function stepCandidate(r: RaftState, m: Message): void {
  switch (m.type) {
    case "append":
      becomeFollower(r, m.term, m.from);
      handleAppend(r, m);
      break;
    case "snapshot":
      becomeFollower(r, m.term, m.from);
      handleSnapshot(r, m);
      break;
    case "heartbeat":
      becomeFollower(r, m.term, m.from);
      handleHeartbeat(r, m);
      break;
    case "voteResponse":
      handleVoteResponse(r, m);
      break;
    default:
      break;
  }
}

/**
 * Counts one answer; a won PreVote starts the real election, a won
 * election makes a leader, a lost one a follower.
 *
 * @param r The candidate's state.
 * @param m The answer.
 */
function handleVoteResponse(r: RaftState, m: VoteResponseMessage): void {
  // Answers to the other kind of round are stale.
  if (m.preVote !== (r.role === "preCandidate")) return;
  if (!r.votes.has(m.from)) r.votes.set(m.from, m.granted);
  const result = tally(r);
  if (result === "won") {
    if (r.role === "preCandidate") campaign(r, "election");
    else becomeLeader(r);
  } else if (result === "lost") {
    becomeFollower(r, r.term, null);
  }
}

/**
 * A tick on a follower or candidate: campaigns once the randomized election
 * timeout passes without word from a leader (§3.4).
 *
 * @param r The node's state, not a leader's.
 */
export function tickElection(r: RaftState): void {
  r.electionElapsed++;
  if (isPromotable(r) && r.electionElapsed >= r.randomizedElectionTimeout) {
    r.electionElapsed = 0;
    campaign(r, "preVote");
  }
}

/**
 * Whether this node has heard from no leader for the leader lease (thesis
 * §4.2.3): the minimum election timeout less one tick. Each node ticks on
 * its own timer, so a follower that drew the minimum timeout may count one
 * tick more than this one since the leader's last message; ignored, it
 * would leave the cluster leaderless until the next timeout.
 *
 * @param r The node's state.
 * @returns True once the lease is over.
 */
export function leaseExpired(r: RaftState): boolean {
  return r.electionElapsed >= r.electionTicks - 1;
}

/**
 * Draws the election timeout for the next round from `[e, 2e)`, where `e` is
 * `electionTicks`: random so that split votes are rare (§3.4), ranked by
 * seniority when enabled.
 *
 * @param r The node's state; its `prng` is drawn from.
 */
export function resetRandomizedElectionTimeout(r: RaftState): void {
  r.rankedConfigIndex = r.log.config().index;
  // A known leader takes no slice: when it is lost, the next in line times
  // out in the first slice rather than waiting out the dead one's.
  r.randomizedElectionTimeout = r.electionTicks + drawTimeoutSlice(r, [r.leader]).ticks;
}

/**
 * Brings a follower's campaign forward after a pre-candidate whose log is
 * behind asked for its vote. The most senior of the others campaigns now;
 * the rest time out in their slices from now, not their whole timeout.
 * All campaigning at once would split the vote, and the stale node, timing
 * out first again, would repeat that for ever.
 *
 * @param r The follower's state.
 * @param stale The pre-candidate that cannot win.
 */
function hurryCampaign(r: RaftState, stale: string): void {
  const slice = drawTimeoutSlice(r, [r.leader, stale]);
  if (slice.rank === 0) {
    campaign(r, "preVote");
    return;
  }
  // From now, but with the time elapsed kept: it is what tells this node,
  // and its answers to other pre-candidates, that the leader's lease is over.
  r.randomizedElectionTimeout = r.electionElapsed + 1 + slice.ticks;
}

/**
 * Draws where in `[0, e)` ticks past the minimum a node's timeout falls:
 * in its rank's slice when seniority ranks the voters, anywhere otherwise.
 *
 * @param r The node's state; its `prng` is drawn from.
 * @param passedOver Voters that take no slice: a lost leader, a stale node.
 * @returns The ticks, and the node's rank (-1 when not ranked).
 */
function drawTimeoutSlice(
  r: RaftState,
  passedOver: readonly (string | null)[],
): { ticks: number; rank: number } {
  const e = r.electionTicks;
  // Seniority needs PreVote: without it a senior node with a stale log would
  // time out first again and again, raising everyone's term and resetting
  // their timers, and no one else could ever win.
  const all = r.seniority && r.preVote ? currentVoters(r) : [];
  const voters = all.filter((id) => id === r.id || !passedOver.includes(id));
  const rank = voters.indexOf(r.id);
  if (rank < 0 || all.length <= 1) return { ticks: randomInt(r.prng, e), rank: -1 };
  // Each rank draws from its own slice: seniors time out first. The slices
  // stay as narrow as with every voter counted, so the first one is the
  // earliest part of the range.
  const width = Math.max(1, Math.floor(e / all.length));
  return { ticks: Math.min(rank * width, e - width) + randomInt(r.prng, width), rank };
}
