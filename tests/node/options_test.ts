/**
 * Tests for src/node/options.ts: `nodeSettings` checks a node's options and
 * fills in the defaults, refusing bad ones with `TypeError`; `roleName` maps
 * the core's role to the one `/v1/status` reports.
 *
 * @module
 */

import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import type { Role } from "../../src/core/types.ts";
import { kvStateMachine } from "../../src/kv/mod.ts";
import {
  type NodeOptions,
  type NodeSettings,
  nodeSettings,
  type NodeStatus,
  roleName,
} from "../../src/node/options.ts";
import { MemoryNetwork } from "../../src/testing.ts";

const BASE: NodeOptions = {
  id: "n1",
  stateMachine: kvStateMachine(),
  transport: new MemoryNetwork().transport(),
};

const DEFAULTS: NodeSettings = {
  heartbeatMs: 50,
  electionMs: 500,
  requestTimeoutMs: 5000,
  maxWaiting: 10_000,
  snapshotEvery: 10_000,
  snapshotKeepEntries: 1000,
  security: null,
};

/** Options without the fields every row shares. */
type Extra = Omit<Partial<NodeOptions>, "stateMachine" | "transport">;

Deno.test("nodeSettings() fills in the defaults and keeps the values given", async (t) => {
  const rows: { name: string; options: Extra; want: NodeSettings }[] = [
    { name: "nothing given", options: {}, want: DEFAULTS },
    {
      name: "every setting given",
      options: {
        heartbeatMs: 10,
        electionMs: 100,
        requestTimeoutMs: 250,
        maxWaiting: 3,
        snapshotEvery: 7,
        snapshotKeepEntries: 2,
      },
      want: {
        heartbeatMs: 10,
        electionMs: 100,
        requestTimeoutMs: 250,
        maxWaiting: 3,
        snapshotEvery: 7,
        snapshotKeepEntries: 2,
        security: null,
      },
    },
    {
      name: "the cluster secret",
      options: { secret: "s3cret" },
      want: { ...DEFAULTS, security: { secret: "s3cret" } },
    },
    {
      name: "an open cluster",
      options: { insecure: true },
      want: { ...DEFAULTS, security: { insecure: true } },
    },
    {
      name: "insecure: false is no choice",
      options: { insecure: false },
      want: DEFAULTS,
    },
    {
      name: "election exactly twice the heartbeat",
      options: { heartbeatMs: 100, electionMs: 200 },
      want: { ...DEFAULTS, heartbeatMs: 100, electionMs: 200 },
    },
    {
      name: "a shorter heartbeat under the default election",
      options: { heartbeatMs: 250 },
      want: { ...DEFAULTS, heartbeatMs: 250 },
    },
    {
      name: "a longer election over the default heartbeat",
      options: { electionMs: 100 },
      want: { ...DEFAULTS, electionMs: 100 },
    },
    {
      name: "fractional milliseconds",
      options: { heartbeatMs: 0.5, electionMs: 1.5 },
      want: { ...DEFAULTS, heartbeatMs: 0.5, electionMs: 1.5 },
    },
    {
      name: "no entries kept behind a snapshot",
      options: { snapshotKeepEntries: 0 },
      want: { ...DEFAULTS, snapshotKeepEntries: 0 },
    },
    { name: "a 64-character id", options: { id: "a".repeat(64) }, want: DEFAULTS },
    { name: "an id of every allowed kind", options: { id: "Node-1.a_Z" }, want: DEFAULTS },
    {
      name: "options nodeSettings does not check",
      options: { url: "http://n1:7000", seed: 7, readOnly: true, minVoters: 5 },
      want: DEFAULTS,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      deepStrictEqual(nodeSettings({ ...BASE, ...row.options }), row.want);
    });
  }
});

Deno.test("nodeSettings() needs a secret or insecure: true on a networked transport", () => {
  const networked = { ...BASE, transport: { ...BASE.transport, networked: true } };
  throws(
    () => nodeSettings(networked),
    /needs the cluster secret \(secret\) or an explicit insecure: true/,
  );
  deepStrictEqual(nodeSettings({ ...networked, secret: "s" }).security, { secret: "s" });
  deepStrictEqual(nodeSettings({ ...networked, insecure: true }).security, { insecure: true });
});

