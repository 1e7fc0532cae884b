/**
 * `watercraft snapshot save FILE` and `watercraft snapshot restore FILE`:
 * backup and restore, as etcd's `snapshot save` and `snapshot restore`.
 *
 * `save` streams `GET /v1/snapshot` from any member into `FILE` (written
 * aside and renamed once its checksum checks). `restore` seeds a new data
 * directory from a backup: a new one-member cluster with a new secret,
 * whose state machine, idempotency keys, index, term and head are the
 * backup's; `watercraft serve` with the same flags then starts it, and
 * other nodes join it as they would any cluster.
 *
 * @module
 */

import process from "node:process";
import { BackupError, decodeBackup } from "../http/backup.ts";
import { Sessions } from "../node/sessions.ts";
import { CLIENT_FLAGS_HELP, clientOf, expectWords, parseCommandLine } from "./command_line.ts";
import { configPath, layerSettings, readConfigFile } from "./config.ts";
import { settleDefaultId } from "./default_id.ts";
import { EXIT_OK, oneLine, parseArgs, SERVE_FLAGS, UsageError } from "./flags.ts";
import { settleSecret } from "./secret.ts";
import { advertisedHost } from "./serve.ts";
import { openStorage } from "./storage.ts";

/** The help of `watercraft snapshot`. */
export const SNAPSHOT_HELP = `Usage:
  watercraft snapshot save FILE [--local]  stream a consistent backup from any member
  watercraft snapshot restore FILE [serve flags]
                                           seed a new cluster's data dir from a backup

save: the backup holds the state machine, the idempotency keys, the index,
term and head, and the configuration, with a SHA-256 checksum; --local
takes it from the member's own applied state without asking the leader.

restore: takes the flags you will start the node with (--id, --data, --host,
--port, --advertise, --storage, --secret, --insecure, --config, ...), writes
the backup into the empty data dir as a one-member cluster with a new secret
(unless --secret is given), and prints the command that starts it. The head
is preserved; the old cluster's members are not carried over: join new
nodes to the restored one.

${CLIENT_FLAGS_HELP}`;

/**
 * Runs `watercraft snapshot`.
 *
 * @param args The arguments after `snapshot`.
 * @param env Environment variables.
 * @returns The exit code.
 * @throws {UsageError} On bad flags, an unusable file or data dir.
 * @throws {ClientError} When the cluster refuses or cannot be reached.
 */
export async function snapshotCommand(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  const action = args[0];
  if (action === "restore") return await restore(args.slice(1), env);
  const line = parseCommandLine(args, env, { local: { type: "boolean" } });
  if (line.help || action === undefined) {
    console.log(SNAPSHOT_HELP.trimEnd());
    return EXIT_OK;
  }
  if (action !== "save") {
    throw new UsageError(`Unknown snapshot action ${JSON.stringify(action)}: save or restore`);
  }
  const [, file] = expectWords(line, "watercraft snapshot save FILE [--local]", 2);
  const path = line.values.local === true ? "/v1/snapshot?consistency=local" : "/v1/snapshot";
  const { response, url } = await clientOf(line).send("GET", path);
  if (!response.ok || response.body === null) {
    const text = await response.text();
    throw new UsageError(`GET ${url}/v1/snapshot answered ${response.status}: ${text}`);
  }
  const total = Number(response.headers.get("content-length") ?? NaN);
  const bytes = await download(response.body, file!, total);
  const { header, checksum } = await checkFile(file! + ".part");
  const { rename } = await import("node:fs/promises");
  await rename(file! + ".part", file!);
  const saved = {
    file,
    from: url,
    index: header.index,
    term: header.term,
    head: header.head,
    bytes,
    sha256: checksum,
  };
  console.log(
    line.json
      ? JSON.stringify(saved)
      : `saved snapshot at index ${header.index} (term ${header.term}, head ${header.head}) from ${url} to ${file}: ${bytes} bytes, sha256 ${checksum}`,
  );
  return EXIT_OK;
}

