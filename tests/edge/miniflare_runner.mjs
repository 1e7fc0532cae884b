// Runs one Worker under miniflare (workerd) for the edge tests, on Node.js.
//
// The test process (Deno) starts it as `node miniflare_runner.mjs` with the
// settings as JSON in MINIFLARE_RUNNER_CONFIG; it prints `READY <url>` once
// the Worker serves, and `WORKERD <pid>` for each workerd process it finds
// (so that a test can kill workerd itself to simulate a crash). SIGTERM and
// SIGINT stop miniflare (and workerd with it) and exit 0.

import { existsSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { pathToFileURL } from "node:url";

const config = JSON.parse(process.env.MINIFLARE_RUNNER_CONFIG ?? "{}");
const { Miniflare, Log, LogLevel } = await import(
  pathToFileURL(config.miniflare).href
);

const mf = new Miniflare({
  modules: [{
    type: "ESModule",
    path: config.script,
    contents: readFileSync(config.script, "utf8"),
  }],
  // Module names are relative to this; the default (the working directory) may not hold the script.
  modulesRoot: dirname(config.script),
  compatibilityDate: config.compatibilityDate,
  compatibilityFlags: config.compatibilityFlags ?? [],
  durableObjects: config.durableObjects,
  durableObjectsPersist: config.persist,
  bindings: config.bindings ?? {},
  host: "127.0.0.1",
  port: config.port ?? 0,
  log: new Log(LogLevel.INFO),
  // Never fetch the `request.cf` object from the network: the tests stay on loopback.
  cf: false,
});

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try {
    await mf.dispose();
  } finally {
    process.exit(0);
  }
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

const url = await mf.ready;
// workerd is miniflare's child: name it, so that a test can kill it by pid.
const children = `/proc/${process.pid}/task/${process.pid}/children`;
if (existsSync(children)) {
  for (const pid of readFileSync(children, "utf8").trim().split(/\s+/).filter(Boolean)) {
    console.log(`WORKERD ${pid}`);
  }
}
console.log(`READY ${url.href}`);
