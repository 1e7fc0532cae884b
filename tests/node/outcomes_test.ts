/**
 * The watch's outcomes by index: kept while their entries are in the log,
 * dropped in one step by a compaction.
 *
 * @module
 */

import { strictEqual } from "node:assert/strict";
import { OutcomesByIndex } from "../../src/node/outcomes.ts";
import type { Outcome } from "../../src/node/sessions.ts";

const ok = (value: number): Outcome => ({ ok: true, value });

Deno.test("outcomes are kept by index, holes for entries without one, and dropped below a compaction", () => {
  const outcomes = new OutcomesByIndex();
  for (let i = 1; i <= 10_000; i++) if (i % 3 !== 0) outcomes.set(i, ok(i));
  strictEqual(outcomes.get(1)?.ok, true);
  strictEqual(outcomes.get(3), undefined);
  strictEqual(outcomes.get(10_001), undefined);
  outcomes.dropBelow(9_001);
  strictEqual(outcomes.get(9_000), undefined);
  strictEqual(outcomes.get(1), undefined);
  strictEqual((outcomes.get(9_001) as { value: number }).value, 9_001);
  strictEqual((outcomes.get(10_000) as { value: number }).value, 10_000);
  // A lower first index changes nothing; an outcome below the first is not kept.
  outcomes.dropBelow(5);
  outcomes.set(10, ok(10));
  strictEqual(outcomes.get(10), undefined);
  strictEqual((outcomes.get(9_002) as { value: number }).value, 9_002);
  // Past everything kept (a leader's snapshot replaced the log).
  outcomes.dropBelow(20_001);
  outcomes.set(20_001, ok(20_001));
  strictEqual((outcomes.get(20_001) as { value: number }).value, 20_001);
  strictEqual(outcomes.get(10_000), undefined);
});
