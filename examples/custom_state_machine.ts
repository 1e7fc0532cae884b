/**
 * A state machine of your own: a bank ledger (accounts and balances; commands
 * `open`, `deposit` and `transfer`) whose validator refuses overdrafts with a
 * {@linkcode RejectedError}, both from `propose()` and through HTTP (`422
 * rejected`); `apply` checks again, and refuses the second of two concurrent
 * transfers that passed the validator together. The node runs on file
 * storage in a temporary directory with `snapshotEvery: 10`, so it snapshots
 * the ledger and compacts its log as it goes; then it stops, a new node starts
 * on the same directory with an empty ledger, and `restore()` brings every
 * balance back.
 *
 * Run: deno run -A examples/custom_state_machine.ts
 *
 * @module
 */

import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import {
  createApp,
  createNode,
  fileStorage,
  RejectedError,
  type StateMachine,
  validateWith,
} from "../mod.ts";
import { MemoryNetwork } from "../src/testing.ts";

/** An account's name. */
const account = z.string().regex(/^[a-z]{1,32}$/, "must be 1 to 32 letters a-z");
/** An amount in whole cents. */
const amount = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/** What clients send, declared once: the type, the check and the 422 message come from it. */
const ledgerCommand = z.discriminatedUnion("op", [
  z.object({ op: z.literal("open"), account }),
  z.object({ op: z.literal("deposit"), account, amount }),
  z.object({ op: z.literal("transfer"), from: account, to: account, amount })
    .refine((t) => t.from !== t.to, "from and to must differ"),
]);
type LedgerCommand = z.infer<typeof ledgerCommand>;

/** Checks a command's shape: the ledger's `validate` starts with it. */
const parse = validateWith(ledgerCommand);

/** What clients read. */
type LedgerQuery = { op: "balance"; account: string } | { op: "balances" };

/** Balances after a command, by account. */
type LedgerResult = Record<string, number>;

/** Accounts and balances that never go below zero. */
class Ledger implements StateMachine<LedgerCommand, LedgerResult, LedgerQuery, unknown> {
  #balances = new Map<string, number>();
  /** How many accounts the last `restore()` brought back (null: never called). */
  restoredAccounts: number | null = null;
  /** Commands that passed `validate` but were refused by `apply`. */
  refusedByApply = 0;

  /** Runs where the request enters, before the command is logged: refuses it early (HTTP 422). */
  validate(command: unknown): LedgerCommand {
    const parsed = parse(command);
    this.#check(parsed);
    return parsed;
  }

  /**
   * Runs on every node, in log order. It checks again: two transfers may both
   * pass `validate` before either is applied, and the second must then be
   * refused, alike on every node.
   */
  apply(command: LedgerCommand): LedgerResult {
    try {
      this.#check(command);
    } catch (error) {
      this.refusedByApply++;
      throw error;
    }
    const b = this.#balances;
    switch (command.op) {
      case "open":
        b.set(command.account, 0);
        return { [command.account]: 0 };
      case "deposit":
        b.set(command.account, b.get(command.account)! + command.amount);
        return { [command.account]: b.get(command.account)! };
      case "transfer":
        b.set(command.from, b.get(command.from)! - command.amount);
        b.set(command.to, b.get(command.to)! + command.amount);
        return { [command.from]: b.get(command.from)!, [command.to]: b.get(command.to)! };
    }
  }

