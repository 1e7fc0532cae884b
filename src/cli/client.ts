/**
 * The HTTP client of the operator commands (`status`, `members`, `leader`,
 * `kv`, `snapshot save`): it talks to any member it is given and follows
 * the leader. A member that cannot be reached is skipped for the next; a
 * `503` that names the leader is retried there; a `503` without one (an
 * election) is retried after a pause, until the deadline.
 *
 * @module
 */

import type { ErrorBody } from "../http/errors.ts";
import { describeFetchError, isCertificateError } from "../transport/http/tls.ts";

/** Where and how the client calls the cluster. */
export interface ClientOptions {
  /** Member base URLs to try, in order. */
  readonly endpoints: readonly string[];
  /** Bearer token of the client routes, if the cluster requires one. */
  readonly clientToken: string | null;
  /** The cluster secret, for membership changes (sent as `X-WaterCraft-Secret`). */
  readonly secret: string | null;
  /** How long one command may take, ms. */
  readonly timeoutMs: number;
  /** The `fetch` to use. Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch;
}

/** How one request is sent. */
export interface RequestOptions {
  /** A JSON body. */
  readonly body?: unknown;
  /** Send it to the leader itself (found first when unknown). */
  readonly leader?: boolean;
  /** Prove the cluster secret (membership changes). */
  readonly secret?: boolean;
  /** More headers. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** An answer with its JSON body read. */
export interface Answer {
  /** HTTP status. */
  readonly status: number;
  /** The JSON body, or null when there is none. */
  // deno-lint-ignore no-explicit-any
  readonly body: any;
  /** The member that answered. */
  readonly url: string;
}

/** A request no member answered, or answered with an error. */
export class ClientError extends Error {
  /** The error code of API.md section 2, or `unreachable` when no member answered. */
  readonly code: string;
  /** The HTTP status, or 0 when no member answered. */
  readonly status: number;

  /**
   * Creates the error.
   *
   * @param code The API's error code.
   * @param message What went wrong.
   * @param status The HTTP status.
   */
  constructor(code: string, message: string, status = 0) {
    super(message);
    this.name = "ClientError";
    this.code = code;
    this.status = status;
  }
}

/** Pause before asking again while the cluster elects a leader. */
const ELECTION_PAUSE_MS = 200;
/** Attempts at most per request, whatever the deadline. */
const ATTEMPTS_MAX = 50;

/** A client of one cluster. */
export class ClusterClient {
  readonly #options: ClientOptions;
  readonly #fetch: typeof fetch;
  /** The leader's URL, once an answer named it. */
  #leaderUrl: string | null = null;
  /** The endpoint to try next. */
  #next = 0;

  /**
   * Creates a client.
   *
   * @param options Endpoints, credentials and deadline.
   * @throws {RangeError} Without endpoints.
   */
  constructor(options: ClientOptions) {
    if (options.endpoints.length === 0) throw new RangeError("The client needs an endpoint");
    this.#options = options;
    this.#fetch = options.fetch ?? fetch;
  }

  /** The endpoints the client was given. */
  get endpoints(): readonly string[] {
    return this.#options.endpoints;
  }

