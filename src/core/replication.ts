/**
 * A leader's side of replication (thesis §3.5): what it sends each follower
 * (appends, empty appends that carry the commit index, snapshot chunks when
 * the entries are compacted away, heartbeats with the alive list), the flow
 * control that bounds it (probe one append at a time, then pipeline up to a
 * window, §10.2.2), what it learns from the answers, and the commit rule
 * (§3.6.2).
 *
 * @module
 */

import { leaderReadIndex, releaseRead, startReadRound } from "./leader.ts";
import type { AppendResponseMessage, HeartbeatResponseMessage } from "./messages.ts";
import type { Progress } from "./progress.ts";
import { currentVoters, isVoter, type RaftState, send } from "./state.ts";
import { stepDownRemoved } from "./transfer.ts";

/**
 * Tracks the progress of exactly the members in force.
 *
 * @param r The leader's state.
 */
export function syncProgress(r: RaftState): void {
  r.progress.sync(r.log.config().config.members, r.log.lastIndex() + 1);
}

/**
 * Whether `flushAppends()` would send anything.
 *
 * @param r The node's state.
 * @returns False on anything but a leader.
 */
export function owesAppends(r: RaftState): boolean {
  if (r.role !== "leader") return false;
  for (const [id, pr] of r.progress) {
    if (pr.isPaused()) continue;
    if (
      pr.next <= r.log.lastIndex() || r.wantsAppend.has(id) ||
      pr.sentCommit < r.log.committed || pr.state === "snapshot" ||
      pr.next <= r.log.snapshot.index
    ) {
      return true;
    }
  }
  return false;
}

/**
 * Sends every follower what it is owed: new entries while the window
 * allows, or an empty append when only the commit index moved. Called from
 * `ready()`, so proposals since the last batch travel together.
 *
 * @param r The node's state; nothing happens on anything but a leader.
 */
export function flushAppends(r: RaftState): void {
  if (r.role !== "leader") return;
  for (const [id, pr] of r.progress) {
    const forced = r.wantsAppend.delete(id);
    let first = true;
    while (!pr.isPaused()) {
      if (pr.state === "snapshot" || pr.next <= r.log.snapshot.index) {
        // The entries it needs are compacted away: send the snapshot.
        sendSnapshotChunk(r, id, pr);
        break;
      }
      const last = r.log.lastIndex();
      const entries = pr.next <= last ? r.log.slice(pr.next, last + 1, r.maxMsgBytes) : [];
      if (entries.length === 0 && !(first && (forced || pr.sentCommit < r.log.committed))) {
        break;
      }
      first = false;
      const prevIndex = pr.next - 1;
      send(r, {
        type: "append",
        to: id,
        term: r.term,
        prevIndex,
        prevTerm: r.log.term(prevIndex)!,
        prevHash: r.log.hash(prevIndex)!,
        entries,
        commit: r.log.committed,
      });
      pr.sentCommit = r.log.committed;
      const sentTo = entries.at(-1)?.index;
      if (sentTo !== undefined) pr.sentEntries(sentTo);
      else if (pr.state === "probe") pr.probeSent = true;
      if (sentTo === undefined || pr.state === "probe") break;
    }
  }
}

/**
 * Sends `id` the next chunk of a snapshot: of the one it is receiving, or of
 * the latest one when it holds none of the one in flight yet.
 *
 * A newer snapshot does not restart a transfer the follower has begun: under
 * load with frequent snapshots, a follower needing many chunks would else
 * start over at every snapshot and never hold a whole one. The older
 * snapshot is as good a starting point (it covers committed entries only);
 * once it is installed the follower takes entries, or the newest snapshot
 * if they are compacted away too, and each transfer moves it forward.
 *
 * @param r The leader's state.
 * @param id The follower.
 * @param pr Its progress, which enters snapshot state.
 */
function sendSnapshotChunk(r: RaftState, id: string, pr: Progress): void {
  const latest = r.snapshot;
  const current = pr.snapshot;
  const sender = current !== null && (current.acked > 0 || current.index === latest.meta.index)
    ? current
    : pr.becomeSnapshot(latest);
  const { meta, data } = sender.snapshot;
  const chunk = sender.nextChunk(r.maxMsgBytes);
  send(r, {
    type: "snapshot",
    to: id,
    term: r.term,
    meta,
    offset: chunk.offset,
    total: data.length,
    data: chunk.data,
  });
  sender.sent(r.ticks);
}

/**
 * The alive list: for each member, ticks since this node (or, on a
 * follower, the leader) last heard from it. Members never heard from are
 * absent. The node itself is 0.
 *
 * @param r The node's state.
 * @returns Ticks since each member was heard from.
 */