  query(query: LedgerQuery): unknown {
    if (query.op === "balance") return this.#balances.get(query.account) ?? null;
    return Object.fromEntries(this.#balances);
  }

  /** Sorted, so that every node's snapshot of the same state is the same bytes. */
  snapshot(): Uint8Array {
    const accounts = [...this.#balances].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
    return new TextEncoder().encode(JSON.stringify(accounts));
  }

  restore(data: Uint8Array): void {
    const accounts = JSON.parse(new TextDecoder().decode(data)) as [string, number][];
    this.#balances = new Map(accounts);
    this.restoredAccounts = accounts.length;
  }

  #check(c: LedgerCommand): void {
    const b = this.#balances;
    const need = (account: string) => {
      if (!b.has(account)) throw new RejectedError(`No account ${JSON.stringify(account)}`);
    };
    switch (c.op) {
      case "open":
        if (b.has(c.account)) {
          throw new RejectedError(`Account ${JSON.stringify(c.account)} is already open`);
        }
        return;
      case "deposit":
        return need(c.account);
      case "transfer":
        need(c.from);
        need(c.to);
        if (b.get(c.from)! < c.amount) {
          throw new RejectedError(
            `Cannot transfer ${c.amount} from ${c.from}: the balance is ${b.get(c.from)}`,
          );
        }
    }
  }
}

const dir = await mkdtemp(join(tmpdir(), "watercraft-ledger-"));
const network = new MemoryNetwork();
const options = { id: "bank", snapshotEvery: 10 };
try {
  // A one-node cluster: on empty storage it leads at once.
  const ledger = new Ledger();
  const node = await createNode({
    ...options,
    stateMachine: ledger,
    storage: fileStorage(dir),
    transport: network.transport(),
  });
  await node.propose({ op: "open", account: "alice" });
  await node.propose({ op: "open", account: "bob" });
  await node.propose({ op: "deposit", account: "alice", amount: 100 });
  const moved = await node.propose({ op: "transfer", from: "alice", to: "bob", amount: 30 });
  console.log(`transfer 30 alice -> bob: ${JSON.stringify(moved.result)}`);

  // Both pass `validate` (each alone is covered), so both are logged; `apply`
  // runs them in log order and refuses the second, alike on every node.
  const race = await Promise.allSettled([
    node.propose({ op: "transfer", from: "alice", to: "bob", amount: 50 }),
    node.propose({ op: "transfer", from: "alice", to: "bob", amount: 50 }),
  ]);
  const refusedRace = race.filter((r) =>
    r.status === "rejected" && r.reason instanceof RejectedError
  );
  strictEqual(refusedRace.length, 1);
  console.log(
    `two concurrent transfers of 50 from alice's 70: 1 applied, 1 refused (by apply: ${ledger.refusedByApply})`,
  );

  await rejects(
    node.propose({ op: "transfer", from: "bob", to: "alice", amount: 1000 }),
    (error) => {
      ok(error instanceof RejectedError);
      console.log(`overdraft refused by propose(): ${error.code}: ${error.message}`);
      return true;
    },
  );

  // The same through the node's HTTP API (no key-value routes: this is not the KV machine).
  const app = createApp(node, { kv: false });
  const post = (data: unknown) =>
    app.request("/v1/entries", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ data }),
    });
  const refused = await post({ op: "transfer", from: "bob", to: "alice", amount: 1000 });
  const body = await refused.json();
  strictEqual(refused.status, 422);
  strictEqual(body.error.code, "rejected");
  console.log(`overdraft refused over HTTP: ${refused.status} ${body.error.code}`);
  const accepted = await post({ op: "transfer", from: "bob", to: "alice", amount: 5 });
  strictEqual(accepted.status, 201);
  console.log(`transfer 5 bob -> alice over HTTP: ${accepted.status} ${(await accepted.text())}`);

  // Enough writes for snapshots: one every 10 applied entries.
  for (let i = 1; i <= 25; i++) await node.propose({ op: "deposit", account: "bob", amount: i });
  const before = (await node.read({ op: "balances" })).value;
  console.log(`balances before restart: ${JSON.stringify(before)}`);
  await node.stop();

  // What the node left on disk: a snapshot and the short log after it.
  const disk = fileStorage(dir);
  const stored = await disk.load();
  await disk.close();
  ok(stored.snapshot !== null, "no snapshot was saved");
  console.log(
    `on disk: snapshot at index ${stored.snapshot.meta.index}, ${stored.entries.length} entries after it`,
  );

  // A new node on the same storage with an empty ledger: restore(), then the log after it.
  const fresh = new Ledger();
  const again = await createNode({
    ...options,
    stateMachine: fresh,
    storage: fileStorage(dir),
    transport: network.transport(),
  });
  try {
    const after = (await again.read({ op: "balances" })).value;
    console.log(`restore() brought back ${fresh.restoredAccounts} accounts`);
    console.log(`balances after restart: ${JSON.stringify(after)}`);
    deepStrictEqual(after, before);
    await rejects(
      again.propose({ op: "transfer", from: "alice", to: "bob", amount: 1000 }),
      RejectedError,
    );
    console.log("ok");
  } finally {
    await again.stop();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
