/**
 * Cluster configuration: who votes and who only replicates. A configuration
 * travels in `config` log entries and takes effect as soon as it is in a
 * node's log (Raft thesis §4.1), not when it commits.
 *
 * @module
 */

import { assert, AssertionError } from "./assert.ts";

/** What a node id looks like: 1 to 64 letters, digits, `.`, `_` or `-`. */
export const NODE_ID_PATTERN: RegExp = /^[A-Za-z0-9._-]{1,64}$/;

/** The same rule, as words for error messages. */
export const NODE_ID_RULE = "[A-Za-z0-9._-]{1,64}";

/**
 * Returns whether `id` is a valid node id.
 *
 * @param id The candidate id.
 * @returns True when it matches {@linkcode NODE_ID_PATTERN}.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { isNodeId } from "./config.ts";
 *
 * strictEqual(isNodeId("n1"), true);
 * strictEqual(isNodeId("n 1"), false);
 * ```
 */
export function isNodeId(id: unknown): id is string {
  return typeof id === "string" && NODE_ID_PATTERN.test(id);
}

/** One member of the cluster. */
export interface Member {
  /** The node's id. */
  readonly id: string;
  /** Whether it votes and counts towards quorums (else it is a learner). */
  readonly voter: boolean;
  /** A read-only member stays a learner for ever and refuses client writes. */
  readonly readOnly?: boolean;
  /** Where peers reach it; opaque to the core. */
  readonly url?: string;
}

/** The full member list at one point of the log. */
export interface Configuration {
  /** Every member, voters and learners. */
  readonly members: readonly Member[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes a configuration for a `config` entry.
 *
 * @param config The configuration.
 * @returns UTF-8 JSON bytes.
 */
export function encodeConfig(config: Configuration): Uint8Array {
  return encoder.encode(JSON.stringify({ members: config.members }));
}

/**
 * Says what keeps a value from being a configuration: a member list whose
 * members each have a string id and a boolean `voter`.
 *
 * @param value Anything, such as parsed JSON or a peer's snapshot metadata.
 * @returns What is wrong, or null when it is a configuration.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { configurationFault } from "./config.ts";
 *
 * strictEqual(configurationFault({ members: [{ id: "n1", voter: true }] }), null);
 * strictEqual(configurationFault({ members: [{ id: "n1" }] }), "member 0 is malformed");
 * ```
 */
export function configurationFault(value: unknown): string | null {
  const members = typeof value === "object" && value !== null
    ? (value as { members?: unknown }).members
    : undefined;
  if (!Array.isArray(members)) return "no member list";
  for (let i = 0; i < members.length; i++) {
    const m: unknown = members[i];
    if (
      typeof m !== "object" || m === null || typeof (m as Member).id !== "string" ||
      typeof (m as Member).voter !== "boolean"
    ) {
      return `member ${i} is malformed`;
    }
  }
  return null;
}

/**
 * Says what keeps bytes from being the data of a `config` entry.
 *
 * @param data The entry's data.
 * @returns What is wrong, or null when {@linkcode decodeConfig} takes them.
 */
export function configDataFault(data: Uint8Array): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch {
    return "not JSON";
  }
  return configurationFault(parsed);
}

/**
 * Decodes the data of a `config` entry.
 *
 * @param data Bytes made by {@linkcode encodeConfig}.
 * @returns The configuration.
 * @throws {AssertionError} If the bytes are not a configuration: a config
 *   entry is only ever written by the core, and a follower takes one from
 *   a leader only once {@linkcode configDataFault} passed it, so this is
 *   corruption.
 */
export function decodeConfig(data: Uint8Array): Configuration {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch {
    throw new AssertionError("Config entry is not JSON");
  }
  const fault = configurationFault(parsed);
  assert(fault === null, `Config entry holds ${fault}`);
  return parsed as Configuration;
}

/**
 * Returns the ids of the voting members.
 *
 * @param config The configuration.
 * @returns Voter ids, in member order.
 */
export function voterIds(config: Configuration): string[] {
  return config.members.filter((m) => m.voter).map((m) => m.id);
}

/** The configuration of a node that has not joined any cluster yet. */
export const EMPTY_CONFIG: Configuration = { members: [] };