  /**
   * Sends a request and reads its JSON answer; throws on an error answer.
   *
   * @param method HTTP method.
   * @param path Path and query, from `/`.
   * @param options Body, headers, and whether to go to the leader and prove the secret.
   * @returns The successful answer.
   * @throws {ClientError} When no member answered in time, or one answered with an error.
   */
  async json(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<Answer> {
    const { response, url } = await this.send(method, path, options);
    const text = await response.text();
    let body: unknown = null;
    try {
      body = text === "" ? null : JSON.parse(text);
    } catch {
      body = null;
    }
    if (!response.ok) throw errorOf(response.status, body, `${method} ${url}${path}`);
    return { status: response.status, body, url };
  }

  /**
   * Sends a request and returns the response unread (for streamed bodies);
   * throws on an error answer.
   *
   * @param method HTTP method.
   * @param path Path and query.
   * @param options As for {@linkcode ClusterClient.json}.
   * @returns The response, `ok`, and the member that gave it.
   * @throws {ClientError} As for {@linkcode ClusterClient.json}.
   */
  async send(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<{ response: Response; url: string }> {
    const deadline = Date.now() + this.#options.timeoutMs;
    if (options.leader && this.#leaderUrl === null) await this.#findLeader(deadline);
    let problem = "no member was tried";
    const refused = new Set<string>();
    for (let attempt = 0; attempt < ATTEMPTS_MAX && Date.now() < deadline; attempt++) {
      const url = this.#leaderUrl !== null && (options.leader || attempt > 0)
        ? this.#leaderUrl
        : this.#endpoint();
      let response: Response;
      try {
        response = await this.#fetch(url + path, {
          method,
          headers: this.#headers(options),
          ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
          signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
        });
      } catch (error) {
        const untrusted = isCertificateError(error);
        problem = `${url}: ${describeFetchError(error)}${
          untrusted ? " (its certificate is not trusted: give its CA with --ca)" : ""
        }`;
        // A setting to fix, which asking again does not: give up once every member refused.
        if (untrusted) refused.add(url);
        if (refused.size >= this.#options.endpoints.length) break;
        if (url === this.#leaderUrl) this.#leaderUrl = null;
        this.#next++;
        continue;
      }
      if (response.status !== 503) {
        if (response.ok && options.leader) this.#leaderUrl = url;
        return { response, url };
      }
      const body = await response.json().catch(() => null);
      const leader = (body as { error?: { leader?: { url?: unknown } | null } } | null)?.error
        ?.leader?.url;
      problem = `${url}: ${errorOf(response.status, body, path).message}`;
      if (typeof leader === "string" && leader !== url) {
        this.#leaderUrl = leader.replace(/\/+$/, "");
        continue;
      }
      // An election is under way (or no quorum): ask again shortly.
      this.#leaderUrl = null;
      this.#next++;
      await pause(Math.min(ELECTION_PAUSE_MS, Math.max(0, deadline - Date.now())));
    }
    throw new ClientError(
      "unavailable",
      `Cannot ${method} ${path} within ${this.#options.timeoutMs} ms: ${problem}`,
    );
  }

  /**
   * Asks one member directly, once, without following the leader.
   *
   * @param url The member's base URL.
   * @param path Path and query.
   * @param timeoutMs How long to wait.
   * @returns Its answer, or null when it could not be reached or answered an error.
   */
  async probe(url: string, path: string, timeoutMs: number): Promise<Answer | null> {
    try {
      const res = await this.#fetch(url + path, {
        headers: this.#headers({}),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const body = await res.json().catch(() => null);
      return res.ok ? { status: res.status, body, url } : null;
    } catch {
      return null;
    }
  }

  /** Asks the endpoints who leads, until one knows. */
  async #findLeader(deadline: number): Promise<void> {
    const refused = new Set<string>();
    for (let attempt = 0; attempt < ATTEMPTS_MAX && Date.now() < deadline; attempt++) {
      const url = this.#endpoint();
      try {
        const res = await this.#fetch(url + "/v1/status", {
          headers: this.#headers({}),
          signal: AbortSignal.timeout(Math.max(1, Math.min(2_000, deadline - Date.now()))),
        });
        const body = await res.json().catch(() => null);
        const leader = res.ok ? body?.leader?.url : null;
        if (typeof leader === "string") {
          this.#leaderUrl = leader.replace(/\/+$/, "");
          return;
        }
        if (res.status === 401) throw errorOf(res.status, body, "GET /v1/status");
      } catch (error) {
        if (error instanceof ClientError) throw error;
        // Every member's certificate refused: `send` says so, asking again does not help.
        if (isCertificateError(error)) refused.add(url);
        if (refused.size >= this.#options.endpoints.length) return;
      }
      this.#next++;
      if (attempt % this.#options.endpoints.length === this.#options.endpoints.length - 1) {
        await pause(Math.min(ELECTION_PAUSE_MS, Math.max(0, deadline - Date.now())));
      }
    }
  }

  #endpoint(): string {
    const list = this.#options.endpoints;
    return list[this.#next % list.length]!;
  }

  #headers(options: RequestOptions): Record<string, string> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    if (this.#options.clientToken !== null) {
      headers.authorization = `Bearer ${this.#options.clientToken}`;
    }
    if (options.secret && this.#options.secret !== null) {
      headers["x-watercraft-secret"] = this.#options.secret;
    }
    return headers;
  }
}

/** The error an answer carries, as a {@linkcode ClientError}. */
function errorOf(status: number, body: unknown, what: string): ClientError {
  const error = (body as Partial<ErrorBody> | null)?.error;
  if (error !== undefined && typeof error.code === "string") {
    return new ClientError(error.code, error.message, status);
  }
  return new ClientError("unavailable", `${what} answered ${status}`, status);
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
