/**
 * A linearizability checker for the key-value register with compare-and-set
 * (Wing & Gong's search with the memoisation of Lowe, as Porcupine does it).
 * The history is split per key (a key-value store is linearizable if and
 * only if each key is: P-compositionality), and each key's operations are
 * searched for an order that respects real time and the register's rules.
 *
 * An operation whose outcome is unknown (a timeout, a crash) may have taken
 * effect at any time after its call, or never: it returns at infinity, so it
 * may be ordered after everything, and its output is not checked. Unknown
 * writes whose value nobody ever saw are dropped first: writing a value no
 * one observes, or not writing it, explains the same history.
 *
 * @module
 */

/** A key-value operation as a client called it. Values are unique numbers. */
export type KvOp =
  | { readonly kind: "put"; readonly key: string; readonly value: number }
  | { readonly kind: "delete"; readonly key: string }
  | {
    readonly kind: "cas";
    readonly key: string;
    readonly expect: number | null;
    readonly value: number;
  }
  | { readonly kind: "get"; readonly key: string };

/**
 * What an operation returned. `prev` of a put or delete is the value it
 * replaced (null: absent); `current` of a failed cas the value it found; a
 * get's `value` is null when the key is absent.
 */
export type KvOutput =
  | { readonly kind: "written"; readonly prev: number | null }
  | { readonly kind: "cas"; readonly ok: true }
  | { readonly kind: "cas"; readonly ok: false; readonly current: number | null }
  | { readonly kind: "read"; readonly value: number | null };

/** One operation of the history. */
export interface HistoryOp {
  /** Unique id. */
  readonly id: number;
  /** The client that called it. */
  readonly client: number;
  /** The operation. */
  readonly op: KvOp;
  /** Simulated time of the call. */
  readonly callMs: number;
  /** Simulated time of the answer; `Infinity` when the outcome is unknown. */
  readonly returnMs: number;
  /** What it returned; absent when unknown. */
  readonly output?: KvOutput;
}

/** What the check found. */
export interface LinearizabilityResult {
  /** True when every key's history is linearizable (or the search gave up). */
  readonly ok: boolean;
  /** Keys whose search ran out of budget: neither proven nor refuted. */
  readonly inconclusive: readonly string[];
  /** For a failure: the key and the operations of its history, for debugging. */
  readonly failure?: { readonly key: string; readonly ops: readonly HistoryOp[] };
}

type State = number | null;

/**
 * One step of the register: whether `op` with `output` may happen in
 * `state`, and the state after it.
 *
 * @param state The value now (null: absent).
 * @param op The operation.
 * @param output What it returned, or undefined when unknown.
 * @returns The next state, or undefined when the step is impossible.
 */
export function stepRegister(
  state: State,
  op: KvOp,
  output: KvOutput | undefined,
): { next: State } | undefined {
  switch (op.kind) {
    case "put":
      if (output?.kind === "written" && output.prev !== state) return undefined;
      return { next: op.value };
    case "delete":
      if (output?.kind === "written" && output.prev !== state) return undefined;
      return { next: null };
    case "cas": {
      const matches = state === op.expect;
      if (output === undefined) return { next: matches ? op.value : state };
      if (output.kind !== "cas") return undefined;
      if (output.ok) return matches ? { next: op.value } : undefined;
      return !matches && state === output.current ? { next: state } : undefined;
    }
    case "get":
      if (output?.kind === "read" && output.value !== state) return undefined;
      return { next: state };
  }
}

/**
 * Checks a whole key-value history.
 *
 * @param history Every operation that may have taken effect (definite
 *   failures left out).
 * @param budget Most search steps per key before it gives up.
 * @returns Whether it is linearizable.
 *
 * @example A stale read is caught
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { checkLinearizable } from "./linearizability.ts";
 *
 * const result = checkLinearizable([
 *   { id: 1, client: 1, op: { kind: "put", key: "k", value: 1 }, callMs: 0, returnMs: 1, output: { kind: "written", prev: null } },
 *   { id: 2, client: 2, op: { kind: "get", key: "k" }, callMs: 2, returnMs: 3, output: { kind: "read", value: null } },
 * ]);
 * strictEqual(result.ok, false);
 * ```
 */
