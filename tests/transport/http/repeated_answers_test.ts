/**
 * Tests for src/transport/http/repeated_answers.ts: a stream carries an
 * append answer only when it differs from the append answer it carried
 * last; every other message passes, and a new filter (a new stream) passes
 * the first answer whatever came before.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import type { AppendResponseMessage, Message } from "../../../src/core/messages.ts";
import { RepeatedAnswerFilter } from "../../../src/transport/http/repeated_answers.ts";

function answer(fields: Partial<AppendResponseMessage> = {}): AppendResponseMessage {
  return {
    type: "appendResponse",
    from: "n2",
    to: "n1",
    term: 3,
    success: true,
    index: 10,
    hintIndex: 0,
    hintTerm: 0,
    ...fields,
  };
}

const HEARTBEAT_ANSWER: Message = {
  type: "heartbeatResponse",
  from: "n2",
  to: "n1",
  term: 3,
  context: null,
  configIndex: 1,
};

/** What passes, described by index (or the type of other messages). */
function passed(filter: RepeatedAnswerFilter, batch: readonly Message[]): string[] {
  return filter.filter(batch).map((m) =>
    m.type === "appendResponse" ? `${m.success ? "ok" : "no"}@${m.index}` : m.type
  );
}

Deno.test("RepeatedAnswerFilter drops an append answer equal to the one before it on the stream", () => {
  const filter = new RepeatedAnswerFilter();
  deepStrictEqual(passed(filter, [answer(), HEARTBEAT_ANSWER, answer()]), [
    "ok@10",
    "heartbeatResponse",
  ]);
  deepStrictEqual(passed(filter, [answer()]), [], "across batches too");
  deepStrictEqual(passed(filter, [answer({ index: 11 }), answer()]), ["ok@11", "ok@10"]);
});

Deno.test("RepeatedAnswerFilter passes an answer that differs in any field", async (t) => {
  const changes: Partial<AppendResponseMessage>[] = [
    { term: 4 },
    { success: false },
    { index: 9 },
    { hintIndex: 5 },
    { hintTerm: 2 },
    { to: "n3" },
    { from: "n4" },
  ];
  for (const change of changes) {
    await t.step(JSON.stringify(change), () => {
      const filter = new RepeatedAnswerFilter();
      strictEqual(filter.filter([answer(), answer(change)]).length, 2);
    });
  }
});

Deno.test("RepeatedAnswerFilter hands back the batch itself when nothing is dropped", () => {
  const filter = new RepeatedAnswerFilter();
  const batch = [answer(), HEARTBEAT_ANSWER];
  strictEqual(filter.filter(batch), batch);
  deepStrictEqual(passed(new RepeatedAnswerFilter(), [answer()]), ["ok@10"], "a new stream");
});
