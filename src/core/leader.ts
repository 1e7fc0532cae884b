/**
 * A leader's inputs other than replication: its ticks (heartbeats,
 * CheckQuorum, §6.2), the messages it steps, proposals of commands and of
 * membership changes (thesis §4.1), promotion of caught-up learners
 * (§4.2.1), and linearizable reads (ReadIndex, §6.4).
 *
 * @module
 */

import { encodeConfig } from "./config.ts";
import type { Entry } from "./entry.ts";
import { becomeFollower } from "./election.ts";
import { NotLeaderError, ProposalDroppedError } from "./errors.ts";
import { applyMembershipChange, promotionCandidate } from "./membership.ts";
import type { Message } from "./messages.ts";
import { hasQuorum, majoritySize } from "./quorum.ts";
import type { ReadRequest } from "./read_only.ts";
import {
  broadcastHeartbeat,
  handleAppendResponse,
  handleHeartbeatResponse,
  syncProgress,
} from "./replication.ts";
import { appendOwn, currentVoters, type RaftState, send } from "./state.ts";
import { leaderTransfer } from "./transfer.ts";
import type { MembershipChange } from "./types.ts";

/**
 * Steps a message on a leader: answers to appends, heartbeats and snapshot
 * chunks, and reads and transfers that followers forward to it.
 *
 * @param r The leader's state.
 * @param m A message of the current term, or a forwarded read or transfer
 *   (term 0).
 */
export function stepLeader(r: RaftState, m: Message): void {
  switch (m.type) {
    case "appendResponse":
      handleAppendResponse(r, m);
      break;
    case "heartbeatResponse":
      handleHeartbeatResponse(r, m);
      break;
    case "snapshotResponse":
      if (m.index === r.snapshot.meta.index && m.received > r.snapshot.data.length) {
        // A follower holds at most the whole snapshot. Taken as true, the
        // count would make every later chunk start past the end, and the
        // follower, answering with what it really holds, would never be
        // heard again: the transfer would stall for good.
        r.refused++;
        break;
      }
      r.progress.heard(m.from, r.ticks)?.snapshot?.maybeAck(m.index, m.received);
      break;
    case "readIndex":
      leaderReadIndex(r, m.context, m.from, m.term === r.term);
      break;
    case "transferLeader":
      if (currentVoters(r).includes(m.target)) leaderTransfer(r, m.target);
      break;
    default:
      break;
  }
}

/**
 * A tick on a leader: heartbeats every `heartbeatTicks`; every election
 * timeout, steps down unless a quorum was heard from (CheckQuorum, §6.2) and
 * abandons a transfer that has not finished (§3.10); promotes learners;
 * resends snapshot chunks taken as lost.
 *
 * @param r The leader's state.
 */
export function tickLeader(r: RaftState): void {
  r.heartbeatElapsed++;
  r.electionElapsed++;
  if (r.electionElapsed >= r.electionTicks) {
    r.electionElapsed = 0;
    if (r.checkQuorum && !r.progress.quorumActive(currentVoters(r))) {
      becomeFollower(r, r.term, null);
      return;
    }
    r.transferee = null;
  }
  if (r.heartbeatElapsed >= r.heartbeatTicks) {
    r.heartbeatElapsed = 0;
    broadcastHeartbeat(r, r.reads.heartbeatContext());
  }
  if (r.autoPromote) maybePromote(r);
  // A chunk unanswered for an election timeout is taken as lost and sent again.
  for (const [, pr] of r.progress) pr.snapshot?.maybeExpire(r.ticks, r.electionTicks);
}

/**
 * Appends a command to the leader's log, within the bound on uncommitted
 * bytes.
 *
 * @param r The node's state.
 * @param data The command bytes.
 * @returns The new entry.
 * @throws {NotLeaderError} When this node is not the leader.
 * @throws {ProposalDroppedError} During a leadership transfer, or when the
 *   uncommitted log would exceed its bound.
 */
export function propose(r: RaftState, data: Uint8Array): Entry {
  if (r.role !== "leader") throw new NotLeaderError("propose", r.leader);
  if (r.transferee !== null) {
    throw new ProposalDroppedError(
      `Cannot propose while leadership moves to ${r.transferee}`,
    );
  }
  const bytes = data.length;
  if (r.uncommittedBytes > 0 && r.uncommittedBytes + bytes > r.maxUncommittedBytes) {
    throw new ProposalDroppedError(
      `Cannot propose as the uncommitted log is full (${r.uncommittedBytes} bytes)`,
    );
  }
  r.uncommittedBytes += bytes;
  return appendOwn(r, "command", data);
}

/**
 * Appends a single-server membership change (thesis §4.1), in force as
 * soon as it is in the log; one at a time.
 *
 * @param r The node's state.
 * @param change The change.
 * @returns The configuration entry, or null when the change is already in force.
 * @throws {NotLeaderError} When this node is not the leader.
 * @throws {ProposalDroppedError} Before this leader committed an entry of its
 *   term, while another change is uncommitted, or during a transfer.
 * @throws {MembershipError} When `applyMembershipChange` refuses the change.
 */
