/**
 * `watercraft leader transfer [ID]`: moves leadership to `ID`, or to the
 * most caught-up other voter, as etcd's `move-leader` does.
 *
 * @module
 */

import { CLIENT_FLAGS_HELP, clientOf, expectWords, parseCommandLine } from "./command_line.ts";
import { EXIT_OK, UsageError } from "./flags.ts";

/** The help of `watercraft leader`. */
export const LEADER_HELP = `Usage: watercraft leader transfer [ID]

Moves leadership to the voter ID, or without ID to the most caught-up other
voter, and prints the new leader once it leads.

${CLIENT_FLAGS_HELP}`;

/**
 * Runs `watercraft leader`.
 *
 * @param args The arguments after `leader`.
 * @param env Environment variables.
 * @returns The exit code.
 * @throws {UsageError} On bad flags or words.
 * @throws {ClientError} When the cluster refuses or cannot be reached.
 */
export async function leaderCommand(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  const line = parseCommandLine(args, env);
  if (line.help) {
    console.log(LEADER_HELP.trimEnd());
    return EXIT_OK;
  }
  const words = expectWords(line, "watercraft leader transfer [ID]", 1, 2);
  if (words[0] !== "transfer") {
    throw new UsageError(`Unknown leader action ${JSON.stringify(words[0])}: transfer`);
  }
  const target = words[1];
  const answer = await clientOf(line).json("POST", "/v1/leader/transfer", {
    body: target === undefined ? {} : { id: target },
    leader: true,
  });
  const leader = answer.body.leader as { id: string; url: string | null } | null;
  console.log(
    line.json
      ? JSON.stringify(answer.body)
      : `leader is now ${leader?.id ?? "unknown"}${leader?.url ? ` at ${leader.url}` : ""}`,
  );
  return EXIT_OK;
}
