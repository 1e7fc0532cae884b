/**
 * A 3-member etcd cluster on loopback (fresh data directories, etcd's
 * default fsync), driven through its v3 JSON gateway on the client port:
 * `POST /v3/kv/put` and `POST /v3/kv/range` (linearizable unless asked
 * otherwise), keys and values base64-encoded.
 *
 * @module
 */

import { type Cluster, fetchJson, keyName, VALUE } from "./cluster.ts";
import { freePort, GiveUp, Proc, waitFor } from "./procs.ts";

/** Options of {@linkcode startEtcd}. */
export interface EtcdOptions {
  /** A fresh directory; each member keeps its data in a folder of it. */
  readonly dir: string;
  /** `--heartbeat-interval`, ms. */
  readonly heartbeatMs: number;
  /** `--election-timeout`, ms. */
  readonly electionMs: number;
}

const START_MS = 60_000;

interface Member {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly data: string;
  proc: Proc | null;
}

/**
 * The installed etcd's version, or null when there is no `etcd` on the PATH.
 *
 * @returns E.g. `3.4.23`.
 */
export async function etcdVersion(): Promise<string | null> {
  try {
    const out = await new Deno.Command("etcd", {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(10_000),
    }).output();
    if (!out.success) return null;
    const text = new TextDecoder().decode(out.stdout);
    return text.match(/etcd Version:\s*(\S+)/)?.[1] ?? text.trim().split("\n")[0] ?? "unknown";
  } catch {
    return null;
  }
}

function b64(s: string): string {
  return btoa(s);
}

/**
 * Starts the three members together (an etcd cluster bootstraps with all of
 * its initial members) and waits until each reports itself healthy.
 *
 * @param options Directory and timeouts.
 * @returns The running cluster; the caller closes it.
 */
export async function startEtcd(options: EtcdOptions): Promise<Cluster> {
  const members: Member[] = [1, 2, 3].map((i) => ({
    name: `etcd-${i}`,
    clientUrl: `http://127.0.0.1:${freePort()}`,
    peerUrl: `http://127.0.0.1:${freePort()}`,
    data: `${options.dir}/etcd-${i}`,
    proc: null,
  }));
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
  const token = `bench-${crypto.randomUUID()}`;
  const spawn = (m: Member) => {
    // On a restart the data directory exists and etcd ignores the --initial-* flags.
    m.proc = new Proc(m.name, "etcd", [
      "--name",
      m.name,
      "--data-dir",
      m.data,
      "--listen-client-urls",
      m.clientUrl,
      "--advertise-client-urls",
      m.clientUrl,
      "--listen-peer-urls",
      m.peerUrl,
      "--initial-advertise-peer-urls",
      m.peerUrl,
      "--initial-cluster",
      initialCluster,
      "--initial-cluster-token",
      token,
      "--initial-cluster-state",
      "new",
      "--heartbeat-interval",
      String(options.heartbeatMs),
      "--election-timeout",
      String(options.electionMs),
      "--logger",
      "zap",
      "--log-level",
      "warn",
    ], {});
    return m.proc;
  };
  const status = async (i: number) => {
    const s = await fetchJson(`${members[i]!.clientUrl}/v3/maintenance/status`, {
      method: "POST",
      body: "{}",
    });
    // Member ids are uint64, which the gateway spells as decimal strings.
    return s as { header?: { member_id?: string }; leader?: string };
  };

  const cluster: Cluster = {
    name: "etcd",
    urls: members.map((m) => m.clientUrl),
    put: (base, key) => ({ url: `${base}/v3/kv/put`, method: "POST", body: PUT_BODIES[key]! }),
    get: (base, key) => ({ url: `${base}/v3/kv/range`, method: "POST", body: GET_BODIES[key]! }),
    async leader(query = {}) {
      const found = await waitFor(
        "an etcd leader",
        async () => {
          for (const [i, m] of members.entries()) {
            if (i === query.exclude || m.proc === null || m.proc.exited !== null) continue;
            const s = await status(i).catch(() => null);
            if (s?.leader !== undefined && s.leader !== "0" && s.leader === s.header?.member_id) {
              return { i };
            }
          }
          return null;
        },
        query.timeoutMs ?? 15_000,
        query.intervalMs ?? 50,
      );
      return found.i;
    },
    pids: () =>
      members.flatMap((m) => m.proc === null || m.proc.exited !== null ? [] : [m.proc.pid]),
    kill(index) {
      members[index]!.proc?.kill("SIGKILL");
    },
    async restart(index) {
      const m = members[index]!;
      await m.proc?.done;
      spawn(m);
      await cluster.healthy();
    },
    async healthy(timeoutMs = START_MS) {
      await waitFor(
        "3 healthy etcd members",
        async () => {
          for (const m of members) {
            if (m.proc?.exited !== null) {
              throw new GiveUp(`${m.name} is not running\n${m.proc?.describe() ?? ""}`);
            }
            const h = await fetchJson(`${m.clientUrl}/health`) as { health?: string };
            if (h.health !== "true") return false;
          }
          await cluster.leader({ timeoutMs });
          return true;
        },
        timeoutMs,
        100,
      );
    },
    describe: () => members.map((m) => m.proc?.describe() ?? `[${m.name}] not started`).join("\n"),
    async close() {
      await Promise.all(members.map((m) => m.proc?.close()));
    },
  };

  try {
    for (const m of members) spawn(m);
    await cluster.healthy();
  } catch (error) {
    const message = `etcd cluster did not start: ${
      (error as Error).message
    }\n${cluster.describe()}`;
    await cluster.close();
    throw new Error(message);
  }
  return cluster;
}

/** Bodies of the writes and reads, by key number, built once. */
const PUT_BODIES: string[] = [];
const GET_BODIES: string[] = [];

/**
 * Builds the etcd request bodies for keys `[0, keys)` (once, outside any measurement).
 *
 * @param keys How many keys the load uses.
 */
export function prepareEtcdBodies(keys: number): void {
  const value = b64(VALUE);
  for (let k = PUT_BODIES.length; k < keys; k++) {
    const key = b64(keyName(k));
    PUT_BODIES.push(JSON.stringify({ key, value }));
    GET_BODIES.push(JSON.stringify({ key }));
  }
}
