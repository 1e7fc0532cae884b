/**
 * Installs what the process tests need besides Deno, on a machine that has
 * only Node.js and npm: Bun and tsx from the npm registry into `.tools/`
 * (kept out of git), and the npm packages the source imports into
 * `node_modules/`, where Bun and Node resolve them.
 *
 * Installs happen once per machine: a lock directory keeps test files that
 * run in parallel from installing twice at the same time.
 *
 * @module
 */

import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync } from "node:fs";
import { fromFileUrl, REPO_ROOT, waitFor } from "./harness.ts";

/** Where Bun and tsx are installed. */
export const TOOLS_DIR: string = fromFileUrl(new URL("../../.tools/", import.meta.url));

/** The versions installed; bump them here. */
const BUN_SPEC = "bun@1.4";
const TSX_SPEC = "tsx@4";

/** Longest an install may take (npm on a cold cache). */
const INSTALL_MS_MAX = 240_000;

/** A lock older than this was left by a killed run. */
const LOCK_STALE_MS = 300_000;

/** What the tests run nodes with. */
export interface Tools {
  /** The Bun executable itself (not the npm wrapper script, which spawns a child). */
  readonly bun: string;
  /** The Node.js executable. */
  readonly node: string;
  /** `file:` URL of tsx's loader, for `node --import <it> src/cli.ts`. */
  readonly tsxLoader: string;
}

let installing: Promise<Tools> | null = null;

/**
 * Returns Bun, Node and tsx, installing Bun and tsx first when missing.
 *
 * @returns Paths to run them with.
 * @throws {Error} When the install fails or takes longer than four minutes.
 */
export function ensureTools(): Promise<Tools> {
  installing ??= install();
  return installing;
}

async function install(): Promise<Tools> {
  await ensureNodeModules();
  const tools = await npmInstallOnce(TOOLS_DIR, [BUN_SPEC, TSX_SPEC], findTools);
  await runCommand(tools.bun, ["--version"]);
  return tools;
}

/**
 * Installs npm packages into `dir` unless `find` finds them there, once per
 * machine: a lock directory in `dir` keeps test files that run in parallel
 * from installing at the same time, and the others wait for it.
 *
 * @param dir The install prefix, ending in `/`.
 * @param specs The packages, as npm takes them.
 * @param find What the install provides, or null while it is missing.
 * @returns What `find` found.
 * @throws {Error} When npm fails, or installs without providing what `find`
 *   looks for, or takes longer than four minutes.
 */
export async function npmInstallOnce<T>(
  dir: string,
  specs: readonly string[],
  find: () => T | null,
): Promise<T> {
  let found = find();
  if (found !== null) return found;
  const lock = `${dir}.install.lock`;
  mkdirSync(dir, { recursive: true });
  const deadline = Date.now() + INSTALL_MS_MAX;
  for (let attempt = 0; attempt < 1000 && Date.now() < deadline; attempt++) {
    found = find();
    if (found !== null) return found;
    if (tryLock(lock)) {
      try {
        found = find();
        if (found !== null) return found;
        await runCommand("npm", [
          "install",
          "--no-save",
          "--no-package-lock",
          "--no-audit",
          "--no-fund",
          "--prefix",
          dir,
          ...specs,
        ]);
        found = find();
        if (found === null) {
          throw new Error(`npm installed ${specs.join(" and ")} but files are missing in ${dir}`);
        }
        return found;
      } finally {
        rmdirSync(lock);
      }
    }
    // Another test file is installing: wait for it, not for the whole deadline.
    await waitFor("the other install to finish", () => !existsSync(lock) || find() !== null, {
      timeoutMs: Math.max(1, deadline - Date.now()),
      intervalMs: 250,
    });
  }
  throw new Error(`Could not install ${specs.join(" and ")} in ${INSTALL_MS_MAX} ms`);
}

function tryLock(lock: string): boolean {
  try {
    mkdirSync(lock);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code !== "EEXIST") throw error;
    try {
      if (Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) rmdirSync(lock);
    } catch {
      // Someone else removed it first.
    }
    return false;
  }
}

/** The installed tools, or null when something is missing. */
function findTools(): Tools | null {
  const modules = `${TOOLS_DIR}node_modules/`;
  const tsxLoader = `${modules}tsx/dist/loader.mjs`;
  if (!existsSync(tsxLoader)) return null;
  const bun = findBun(modules);
  if (bun === null) return null;
  return { bun, node: "node", tsxLoader: `file://${tsxLoader}` };
}

/**
 * The native Bun binary. The `bun` package's postinstall puts it at
 * `bun/bin/bun.exe`; without the postinstall that file is a Node script that
 * spawns the binary from the platform package, so the platform package's
 * binary comes first: killing the process we spawn must kill Bun itself.
 */
function findBun(modules: string): string | null {
  const arch = Deno.build.arch === "aarch64" ? "aarch64" : "x64";
  const os = Deno.build.os === "darwin" ? "darwin" : "linux";
  for (const variant of ["", "-baseline", "-musl", "-musl-baseline"]) {
    const path = `${modules}@oven/bun-${os}-${arch}${variant}/bin/bun`;
    if (existsSync(path) && isNative(path)) return path;
  }
  const shim = `${modules}bun/bin/bun.exe`;
  return existsSync(shim) && isNative(shim) ? shim : null;
}

/** Whether a file is a native executable rather than a script. */
function isNative(path: string): boolean {
  const head = readFileSync(path).subarray(0, 4);
  const elf = head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
  const macho = head[0] === 0xcf && head[1] === 0xfa && head[2] === 0xed && head[3] === 0xfe;
  return elf || macho;
}

/**
 * Makes sure `node_modules/` holds the npm packages the source imports:
 * Deno creates it (`"nodeModulesDir": "auto"`) only for the modules a run
 * loads, and a run of the process tests alone loads none of them.
 */
async function ensureNodeModules(): Promise<void> {
  const wanted = ["hono", "zod", "@noble/hashes", "@hono/node-server"];
  if (wanted.every((name) => existsSync(`${REPO_ROOT}node_modules/${name}/package.json`))) return;
  await runCommand(Deno.execPath(), ["install"]);
}

/**
 * Runs a command in the repository, with the install's deadline.
 *
 * @param command The executable.
 * @param args Its arguments.
 * @returns What it printed on stdout.
 * @throws {Error} When it fails, with the tail of its stderr.
 */
export async function runCommand(command: string, args: readonly string[]): Promise<string> {
  const output = await new Deno.Command(command, {
    args: [...args],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(INSTALL_MS_MAX),
  }).output();
  if (!output.success) {
    const err = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-20).join("\n");
    throw new Error(`${command} ${args.join(" ")} failed with code ${output.code}:\n${err}`);
  }
  return new TextDecoder().decode(output.stdout);
}
