/**
 * `watercraft members list|add|remove`: the member list, and membership
 * changes (one server at a time, through the leader). Changes prove the
 * cluster secret (`--secret` or `WATERCRAFT_SECRET`), sent in
 * `X-WaterCraft-Secret`: use HTTPS off loopback.
 *
 * @module
 */

import { CLIENT_FLAGS_HELP, clientOf, expectWords, parseCommandLine } from "./command_line.ts";
import { EXIT_OK, UsageError } from "./flags.ts";
import { renderTable } from "./table.ts";
import type { MemberStatus } from "../node/options.ts";

/** The help of `watercraft members`. */
export const MEMBERS_HELP = `Usage:
  watercraft members list                  the members, who leads, who is alive
  watercraft members add ID URL [--read-only]
                                           add a member (a learner until caught up)
  watercraft members remove ID             remove a member (the leader included)

Changes need the cluster secret (--secret or WATERCRAFT_SECRET).

${CLIENT_FLAGS_HELP}`;

/**
 * Runs `watercraft members`.
 *
 * @param args The arguments after `members`.
 * @param env Environment variables.
 * @returns The exit code.
 * @throws {UsageError} On bad flags or words.
 * @throws {ClientError} When the cluster refuses or cannot be reached.
 */
export async function membersCommand(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  const line = parseCommandLine(args, env, { "read-only": { type: "boolean" } });
  if (line.help) {
    console.log(MEMBERS_HELP.trimEnd());
    return EXIT_OK;
  }
  const client = clientOf(line);
  const action = line.positionals[0] ?? "list";
  let answer;
  switch (action) {
    case "list":
      expectWords(line, "watercraft members list", 0, 1);
      answer = await client.json("GET", "/v1/members", { leader: true });
      break;
    case "add": {
      const [, id, url] = expectWords(line, "watercraft members add ID URL [--read-only]", 3);
      answer = await client.json("POST", "/v1/members", {
        body: { id, url, ...(line.values["read-only"] === true ? { readOnly: true } : {}) },
        leader: true,
        secret: true,
      });
      break;
    }
    case "remove": {
      const [, id] = expectWords(line, "watercraft members remove ID", 2);
      answer = await client.json("DELETE", `/v1/members/${encodeURIComponent(id!)}`, {
        leader: true,
        secret: true,
      });
      break;
    }
    default:
      throw new UsageError(`Unknown members action ${JSON.stringify(action)}: list, add or remove`);
  }
  console.log(line.json ? JSON.stringify(answer.body, null, 2) : renderMembers(answer.body));
  return EXIT_OK;
}

/**
 * Renders a `/v1/members` answer as a table; the leader is marked.
 *
 * @param body The answer.
 * @returns The table.
 */
export function renderMembers(body: {
  leader: { id: string } | null;
  members: readonly MemberStatus[];
}): string {
  return renderTable(
    ["ID", "URL", "VOTER", "READ-ONLY", "ALIVE", "LAST SEEN", "LEADER"],
    body.members.map((m) => [
      m.id,
      m.url ?? "-",
      m.voter ? "yes" : "no",
      m.readOnly ? "yes" : "no",
      m.alive ? "yes" : "no",
      m.lastSeenMs === null ? "never" : `${m.lastSeenMs}ms`,
      body.leader?.id === m.id ? "*" : "",
    ]),
  );
}
