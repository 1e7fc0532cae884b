/**
 * The processes the benchmark starts: each is registered the moment it is
 * spawned, so that a `finally`, SIGINT or SIGTERM kills exactly those, by
 * their PIDs, and nothing else. Also: free loopback ports, polling with a
 * deadline, and resident memory from `/proc`.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** The repository, with a trailing slash. */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Output kept per stream of a process: enough for an error message. */
const TAIL_CHARS = 16_384;

/** Every process spawned and not yet reaped, by PID. */
const running = new Map<number, Proc>();

/** A spawned process whose output is read as it comes (keeping the tail). */
export class Proc {
  /** Its PID. */
  readonly pid: number;
  /** What it is, for messages. */
  readonly label: string;
  /** Its exit status once it exited. */
  exited: Deno.CommandStatus | null = null;
  /** Resolves when it exited and its output was read. */
  readonly done: Promise<Deno.CommandStatus>;
  #stdout = "";
  #stderr = "";
  readonly #child: Deno.ChildProcess;

  /**
   * Spawns `command args` in the repository with stdin closed.
   *
   * @param label What it is, for messages.
   * @param command The executable.
   * @param args Its arguments.
   * @param env Extra environment variables.
   */
  constructor(
    label: string,
    command: string,
    args: readonly string[],
    env: Record<string, string>,
  ) {
    this.label = label;
    this.#child = new Deno.Command(command, {
      args: [...args],
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...env },
    }).spawn();
    this.pid = this.#child.pid;
    running.set(this.pid, this);
    const drained = Promise.all([
      drain(this.#child.stdout, (s) => this.#stdout = tail(this.#stdout + s)),
      drain(this.#child.stderr, (s) => this.#stderr = tail(this.#stderr + s)),
    ]);
    this.done = this.#child.status.then(async (status) => {
      this.exited = status;
      running.delete(this.pid);
      await drained;
      return status;
    });
  }

  /** The last part of its stdout. */
  get stdout(): string {
    return this.#stdout;
  }

  /** The last part of its stderr. */
  get stderr(): string {
    return this.#stderr;
  }

  /**
   * Sends a signal to this process (by its PID) unless it exited.
   *
   * @param signal The signal.
   */
  kill(signal: Deno.Signal): void {
    if (this.exited !== null) return;
    try {
      this.#child.kill(signal);
    } catch {
      // It exited between the check and the kill.
    }
  }

  /** SIGKILLs it unless it exited, and waits for it (at most 10 s). */
  async close(): Promise<void> {
    this.kill("SIGKILL");
    await Promise.race([this.done, sleep(10_000)]);
  }

  /**
   * Describes it and the tail of its output, for error messages.
   *
   * @returns A few lines.
   */
  describe(): string {
    const state = this.exited === null ? "running" : `exited with code ${this.exited.code}`;
    const last = (s: string) => s.trim().split("\n").slice(-10).join("\n    ");
    return `[${this.label}] pid ${this.pid}, ${state}\n  stdout: ${last(this.#stdout)}\n  stderr: ${
      last(this.#stderr)
    }`;
  }
}

function tail(s: string): string {
  return s.length > TAIL_CHARS ? s.slice(s.length - TAIL_CHARS) : s;
}

async function drain(stream: ReadableStream<Uint8Array>, add: (text: string) => void) {
  const decoder = new TextDecoder();
  try {
    for await (const chunk of stream) add(decoder.decode(chunk, { stream: true }));
  } catch {
    // The pipe broke as the process died.
  }
}

/** SIGKILLs every process this module spawned that still runs, and waits for them. */
export async function killAll(): Promise<void> {
  await Promise.all([...running.values()].map((p) => p.close()));
}

/**
 * Kills everything spawned and exits on SIGINT or SIGTERM, after `cleanup`.
 *
 * @param cleanup What else to undo (e.g. remove temporary directories); bounded by the caller.
 * @returns A function that removes the listeners.
 */
export function onInterrupt(cleanup: () => Promise<void>): () => void {
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  let stopping = false;
  const handler = () => {
    if (stopping) return;
    stopping = true;
    console.error("bench: interrupted, stopping the processes it started");
    killAll().then(cleanup).finally(() => Deno.exit(130));
  };
  for (const s of signals) Deno.addSignalListener(s, handler);
  return () => {
    for (const s of signals) Deno.removeSignalListener(s, handler);
  };
}

/**
 * A loopback port that was free a moment ago (bind port 0, release it).
 *
 * @returns The port.
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Resolves after `ms` milliseconds.
 *
 * @param ms The pause.
 * @returns A promise.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` until it returns a truthy value (a throw counts as "not yet").
 *
 * @param what What is awaited, for the error.
 * @param check The condition.
 * @param timeoutMs The deadline.
 * @param intervalMs The pause between tries.
 * @returns What `check` returned.
 * @throws {Error} At the deadline, with the last error seen.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  timeoutMs: number,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  const tries = Math.ceil(timeoutMs / intervalMs) + 1;
  for (let i = 0; i < tries; i++) {
    try {
      const value = await check();
      if (value !== null && value !== undefined && value !== false) return value;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      last = error;
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.min(intervalMs, Math.max(1, deadline - Date.now())));
  }
  const why = last instanceof Error ? `: ${last.message}` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
}

/** Thrown by a {@linkcode waitFor} check when waiting longer cannot help. */
export class GiveUp extends Error {}

/**
 * The PID to measure for a spawned process: itself, or, when it is a wrapper
 * (an `npx`/`tsx`/`bun` launcher script) whose only job is to run the runtime
 * as a child, that child. Follows at most three levels.
 *
 * @param pid The spawned PID.
 * @returns The PID of the process that does the work.
 */
export function runtimePid(pid: number): number {
  let current = pid;
  for (let depth = 0; depth < 3; depth++) {
    const children = childrenOf(current);
    const name = commOf(current);
    const wrapper = name === "npx" || name === "npm" || name === "sh" || name === "tsx" ||
      (name === "node" && cmdlineOf(current).some((a) => /(^|\/)(tsx|npx)(\.js|\.mjs)?$/.test(a)));
    if (!wrapper || children.length !== 1) return current;
    current = children[0]!;
  }
  return current;
}

function childrenOf(pid: number): number[] {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`);
    return text.trim().split(/\s+/).filter((s) => s !== "").map(Number);
  } catch {
    return [];
  }
}

function commOf(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return "";
  }
}

function cmdlineOf(pid: number): string[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
  } catch {
    return [];
  }
}

/**
 * A process's resident memory (VmRSS in `/proc/PID/status`).
 *
 * @param pid The PID.
 * @returns MiB, or NaN when it cannot be read (no `/proc`, or the process is gone).
 */
export function rssMiB(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Clock ticks per second of `/proc/PID/stat`'s times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/**
 * The CPU time a process has used so far, user and system, all its threads.
 *
 * @param pid The PID.
 * @returns Seconds, or NaN when it cannot be read (no `/proc`, or the process is gone).
 */
export function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The name in parentheses may hold spaces: count fields after its closing one.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return NaN;
  }
}