export function seenTicks(r: RaftState): Map<string, number> {
  const out = new Map<string, number>([[r.id, 0]]);
  if (r.role === "leader") {
    return new Map([...out, ...r.progress.seenTicks(r.ticks)]);
  }
  const since = r.ticks - r.seen.tick;
  for (const [id, ago] of Object.entries(r.seen.ticksAgo)) {
    if (id !== r.id) out.set(id, ago + since);
  }
  if (r.leader !== null && r.leader !== r.id && r.leaderHeardTick >= 0) {
    out.set(r.leader, r.ticks - r.leaderHeardTick);
  }
  return out;
}

/**
 * Sends every follower a heartbeat (§3.4: leaders assert themselves so no
 * one times out), carrying the commit index as far as each follower's log
 * is known to match, and the alive list.
 *
 * @param r The leader's state.
 * @param context The newest pending read, which the answers confirm
 *   (§6.4), or null.
 * @param to Only these followers, when given.
 */
export function broadcastHeartbeat(
  r: RaftState,
  context: string | null,
  to?: readonly string[],
): void {
  const seen: Record<string, number> = {};
  for (const [id, ticks] of seenTicks(r)) seen[id] = ticks;
  for (const [id, pr] of r.progress) {
    if (to !== undefined && !to.includes(id)) continue;
    const commit = Math.min(pr.match, r.log.committed);
    send(r, { type: "heartbeat", to: id, term: r.term, commit, context, seen });
  }
}

/**
 * Learns from a follower's answer to an append or snapshot: on success its
 * match index moves (and maybe the commit index); on refusal the next index
 * backs off to the hint, one term at a time (§3.5). A transferee that has
 * caught up is told to campaign (§3.10).
 *
 * @param r The leader's state.
 * @param m The answer.
 */
export function handleAppendResponse(r: RaftState, m: AppendResponseMessage): void {
  if (m.success && m.index > r.log.lastIndex()) {
    // A follower acknowledges at most what this leader sent it, and a leader
    // never truncates its own log: an acknowledgement past it is a bug or a
    // forgery. Taken as true, it would count a copy that does not exist
    // towards the commit quorum, and the follower, thought to hold it, would
    // never be sent it.
    r.refused++;
    return;
  }
  const pr = r.progress.heard(m.from, r.ticks);
  if (pr === undefined) return;
  if (!m.success) {
    const hint = m.hintTerm > 0
      ? r.log.findConflictByTerm(m.hintIndex, m.hintTerm).index
      : m.hintIndex;
    if (pr.maybeDecrease(m.index, hint) && pr.state === "replicate") pr.becomeProbe();
    return;
  }
  if (!pr.maybeUpdate(m.index)) return;
  if (pr.state === "probe" || (pr.snapshot !== null && pr.match >= pr.snapshot.index)) {
    pr.becomeReplicate();
  } else if (pr.state === "replicate") pr.freeUpTo(m.index);
  maybeCommit(r);
  if (m.from === r.transferee && pr.match === r.log.lastIndex()) {
    send(r, { type: "timeoutNow", to: m.from, term: r.term });
  }
}

/**
 * Learns from a follower's answer to a heartbeat: it is alive, may take
 * appends again, and confirms the leadership that pending reads wait for
 * (§6.4).
 *
 * @param r The leader's state.
 * @param m The answer.
 */
export function handleHeartbeatResponse(r: RaftState, m: HeartbeatResponseMessage): void {
  const pr = r.progress.heard(m.from, r.ticks);
  if (pr === undefined) return;
  pr.probeSent = false;
  // A full window may be all lost appends: free one slot so the follower
  // cannot stall for ever.
  if (pr.state === "replicate" && pr.isPaused()) pr.inflight.shift();
  // Behind, or missing the configuration in force: send what it lacks.
  if (pr.match < r.log.lastIndex() || m.configIndex < r.log.config().index) {
    r.wantsAppend.add(m.from);
  }
  if (m.context !== null) {
    const voters = currentVoters(r);
    for (const read of r.reads.recvAck(m.context, m.from, voters)) releaseRead(r, read);
    startReadRound(r);
  }
}

/**
 * Commits the highest index a majority stores, if it is of this term (§5.4.2).
 * The leader's own log counts only as far as it is durable.
 *
 * @param r The leader's state.
 */
export function maybeCommit(r: RaftState): void {
  const voters = currentVoters(r);
  if (voters.length === 0) return;
  const index = r.progress.quorumMatch(voters, r.log.stable);
  if (index <= r.log.committed || r.log.term(index) !== r.term) return;
  const firstOfTerm = r.log.term(r.log.committed) !== r.term;
  for (let i = r.log.committed + 1; i <= index; i++) {
    const e = r.log.entry(i)!;
    if (e.term === r.term && e.kind === "command") r.uncommittedBytes -= e.data.length;
  }
  r.uncommittedBytes = Math.max(0, r.uncommittedBytes);
  r.log.commitTo(index);
  if (!isVoter(r) && r.log.config().index <= index) {
    stepDownRemoved(r);
    return;
  }
  if (firstOfTerm) {
    for (const read of r.reads.takeDeferred()) leaderReadIndex(r, read.context, read.from);
  }
}