export function changeMembers(r: RaftState, change: MembershipChange): Entry | null {
  if (r.role !== "leader") throw new NotLeaderError("change membership", r.leader);
  if (r.transferee !== null) {
    throw new ProposalDroppedError(
      `Cannot change membership while leadership moves to ${r.transferee}`,
    );
  }
  // A new leader must commit an entry of its own term first, or a change
  // it makes could be lost beside one an earlier leader made (the known
  // pitfall of single-server changes, fixed in Ongaro's thesis errata).
  if (r.log.term(r.log.committed) !== r.term) {
    throw new ProposalDroppedError(
      "Cannot change membership before the leader commits an entry of its term",
    );
  }
  if (r.log.config().index > r.log.committed) {
    throw new ProposalDroppedError(
      "Cannot change membership while another change is in progress",
    );
  }
  const next = applyMembershipChange(r.log.config().config, change);
  if (next === null) return null;
  const entry = appendOwn(r, "config", encodeConfig(next));
  syncProgress(r);
  return entry;
}

/**
 * Promotes one caught-up learner, if no change is pending (§4.2.1: a new
 * member votes only once its log has caught up).
 *
 * @param r The leader's state.
 */
function maybePromote(r: RaftState): void {
  if (r.transferee !== null || r.log.config().index > r.log.committed) return;
  if (r.log.term(r.log.committed) !== r.term) return;
  const { index, config } = r.log.config();
  const id = promotionCandidate(config, {
    configIndex: index,
    lastIndex: r.log.lastIndex(),
    lagEntries: r.promoteLagEntries,
    matchOf: (id) => r.progress.get(id)?.match,
  });
  if (id !== null) changeMembers(r, { type: "promote", id });
}

/**
 * Takes a read on the leader (§6.4): its read point is the commit index
 * now, released once a quorum answers a heartbeat sent after it; a lone
 * voter releases it at once.
 *
 * A follower's request vouches for itself: sent in this leader's term, it
 * shows that its sender had not moved to a newer term when the reads it
 * carries had already begun. So when the leader and the sender are a
 * quorum (a cluster of three), no newer leader could have been elected
 * before those reads began, every write finished by then is within the
 * commit index, and the read is released at once, without a round. In a
 * larger cluster the sender counts towards the read's quorum, so its round
 * needs one answer fewer. It vouches for nothing else: reads the leader
 * took earlier may have begun after the request was sent, so they still
 * wait for a quorum of answers.
 *
 * @param r The leader's state.
 * @param context The caller's id for the read.
 * @param from Who asked: the leader itself or a follower.
 * @param vouched Whether `from` sent the request in this leader's term.
 */
export function leaderReadIndex(
  r: RaftState,
  context: string,
  from: string,
  vouched = false,
): void {
  if (r.log.term(r.log.committed) !== r.term) {
    // Until an entry of its term commits, a new leader does not know the
    // true commit index (§6.4 step 1).
    r.reads.defer({ context, from });
    return;
  }
  const voters = currentVoters(r);
  // Only a voter's word counts towards a quorum (a read-only member's does not).
  const vouch = vouched && from !== r.id && voters.includes(from) ? from : null;
  // The read's own confirmations: the leader's, and its sender's word.
  // Where they are a quorum (a lone voter; a voter and its leader of
  // three), no round is needed.
  if (hasQuorum(voters, new Set(vouch === null ? [r.id] : [r.id, vouch]))) {
    releaseRead(r, { context, from, index: r.log.committed });
    return;
  }
  if (r.reads.add({ context, from, index: r.log.committed }, r.id, vouch)) startReadRound(r);
}

/**
 * Sends a confirmation round for the waiting reads, unless one is out
 * (its answer calls this again). It goes only to as many voters as a
 * quorum needs, those that confirmed rounds most recently: every peer
 * heartbeat and answer costs the leader's thread a socket write or read,
 * and on a busy machine the wake-up of another process. A narrow round
 * that is not confirmed soon is widened to the others
 * ({@linkcode widenReadRound}), and the periodic heartbeat carries it to
 * everyone anyway.
 *
 * @param r The leader's state.
 */
export function startReadRound(r: RaftState): void {
  const context = r.reads.startRound();
  if (context === null) return;
  const voters = currentVoters(r);
  let peers = voters.filter((id) => id !== r.id && r.progress.get(id) !== undefined);
  let needed = majoritySize(voters.length) - (voters.includes(r.id) ? 1 : 0);
  // Reads their senders vouched for count each sender already: the round
  // goes to the others, one fewer of them.
  const vouchers = r.reads.vouchers();
  if (vouchers !== null) {
    const others = peers.filter((id) => !vouchers.has(id));
    if (others.length >= needed - 1) {
      peers = others;
      needed -= 1;
    }
  }
  if (needed >= peers.length) {
    broadcastHeartbeat(r, context);
    return;
  }
  const targets = r.reads.fastest(peers, needed);
  broadcastHeartbeat(r, context, targets);
  r.reads.narrowed(targets);
}

/**
 * Sends the narrow read round out to the peers it did not go to, so that a
 * slow or paused voter among its targets does not hold the reads until the
 * next periodic heartbeat.
 *
 * @param r The leader's state.
 */
export function widenReadRound(r: RaftState): void {
  const round = r.reads.narrowRound();
  if (round === null) return;
  r.reads.widened();
  const rest: string[] = [];
  for (const [id] of r.progress) if (!round.targets.includes(id)) rest.push(id);
  broadcastHeartbeat(r, round.context, rest);
}

/**
 * Hands a confirmed read to whoever asked: the leader's own driver in the
 * next `ready()`, or the follower that forwarded it.
 *
 * @param r The leader's state.
 * @param read The read and its read point.
 */
export function releaseRead(r: RaftState, read: ReadRequest): void {
  if (read.from === r.id) {
    r.readStates.push({ index: read.index, context: read.context });
  } else {
    send(r, {
      type: "readIndexResponse",
      to: read.from,
      term: 0,
      context: read.context,
      index: read.index,
    });
  }
}