Deno.test("nodeSettings() refuses bad options with TypeError naming the option", async (t) => {
  const rows: { name: string; options: Extra; want: RegExp }[] = [
    { name: "an empty secret", options: { secret: "" }, want: /secret must be a non-empty string/ },
    {
      name: "both a secret and insecure",
      options: { secret: "s", insecure: true },
      want: /either the cluster secret or insecure: true, not both/,
    },
    { name: "an empty id", options: { id: "" }, want: /^Node id must match/ },
    { name: "an id with a space", options: { id: "n 1" }, want: /^Node id must match/ },
    { name: "an id with a slash", options: { id: "n/1" }, want: /^Node id must match/ },
    { name: "an id with a colon", options: { id: "n:1" }, want: /^Node id must match/ },
    { name: "a 65-character id", options: { id: "a".repeat(65) }, want: /^Node id must match/ },
    { name: "a non-ASCII id", options: { id: "nœud" }, want: /^Node id must match/ },
    {
      name: "a number for an id",
      options: { id: 1 as unknown as string },
      want: /^Node id must match/,
    },
    {
      name: "zero heartbeat",
      options: { heartbeatMs: 0 },
      want: /^heartbeatMs must be a positive number/,
    },
    {
      name: "negative heartbeat",
      options: { heartbeatMs: -50 },
      want: /^heartbeatMs must be a positive number/,
    },
    {
      name: "NaN heartbeat",
      options: { heartbeatMs: NaN },
      want: /^heartbeatMs must be a positive number/,
    },
    {
      name: "infinite heartbeat",
      options: { heartbeatMs: Infinity },
      want: /^heartbeatMs must be a positive number/,
    },
    {
      name: "zero election",
      options: { electionMs: 0 },
      want: /^electionMs must be a positive number/,
    },
    {
      name: "negative election",
      options: { electionMs: -1 },
      want: /^electionMs must be a positive number/,
    },
    {
      name: "election under twice the default heartbeat",
      options: { electionMs: 99 },
      want: /electionMs \(99\) must be at least twice heartbeatMs \(50\)/,
    },
    {
      name: "heartbeat over half the default election",
      options: { heartbeatMs: 300 },
      want: /twice heartbeatMs \(300\)/,
    },
    {
      name: "election equal to the heartbeat",
      options: { heartbeatMs: 100, electionMs: 100 },
      want: /twice heartbeatMs/,
    },
    {
      name: "election just under twice the heartbeat",
      options: { heartbeatMs: 100, electionMs: 199 },
      want: /twice heartbeatMs/,
    },
    {
      name: "zero request timeout",
      options: { requestTimeoutMs: 0 },
      want: /^requestTimeoutMs must be a positive number/,
    },
    {
      name: "negative request timeout",
      options: { requestTimeoutMs: -5 },
      want: /^requestTimeoutMs must be a positive number/,
    },
    {
      name: "infinite request timeout",
      options: { requestTimeoutMs: Infinity },
      want: /^requestTimeoutMs must be a positive number/,
    },
    {
      name: "zero maxWaiting",
      options: { maxWaiting: 0 },
      want: /^maxWaiting must be a positive number/,
    },
    {
      name: "NaN maxWaiting",
      options: { maxWaiting: NaN },
      want: /^maxWaiting must be a positive number/,
    },
    {
      name: "zero snapshotEvery",
      options: { snapshotEvery: 0 },
      want: /^snapshotEvery must be a positive number/,
    },
    {
      name: "negative snapshotEvery",
      options: { snapshotEvery: -10 },
      want: /^snapshotEvery must be a positive number/,
    },
    {
      name: "fractional snapshotKeepEntries",
      options: { snapshotKeepEntries: 1.5 },
      want: /^snapshotKeepEntries must be a non-negative integer/,
    },
    {
      name: "negative snapshotKeepEntries",
      options: { snapshotKeepEntries: -1 },
      want: /^snapshotKeepEntries must be a non-negative integer/,
    },
    {
      name: "NaN snapshotKeepEntries",
      options: { snapshotKeepEntries: NaN },
      want: /^snapshotKeepEntries must be a non-negative integer/,
    },
    {
      name: "infinite snapshotKeepEntries",
      options: { snapshotKeepEntries: Infinity },
      want: /^snapshotKeepEntries must be a non-negative integer/,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      throws(
        () => nodeSettings({ ...BASE, ...row.options }),
        (e) => e instanceof TypeError && row.want.test(e.message),
      );
    });
  }
});

Deno.test("roleName() reports non-voters as learners and PreVote as a candidacy", async (t) => {
  const rows: { name: string; role: Role; voter: boolean; want: NodeStatus["role"] }[] = [
    { name: "voting leader", role: "leader", voter: true, want: "leader" },
    { name: "voting follower", role: "follower", voter: true, want: "follower" },
    { name: "voting candidate", role: "candidate", voter: true, want: "candidate" },
    { name: "voting pre-candidate", role: "preCandidate", voter: true, want: "candidate" },
    { name: "non-voting follower", role: "follower", voter: false, want: "learner" },
    { name: "non-voting candidate", role: "candidate", voter: false, want: "learner" },
    { name: "non-voting pre-candidate", role: "preCandidate", voter: false, want: "learner" },
    { name: "non-voting leader", role: "leader", voter: false, want: "learner" },
  ];
  for (const row of rows) {
    await t.step(row.name, () => strictEqual(roleName(row.role, row.voter), row.want));
  }
});
