/**
 * Leadership transfer (thesis §3.10): the leader brings the target's log up
 * to date, then tells it to campaign at once (`timeoutNow`), its vote
 * requests overriding leader leases. A leader removed from the
 * configuration hands over the same way as it steps down (§4.2.2).
 *
 * @module
 */

import { becomeFollower } from "./election.ts";
import { handoverTarget } from "./membership.ts";
import { currentVoters, type RaftState, send } from "./state.ts";

/**
 * Starts moving leadership to `target`; proposals are refused until the
 * transfer ends or is abandoned after one election timeout.
 *
 * @param r The leader's state.
 * @param target A voter; ignored when it is this node, already the
 *   transferee, or not a member.
 */
export function leaderTransfer(r: RaftState, target: string): void {
  if (target === r.id || target === r.transferee) return;
  const pr = r.progress.get(target);
  if (pr === undefined) return;
  r.transferee = target;
  // The transfer must finish within one election timeout or is abandoned.
  r.electionElapsed = 0;
  if (pr.match === r.log.lastIndex()) {
    send(r, { type: "timeoutNow", to: target, term: r.term });
  } else {
    r.wantsAppend.add(target);
  }
}

/**
 * A leader removed from the configuration hands over to the best voter and
 * steps down, once the removal commits.
 *
 * @param r The leader's state.
 */
export function stepDownRemoved(r: RaftState): void {
  const best = handoverTarget(
    currentVoters(r),
    Array.from(r.progress, ([id, pr]) => [id, pr.match] as const),
  );
  if (best !== null) send(r, { type: "timeoutNow", to: best, term: r.term });
  becomeFollower(r, r.term, null);
}
