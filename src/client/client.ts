/**
 * A client of a WaterCraft cluster over its HTTP API, for applications: it
 * takes any members' URLs, follows the leader, retries what is safe to
 * retry, and follows the log. Only `fetch` and Web streams: it runs the
 * same in Deno, Bun, Node, browsers and edge functions.
 *
 * Retries:
 * - A write carries an `Idempotency-Key` (one is made for it when the
 *   caller gives none), so it is resent on a network error, a `503` and a
 *   `504` alike: the cluster applies it at most once and a resend learns
 *   its outcome.
 * - A read is resent on a network error and a `503`.
 * - A `503` or `403 read_only` that names the leader sends the next try
 *   there; otherwise tries go round the members, with a short pause after
 *   each round, until the call's time is up.
 * - Anything else (`400`, `404`, `409 cas_failed`...) is the answer:
 *   thrown as the {@linkcode WaterCraftError} its code stands for.
 *
 * @module
 */

import { verifyChain } from "../chain.ts";
import {
  type ErrorCode,
  errorFromCode,
  type LeaderHint,
  TimeoutError,
  UnavailableError,
  WaterCraftError,
} from "../errors.ts";
import type { JsonValue } from "../kv/canonical_json.ts";
import type { KvDeleteResult, KvPutResult, KvRevisions } from "../kv/state_machine.ts";
import type { KeyChange } from "../kv/watch.ts";
import type { MemberStatus, NodeStatus } from "../node/options.ts";
import type { WatchedEntry, WatchEvent } from "../node/watch.ts";
import { readEvents } from "./sse.ts";

/** Options of {@linkcode WaterCraftClient}. */
export interface ClientOptions {
  /** Members' URLs (any of them; the client finds the leader). */
  readonly endpoints: readonly string[];
  /** The cluster's client token, sent as `Authorization: Bearer`. */
  readonly token?: string;
  /** How long one call may take in all, retries included, ms. Default 10 000. */
  readonly timeoutMs?: number;
  /** The `fetch` to use (one that trusts a private CA, say). Default the global one. */
  readonly fetch?: typeof fetch;
}

/** Options of one call. */
export interface CallOptions {
  /** Ends the call. */
  readonly signal?: AbortSignal;
  /** This call's time limit, ms, instead of the client's. */
  readonly timeoutMs?: number;
}

/** Options of a write. */
export interface WriteOptions extends CallOptions {
  /** The write's idempotency key; by default a fresh one, kept across its retries. */
  readonly idempotencyKey?: string;
}

/** Where a write landed. */
export interface WriteAnswer {
  /** The entry's index. */
  readonly index: number;
  /** Its term. */
  readonly term: number;
  /** Its hash: the transaction id. */
  readonly id: string;
  /** The head after it was applied. */
  readonly head: string;
}

/** A committed command and its result. */
export interface ProposeAnswer<Result> extends WriteAnswer {
  /** `committed`, or `accepted` with `wait: "accepted"`. */
  readonly state: "accepted" | "committed";
  /** What the state machine returned. */
  readonly result: Result | null;
}

/** A read's answer and the index it reflects. */
export interface ReadAnswer<T> {
  /** The value. */
  readonly value: T;
  /** The applied index it was read at. */
  readonly index: number;
}

/** Read consistency: `linearizable` (the default) or `local` (this member's state, maybe stale). */
export type Consistency = "linearizable" | "local";

/** A watch's options. */
export interface WatchCallOptions {
  /** Start after this index; default: from now. */
  readonly after?: number;
  /** Ends the watch. */
  readonly signal?: AbortSignal;
}

/** Reconnections of a watch in a row without an event, at most. */
const WATCH_RECONNECTS_MAX = 20;

/** The pause after a round of every member failed, ms: doubles up to the cap. */
const ROUND_PAUSE_MS = 50;
const ROUND_PAUSE_MAX_MS = 1_000;

/**
 * A client of a WaterCraft cluster.
 *
 * @typeParam Command What `propose` sends (the state machine's command).
 * @typeParam Result What the state machine returns for it.
 *
 * @example Against a one-node cluster
 * ```ts ignore
 * import { WaterCraftClient } from "@watercraft/raft/client";
 *
 * const client = new WaterCraftClient({ endpoints: ["http://127.0.0.1:6969"] });
 * await client.kv.put("greeting", "hello");
 * console.log((await client.kv.get("greeting")).value);
 * ```
 */
export class WaterCraftClient<Command = unknown, Result = unknown> {
  readonly #endpoints: string[];
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;
  /** The member that answered last (or was named leader): tried first. */
  #preferred: string;

