/**
 * `watercraft status`: one table of the whole cluster, as etcd's
 * `endpoint status` and Consul's `operator raft list-peers` show it. The
 * member list and liveness come from the leader (the node that hears from
 * everyone); each member's role, term and indexes from the member itself.
 *
 * @module
 */

import { type Answer, ClientError, type ClusterClient } from "./client.ts";
import { CLIENT_FLAGS_HELP, clientOf, expectWords, parseCommandLine } from "./command_line.ts";
import { EXIT_OK } from "./flags.ts";
import { renderTable } from "./table.ts";
import type { MemberStatus } from "../node/options.ts";

/** The help of `watercraft status`. */
export const STATUS_HELP = `Usage: watercraft status [--endpoints URL,...] [--json]

Prints one row per member: id, url, role, term, commit and applied indexes,
how far its applied index trails the leader's commit index, whether the
leader hears from it, how long ago, and whether it is read-only.

${CLIENT_FLAGS_HELP}`;

/** How long one member may take to answer its status. */
const MEMBER_STATUS_MS = 2_000;

/** One member's row. */
export interface StatusRow {
  /** Member id. */
  readonly id: string;
  /** Its advertised URL. */
  readonly url: string | null;
  /** Its role, or `unreachable`. */
  readonly role: string;
  /** Its term, when it answered. */
  readonly term: number | null;
  /** Its commit index, when it answered. */
  readonly commitIndex: number | null;
  /** Its applied index, when it answered. */
  readonly appliedIndex: number | null;
  /** Entries its applied index trails the leader's commit index by. */
  readonly lag: number | null;
  /** Whether the member list's node hears from it. */
  readonly alive: boolean;
  /** Ms since that node last heard from it. */
  readonly lastSeenMs: number | null;
  /** Whether it votes. */
  readonly voter: boolean;
  /** Whether it is read-only. */
  readonly readOnly: boolean;
  /** Its head hash, when it answered. */
  readonly head: string | null;
}

/** What `watercraft status --json` prints. */
export interface ClusterStatus {
  /** The leader, as the member list names it. */
  readonly leader: { id: string; url: string | null } | null;
  /** One row per member. */
  readonly members: StatusRow[];
}

/**
 * Runs `watercraft status`.
 *
 * @param args The arguments after `status`.
 * @param env Environment variables.
 * @returns The exit code.
 * @throws {UsageError} On bad flags.
 * @throws {ClientError} When no member answers.
 */
export async function statusCommand(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  const line = parseCommandLine(args, env);
  if (line.help) {
    console.log(STATUS_HELP.trimEnd());
    return EXIT_OK;
  }
  expectWords(line, "watercraft status [flags]", 0);
  const status = await clusterStatus(clientOf(line));
  console.log(line.json ? JSON.stringify(status, null, 2) : renderStatus(status));
  return EXIT_OK;
}

/**
 * Gathers the cluster's status: the member list from the leader when one
 * is known (else from any member), then each member's own status.
 *
 * @param client The cluster's client.
 * @returns The leader and one row per member.
 * @throws {ClientError} When no member answers.
 */
export async function clusterStatus(client: ClusterClient): Promise<ClusterStatus> {
  let list: Answer;
  try {
    list = await client.json("GET", "/v1/members", { leader: true });
  } catch (error) {
    if (!(error instanceof ClientError) || error.code !== "unavailable") throw error;
    // No leader: any member's view is better than none.
    list = await client.json("GET", "/v1/members");
  }
  const members = list.body.members as MemberStatus[];
  const leader = list.body.leader as { id: string; url: string | null } | null;
  const statuses = await Promise.all(
    members.map((m) => m.url === null ? null : client.probe(m.url, "/v1/status", MEMBER_STATUS_MS)),
  );
  const leaderCommit = statuses.find((s) => s?.body?.role === "leader")?.body.commitIndex ?? null;
  const rows = members.map((m, i): StatusRow => {
    const own = statuses[i]?.body ?? null;
    return {
      id: m.id,
      url: m.url,
      role: own === null ? "unreachable" : own.removed === true ? "removed" : own.role,
      term: own?.term ?? null,
      commitIndex: own?.commitIndex ?? null,
      appliedIndex: own?.appliedIndex ?? null,
      lag: own === null || leaderCommit === null
        ? null
        : Math.max(0, leaderCommit - own.appliedIndex),
      alive: m.alive,
      lastSeenMs: m.lastSeenMs,
      voter: m.voter,
      readOnly: m.readOnly,
      head: own?.head ?? null,
    };
  });
  return { leader, members: rows };
}

/**
 * Renders a cluster status as the table `watercraft status` prints.
 *
 * @param status The cluster's status.
 * @returns The table.
 *
 * @example
 * ```ts
 * import { match } from "node:assert/strict";
 * import { renderStatus } from "./status_command.ts";
 *
 * const row = { id: "n1", url: "http://127.0.0.1:6969", role: "leader", term: 2, commitIndex: 9,
 *   appliedIndex: 9, lag: 0, alive: true, lastSeenMs: 0, voter: true, readOnly: false, head: null };
 * match(renderStatus({ leader: { id: "n1", url: row.url }, members: [row] }), /^ID +URL +ROLE/);
 * ```
 */
export function renderStatus(status: ClusterStatus): string {
  const dash = (v: number | null) => v === null ? "-" : String(v);
  return renderTable(
    ["ID", "URL", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG", "ALIVE", "LAST SEEN", "READ-ONLY"],
    status.members.map((m) => [
      m.id,
      m.url ?? "-",
      m.role,
      dash(m.term),
      dash(m.commitIndex),
      dash(m.appliedIndex),
      dash(m.lag),
      m.alive ? "yes" : "no",
      m.lastSeenMs === null ? "never" : `${m.lastSeenMs}ms`,
      m.readOnly ? "yes" : "no",
    ]),
  );
}
