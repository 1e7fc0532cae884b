/**
 * `watercraft log tail [--follow]` and `watercraft log verify [--from N]`:
 * the committed log from outside, through `WaterCraftClient`.
 *
 * - `tail` prints the last entries (`--limit`, default 20), or those after
 *   `--after N`; with `--follow` it goes on printing entries and leader
 *   changes as they commit, resuming on another member if one goes away.
 * - `verify` reads the log of every member named in `--endpoints`,
 *   recomputes each hash from the one before, and then checks that the
 *   members hold the same hash at the highest index they all have: the
 *   same history up to there.
 *
 * @module
 */

import { WaterCraftClient } from "../client/client.ts";
import type { WatchedEntry } from "../node/watch.ts";
import {
  CLIENT_FLAGS_HELP,
  type CommandLine,
  endpointsOf,
  expectWords,
  fetchOption,
  parseCommandLine,
  stringValue,
  wholeNumber,
} from "./command_line.ts";
import { EXIT_FAILURE, EXIT_OK, UsageError } from "./flags.ts";

/** The help of `watercraft log`. */
export const LOG_HELP = `Usage: watercraft log tail [--limit N | --after N] [--follow]
       watercraft log verify [--from N]

tail     prints the last committed entries (default 20), or those after
         index N; --follow keeps printing entries and leader changes
verify   recomputes the hash chain of every member in --endpoints after
         index N (default 0: from the start, if the members still have it),
         and checks that they hold the same hash at the highest index they
         all have. Exit 1 when a chain is broken or the members differ.

${CLIENT_FLAGS_HELP}`;

const LOG_FLAGS = {
  limit: { type: "string" },
  after: { type: "string" },
  follow: { type: "boolean" },
  from: { type: "string" },
} as const;

/**
 * Runs `watercraft log`.
 *
 * @param args The arguments after `log`.
 * @param env Environment variables.
 * @returns The exit code.
 * @throws {UsageError} On bad flags or words.
 * @throws {WaterCraftError} When the cluster refuses or cannot be reached.
 */
export async function logCommand(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  const line = parseCommandLine(args, env, LOG_FLAGS);
  if (line.help) {
    console.log(LOG_HELP.trimEnd());
    return EXIT_OK;
  }
  const [action] = expectWords(line, "watercraft log tail|verify", 1);
  const endpoints = endpointsOf(line);
  const timeoutMs = wholeNumber(line, "timeout-ms", 10_000, 1);
  const token = stringValue(line, "client-token");
  const fetchWith = fetchOption(line);
  const clientOf = (urls: readonly string[]) =>
    new WaterCraftClient({
      endpoints: urls,
      timeoutMs,
      ...fetchWith,
      ...(token === undefined ? {} : { token }),
    });
  if (action === "tail") return await tail(clientOf(endpoints), line);
  if (action === "verify") {
    return await verify(endpoints.map((url) => ({ url, client: clientOf([url]) })), {
      from: wholeNumber(line, "from", 0),
      json: line.json,
    });
  }
  throw new UsageError(`Unknown log action ${JSON.stringify(action)}: tail or verify`);
}

/** `log tail`: the last entries, then (`--follow`) those that commit. */
async function tail(client: WaterCraftClient, line: CommandLine): Promise<number> {
  const json = line.json;
  const limit = wholeNumber(line, "limit", 20, 1);
  let after: number;
  if (line.values.after !== undefined) {
    after = wholeNumber(line, "after", 0);
  } else {
    const status = await client.status();
    after = Math.max(0, status.appliedIndex - limit);
  }
  // Pages until the member's applied index, or `limit` entries.
  let printed = 0;
  while (printed < limit) {
    const page = await client.entries(after, Math.min(1000, limit - printed));
    for (const entry of page.entries) console.log(json ? JSON.stringify(entry) : entryLine(entry));
    printed += page.entries.length;
    if (page.entries.length === 0) break;
    after = page.next;
  }
  if (line.values.follow !== true) return EXIT_OK;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const process = (globalThis as { process?: NodeLikeProcess }).process;
  process?.once("SIGINT", onSignal);
  process?.once("SIGTERM", onSignal);
  try {
    for await (const event of client.watch({ after, signal: stop.signal })) {
      if (event.type === "entry") {
        console.log(json ? JSON.stringify(event.entry) : entryLine(event.entry));
      } else if (event.type === "leader") {
        console.log(
          json
            ? JSON.stringify(event)
            : `-- term ${event.term}: leader ${event.leader?.id ?? "none"}`,
        );
      }
    }
  } finally {
    process?.off("SIGINT", onSignal);
    process?.off("SIGTERM", onSignal);
  }
  return EXIT_OK;
}

/** The part of Node's `process` that `--follow` uses (Deno and Bun have it too). */
interface NodeLikeProcess {
  once(signal: string, listener: () => void): void;
  off(signal: string, listener: () => void): void;
}

/** One entry as a line: index, term, kind, proposer, id, and the command. */
function entryLine(entry: WatchedEntry): string {
  const outcome = entry.error !== undefined
    ? ` → ${entry.error.code}`
    : entry.result === undefined
    ? ""
    : ` → ${JSON.stringify(entry.result)}`;
  const data = entry.data === null ? "" : ` ${JSON.stringify(entry.data)}`;
  return `${entry.index} t${entry.term} ${entry.kind} ${entry.proposer || "-"} ${
    entry.id.slice(0, 16)
  }${data}${outcome}`;
}

/** What one member's log came to. */
interface MemberCheck {
  readonly url: string;
  readonly ok: boolean;
  readonly checked: number;
  /** The last index checked. */
  readonly lastIndex: number;
  readonly reason?: string;
}

async function verify(
  members: readonly { url: string; client: WaterCraftClient }[],
  options: { from: number; json: boolean },
): Promise<number> {
  const checks: MemberCheck[] = [];
  for (const { url, client } of members) {
    const check = await client.verify(options.from);
    checks.push(
      check.ok
        ? { url, ok: true, checked: check.checked, lastIndex: options.from + check.checked }
        : {
          url,
          ok: false,
          checked: 0,
          lastIndex: check.index,
          reason: `broken at index ${check.index}: ${check.reason}`,
        },
    );
  }
  // The highest index every member has, and each one's hash there.
  const common = Math.min(...checks.map((c) => c.lastIndex));
  const hashes = new Map<string, string>();
  if (checks.every((c) => c.ok) && common > options.from) {
    for (const { url, client } of members) {
      const page = await client.entries(common - 1, 1);
      hashes.set(url, page.entries[0]?.id ?? "");
    }
  }
  const agree = new Set(hashes.values()).size <= 1;
  const ok = checks.every((c) => c.ok) && agree;
  if (options.json) {
    console.log(JSON.stringify({
      ok,
      common,
      members: checks.map((c) => ({ ...c, hashAtCommon: hashes.get(c.url) ?? null })),
    }));
  } else {
    for (const c of checks) {
      console.log(
        c.ok
          ? `${c.url}: ${c.checked} entries after ${options.from} check, up to index ${c.lastIndex}`
          : `${c.url}: ${c.reason}`,
      );
    }
    if (hashes.size > 0) {
      console.log(
        agree
          ? `same history up to index ${common}: ${[...hashes.values()][0]}`
          : `members differ at index ${common}: ${
            [...hashes].map(([url, hash]) => `${url} ${hash}`).join(", ")
          }`,
      );
    }
  }
  return ok ? EXIT_OK : EXIT_FAILURE;
}
