/**
 * A follower's side of replication (thesis §3.5): it accepts appends that
 * pass the consistency check and truncates a conflicting suffix, installs
 * snapshots chunk by chunk (chapter 5), and learns the commit index and the
 * alive list from heartbeats. Every answer carries its term, so a stale
 * leader learns it was replaced.
 *
 * @module
 */

import { chainFault } from "./entry.ts";
import { campaign, resetRandomizedElectionTimeout } from "./election.ts";
import type { AppendMessage, HeartbeatMessage, Message, SnapshotMessage } from "./messages.ts";
import { type RaftState, send } from "./state.ts";

/**
 * Steps a message on a follower (a learner included): the leader's appends,
 * snapshots and heartbeats, its request to campaign at once (§3.10), and
 * answers to reads forwarded to it (§6.4).
 *
 * @param r The follower's state.
 * @param m A message of the current term, or the answer to a forwarded read
 *   (term 0).
 */
export function stepFollower(r: RaftState, m: Message): void {
  switch (m.type) {
    case "append":
      heardFromLeader(r, m.from);
      handleAppend(r, m);
      break;
    case "snapshot":
      heardFromLeader(r, m.from);
      handleSnapshot(r, m);
      break;
    case "heartbeat":
      heardFromLeader(r, m.from);
      handleHeartbeat(r, m);
      break;
    case "timeoutNow":
      campaign(r, "transfer");
      break;
    case "readIndexResponse":
      r.readStates.push({ index: m.index, context: m.context });
      break;
    default:
      break;
  }
}

/**
 * A message from the current leader: it is alive, so no election yet.
 *
 * @param r The follower's state.
 * @param from The leader.
 */
function heardFromLeader(r: RaftState, from: string): void {
  r.electionElapsed = 0;
  r.leaderHeardTick = r.ticks;
  if (r.leader === from && r.rankedConfigIndex === r.log.config().index) return;
  r.leader = from;
  // Seniority ranks the voters of the configuration, less a known leader:
  // draw again when either changed (a learner just made a voter drew
  // from the whole range).
  resetRandomizedElectionTimeout(r);
}

/**
 * Applies an append (§3.5, Figure 3.1's AppendEntries rules): refused unless
 * our log holds the entry before it with the same term and hash; a
 * conflicting suffix is replaced; the commit index follows the leader's, up
 * to the last entry this append vouches for. A refusal carries a hint (the
 * last index of an earlier term) so the leader skips back a term at a time.
 *
 * @param r The follower's state.
 * @param m The append, from the leader of the current term.
 */
export function handleAppend(r: RaftState, m: AppendMessage): void {
  const reply = (success: boolean, index: number, hintIndex = 0, hintTerm = 0): void => {
    send(r, {
      type: "appendResponse",
      to: m.from,
      term: r.term,
      success,
      index,
      hintIndex,
      hintTerm,
    });
  };
  if (m.prevIndex < r.log.committed) {
    // Everything up to our commit index matches any current leader's log.
    reply(true, r.log.committed);
    return;
  }
  if (!r.log.matches(m.prevIndex, m.prevTerm, m.prevHash)) {
    // A hash mismatch under an equal term gives hint == prevIndex, which
    // still moves the leader's next probe one entry back.
    const hint = r.log.findConflictByTerm(
      Math.min(m.prevIndex, r.log.lastIndex()),
      m.prevTerm,
    );
    reply(false, m.prevIndex, hint.index, hint.term);
    return;
  }
  const last = m.prevIndex + m.entries.length;
  const conflict = r.log.findConflict(m.entries);
  if (conflict !== 0) {
    const fresh = m.entries.slice(conflict - m.prevIndex - 1);
    if (r.verifyHashes) {
      const fault = chainFault(conflict - 1, r.log.hash(conflict - 1)!, fresh);
      // Entries that do not hash right are refused like a mismatch; the
      // leader will resend them.
      if (fault !== null) {
        reply(false, m.prevIndex, m.prevIndex, m.prevTerm);
        return;
      }
    }
    r.log.append(fresh);
  }
  r.log.commitTo(Math.min(m.commit, last));
  reply(true, last);
}

/**
 * Takes one chunk of a leader's snapshot (chapter 5); the last one replaces
 * the log behind it. A snapshot we already hold (committed, or its last
 * entry in our log) is acknowledged at once, as an append up to it.
 *
 * @param r The follower's state.
 * @param m The chunk, from the leader of the current term.
 */
export function handleSnapshot(r: RaftState, m: SnapshotMessage): void {
  const meta = m.meta;
  const done = (index: number): void => {
    r.receiver.reset();
    send(r, {
      type: "appendResponse",
      to: m.from,
      term: r.term,
      success: true,
      index,
      hintIndex: 0,
      hintTerm: 0,
    });
  };
  if (meta.index <= r.log.committed) {
    done(r.log.committed);
    return;
  }
  if (r.log.matches(meta.index, meta.term, meta.hash)) {
    // We hold the snapshot's last entry, so our log already holds what it
    // stands for: only the commit index moves.
    r.log.commitTo(meta.index);
    done(meta.index);
    return;
  }
  const chunk = r.receiver.receive(m);
  if (!chunk.done) {
    send(r, {
      type: "snapshotResponse",
      to: m.from,
      term: r.term,
      index: meta.index,
      received: chunk.received,
    });
    return;
  }
  const data = chunk.data;
  if (r.acceptSnapshot !== null && !r.acceptSnapshot(data)) {
    // Data that cannot be restored (a forgery, or a bug of the leader's):
    // keep the log; the leader may send another.
    r.receiver.reset();
    r.refused++;
    return;
  }
  r.log.restore(meta);
  r.incomingSnapshot = { meta, data };
  r.snapshot = { meta, data };
  // The driver makes the snapshot durable before it sends this answer.
  done(meta.index);
}

/**
 * Takes a heartbeat: the commit index (never past what the leader knows we
 * hold), the alive list, and an answer that confirms the leader's reads
 * (§6.4) and says which configuration we hold.
 *
 * @param r The follower's state.
 * @param m The heartbeat, from the leader of the current term.
 */
export function handleHeartbeat(r: RaftState, m: HeartbeatMessage): void {
  // A leader sends at most what it knows we hold; past our log, the commit
  // index is not one to follow (a bug or a forgery), and stopping the node
  // over it would let any sender stop it.
  if (m.commit <= r.log.lastIndex()) r.log.commitTo(m.commit);
  else r.refused++;
  r.seen = { tick: r.ticks, ticksAgo: m.seen };
  send(r, {
    type: "heartbeatResponse",
    to: m.from,
    term: r.term,
    context: m.context,
    configIndex: r.log.config().index,
  });
}
