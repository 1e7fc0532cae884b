/**
 * Spawns CLI nodes as real processes and talks to them over loopback HTTP.
 *
 * Nothing here sleeps to synchronise: every wait polls a condition against a
 * deadline, and every loop is bounded. Callers kill what they spawned in a
 * `finally` ({@linkcode CliProcess.close}, {@linkcode closeAll}).
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { createTestPki, type TestCert, type TestPki } from "./tls/pki.ts";

/**
 * Turns a `file:` URL into a path.
 *
 * @param url The URL.
 * @returns The path.
 */
export function fromFileUrl(url: URL | string): string {
  return fileURLToPath(url);
}

/** The repository, with a trailing slash. */
export const REPO_ROOT: string = fromFileUrl(new URL("../../", import.meta.url));

/** Options of {@linkcode waitFor}. */
export interface WaitOptions {
  /** Give up after this long. Default 20 s. */
  readonly timeoutMs?: number;
  /** Pause between attempts. Default 50 ms. */
  readonly intervalMs?: number;
}

/**
 * Polls `check` until it returns something other than `undefined`, `null`
 * or `false`, and returns that.
 *
 * @param what What is awaited, for the error message.
 * @param check The condition; a throw counts as "not yet", except a
 *   {@linkcode StopWaiting}, which ends the wait at once.
 * @param options Deadline and pace.
 * @returns What `check` returned.
 * @throws {Error} At the deadline, with the last error `check` threw.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  options: WaitOptions = {},
): Promise<Exclude<T, undefined | null | false>> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let last: unknown = undefined;
  for (let attempt = 0; attempt < 1_000_000; attempt++) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) {
        return value as Exclude<T, undefined | null | false>;
      }
      last = value;
    } catch (error) {
      if (error instanceof StopWaiting) throw error;
      last = error;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await pause(Math.min(intervalMs, left));
  }
  const why = last instanceof Error
    ? `: ${last.message}`
    : last === undefined
    ? ""
    : `: last saw ${String(last)}`;
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${why}`);
}

/** Thrown by a {@linkcode waitFor} check: waiting longer cannot help. */
export class StopWaiting extends Error {}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Finds a free loopback port by binding port 0 and releasing it. Another
 * process may grab it before the node binds: {@linkcode startNode} retries.
 *
 * @returns A port that was free a moment ago.
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A running process whose output is collected as it comes. */
export class CliProcess {
  /** The process id. */
  readonly pid: number;
  /** Everything it printed on stdout so far. */
  stdout = "";
  /** Everything it printed on stderr so far. */
  stderr = "";
  /** Its exit status, once it exited. */
  readonly status: Promise<Deno.CommandStatus>;
  /** Set once it exited. */
  exited: Deno.CommandStatus | null = null;

  readonly #child: Deno.ChildProcess;
  readonly #drained: Promise<unknown>;
  readonly #label: string;

