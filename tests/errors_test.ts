/**
 * One error hierarchy: errors rebuilt from a code (relayed by another node,
 * or kept with an idempotency key) and refusals of the core are the classes
 * the README names, so `instanceof` works wherever they came from.
 *
 * @module
 */

import { ok, strictEqual } from "node:assert/strict";
import {
  type ErrorCode,
  errorFromCode,
  fromRaftError,
  ReadOnlyError,
  RejectedError,
  TimeoutError,
  UnavailableError,
  WaterCraftError,
} from "../src/errors.ts";
import { MembershipError, NotLeaderError, ProposalDroppedError } from "../src/core/errors.ts";

const LEADER = { id: "n2", url: "http://127.0.0.1:7002" };

Deno.test("errorFromCode() rebuilds the class each code stands for", async (t) => {
  const rows: {
    code: ErrorCode;
    details: Record<string, unknown>;
    // deno-lint-ignore no-explicit-any
    want: new (...args: any[]) => WaterCraftError;
    leader?: typeof LEADER | null;
  }[] = [
    { code: "unavailable", details: { leader: LEADER }, want: UnavailableError, leader: LEADER },
    { code: "unavailable", details: {}, want: UnavailableError, leader: null },
    { code: "read_only", details: { leader: LEADER }, want: ReadOnlyError, leader: LEADER },
    { code: "timeout", details: {}, want: TimeoutError },
    { code: "rejected", details: {}, want: RejectedError },
    { code: "cas_failed", details: { current: 3 }, want: WaterCraftError },
  ];
  for (const row of rows) {
    await t.step(`${row.code} ${JSON.stringify(row.details)}`, () => {
      const e = errorFromCode(row.code, "why", row.details);
      ok(e instanceof row.want, `${e.name} is not a ${row.want.name}`);
      strictEqual(e.code, row.code);
      strictEqual(e.message, row.code === "read_only" ? e.message : "why");
      if (row.leader !== undefined) {
        strictEqual(
          (e as UnavailableError | ReadOnlyError).leader?.id ?? null,
          row.leader?.id ?? null,
        );
      }
      if (row.code === "cas_failed") strictEqual(e.details.current, 3);
    });
  }
  await t.step("a malformed leader hint is dropped, not trusted", () => {
    const e = errorFromCode("unavailable", "why", { leader: { id: 7 } });
    ok(e instanceof UnavailableError);
    strictEqual(e.leader, null);
  });
});

Deno.test("fromRaftError() turns the core's refusals into the errors callers see", async (t) => {
  const rows: { name: string; error: Error; code: ErrorCode; unavailable: boolean }[] = [
    {
      name: "not leader",
      error: new NotLeaderError("propose", "n2"),
      code: "unavailable",
      unavailable: true,
    },
    {
      name: "dropped",
      error: new ProposalDroppedError("transfer"),
      code: "unavailable",
      unavailable: true,
    },
    {
      name: "already a member",
      error: new MembershipError("already_member", "x"),
      code: "conflict",
      unavailable: false,
    },
    {
      name: "no such member",
      error: new MembershipError("not_member", "x"),
      code: "not_found",
      unavailable: false,
    },
    {
      name: "not allowed",
      error: new MembershipError("not_allowed", "x"),
      code: "invalid_request",
      unavailable: false,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const e = fromRaftError(row.error, LEADER);
      ok(e instanceof WaterCraftError);
      strictEqual(e.code, row.code);
      strictEqual(e.message, row.error.message);
      strictEqual(e instanceof UnavailableError, row.unavailable);
      if (e instanceof UnavailableError) strictEqual(e.leader, LEADER);
    });
  }
  await t.step("anything else passes through unchanged", () => {
    const bug = new TypeError("bug");
    strictEqual(fromRaftError(bug, LEADER), bug);
  });
});
