/**
 * Tests of the key-value machine's revisions: `created` and `modified`
 * through a key's life, compare-and-set on `modified`, refusals that change
 * no revision, and snapshots of both formats (the current one keeps the
 * revisions; format 1, from before revisions, restores them as 0).
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { type KvCommand, type KvStateMachine, kvStateMachine } from "../../src/kv/state_machine.ts";
import { CasFailedError } from "../../src/kv/cas_failed_error.ts";
import { at, caught, machineWith } from "./machine_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("kv revisions follow a key through put, delete, re-create and cas", async (t) => {
  const kv = kvStateMachine();
  const get = () => kv.query({ op: "get", key: "k" });

  await t.step("a put of an absent key creates it at its index", () => {
    deepStrictEqual(kv.apply({ op: "put", key: "k", value: 1 }, at(3)), {
      prev: null,
      created: 3,
      modified: 3,
    });
    deepStrictEqual(get(), { found: true, value: 1, created: 3, modified: 3 });
  });

  await t.step("a put over it keeps created and moves modified", () => {
    deepStrictEqual(kv.apply({ op: "put", key: "k", value: 2 }, at(5)), {
      prev: 1,
      created: 3,
      modified: 5,
      prevModified: 3,
    });
    deepStrictEqual(get(), { found: true, value: 2, created: 3, modified: 5 });
  });

  await t.step("a put of the same value is still a change", () => {
    kv.apply({ op: "put", key: "k", value: 2 }, at(6));
    deepStrictEqual(get(), { found: true, value: 2, created: 3, modified: 6 });
  });

  await t.step("entries about other keys leave its revisions alone", () => {
    kv.apply({ op: "put", key: "other", value: 0 }, at(7));
    kv.apply({ op: "delete", key: "absent" }, at(8));
    deepStrictEqual(get(), { found: true, value: 2, created: 3, modified: 6 });
  });

  await t.step("a cas on the value moves modified", () => {
    deepStrictEqual(kv.apply({ op: "cas", key: "k", expect: 2, value: 3 }, at(9)), {
      prev: 2,
      created: 3,
      modified: 9,
      prevModified: 6,
    });
  });

  await t.step("a cas on the revision moves modified", () => {
    deepStrictEqual(kv.apply({ op: "cas", key: "k", expectModified: 9, value: 4 }, at(10)), {
      prev: 3,
      created: 3,
      modified: 10,
      prevModified: 9,
    });
  });

  await t.step("a delete reports the revisions it removed", () => {
    deepStrictEqual(kv.apply({ op: "delete", key: "k" }, at(11)), {
      prev: 4,
      prevCreated: 3,
      prevModified: 10,
    });
    deepStrictEqual(get(), { found: false, value: null });
  });

  await t.step("a re-created key starts over: created is the new index", () => {
    deepStrictEqual(kv.apply({ op: "cas", key: "k", expectModified: 0, value: 5 }, at(12)), {
      prev: null,
      created: 12,
      modified: 12,
    });
    deepStrictEqual(get(), { found: true, value: 5, created: 12, modified: 12 });
  });

  await t.step("list items carry the revisions", () => {
    deepStrictEqual(kv.query({ op: "list" }), {
      items: [
        { key: "k", value: 5, created: 12, modified: 12 },
        { key: "other", value: 0, created: 7, modified: 7 },
      ],
    });
  });
});

Deno.test("kv.apply() compare-and-set on a revision sets on a match and throws otherwise", async (t) => {
  // "k" is created at 1, changed at 2; "gone" created at 3, deleted at 4.
  const setup: KvCommand[] = [
    { op: "put", key: "k", value: "a" },
    { op: "put", key: "k", value: "b" },
    { op: "put", key: "gone", value: 1 },
    { op: "delete", key: "gone" },
  ];
  const rows: {
    name: string;
    key: string;
    expectModified: number;
    want:
      | { ok: true; created: number }
      | { ok: false; current: unknown; modified: number; message: RegExp };
  }[] = [
    { name: "the current revision", key: "k", expectModified: 2, want: { ok: true, created: 1 } },
    { name: "0 on an absent key", key: "new", expectModified: 0, want: { ok: true, created: 5 } },
    {
      name: "0 on a deleted key",
      key: "gone",
      expectModified: 0,
      want: { ok: true, created: 5 },
    },
    {
      name: "an older revision",
      key: "k",
      expectModified: 1,
      want: {
        ok: false,
        current: "b",
        modified: 2,
        message: /it was last modified at index 2, not 1/,
      },
    },
    {
      name: "a later revision",
      key: "k",
      expectModified: 3,
      want: { ok: false, current: "b", modified: 2, message: /modified at index 2, not 3/ },
    },
    {
      name: "0 on a present key",
      key: "k",
      expectModified: 0,
      want: { ok: false, current: "b", modified: 2, message: /exists \(modified at index 2\)/ },
    },
    {
      name: "the revision of a deleted key",
      key: "gone",
      expectModified: 3,
      want: { ok: false, current: null, modified: 0, message: /absent, not modified at index 3/ },
    },
    {
      name: "a revision on an absent key",
      key: "new",
      expectModified: 7,
      want: { ok: false, current: null, modified: 0, message: /absent/ },
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const kv = machineWith(setup);
      const command = kv.validate({
        op: "cas",
        key: row.key,
        expectModified: row.expectModified,
        value: "new",
      });
      if (row.want.ok) {
        deepStrictEqual(kv.apply(command, at(5)), {
          prev: row.key === "k" ? "b" : null,
          created: row.want.created,
          modified: 5,
          ...(row.key === "k" ? { prevModified: 2 } : {}),
        });
        deepStrictEqual(kv.query({ op: "get", key: row.key }), {
          found: true,
          value: "new",
          created: row.want.created,
          modified: 5,
        });
        return;
      }
      const before = kv.snapshot();
      const error = caught(() => kv.apply(command, at(5)));
      ok(error instanceof CasFailedError, String(error));
      strictEqual(error.code, "cas_failed");
      deepStrictEqual(error.current, row.want.current);
      strictEqual(error.modified, row.want.modified);
      deepStrictEqual(error.details, { current: row.want.current, modified: row.want.modified });
      ok(row.want.message.test(error.message), error.message);
      deepStrictEqual(kv.snapshot(), before);
    });
  }
});

Deno.test("kv.apply() a failed compare-and-set changes no revision", () => {
  const kv = machineWith([
    { op: "put", key: "a", value: 1 },
    { op: "put", key: "b", value: 2 },
    { op: "put", key: "a", value: 3 },
  ]);
  const before = kv.snapshot();
  const list = kv.query({ op: "list" });
  const failing: KvCommand[] = [
    { op: "cas", key: "a", expect: 1, value: 9 },
    { op: "cas", key: "a", expect: null, value: 9 },
    { op: "cas", key: "a", expectModified: 1, value: 9 },
    { op: "cas", key: "a", expectModified: 0, value: 9 },
    { op: "cas", key: "c", expect: 1, value: 9 },
    { op: "cas", key: "c", expectModified: 2, value: 9 },
  ];
  for (const [i, command] of failing.entries()) {
    throws(() => kv.apply(command, at(10 + i)), CasFailedError);
  }
  deepStrictEqual(kv.snapshot(), before);
  deepStrictEqual(kv.query({ op: "list" }), list);
  // The next successful write takes its own index, not one of the failures'.
  deepStrictEqual(kv.apply({ op: "cas", key: "a", expectModified: 3, value: 4 }, at(20)), {
    prev: 3,
    created: 1,
    modified: 20,
    prevModified: 3,
  });
});

Deno.test("kv.apply() without an entry records revisions as 0, unknown", () => {
  const kv = machineWith([{ op: "put", key: "a", value: 1 }]);
  deepStrictEqual(kv.apply({ op: "put", key: "a", value: 2 }), {
    prev: 1,
    created: 0,
    modified: 0,
    prevModified: 1,
  });
  deepStrictEqual(kv.apply({ op: "put", key: "b", value: 2 }), {
    prev: null,
    created: 0,
    modified: 0,
  });
  // Still a snapshot that restores: created never exceeds modified.
  const copy = kvStateMachine();
  copy.restore(kv.snapshot());
  deepStrictEqual(copy.snapshot(), kv.snapshot());
});

Deno.test("kv.encode() and kv.decode() carry a compare-and-set on a revision", () => {
  const kv = kvStateMachine();
  for (const expectModified of [0, 1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
    const command = kv.validate({ op: "cas", key: "k", expectModified, value: { b: 1, a: 2 } });
    const decoded = kv.decode(kv.encode(command));
    deepStrictEqual(decoded, { op: "cas", key: "k", expectModified, value: { a: 2, b: 1 } });
    strictEqual(
      JSON.stringify(decoded),
      `{"op":"cas","key":"k","expectModified":${expectModified},"value":{"a":2,"b":1}}`,
    );
  }
});

Deno.test("kv.snapshot() keeps the revisions in format 2, and restores round-trip them", () => {
  const kv = machineWith([
    { op: "put", key: "b", value: { y: 1 } },
    { op: "put", key: "a", value: null },
    { op: "put", key: "b", value: [2] },
    { op: "delete", key: "a" },
    { op: "cas", key: "a", expectModified: 0, value: "again" },
  ]);
  const bytes = kv.snapshot();
  strictEqual(
    decoder.decode(bytes),
    '{"format":"watercraft-kv/2","entries":[["a","again",5,5],["b",[2],1,3]]}',
  );
  ok(kv.checkSnapshot(bytes));
  const copy = kvStateMachine();
  copy.restore(bytes);
  deepStrictEqual(copy.snapshot(), bytes);
  deepStrictEqual(copy.query({ op: "list" }), kv.query({ op: "list" }));
  // A cas on a restored revision matches, as it would have on the original.
  deepStrictEqual(copy.apply({ op: "cas", key: "b", expectModified: 3, value: 0 }, at(6)), {
    prev: [2],
    created: 1,
    modified: 6,
    prevModified: 3,
  });
});

Deno.test("kv.restore() takes a format-1 snapshot, its keys' revisions 0 (unknown)", async (t) => {
  // As a release before revisions wrote it.
  const v1 = encoder.encode(
    '{"format":"watercraft-kv/1","entries":[["a",{"x":1}],["b",null],["c",[1,2]]]}',
  );
  const restored = (): KvStateMachine => {
    const kv = kvStateMachine();
    kv.apply({ op: "put", key: "stale", value: 1 }, at(1));
    ok(kv.checkSnapshot(v1));
    kv.restore(v1);
    return kv;
  };

  await t.step("the values come back with revisions 0", () => {
    deepStrictEqual(restored().query({ op: "list" }), {
      items: [
        { key: "a", value: { x: 1 }, created: 0, modified: 0 },
        { key: "b", value: null, created: 0, modified: 0 },
        { key: "c", value: [1, 2], created: 0, modified: 0 },
      ],
    });
  });

  await t.step("its next snapshot is format 2 with the zeros", () => {
    strictEqual(
      decoder.decode(restored().snapshot()),
      '{"format":"watercraft-kv/2","entries":[["a",{"x":1},0,0],["b",null,0,0],["c",[1,2],0,0]]}',
    );
  });

  await t.step("a write gives a key a known modified, created stays unknown", () => {
    const kv = restored();
    deepStrictEqual(kv.apply({ op: "put", key: "a", value: 2 }, at(40)), {
      prev: { x: 1 },
      created: 0,
      modified: 40,
      prevModified: 0,
    });
    deepStrictEqual(kv.apply({ op: "cas", key: "a", expectModified: 40, value: 3 }, at(41)), {
      prev: 2,
      created: 0,
      modified: 41,
      prevModified: 40,
    });
  });

  await t.step("a cas on the revision of an unknown-revision key fails and says why", () => {
    const kv = restored();
    for (const expectModified of [0, 1]) {
      const error = caught(() =>
        kv.apply({ op: "cas", key: "b", expectModified, value: 1 }, at(40))
      );
      ok(error instanceof CasFailedError, String(error));
      deepStrictEqual(error.details, { current: null, modified: 0 });
      ok(/revision is unknown/.test(error.message), error.message);
    }
    // A cas on the value still works.
    deepStrictEqual(kv.apply({ op: "cas", key: "c", expect: [1, 2], value: 0 }, at(41)), {
      prev: [1, 2],
      created: 0,
      modified: 41,
      prevModified: 0,
    });
  });

  await t.step("a delete and re-create gives known revisions", () => {
    const kv = restored();
    deepStrictEqual(kv.apply({ op: "delete", key: "a" }, at(40)), {
      prev: { x: 1 },
      prevCreated: 0,
      prevModified: 0,
    });
    kv.apply({ op: "put", key: "a", value: 1 }, at(41));
    deepStrictEqual(kv.query({ op: "get", key: "a" }), {
      found: true,
      value: 1,
      created: 41,
      modified: 41,
    });
  });
});

Deno.test("kv revisions are equal on two machines fed the same log, however it was cut by snapshots", () => {
  // A seeded generator: the same sequence on every run and every runtime.
  let seed = 0x1b873593;
  const next = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const keys = ["a", "b", "c"];
  const commands: KvCommand[] = [];
  for (let i = 0; i < 500; i++) {
    const key = keys[next(keys.length)]!;
    const pick = next(3);
    commands.push(
      pick === 0
        ? { op: "put", key, value: i }
        : pick === 1
        ? { op: "delete", key }
        : { op: "cas", key, expectModified: next(2) === 0 ? 0 : i - next(4), value: i },
    );
  }
  const whole = kvStateMachine();
  const cut = kvStateMachine();
  let current = cut;
  let revisionMatches = 0;
  for (const [i, command] of commands.entries()) {
    for (const kv of [whole, current]) {
      try {
        const result = kv.apply(command, at(i + 1));
        if (kv === whole && "expectModified" in command && command.expectModified > 0) {
          ok("prevModified" in result);
          revisionMatches++;
        }
      } catch (error) {
        ok(error instanceof CasFailedError, String(error));
      }
    }
    // Every 50 entries the second machine is replaced by a restore of its snapshot.
    if (i % 50 === 49) {
      const fresh = kvStateMachine();
      fresh.restore(current.snapshot());
      current = fresh;
    }
  }
  deepStrictEqual(current.snapshot(), whole.snapshot());
  ok(revisionMatches > 0, "some cas on a revision of a present key succeeded");
});