/** Streams a response body into `FILE.part`, showing progress on a terminal. */
async function download(
  body: ReadableStream<Uint8Array>,
  file: string,
  total: number,
): Promise<number> {
  const { open } = await import("node:fs/promises");
  const handle = await open(file + ".part", "w");
  const terminal = process.stderr.isTTY === true;
  let written = 0;
  let shown = 0;
  try {
    const reader = body.getReader();
    for (let chunks = 0; chunks < Number.MAX_SAFE_INTEGER; chunks++) {
      const { done, value } = await reader.read();
      if (done) break;
      await handle.write(value);
      written += value.length;
      if (terminal && written - shown >= 1 << 20) {
        shown = written;
        const of = Number.isFinite(total)
          ? ` of ${total} (${Math.floor(written / total * 100)}%)`
          : "";
        process.stderr.write(`\rwatercraft: ${written} bytes${of}`);
      }
    }
    await handle.sync();
  } finally {
    await handle.close();
    if (terminal && shown > 0) process.stderr.write("\n");
  }
  return written;
}

/** Reads a backup file and checks it whole. */
async function checkFile(file: string) {
  const { readFile } = await import("node:fs/promises");
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (error) {
    throw new UsageError(`Cannot read ${file}: ${oneLine(error)}`);
  }
  try {
    const backup = decodeBackup(bytes);
    if (Sessions.machinePart(backup.data) === null) {
      throw new BackupError("The backup's data is not a node snapshot");
    }
    return backup;
  } catch (error) {
    if (error instanceof BackupError) throw new UsageError(`${file}: ${error.message}`);
    throw error;
  }
}

/** `snapshot restore FILE [serve flags]`. */
async function restore(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  if (args.includes("--help") || args.includes("-h") || args.length === 0) {
    console.log(SNAPSHOT_HELP.trimEnd());
    return EXIT_OK;
  }
  const [file, ...flags] = args;
  if (file!.startsWith("-")) {
    throw new UsageError("Usage: watercraft snapshot restore FILE [serve flags]");
  }
  const backup = await checkFile(file!);
  const config = configPath(flags, env);
  const layered = layerSettings(
    flags,
    SERVE_FLAGS,
    env,
    config === null ? null : await readConfigFile(config),
  );
  const parsed = parseArgs(layered.args, env);
  if (parsed === "help") return EXIT_OK;
  const options = await settleDefaultId(parsed);
  if (options.storage === "memory") {
    throw new UsageError("snapshot restore writes a data dir: use --storage file or kv");
  }
  if (options.join.length > 0) {
    throw new UsageError("snapshot restore starts a new cluster: drop --join");
  }
  const { id, storage, fresh } = await openStorage(options);
  try {
    if (!fresh) {
      throw new UsageError(
        `--data ${options.data} already holds a node's state: restore into an empty directory`,
      );
    }
    const scheme = options.tlsCert === null ? "http" : "https";
    const url = options.advertise ?? `${scheme}://${advertisedHost(options.host)}:${options.port}`;
    const { header, data } = backup;
    await storage.saveSnapshot({
      meta: {
        index: header.index,
        term: header.term,
        hash: header.head,
        config: { members: [{ id, url, voter: true }] },
      },
      data,
    });
    await storage.save({ term: header.term, vote: null, commit: header.index }, []);
    const secret = await settleSecret(options, true);
    console.log(
      `watercraft restored ${file} into ${options.data} as ${id} at ${url}: index ${header.index}, ` +
        `term ${header.term}, head ${header.head}`,
    );
    if (secret.generated) {
      console.log(
        `the restored cluster has a new secret (kept in ${secret.file}): ` +
          `WATERCRAFT_SECRET=${secret.secret}`,
      );
    }
    console.log(`start it with the same flags: watercraft serve ${flags.join(" ")}`.trimEnd());
    return EXIT_OK;
  } finally {
    await storage.close();
  }
}