export function checkLinearizable(
  history: readonly HistoryOp[],
  budget = 200_000,
): LinearizabilityResult {
  const byKey = new Map<string, HistoryOp[]>();
  for (const h of history) {
    let ops = byKey.get(h.op.key);
    if (ops === undefined) byKey.set(h.op.key, ops = []);
    ops.push(h);
  }
  const inconclusive: string[] = [];
  for (const [key, ops] of [...byKey].sort((a, b) => a[0] < b[0] ? -1 : 1)) {
    const pruned = pruneUnobserved(ops);
    const verdict = checkKey(pruned, budget);
    if (verdict === "inconclusive") inconclusive.push(key);
    else if (verdict === "violation") {
      return { ok: false, inconclusive, failure: { key, ops: pruned } };
    }
  }
  return { ok: true, inconclusive };
}

/** Drops unknown puts and compare-and-sets whose value no operation observed. */
function pruneUnobserved(ops: readonly HistoryOp[]): HistoryOp[] {
  const seen = new Set<number>();
  for (const h of ops) {
    const o = h.output;
    if (o?.kind === "written" && o.prev !== null) seen.add(o.prev);
    if (o?.kind === "read" && o.value !== null) seen.add(o.value);
    if (o?.kind === "cas" && !o.ok && o.current !== null) seen.add(o.current);
    // A compare-and-set that may have succeeded observed its expected value.
    if (
      h.op.kind === "cas" && h.op.expect !== null && (o === undefined || (o.kind === "cas" && o.ok))
    ) {
      seen.add(h.op.expect);
    }
  }
  return ops.filter((h) =>
    h.output !== undefined || h.op.kind === "delete" || h.op.kind === "get" || seen.has(h.op.value)
  );
}

interface Node {
  readonly op: HistoryOp;
  readonly isCall: boolean;
  /** The call's return node (for a call). */
  match: Node | null;
  prev: Node | null;
  next: Node | null;
  readonly index: number;
}

/** Searches one key's history for a linearization. */
function checkKey(ops: readonly HistoryOp[], budget: number): "ok" | "violation" | "inconclusive" {
  if (ops.length === 0) return "ok";
  // Calls before returns at equal times: equal times count as concurrent.
  const events = ops.flatMap((op, index) => [
    { op, index, isCall: true, at: op.callMs },
    { op, index, isCall: false, at: op.returnMs },
  ]).sort((a, b) =>
    a.at !== b.at ? a.at - b.at : a.isCall !== b.isCall ? (a.isCall ? -1 : 1) : a.index - b.index
  );
  const head: Node = { op: ops[0]!, isCall: false, match: null, prev: null, next: null, index: -1 };
  let tail = head;
  const calls = new Map<number, Node>();
  for (const e of events) {
    const node: Node = {
      op: e.op,
      isCall: e.isCall,
      match: null,
      prev: tail,
      next: null,
      index: e.index,
    };
    tail.next = node;
    tail = node;
    if (e.isCall) calls.set(e.index, node);
    else calls.get(e.index)!.match = node;
  }
  const words = Math.ceil(ops.length / 32);
  const linearized = new Uint32Array(words);
  const cache = new Map<string, Set<State>>();
  const stack: { node: Node; state: State }[] = [];
  let state: State = null;
  let entry = head.next;
  for (let steps = 0; steps < budget; steps++) {
    if (head.next === null) return "ok";
    if (entry === null) return "violation";
    if (entry.isCall) {
      const stepped = stepRegister(state, entry.op.op, entry.op.output);
      if (stepped !== undefined) {
        linearized[entry.index >> 5]! |= 1 << (entry.index & 31);
        const key = linearized.join(",");
        let states = cache.get(key);
        if (states === undefined) cache.set(key, states = new Set());
        if (!states.has(stepped.next)) {
          states.add(stepped.next);
          stack.push({ node: entry, state });
          state = stepped.next;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized[entry.index >> 5]! &= ~(1 << (entry.index & 31));
      }
      entry = entry.next;
    } else {
      // A return with its call not yet linearized: undo the last choice.
      const top = stack.pop();
      if (top === undefined) return "violation";
      state = top.state;
      linearized[top.node.index >> 5]! &= ~(1 << (top.node.index & 31));
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return "inconclusive";
}

function lift(call: Node): void {
  call.prev!.next = call.next;
  call.next!.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

function unlift(call: Node): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev!.next = call;
  call.next!.prev = call;
}
