/**
 * `watercraft kv get|put|delete|list`: the key-value API of section 3 from
 * the command line. Writes go to any member (followers forward them);
 * reads are linearizable unless `--local`.
 *
 * @module
 */

import {
  CLIENT_FLAGS_HELP,
  clientOf,
  expectWords,
  parseCommandLine,
  stringValue,
} from "./command_line.ts";
import { EXIT_OK, UsageError } from "./flags.ts";

/** The help of `watercraft kv`. */
export const KV_HELP = `Usage:
  watercraft kv get KEY                    print the value (JSON)
  watercraft kv put KEY VALUE              VALUE is JSON if it parses, else a string
  watercraft kv delete KEY
  watercraft kv list [PREFIX] [--limit N]  print key<TAB>value lines
Flags: --local (reads: answer from the member's own state, maybe stale),
       --idempotency-key K (writes)

${CLIENT_FLAGS_HELP}`;

/**
 * Runs `watercraft kv`.
 *
 * @param args The arguments after `kv`.
 * @param env Environment variables.
 * @returns The exit code.
 * @throws {UsageError} On bad flags or words.
 * @throws {ClientError} When the cluster refuses (`not_found` for an absent key) or cannot be reached.
 */
export async function kvCommand(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  const line = parseCommandLine(args, env, {
    local: { type: "boolean" },
    limit: { type: "string" },
    "idempotency-key": { type: "string" },
  });
  if (line.help) {
    console.log(KV_HELP.trimEnd());
    return EXIT_OK;
  }
  const client = clientOf(line);
  const query = line.values.local === true ? "?consistency=local" : "";
  const key = (k: string) => `/v1/kv/${encodeURIComponent(k)}`;
  const idempotency = stringValue(line, "idempotency-key");
  const print = (value: unknown) => console.log(JSON.stringify(value));
  switch (line.positionals[0]) {
    case "get": {
      const [, name] = expectWords(line, "watercraft kv get KEY", 2);
      const answer = await client.json("GET", key(name!) + query);
      print(line.json ? answer.body : answer.body.value);
      return EXIT_OK;
    }
    case "put": {
      const [, name, raw] = expectWords(line, "watercraft kv put KEY VALUE", 3);
      const answer = await client.json("PUT", key(name!), {
        body: { value: jsonOrString(raw!) },
        ...(idempotency === undefined ? {} : { headers: { "idempotency-key": idempotency } }),
      });
      print(line.json ? answer.body : { index: answer.body.index, prev: answer.body.prev });
      return EXIT_OK;
    }
    case "delete": {
      const [, name] = expectWords(line, "watercraft kv delete KEY", 2);
      const answer = await client.json("DELETE", key(name!));
      print(line.json ? answer.body : { index: answer.body.index, prev: answer.body.prev });
      return EXIT_OK;
    }
    case "list": {
      const [, prefix] = expectWords(line, "watercraft kv list [PREFIX] [--limit N]", 1, 2);
      const params = new URLSearchParams({ prefix: prefix ?? "" });
      const limit = stringValue(line, "limit");
      if (limit !== undefined) params.set("limit", limit);
      if (line.values.local === true) params.set("consistency", "local");
      const answer = await client.json("GET", `/v1/kv?${params}`);
      if (line.json) print(answer.body);
      else {
        for (const item of answer.body.items as { key: string; value: unknown }[]) {
          console.log(`${item.key}\t${JSON.stringify(item.value)}`);
        }
      }
      return EXIT_OK;
    }
    default:
      throw new UsageError(
        `Unknown kv action ${JSON.stringify(line.positionals[0] ?? "")}: get, put, delete or list`,
      );
  }
}

/**
 * A value from the command line: JSON when it parses (`1`, `true`,
 * `{"a":1}`, `"quoted"`), else the text itself.
 *
 * @param raw The argument.
 * @returns The value.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { jsonOrString } from "./kv_command.ts";
 *
 * deepStrictEqual([jsonOrString("1"), jsonOrString("hello"), jsonOrString('{"a":1}')], [1, "hello", { a: 1 }]);
 * ```
 */
export function jsonOrString(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}