  /**
   * Creates a client; it connects on its first call.
   *
   * @param options The members' URLs and the rest.
   * @throws {TypeError} Without endpoints, or with one that is not an http(s) URL.
   */
  constructor(options: ClientOptions) {
    if (options.endpoints.length === 0) throw new TypeError("A client needs at least one endpoint");
    this.#endpoints = options.endpoints.map((e) => {
      const url = new URL(e);
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new TypeError(`Endpoint ${e} is not an http(s) URL`);
      }
      return url.origin;
    });
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#preferred = this.#endpoints[0]!;
  }

  /**
   * Appends a command to the log and waits for its result.
   *
   * @param data The command.
   * @param options Idempotency key, time limit, and `wait: "accepted"` to
   *   answer once it is in the leader's log.
   * @returns Where it landed and its result.
   * @throws {WaterCraftError} `rejected` when the validator refuses it,
   *   `timeout` when its outcome stayed unknown, `unavailable` when no
   *   member could take it in time.
   */
  async propose(
    data: Command,
    options: WriteOptions & { wait?: "accepted" | "committed" } = {},
  ): Promise<ProposeAnswer<Result>> {
    const query = options.wait === undefined ? "" : `?wait=${options.wait}`;
    return await this.#write("POST", `/v1/entries${query}`, { data }, options);
  }

  /** The built-in key-value state machine's operations. */
  readonly kv: KvClient = {
    get: async (key, options = {}) => {
      const path = `/v1/kv/${encodeURIComponent(key)}${consistencyQuery(options.consistency)}`;
      return await this.#call("GET", path, undefined, options);
    },
    list: async (prefix = "", options = {}) => {
      const params = new URLSearchParams({ prefix });
      if (options.limit !== undefined) params.set("limit", String(options.limit));
      if (options.after !== undefined) params.set("after", options.after);
      if (options.consistency !== undefined) params.set("consistency", options.consistency);
      return await this.#call("GET", `/v1/kv?${params}`, undefined, options);
    },
    put: async (key, value, options = {}) =>
      await this.#write("PUT", `/v1/kv/${encodeURIComponent(key)}`, { value }, options),
    delete: async (key, options = {}) =>
      await this.#write("DELETE", `/v1/kv/${encodeURIComponent(key)}`, undefined, options),
    cas: async (key, expect, value, options = {}) =>
      await this.#write(
        "POST",
        `/v1/kv/${encodeURIComponent(key)}/cas`,
        { expect, value },
        options,
      ),
    casModified: async (key, modified, value, options = {}) =>
      await this.#write(
        "POST",
        `/v1/kv/${encodeURIComponent(key)}/cas`,
        { expectModified: modified, value },
        options,
      ),
  };

  /**
   * The status of the member that answers.
   *
   * @param options Time limit and signal.
   * @returns `GET /v1/status`.
   */
  async status(options: CallOptions = {}): Promise<NodeStatus> {
    return await this.#call("GET", "/v1/status", undefined, options);
  }

  /**
   * The members and the leader.
   *
   * @param options Time limit and signal.
   * @returns `GET /v1/members`.
   */
  async members(
    options: CallOptions = {},
  ): Promise<{ leader: LeaderHint | null; configIndex: number; members: MemberStatus[] }> {
    return await this.#call("GET", "/v1/members", undefined, options);
  }

  /**
   * Lists committed entries.
   *
   * @param after Entries after this index.
   * @param limit At most this many (1 to 1000).
   * @param options Time limit and signal.
   * @returns The entries and the `after` of the next page.
   * @throws {WaterCraftError} `compacted` when they are in a snapshot already.
   */
  async entries(
    after: number,
    limit = 100,
    options: CallOptions = {},
  ): Promise<{ entries: WatchedEntry[]; next: number }> {
    return await this.#call("GET", `/v1/entries?after=${after}&limit=${limit}`, undefined, options);
  }

  /**
   * Reads the log from `from` to the member's applied index and checks its
   * hash chain.
   *
   * @param from Check the entries after this index (0: from the start, if
   *   the member still has it).
   * @param options Time limit and signal, per page.
   * @returns What `verifyChain` found, over every page.
   */
  async verify(from = 0, options: CallOptions = {}): Promise<ReturnType<typeof verifyChain>> {
    let prev: string | undefined = from === 0 ? "0".repeat(64) : undefined;
    let checked = 0;
    let after = from;
    // Ends at the member's applied index: each page moves `after` on, and
    // an empty page ends it.
    while (true) {
      const page = await this.entries(after, 1000, options);
      if (page.entries.length === 0) break;
      const check = verifyChain(page.entries, prev);
      if (!check.ok) return check;
      checked += check.checked;
      prev = check.last ?? prev;
      after = page.next;
    }
    return { ok: true, checked, last: prev ?? null };
  }

  /**
   * Follows the committed log: reconnects (to another member if need be)
   * and resumes after the last event when a stream breaks.
   *
   * @param options Where to start and a signal that ends it.
   * @returns The events.
   * @throws {WaterCraftError} `compacted` when the entries to resume from
   *   are in a snapshot; `unavailable` when no member answered in
   *   {@linkcode WATCH_RECONNECTS_MAX} tries.
   */
  watch(options: WatchCallOptions = {}): AsyncGenerator<WatchEvent> {
    return this.#follow("/v1/watch", options, (event, data): WatchEvent | null => {
      switch (event) {
        case "entry":
          return { type: "entry", entry: data as WatchedEntry };
        case "leader":
          return { type: "leader", ...(data as { term: number; leader: null }) };
        default:
          return null;
      }
    });
  }

  /**
   * Follows the changes of the keys under a prefix, as {@linkcode watch} does.
   *
   * @param prefix The keys' prefix ("" for all).
   * @param options Where to start and a signal that ends it.
   * @returns The changes.
   */
  watchKeys(prefix: string, options: WatchCallOptions = {}): AsyncGenerator<KeyChange> {
    const path = `/v1/watch/kv?prefix=${encodeURIComponent(prefix)}`;
    return this.#follow(
      path,
      options,
      (event, data) => event === "put" || event === "delete" ? data as KeyChange : null,
    );
  }

  async *#follow<T>(
    path: string,
    options: WatchCallOptions,
    decode: (event: string, data: unknown) => T | null,
  ): AsyncGenerator<T> {
    let lastId: string | undefined = options.after === undefined
      ? undefined
      : String(options.after);
    let failures = 0;
    let endpoint = this.#preferred;
    while (failures < WATCH_RECONNECTS_MAX && !options.signal?.aborted) {
      let response: Response;
      try {
        response = await this.#fetch(`${endpoint}${path}`, {
          headers: {
            accept: "text/event-stream",
            ...this.#authorization(),
            ...(lastId === undefined ? {} : { "last-event-id": lastId }),
          },
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        });
      } catch {
        if (options.signal?.aborted) return;
        failures++;
        endpoint = this.#next(endpoint);
        await pause(failures, options.signal);
        continue;
      }
      if (!response.ok) {
        const error = await errorOf(response);
        if (error.code !== "unavailable") throw error;
        failures++;
        endpoint = this.#next(endpoint);
        await pause(failures, options.signal);
        continue;
      }
      try {
        for await (const sse of readEvents(response.body!)) {
          if (sse.id !== undefined) lastId = sse.id;
          if (sse.event === "dropped") break;
          const item = decode(sse.event, JSON.parse(sse.data));
          if (item === null) continue;
          failures = 0;
          yield item;
        }
      } catch {
        if (options.signal?.aborted) return;
        // The stream broke: resume after the last event, here or elsewhere.
      }
      failures++;
      endpoint = this.#next(endpoint);
      await pause(failures, options.signal);
    }
    if (!options.signal?.aborted) {
      throw new UnavailableError(`No member kept the watch of ${path} open`);
    }
  }

  async #write<T>(
    method: string,
    path: string,
    body: unknown,
    options: WriteOptions,
  ): Promise<T> {
    const key = options.idempotencyKey ?? crypto.randomUUID();
    return await this.#call(method, path, body, options, key);
  }

  /** One call, retried as the module says. */
  async #call<T>(
    method: string,
    path: string,
    body: unknown,
    options: CallOptions,
    idempotencyKey?: string,
  ): Promise<T> {
    const deadline = Date.now() + (options.timeoutMs ?? this.#timeoutMs);
    let endpoint = this.#preferred;
    let last: WaterCraftError | null = null;
    let tried = 0;
    // Bounded by the deadline: every turn sends one request, and pauses
    // after each round of the members.
    while (Date.now() < deadline) {
      const signals = [AbortSignal.timeout(Math.max(1, deadline - Date.now()))];
      if (options.signal !== undefined) signals.push(options.signal);
      let response: Response;
      try {
        response = await this.#fetch(`${endpoint}${path}`, {
          method,
          headers: {
            ...this.#authorization(),
            ...(body === undefined ? {} : { "content-type": "application/json" }),
            ...(idempotencyKey === undefined ? {} : { "idempotency-key": idempotencyKey }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.any(signals),
        });
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason;
        last = new UnavailableError(`Cannot reach ${endpoint}: ${messageOf(error)}`);
        endpoint = await this.#retryAt(endpoint, null, ++tried, deadline);
        continue;
      }
      if (response.ok) {
        this.#preferred = endpoint;
        return await response.json() as T;
      }
      const error = await errorOf(response);
      const retry = error.code === "unavailable" || error.code === "read_only" ||
        (error.code === "timeout" && idempotencyKey !== undefined);
      if (!retry) throw error;
      last = error;
      const leader = (error as { leader?: { url: string | null } | null }).leader?.url ?? null;
      endpoint = await this.#retryAt(endpoint, leader, ++tried, deadline);
    }
    if (last instanceof WaterCraftError && last.code === "timeout") throw last;
    throw idempotencyKey === undefined
      ? (last ?? new UnavailableError(`No member answered ${method} ${path} in time`))
      : new TimeoutError(
        `No member confirmed ${method} ${path} in time (${last?.message ?? "no answer"}): ` +
          `it may still apply; resend it with Idempotency-Key ${idempotencyKey} to learn its outcome`,
      );
  }

  /** Where to send the next try: the leader when named, else the next member; pauses after a round. */
  async #retryAt(
    endpoint: string,
    leader: string | null,
    tried: number,
    deadline: number,
  ): Promise<string> {
    if (leader !== null && leader !== endpoint) return new URL(leader).origin;
    if (tried % this.#endpoints.length === 0) {
      const round = tried / this.#endpoints.length;
      const ms = Math.min(ROUND_PAUSE_MS * 2 ** (round - 1), ROUND_PAUSE_MAX_MS);
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(ms, deadline - Date.now()))));
    }
    return this.#next(endpoint);
  }

  #next(endpoint: string): string {
    const at = this.#endpoints.indexOf(endpoint);
    return this.#endpoints[(at + 1) % this.#endpoints.length]!;
  }

  #authorization(): Record<string, string> {
    return this.#token === undefined ? {} : { authorization: `Bearer ${this.#token}` };
  }
}

