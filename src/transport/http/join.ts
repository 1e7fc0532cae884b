/**
 * Joining a cluster: ask any listed member who leads and who the members
 * are, ask the leader to add this node, and retry with back-off across the
 * listed URLs and the member URLs learned on the way until the addition is
 * committed.
 *
 * A member whose HTTPS certificate this node refuses is not asked again (a
 * setting to fix, such as `--ca`, which retrying cannot); when every known
 * member is such, joining fails at once, saying why.
 *
 * @module
 */

import { type ErrorCode, errorFromCode, UnavailableError, WaterCraftError } from "../../errors.ts";
import type { Clock } from "../../clock.ts";
import type { JoinAnswer, JoinRequest } from "../transport.ts";
import type { PeerCredentials } from "./credentials.ts";
import { describeFetchError, isCertificateError } from "./tls.ts";

/** Options of {@linkcode joinCluster}: the request, and how the transport calls members. */
export interface JoinOptions extends JoinRequest {
  /** The node's credentials: membership requests are signed with them. */
  readonly credentials: PeerCredentials;
  /** Client token, sent as a bearer token. */
  readonly clientToken?: string;
  /**
   * Hears each failed attempt, with why, before the next one. Default: the
   * line of {@linkcode joinRetryLine} on `console.warn`.
   */
  readonly onRetry?: (retry: JoinRetry) => void;
  /** The `fetch` to call members with. Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch;
}

/** A join attempt that failed, for {@linkcode JoinOptions.onRetry}. */
export interface JoinRetry {
  /** Its number, from 1. */
  readonly attempt: number;
  /** Why it failed: the member asked, and what went wrong. */
  readonly problem: string;
  /** How long until the next attempt, ms. */
  readonly delayMs: number;
}

/**
 * The line that reports a failed join attempt.
 *
 * @param retry The attempt.
 * @returns E.g. `watercraft: join attempt 2 failed (…); retrying`.
 */
export function joinRetryLine(retry: JoinRetry): string {
  return `watercraft: ${joinRetryMessage(retry)}`;
}

/**
 * What a failed join attempt says, for a logger that adds its own prefix.
 *
 * @param retry The attempt.
 * @returns E.g. `join attempt 2 failed (…); retrying`.
 */
export function joinRetryMessage(retry: JoinRetry): string {
  return `join attempt ${retry.attempt} failed (${retry.problem}); retrying`;
}

/**
 * Gets this node added to a running cluster.
 *
 * @param options Who joins, through whom, and how long to try.
 * @returns The member list the leader's cluster had when it accepted (the
 *   leader's URL is how this node answers it before its log has caught up).
 * @throws {WaterCraftError} `conflict` when the id is taken by a member at
 *   another URL; `unavailable` when no member accepted before the deadline.
 */
export async function joinCluster(options: JoinOptions): Promise<JoinAnswer> {
  const deadline = options.clock.now() + options.timeoutMs;
  const candidates = [...new Set(options.seeds.map(trimSlash))];
  /** Members whose certificate was refused: not asked again. */
  const untrusted = new Set<string>();
  let backoffMs = 100;
  let lastProblem = "no member answered";
  for (let attempt = 0; attempt < 1000 && options.clock.now() < deadline; attempt++) {
    const usable = candidates.filter((url) => !untrusted.has(url));
    if (usable.length === 0) break;
    const base = usable[attempt % usable.length]!;
    /** The member being called, to blame the right one. */
    let target = base;
    try {
      const members = await call<JoinAnswer>(options, base, "GET", "/v1/members");
      for (const m of members.members) if (m.url) addUnique(candidates, trimSlash(m.url));
      const leader = members.leader;
      if (leader?.url) {
        target = trimSlash(leader.url);
        await call(options, target, "POST", "/v1/members", {
          id: options.id,
          url: options.url,
          ...(options.readOnly ? { readOnly: true } : {}),
        });
        return members;
      }
      lastProblem = `${base} knows no leader`;
    } catch (e) {
      if (e instanceof WaterCraftError && (e.code === "conflict" || e.code === "unauthorized")) {
        throw e;
      }
      const certificate = !(e instanceof WaterCraftError) && isCertificateError(e);
      lastProblem = e instanceof WaterCraftError
        ? `${target}: ${e.message}`
        : certificate
        ? `${target}: its certificate is not trusted (${describeFetchError(e)})`
        : `${target}: ${describeFetchError(e)}`;
      if (certificate) {
        untrusted.add(target);
        if (candidates.every((url) => untrusted.has(url))) break;
      }
    }
    const delayMs = Math.min(backoffMs, Math.max(0, deadline - options.clock.now()));
    const retry = { attempt: attempt + 1, problem: lastProblem, delayMs };
    if (options.onRetry === undefined) console.warn(joinRetryLine(retry));
    else options.onRetry(retry);
    await delay(options.clock, delayMs);
    backoffMs = Math.min(backoffMs * 2, 2000);
  }
  throw new UnavailableError(`Cannot join the cluster: ${lastProblem}`);
}

/**
 * Calls a member's client API, signed with the node's credentials; a `401`
 * that hands out a challenge is answered once, signed under it.
 */
async function call<T>(
  options: JoinOptions,
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const text = body === undefined ? "" : JSON.stringify(body);
  for (let attempt = 1;; attempt++) {
    const proof = options.credentials.sign(
      base,
      options.id,
      method,
      path,
      new TextEncoder().encode(text),
    );
    const headers: Record<string, string> = {
      "content-type": "application/json",
      ...proof.headers,
    };
    if (options.clientToken !== undefined) headers.authorization = `Bearer ${options.clientToken}`;
    const res = await (options.fetch ?? fetch)(base + path, {
      method,
      headers,
      ...(body === undefined ? {} : { body: text }),
      signal: AbortSignal.timeout(10_000),
    });
    if (attempt === 1 && options.credentials.learn(base, res)) {
      await res.body?.cancel().catch(() => {});
      continue;
    }
    const answer = await res.json().catch(() => null);
    if (res.ok) return answer as T;
    const error = (answer as { error?: { code?: string; message?: string } } | null)?.error;
    throw errorFromCode(
      (error?.code ?? "unavailable") as ErrorCode,
      error?.message ?? `${method} ${base}${path} answered ${res.status}`,
    );
  }
}

function delay(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(resolve, ms));
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

function addUnique(list: string[], item: string): void {
  if (!list.includes(item)) list.push(item);
}
