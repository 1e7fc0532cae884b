/**
 * Runs Workers under miniflare, which drives the real `workerd` binary, for
 * the edge tests: installs miniflare from npm into `.tools/miniflare/` (once
 * per machine; only Node.js and npm are needed), bundles a Worker with
 * `deno bundle`, and starts it through `miniflare_runner.mjs` on Node.js.
 *
 * Nothing here sleeps to synchronise: waits poll with a deadline. Every
 * process started here is ended by its pid: the runner by
 * {@linkcode MiniflareProcess.close}, and workerd, which a killed runner
 * would leave behind, by the pid the runner printed.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { CliProcess, REPO_ROOT, waitFor } from "../process/harness.ts";
import { npmInstallOnce, runCommand } from "../process/tools.ts";

/** Where miniflare is installed. */
const INSTALL_DIR = `${REPO_ROOT}.tools/miniflare/`;
/** The version installed; bump it here. */
const MINIFLARE_SPEC = "miniflare@4";
/** How long a Worker may take to start. */
const START_MS_MAX = 60_000;
/** How long a graceful stop may take before the processes are killed. */
const STOP_MS_MAX = 10_000;

/** The Workers compatibility date every test Worker runs at. */
export const COMPATIBILITY_DATE = "2025-06-01";

/** What {@linkcode ensureMiniflare} found or installed. */
export interface MiniflareInstall {
  /** miniflare's module, for `import()`. */
  readonly module: string;
  /** The workerd binary. */
  readonly workerd: string;
}

let installing: Promise<MiniflareInstall> | null = null;

/**
 * Returns miniflare, installing it first when missing.
 *
 * @returns Where its module and workerd are.
 * @throws {Error} When npm fails or takes longer than four minutes.
 */
export function ensureMiniflare(): Promise<MiniflareInstall> {
  installing ??= install();
  return installing;
}

function find(): MiniflareInstall | null {
  const modules = `${INSTALL_DIR}node_modules/`;
  const module = `${modules}miniflare/dist/src/index.js`;
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "64";
  const os = Deno.build.os === "darwin" ? "darwin" : "linux";
  const workerd = `${modules}@cloudflare/workerd-${os}-${arch}/bin/workerd`;
  return existsSync(module) && existsSync(workerd) ? { module, workerd } : null;
}

function install(): Promise<MiniflareInstall> {
  return npmInstallOnce(INSTALL_DIR, [MINIFLARE_SPEC], find);
}

/**
 * Why workerd cannot run on this machine, or null when it can: the only
 * reason a Workers test may skip. Runs `workerd --version`.
 *
 * @param found The install.
 * @returns The reason, or null.
 */
export async function workerdUnusable(found: MiniflareInstall): Promise<string | null> {
  try {
    await runCommand(found.workerd, ["--version"]);
    return null;
  } catch (error) {
    return `workerd cannot run on ${Deno.build.target}: ${(error as Error).message}`;
  }
}

/**
 * Bundles a Worker module and everything it imports into one ES module for
 * workerd, with `deno bundle` (npm packages included, `node:` modules left
 * as imports).
 *
 * @param entry The module, relative to the repository.
 * @param outFile Where to write the bundle.
 * @returns `outFile`.
 * @throws {Error} When the bundler fails.
 */
export async function bundleWorker(entry: string, outFile: string): Promise<string> {
  await runCommand(Deno.execPath(), [
    "bundle",
    "--quiet",
    "--platform",
    "browser",
    "--external",
    "node:*",
    "--output",
    outFile,
    entry,
  ]);
  return outFile;
}

/** A Durable Object namespace binding of {@linkcode MiniflareOptions}. */
export interface DurableObjectBinding {
  /** The exported class. */
  readonly className: string;
  /** Backed by SQLite (`new_sqlite_classes`). */
  readonly useSQLite: boolean;
}

/** What one Worker runs with. */
export interface MiniflareOptions {
  /** A label for messages. */
  readonly label: string;
  /** The bundled Worker. */
  readonly script: string;
  /** Durable Object namespaces by binding name. */
  readonly durableObjects: Record<string, DurableObjectBinding>;
  /** Where Durable Object storage persists (a directory). */
  readonly persist: string;
  /** Text bindings (the Worker's `env`). */
  readonly bindings?: Record<string, string>;
  /** Compatibility flags, e.g. `nodejs_compat`. */
  readonly compatibilityFlags?: readonly string[];
  /** A fixed port; default a free one. */
  readonly port?: number;
}

/** A Worker running under miniflare. */
export class MiniflareProcess {
  /** The Worker's URL, without a trailing slash. */
  readonly url: string;
  /** The Node.js process that runs miniflare. */
  readonly runner: CliProcess;
  /** The workerd processes miniflare started. */
  readonly workerdPids: readonly number[];

  private constructor(url: string, runner: CliProcess, workerdPids: readonly number[]) {
    this.url = url;
    this.runner = runner;
    this.workerdPids = workerdPids;
  }

  /**
   * Starts a Worker and waits until it serves.
   *
   * @param options The Worker and its bindings.
   * @returns The running Worker; the caller must {@linkcode close} it.
   * @throws {Error} When it does not start within a minute.
   */
  static async start(options: MiniflareOptions): Promise<MiniflareProcess> {
    const found = await ensureMiniflare();
    const config = {
      miniflare: found.module,
      script: options.script,
      compatibilityDate: COMPATIBILITY_DATE,
      compatibilityFlags: options.compatibilityFlags ?? [],
      durableObjects: options.durableObjects,
      persist: options.persist,
      bindings: options.bindings ?? {},
      ...(options.port === undefined ? {} : { port: options.port }),
    };
    const runner = new CliProcess("node", [`${REPO_ROOT}tests/edge/miniflare_runner.mjs`], {
      label: options.label,
      env: { MINIFLARE_RUNNER_CONFIG: JSON.stringify(config) },
    });
    try {
      const ready = await runner.waitForLine(/^READY (\S+)$/, START_MS_MAX);
      const pids = [...runner.stdout.matchAll(/^WORKERD (\d+)$/gm)].map((m) => Number(m[1]));
      return new MiniflareProcess(ready[1]!.replace(/\/$/, ""), runner, pids);
    } catch (error) {
      await runner.close();
      throw error;
    }
  }

  /**
   * Stops or resumes workerd (SIGSTOP, SIGCONT): an instance that stalls (a
   * long pause, a partition) while the platform runs another one.
   *
   * @param frozen True to stop it, false to resume it.
   */
  freeze(frozen: boolean): void {
    for (const pid of this.workerdPids) {
      try {
        Deno.kill(pid, frozen ? "SIGSTOP" : "SIGCONT");
      } catch {
        // It exited.
      }
    }
  }

  /** Kills workerd (SIGKILL) as a machine crash would, then the runner. */
  async crash(): Promise<void> {
    for (const pid of this.workerdPids) killPid(pid);
    await this.runner.close();
  }

  /**
   * Stops miniflare (SIGTERM, so it stops workerd), or kills both when that
   * takes too long.
   */
  async close(): Promise<void> {
    // A stopped workerd could not stop gracefully.
    this.freeze(false);
    this.runner.kill("SIGTERM");
    try {
      await waitFor(`${this.url} to stop`, () => this.runner.exited, {
        timeoutMs: STOP_MS_MAX,
      });
    } catch {
      // Killed below.
    }
    for (const pid of this.workerdPids) killPid(pid);
    await this.runner.close();
  }
}

/** Sends SIGKILL to a process this test started, unless it is gone. */
function killPid(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // It exited already.
  }
}
