/**
 * Drops, from what a stream is about to carry, an append answer equal to
 * the append answer it carried last. A follower answers every append,
 * including those that only carry a newer commit index, which under load
 * are some 40 % of a leader's appends: the answer to such an append repeats
 * the one before it word for word (same term, success and index). Taken by
 * the leader it changes nothing (its match index is already there), yet it
 * costs the leader a read and, on a busy machine, a wake-up.
 *
 * A stream delivers in order, so the earlier copy arrives first, unless the
 * stream breaks; then both are lost and Raft recovers as from any lost
 * message (the next heartbeat's answer makes the leader send again). Each
 * stream starts with a fresh filter, so nothing is dropped on a new stream
 * for having been sent on an old one.
 *
 * @module
 */

import type { AppendResponseMessage, Message } from "../../core/messages.ts";

/** The append answers of one stream, as they are written. */
export class RepeatedAnswerFilter {
  #last: AppendResponseMessage | null = null;

  /**
   * Passes a batch about to be written to the stream.
   *
   * @param batch Messages in the order they will be written.
   * @returns The batch without the repeated append answers (the same array
   *   when there are none).
   *
   * @example
   * ```ts
   * import { strictEqual } from "node:assert/strict";
   * import { RepeatedAnswerFilter } from "./repeated_answers.ts";
   *
   * const answer = {
   *   type: "appendResponse", from: "b", to: "a", term: 2,
   *   success: true, index: 7, hintIndex: 0, hintTerm: 0,
   * } as const;
   * const filter = new RepeatedAnswerFilter();
   * strictEqual(filter.filter([answer]).length, 1);
   * strictEqual(filter.filter([{ ...answer }]).length, 0);
   * ```
   */
  filter(batch: readonly Message[]): readonly Message[] {
    let kept: Message[] | null = null;
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i]!;
      if (m.type !== "appendResponse") {
        kept?.push(m);
        continue;
      }
      const last = this.#last;
      if (last !== null && sameAnswer(last, m)) {
        kept ??= batch.slice(0, i);
        continue;
      }
      this.#last = m;
      kept?.push(m);
    }
    return kept ?? batch;
  }
}

function sameAnswer(a: AppendResponseMessage, b: AppendResponseMessage): boolean {
  return a.to === b.to && a.from === b.from && a.term === b.term && a.success === b.success &&
    a.index === b.index && a.hintIndex === b.hintIndex && a.hintTerm === b.hintTerm;
}
