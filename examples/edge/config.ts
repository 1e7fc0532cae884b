/**
 * The edge node's settings, from environment variables (a Deno Deploy
 * project's variables, or the environment of `deno serve`).
 *
 * @module
 */

/** The node's settings. */
export interface EdgeConfig {
  /** `WATERCRAFT_ID`: the node id (default `edge`); also names its KV prefix. */
  readonly id: string;
  /** `WATERCRAFT_ADVERTISE`: the URL peers reach it at; default the first request's origin. */
  readonly advertise: string | null;
  /** `WATERCRAFT_JOIN`: comma-separated member URLs; none starts a new cluster. */
  readonly join: readonly string[];
  /** `WATERCRAFT_READ_ONLY`: `true` (default) joins as a read-only member, `false` as a voter. */
  readonly readOnly: boolean;
  /** `WATERCRAFT_SECRET`: the cluster secret; required unless `insecure`. */
  readonly secret: string | null;
  /** `WATERCRAFT_INSECURE=true`: an open cluster, no secret (experiments only). */
  readonly insecure: boolean;
  /** `WATERCRAFT_CLIENT_TOKEN`: bearer token of the client routes. */
  readonly clientToken: string | null;
  /** `WATERCRAFT_KV_PATH`: a local KV file; unset opens the default KV (the hosted one on Deploy). */
  readonly kvPath: string | null;
  /** `WATERCRAFT_HEARTBEAT_MS` (default 50). */
  readonly heartbeatMs: number;
  /** `WATERCRAFT_ELECTION_MS` (default 500). */
  readonly electionMs: number;
}

const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Reads the settings.
 *
 * @param env Looks up one environment variable; empty counts as unset.
 * @returns The settings.
 * @throws {TypeError} When a variable has an unusable value, or a read-only
 *   member has no cluster to join.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, throws } from "node:assert/strict";
 * import { readConfig } from "./config.ts";
 *
 * const env: Record<string, string> = {
 *   WATERCRAFT_ID: "edge-1",
 *   WATERCRAFT_JOIN: "http://10.0.0.1:6969, http://10.0.0.2:6969",
 *   WATERCRAFT_SECRET: "the cluster's secret",
 * };
 * const config = readConfig((name) => env[name]);
 * deepStrictEqual(config.join, ["http://10.0.0.1:6969", "http://10.0.0.2:6969"]);
 * deepStrictEqual([config.readOnly, config.advertise, config.heartbeatMs], [true, null, 50]);
 * throws(() => readConfig(() => undefined), /must join a cluster/);
 * throws(() => readConfig((name) => ({ ...env, WATERCRAFT_SECRET: undefined })[name]), /WATERCRAFT_SECRET/);
 * ```
 */
export function readConfig(env: (name: string) => string | undefined): EdgeConfig {
  const get = (name: string): string | null => {
    const value = env(name)?.trim();
    return value === undefined || value === "" ? null : value;
  };
  const id = get("WATERCRAFT_ID") ?? "edge";
  if (!ID_PATTERN.test(id)) {
    throw new TypeError(`WATERCRAFT_ID must match [A-Za-z0-9._-]{1,64}: ${JSON.stringify(id)}`);
  }
  const advertise = get("WATERCRAFT_ADVERTISE");
  if (advertise !== null && !/^https?:\/\/[^/]/.test(advertise)) {
    throw new TypeError(`WATERCRAFT_ADVERTISE must be an http(s) URL: ${advertise}`);
  }
  const join = (get("WATERCRAFT_JOIN") ?? "").split(",").map((url) => url.trim())
    .filter((url) => url !== "");
  const readOnlyText = get("WATERCRAFT_READ_ONLY") ?? "true";
  if (readOnlyText !== "true" && readOnlyText !== "false") {
    throw new TypeError(`WATERCRAFT_READ_ONLY must be true or false: ${readOnlyText}`);
  }
  const readOnly = readOnlyText === "true";
  if (readOnly && join.length === 0) {
    throw new TypeError(
      "A read-only member must join a cluster: set WATERCRAFT_JOIN (or WATERCRAFT_READ_ONLY=false)",
    );
  }
  const secret = get("WATERCRAFT_SECRET");
  const insecure = get("WATERCRAFT_INSECURE") === "true";
  if ((secret === null) === !insecure) {
    throw new TypeError(
      "Set the cluster secret in WATERCRAFT_SECRET, or WATERCRAFT_INSECURE=true for an open cluster (not both)",
    );
  }
  const number = (name: string, fallback: number): number => {
    const text = get(name);
    const value = text === null ? fallback : Number(text);
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new TypeError(`${name} must be a positive integer: ${text}`);
    }
    return value;
  };
  return {
    id,
    advertise: advertise?.replace(/\/+$/, "") ?? null,
    join,
    readOnly,
    secret,
    insecure,
    clientToken: get("WATERCRAFT_CLIENT_TOKEN"),
    kvPath: get("WATERCRAFT_KV_PATH"),
    heartbeatMs: number("WATERCRAFT_HEARTBEAT_MS", 50),
    electionMs: number("WATERCRAFT_ELECTION_MS", 500),
  };
}