/** The key-value operations of {@linkcode WaterCraftClient.kv}. */
export interface KvClient {
  /**
   * Reads a key with its revisions (`created`, `modified`: indexes of the
   * entries that created it and last changed it); `404 not_found` (thrown)
   * when it is absent.
   */
  get(
    key: string,
    options?: CallOptions & { consistency?: Consistency },
  ): Promise<ReadAnswer<JsonValue> & KvRevisions>;
  /**
   * Lists keys under a prefix, in byte order, a page at a time (at most
   * 1000): `next`, when not null, is the `after` of the next page.
   */
  list(
    prefix?: string,
    options?: CallOptions & { limit?: number; after?: string; consistency?: Consistency },
  ): Promise<{
    items: ({ key: string; value: JsonValue } & KvRevisions)[];
    index: number;
    next: string | null;
  }>;
  /** Sets a key; `prev` is its value before (null when absent), with its revisions after. */
  put(key: string, value: JsonValue, options?: WriteOptions): Promise<WriteAnswer & KvPutResult>;
  /** Deletes a key; `prev` is its value before (null when absent). */
  delete(key: string, options?: WriteOptions): Promise<WriteAnswer & KvDeleteResult>;
  /**
   * Sets a key if it holds `expect` (null: if absent); else throws
   * `409 cas_failed` with `current` and `modified`.
   */
  cas(
    key: string,
    expect: JsonValue,
    value: JsonValue,
    options?: WriteOptions,
  ): Promise<WriteAnswer & KvPutResult>;
  /**
   * Sets a key if its `modified` revision is `modified` (0: if absent);
   * else throws `409 cas_failed` with `current` and `modified`.
   */
  casModified(
    key: string,
    modified: number,
    value: JsonValue,
    options?: WriteOptions,
  ): Promise<WriteAnswer & KvPutResult>;
}

function consistencyQuery(consistency: Consistency | undefined): string {
  return consistency === undefined ? "" : `?consistency=${consistency}`;
}

/** The error a non-2xx answer stands for. */
async function errorOf(response: Response): Promise<WaterCraftError> {
  let body: { error?: { code?: string; message?: string } & Record<string, unknown> } = {};
  try {
    body = await response.json();
  } catch {
    // Not the API's JSON: a proxy's page, say.
  }
  const { code, message, ...details } = body.error ?? {};
  if (typeof code !== "string") {
    return response.status === 503 || response.status === 502
      ? new UnavailableError(`HTTP ${response.status} with no error body`)
      : new WaterCraftError("invalid_request", `HTTP ${response.status} with no error body`);
  }
  return errorFromCode(code as ErrorCode, message ?? code, details);
}

/** Waits before a reconnection: longer after each failure in a row. */
async function pause(failures: number, signal?: AbortSignal): Promise<void> {
  const ms = Math.min(ROUND_PAUSE_MS * 2 ** (failures - 1), ROUND_PAUSE_MAX_MS);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
