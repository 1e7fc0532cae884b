/**
 * What the benchmark needs of a running 3-member cluster, whichever system
 * it is: where its members listen, how to build a write and a linearizable
 * read, who leads, and how to kill and bring back a member.
 *
 * @module
 */

import type { MakeRequest } from "./load.ts";

/** The two systems compared. */
export type SystemName = "watercraft" | "etcd";

/** A running cluster of three members on loopback. */
export interface Cluster {
  /** Which system. */
  readonly name: SystemName;
  /** The members' client base URLs, `http://127.0.0.1:<port>`. */
  readonly urls: readonly string[];
  /** A write of a 256-byte value to a key. */
  readonly put: MakeRequest;
  /** A linearizable read of a key. */
  readonly get: MakeRequest;
  /**
   * The index in `urls` of the member that says it leads.
   *
   * @param options How long to wait for one (default 15 s), how often to ask
   *   (default 50 ms), and a member not to ask (the one just killed).
   */
  leader(options?: LeaderQuery): Promise<number>;
  /** The PIDs of the runtimes of the members that run (for RSS). */
  pids(): number[];
  /**
   * SIGKILLs a member's process.
   *
   * @param index Its index in `urls`.
   */
  kill(index: number): void;
  /**
   * Starts a killed member again on the same data directory and port, and
   * waits until the whole cluster is healthy again.
   *
   * @param index Its index in `urls`.
   */
  restart(index: number): Promise<void>;
  /** Waits until every member is up and they agree on a leader. */
  healthy(timeoutMs?: number): Promise<void>;
  /** The tail of every member's output, for error messages. */
  describe(): string;
  /** SIGKILLs every member and waits for them. */
  close(): Promise<void>;
}

/** Options of {@linkcode Cluster.leader}. */
export interface LeaderQuery {
  /** Give up after this long; default 15 s. */
  readonly timeoutMs?: number;
  /** Pause between polls; default 50 ms. */
  readonly intervalMs?: number;
  /** The index of a member not to ask. */
  readonly exclude?: number;
}

/** The value every write stores: 256 bytes. */
export const VALUE: string = "v".repeat(256);

/** The key of number `n`. */
export function keyName(n: number): string {
  return `bench-${n}`;
}

/**
 * Fetches JSON with a deadline; throws on a non-2xx answer.
 *
 * @param url The URL.
 * @param init Method and body.
 * @param timeoutMs Deadline.
 * @returns The parsed body.
 */
export async function fetchJson(
  url: string,
  init: { method?: string; body?: string } = {},
  timeoutMs = 2_000,
): Promise<unknown> {
  const res = await fetch(url, {
    ...init,
    ...(init.body === undefined ? {} : { headers: { "content-type": "application/json" } }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (!res.ok) {
    throw new Error(`${init.method ?? "GET"} ${url}: ${res.status} ${text.slice(0, 200)}`);
  }
  return JSON.parse(text);
}
