/**
 * Tests of the linearizability checker on small histories, table-driven.
 *
 * @module
 */

import { strictEqual } from "node:assert/strict";
import { checkLinearizable, type HistoryOp, type KvOp, type KvOutput } from "./linearizability.ts";

let nextId = 1;
function op(callMs: number, returnMs: number, o: KvOp, output?: KvOutput): HistoryOp {
  return {
    id: nextId++,
    client: nextId,
    op: o,
    callMs,
    returnMs,
    ...(output === undefined ? {} : { output }),
  };
}

const put = (value: number): KvOp => ({ kind: "put", key: "k", value });
const get: KvOp = { kind: "get", key: "k" };
const read = (value: number | null): KvOutput => ({ kind: "read", value });
const wrote = (prev: number | null): KvOutput => ({ kind: "written", prev });

const ROWS: { name: string; history: HistoryOp[]; want: boolean }[] = [
  {
    name: "a read after a write sees it",
    history: [op(0, 1, put(1), wrote(null)), op(2, 3, get, read(1))],
    want: true,
  },
  {
    name: "a read after a write that misses it is refused",
    history: [op(0, 1, put(1), wrote(null)), op(2, 3, get, read(null))],
    want: false,
  },
  {
    name: "a read concurrent with a write may miss it",
    history: [op(0, 5, put(1), wrote(null)), op(2, 3, get, read(null))],
    want: true,
  },
  {
    name: "an unknown write may take effect late",
    history: [op(0, Infinity, put(1)), op(10, 11, get, read(null)), op(12, 13, get, read(1))],
    want: true,
  },
  {
    name: "an unknown write never goes back once seen",
    history: [
      op(0, Infinity, put(1)),
      op(1, 2, put(2), wrote(null)),
      op(3, 4, get, read(1)),
      op(5, 6, get, read(2)),
    ],
    want: false,
  },
  {
    name: "a put reports the value it replaced",
    history: [op(0, 1, put(1), wrote(null)), op(2, 3, put(2), wrote(7))],
    want: false,
  },
  {
    name: "a failed compare-and-set reports the current value",
    history: [
      op(0, 1, put(1), wrote(null)),
      op(2, 3, { kind: "cas", key: "k", expect: 5, value: 6 }, {
        kind: "cas",
        ok: false,
        current: 1,
      }),
      op(4, 5, { kind: "cas", key: "k", expect: 1, value: 6 }, { kind: "cas", ok: true }),
      op(6, 7, get, read(6)),
    ],
    want: true,
  },
  {
    name: "a compare-and-set that matched nothing cannot succeed",
    history: [
      op(0, 1, { kind: "cas", key: "k", expect: 3, value: 4 }, { kind: "cas", ok: true }),
    ],
    want: false,
  },
];

Deno.test("checkLinearizable() decides small register histories", async (t) => {
  for (const { name, history, want } of ROWS) {
    await t.step(name, () => strictEqual(checkLinearizable(history).ok, want));
  }
});

Deno.test("checkLinearizable() checks each key on its own", () => {
  const a = op(0, 1, { kind: "put", key: "a", value: 1 }, wrote(null));
  const b = op(2, 3, { kind: "get", key: "b" }, read(null));
  strictEqual(checkLinearizable([a, b]).ok, true);
});
