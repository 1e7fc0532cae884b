/**
 * A server for the connection-limit probes on Bun and Node: serves
 * `limits_handler.ts` with the limits given as JSON in its first argument,
 * and prints `listening <port>` once it listens.
 *
 * @module
 */

import process from "node:process";
import { serve } from "../../src/serve.ts";
import { limitsHandler } from "./limits_handler.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2);
const server = await serve(limitsHandler, {
  hostname: "127.0.0.1",
  port: 0,
  ...JSON.parse(args[0] ?? "{}"),
});
console.log(`listening ${server.port}`);
