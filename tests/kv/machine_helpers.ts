/**
 * What the key-value machine's tests share: the entry a node hands to
 * `apply`, a machine with commands already applied, and the error a call
 * throws.
 *
 * @module
 */

import { type KvCommand, type KvStateMachine, kvStateMachine } from "../../src/kv/state_machine.ts";
import type { EntryMeta } from "../../src/state_machine.ts";

/**
 * The entry at `index`, as the node hands it to `apply`.
 *
 * @param index Its index.
 * @returns The entry's metadata, term 1.
 */
export function at(index: number): EntryMeta {
  return { index, term: 1, id: "", proposer: "n1", timeMs: 0 };
}

/**
 * A machine that has applied `commands` in order, at indexes 1, 2, ...
 *
 * @param commands The commands (checked by `apply`).
 * @returns The machine.
 */
export function machineWith(commands: readonly KvCommand[]): KvStateMachine {
  const kv = kvStateMachine();
  for (const [i, command] of commands.entries()) kv.apply(command, at(i + 1));
  return kv;
}

/**
 * The error `fn` throws.
 *
 * @param fn The call.
 * @returns What it threw.
 * @throws {Error} When it returned.
 */
export function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("Expected the call to throw");
}