  /**
   * Spawns `command args` in the repository with stdin closed.
   *
   * @param command The executable.
   * @param args Its arguments.
   * @param options A label for messages and extra environment variables.
   */
  constructor(
    command: string,
    args: readonly string[],
    options: { label?: string; env?: Record<string, string> } = {},
  ) {
    this.#label = options.label ?? `${command} ${args.join(" ")}`;
    this.#child = new Deno.Command(command, {
      args: [...args],
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      // The caller's own WATERCRAFT_* settings must not leak in (empty is
      // unset); every node shares the test cluster's secret unless told otherwise.
      env: {
        NO_COLOR: "1",
        WATERCRAFT_SECRET: TEST_SECRET,
        WATERCRAFT_CLIENT_TOKEN: "",
        ...options.env,
      },
    }).spawn();
    this.pid = this.#child.pid;
    this.#drained = Promise.all([
      this.#drain(this.#child.stdout, (s) => this.stdout += s),
      this.#drain(this.#child.stderr, (s) => this.stderr += s),
    ]);
    this.status = this.#child.status.then(async (status) => {
      this.exited = status;
      await this.#drained;
      return status;
    });
  }

  async #drain(stream: ReadableStream<Uint8Array>, add: (text: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) add(decoder.decode(chunk, { stream: true }));
    add(decoder.decode());
  }

  /**
   * Waits for a line of stdout that matches `pattern`.
   *
   * @param pattern What to look for.
   * @param timeoutMs How long to wait.
   * @returns The match.
   * @throws {Error} If the process exits first or the time runs out; the
   *   message carries its output.
   */
  async waitForLine(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    try {
      return await waitFor(`${this.#label} to print ${pattern}`, () => {
        const match = this.stdout.split("\n").map((line) => line.match(pattern)).find((m) =>
          m !== null
        );
        if (match) return match;
        if (this.exited !== null) throw new ExitedError(this.exited.code);
        return null;
      }, { timeoutMs, intervalMs: 20 });
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${this.describe()}`);
    }
  }

  /**
   * Sends a signal to the process, by its pid, if it still runs.
   *
   * @param signal The signal.
   */
  kill(signal: Deno.Signal): void {
    if (this.exited !== null) return;
    try {
      this.#child.kill(signal);
    } catch (error) {
      // It exited between the check and the kill.
      if (!(error instanceof TypeError) && !(error instanceof Deno.errors.NotFound)) throw error;
    }
  }

  /**
   * Kills the process (SIGKILL) unless it exited, and waits for it and its
   * output streams, so that no resource outlives the test.
   */
  async close(): Promise<void> {
    this.kill("SIGKILL");
    await this.status;
  }

  /**
   * Describes the process and its output, for failure messages.
   *
   * @returns Several lines of text.
   */
  describe(): string {
    const state = this.exited === null ? "running" : `exited with code ${this.exited.code}`;
    const tail = (s: string) => s.trim().split("\n").slice(-15).join("\n  ");
    return `[${this.#label}] pid ${this.pid}, ${state}\n  stdout: ${tail(this.stdout)}\n  stderr: ${
      tail(this.stderr)
    }`;
  }
}

class ExitedError extends StopWaiting {
  constructor(code: number) {
    super(`the process exited with code ${code}`);
  }
}

/**
 * Kills every process (SIGKILL) and waits for all of them.
 *
 * @param processes What to kill.
 */
export async function closeAll(processes: Iterable<CliProcess>): Promise<void> {
  await Promise.all([...processes].map((p) => p.close()));
}

// ----------------------------------------------------------------- runtimes

/** A JavaScript runtime the CLI runs on. */
export type Runtime = "deno" | "bun" | "node";

/** How to start the CLI on each runtime; Bun and Node come from {@linkcode Tools}. */
export interface Launchers {
  /** The Bun executable. */
  readonly bun?: string;
  /** The Node.js executable. */
  readonly node?: string;
  /** `file:` URL of tsx's loader. */
  readonly tsxLoader?: string;
}

/** The secret of the clusters the process tests start (nodes get it in `WATERCRAFT_SECRET`). */
export const TEST_SECRET = "process-test-cluster-secret";

/**
 * The runtime flags of `deno task start` (between `run` and the script): how
 * users start a node on Deno, and so how the tests and benchmarks do.
 *
 * @returns The flags, `-A` left out.
 */
export function startTaskFlags(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(new URL("../../deno.json", import.meta.url)));
  const words = String(config.tasks.start).split(/\s+/);
  return words.slice(words.indexOf("run") + 1, words.indexOf("src/cli.ts"))
    .filter((word) => word !== "-A");
}

/**
 * The runtime flags a node runs with unless told otherwise: on Deno the
 * start task's ({@linkcode startTaskFlags}), on Bun and Node none.
 *
 * @param runtime The runtime.
 * @returns The flags.
 */
export function defaultRuntimeFlags(runtime: Runtime): string[] {
  return runtime === "deno" ? startTaskFlags() : [];
}

/**
 * The command line that runs `src/cli.ts` on `runtime`, with
 * {@linkcode defaultRuntimeFlags} unless others are given. On Node it is
 * `node --import <tsx loader> src/cli.ts`, what `tsx src/cli.ts` runs, but
 * in one process: the `tsx` command forks a child, and a SIGKILL to the
 * parent would leave the node running.
 *
 * @param runtime The runtime.
 * @param launchers Where Bun and tsx are.
 * @param runtimeFlags The runtime's own flags, instead of the default ones.
 * @returns The executable and its arguments before the CLI's flags.
 */
export function cliCommand(
  runtime: Runtime,
  launchers: Launchers = {},
  runtimeFlags?: readonly string[],
): [string, string[]] {
  const flags = runtimeFlags ?? defaultRuntimeFlags(runtime);
  switch (runtime) {
    case "deno":
      return [Deno.execPath(), ["run", ...flags, "-A", "src/cli.ts"]];
    case "bun":
      if (launchers.bun === undefined) {
        throw new TypeError("Bun is not installed: call ensureTools()");
      }
      return [launchers.bun, [...flags, "src/cli.ts"]];
    case "node":
      if (launchers.tsxLoader === undefined) {
        throw new TypeError("tsx is not installed: call ensureTools()");
      }
      return [launchers.node ?? "node", [
        ...flags,
        "--import",
        launchers.tsxLoader,
        "src/cli.ts",
      ]];
  }
}

/**
 * Runs the CLI to completion (for flags that make it exit).
 *
 * @param args The CLI's flags.
 * @param options Runtime, environment and deadline.
 * @returns Its exit code and output.
 */
export async function runCli(
  args: readonly string[],
  options: {
    runtime?: Runtime;
    launchers?: Launchers;
    env?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const [command, prefix] = cliCommand(options.runtime ?? "deno", options.launchers);
  const proc = new CliProcess(
    command,
    [...prefix, ...args],
    options.env ? { env: options.env } : {},
  );
  try {
    const status = await waitFor(`the CLI to exit (${args.join(" ")})`, () => proc.exited, {
      timeoutMs: options.timeoutMs ?? 20_000,
      intervalMs: 20,
    });
    await proc.status;
    return { code: status.code, stdout: proc.stdout, stderr: proc.stderr };
  } finally {
    await proc.close();
  }
}

// ----------------------------------------------------------------- nodes

/** A CLI node started by {@linkcode startNode}. */
export interface CliNode {
  /** Its id. */
  readonly id: string;
  /** Its URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The runtime it runs on. */
  readonly runtime: Runtime;
  /** The process. */
  readonly process: CliProcess;
}

/** Options of {@linkcode startNode}. */
export interface StartOptions {
  /** Node id. */
  readonly id: string;
  /** Runtime; default Deno. */
  readonly runtime?: Runtime;
  /** Where Bun and tsx are. */
  readonly launchers?: Launchers;
  /** URLs to join; none bootstraps a new cluster. */
  readonly join?: readonly string[];
  /** More flags. */
  readonly args?: readonly string[];
  /** Environment variables. */
  readonly env?: Record<string, string>;
  /**
   * Serve HTTPS: `true` with the shared test certificate of
   * {@linkcode TLS_FILES}, or with the given files.
   */
  readonly tls?: boolean | TestCert;
  /** How long to wait for the listening line. Default 30 s. */
  readonly timeoutMs?: number;
  /** Durable file storage in this directory; default memory storage. */
  readonly data?: string;
  /** A fixed port (a restarted member must come back at its URL); default a free one. */
  readonly port?: number;
  /** A command the node runs under, e.g. `["faketime", "-f", "+10h"]`. */
  readonly wrapper?: readonly string[];
}

let sharedPki: TestPki | null = null;

/** The shared test PKI, made on first use and deleted when the test module unloads. */
function pki(): TestPki {
  if (sharedPki === null) {
    sharedPki = createTestPki();
    const made = sharedPki;
    globalThis.addEventListener("unload", () => made.remove());
  }
  return sharedPki;
}

/**
 * The files of a throwaway CA and a node certificate it signed, made with
 * openssl in a temporary directory on first use (see `tls/pki.ts`).
 */
export const TLS_FILES: { readonly ca: string; readonly cert: string; readonly key: string } = {
  get ca() {
    return pki().ca.cert;
  },
  get cert() {
    return pki().cert.cert;
  },
  get key() {
    return pki().cert.key;
  },
};

/**
 * Starts a CLI node on a free loopback port and waits for its listening
 * line; retries on another port when the port was taken meanwhile.
 *
 * @param options Id, runtime, join URLs, flags.
 * @returns The running node; the caller must close its process.
 * @throws {Error} If it never listens.
 */
export async function startNode(options: StartOptions): Promise<CliNode> {
  const runtime = options.runtime ?? "deno";
  const [command, prefix] = cliCommand(runtime, options.launchers);
  let lastError: unknown = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = options.port ?? freePort();
    const url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
    const args = [
      ...prefix,
      "--id",
      options.id,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--advertise",
      url,
      ...(options.data === undefined
        ? ["--storage", "memory"]
        : ["--storage", "file", "--data", options.data]),
      ...(options.join ? ["--join", options.join.join(",")] : []),
      ...(options.tls ? tlsArgs(options.tls === true ? TLS_FILES : options.tls) : []),
      ...(options.args ?? []),
    ];
    const [run, ...wrapped] = [...(options.wrapper ?? []), command, ...args];
    const proc = new CliProcess(run!, wrapped, {
      label: `${options.id}@${runtime}`,
      ...(options.env ? { env: options.env } : {}),
    });
    try {
      await proc.waitForLine(/^watercraft listening on /, options.timeoutMs ?? 30_000);
      return { id: options.id, url, runtime, process: proc };
    } catch (error) {
      await proc.close();
      lastError = error;
      if (options.port !== undefined || !/in use|EADDRINUSE/i.test(proc.stderr)) break;
    }
  }
  throw lastError;
}

function tlsArgs(files: TestCert): string[] {
  return ["--tls-cert", files.cert, "--tls-key", files.key];
}

// ----------------------------------------------------------------- HTTP

let defaultClient: Deno.HttpClient | null = null;

/**
 * Sets the HTTP client {@linkcode request} uses when its options name none,
 * e.g. one that trusts a test CA, so that helpers built on it (such as
 * `scenario.ts`'s) reach HTTPS nodes. The caller still owns and closes it.
 *
 * @param client The client, or null for the runtime's default.
 */
export function useHttpClient(client: Deno.HttpClient | null): void {
  defaultClient = client;
}

/** An HTTP answer with its body read. */
export interface Reply {
  /** Status code. */
  readonly status: number;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  // deno-lint-ignore no-explicit-any
  readonly body: any;
  /** The raw body. */
  readonly text: string;
}

/**
 * Sends one request and reads the whole answer (so no body leaks).
 *
 * @param method HTTP method.
 * @param url Full URL.
 * @param options JSON body, headers, timeout (default 10 s), and an HTTP
 *   client (e.g. one that trusts the test CA).
 * @returns Status and body.
 * @throws {Error} On a network error or timeout.
 */
export async function request(
  method: string,
  url: string,
  options: {
    json?: unknown;
    headers?: Record<string, string>;
    timeoutMs?: number;
    client?: Deno.HttpClient;
  } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.json !== undefined) headers["content-type"] = "application/json";
  const client = options.client ?? defaultClient;
  const res = await fetch(url, {
    method,
    headers,
    ...(options.json !== undefined ? { body: JSON.stringify(options.json) } : {}),
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    ...(client ? { client } : {}),
  });
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (e.g. /metrics).
  }
  return { status: res.status, body, text };
}
