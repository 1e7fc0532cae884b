/**
 * A 3-node WaterCraft cluster of CLI processes (`src/cli.ts`) on loopback,
 * on Deno, Bun or Node (Node through tsx's loader, as `tests/process` runs
 * it): file storage with fsync in a fresh directory per node, no secret,
 * the given heartbeat and election timeout.
 *
 * @module
 */

import { cliCommand, type Launchers, type Runtime } from "../../tests/process/harness.ts";
import { type Cluster, fetchJson, keyName, VALUE } from "./cluster.ts";
import { freePort, GiveUp, Proc, runtimePid, waitFor } from "./procs.ts";

/** Options of {@linkcode startWaterCraft}. */
export interface WaterCraftOptions {
  /** The runtime of the three nodes. */
  readonly runtime: Runtime;
  /** Where Bun and tsx are, for those runtimes. */
  readonly launchers: Launchers;
  /** A fresh directory; each node keeps its data in a folder of it. */
  readonly dir: string;
  /** `--heartbeat-ms`. */
  readonly heartbeatMs: number;
  /** `--election-ms`. */
  readonly electionMs: number;
  /** The runtime's own flags (e.g. Bun's `--smol`); default as `cliCommand` has them. */
  readonly runtimeFlags?: readonly string[];
  /** More flags for the CLI, after the bench's own. */
  readonly nodeFlags?: readonly string[];
}

const START_MS = 60_000;

interface Member {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  readonly data: string;
  proc: Proc | null;
}

/**
 * Starts the first node (it bootstraps the cluster), then the other two
 * joining it, and waits until the three are members and alive.
 *
 * @param options Runtime, directory and timeouts.
 * @returns The running cluster; the caller closes it.
 */
export async function startWaterCraft(options: WaterCraftOptions): Promise<Cluster> {
  const members: Member[] = [1, 2, 3].map((i) => {
    const port = freePort();
    return {
      id: `wc-${i}`,
      port,
      url: `http://127.0.0.1:${port}`,
      data: `${options.dir}/wc-${i}`,
      proc: null,
    };
  });
  const [command, prefix] = cliCommand(options.runtime, options.launchers, options.runtimeFlags);
  const spawn = (m: Member, join: string | null) => {
    const args = [
      ...prefix,
      "--id",
      m.id,
      "--host",
      "127.0.0.1",
      "--port",
      String(m.port),
      "--advertise",
      m.url,
      "--storage",
      "file",
      "--data",
      m.data,
      "--heartbeat-ms",
      String(options.heartbeatMs),
      "--election-ms",
      String(options.electionMs),
      ...(join === null ? [] : ["--join", join]),
      ...(options.nodeFlags ?? []),
    ];
    // The caller's own WATERCRAFT_* settings must not leak in (empty is
    // unset). Secured, as by default: the members share a secret.
    m.proc = new Proc(`${m.id}@${options.runtime}`, command, args, {
      WATERCRAFT_SECRET: "bench-cluster-secret",
      WATERCRAFT_CLIENT_TOKEN: "",
    });
    return m.proc;
  };
  const waitLine = (proc: Proc, pattern: RegExp) =>
    waitFor(
      `${proc.label} to print ${pattern}`,
      () => {
        if (pattern.test(proc.stdout)) return true;
        if (proc.exited !== null) throw new GiveUp(`${proc.label} exited\n${proc.describe()}`);
        return false;
      },
      START_MS,
      25,
    );

  const cluster: Cluster = {
    name: "watercraft",
    urls: members.map((m) => m.url),
    put: (base, key) => ({
      url: `${base}/v1/kv/${keyName(key)}`,
      method: "PUT",
      body: PUT_BODY,
    }),
    get: (base, key) => ({ url: `${base}/v1/kv/${keyName(key)}`, method: "GET" }),
    async leader(query = {}) {
      const found = await waitFor(
        "a WaterCraft leader",
        async () => {
          for (const [i, m] of members.entries()) {
            if (i === query.exclude || m.proc === null || m.proc.exited !== null) continue;
            const status = await fetchJson(`${m.url}/v1/status`).catch(() => null) as
              | { role?: string }
              | null;
            if (status?.role === "leader") return { i };
          }
          return null;
        },
        query.timeoutMs ?? 15_000,
        query.intervalMs ?? 50,
      );
      return found.i;
    },
    pids: () =>
      members.flatMap((m) =>
        m.proc === null || m.proc.exited !== null ? [] : [runtimePid(m.proc.pid)]
      ),
    kill(index) {
      members[index]!.proc?.kill("SIGKILL");
    },
    async restart(index) {
      const m = members[index]!;
      await m.proc?.done;
      // Its data directory holds its state: it recovers and rejoins without --join.
      await waitLine(spawn(m, null), /^watercraft listening on /m);
      await cluster.healthy();
    },
    async healthy(timeoutMs = START_MS) {
      await waitFor(
        "3 live WaterCraft members with a leader",
        async () => {
          const leader = members[await cluster.leader({ timeoutMs })]!;
          const list = await fetchJson(`${leader.url}/v1/members`) as {
            members: { id: string; alive: boolean }[];
          };
          return list.members.length === 3 && list.members.every((x) => x.alive);
        },
        timeoutMs,
        100,
      );
    },
    describe: () => members.map((m) => m.proc?.describe() ?? `[${m.id}] not started`).join("\n"),
    async close() {
      await Promise.all(members.map((m) => m.proc?.close()));
    },
  };

  try {
    await waitLine(spawn(members[0]!, null), /^watercraft listening on /m);
    const joiners = members.slice(1).map((m) => spawn(m, members[0]!.url));
    for (const proc of joiners) await waitLine(proc, /^watercraft joined /m);
    await cluster.healthy();
  } catch (error) {
    const message = `WaterCraft cluster did not start: ${
      (error as Error).message
    }\n${cluster.describe()}`;
    await cluster.close();
    throw new Error(message);
  }
  return cluster;
}

const PUT_BODY = JSON.stringify({ value: VALUE });
