/**
 * Clusters over real HTTP on loopback in one process, for tests: each node
 * has its own server, the HTTP transport and a cluster secret. Time is
 * real, so every wait polls for its condition with a bounded deadline.
 *
 * @module
 */

import {
  createApp,
  createNode,
  httpTransport,
  kvStateMachine,
  type NodeOptions,
  serve,
  type Server,
  type WaterCraftNode,
} from "../../mod.ts";

/** The secret the test clusters share. */
export const SECRET = "s3cret-for-tests";

/** A node and its server. */
export interface Member {
  node: WaterCraftNode;
  server: Server;
  url: string;
}

/** Starts a node with its own loopback server. */
export async function start(
  id: string,
  join: string[] | null,
  readOnly = false,
  extra: Partial<NodeOptions> = {},
): Promise<Member> {
  let handler: (req: Request) => Response | Promise<Response> = () =>
    new Response("starting", { status: 503 });
  const server = await serve((req) => handler(req), { port: 0, hostname: "127.0.0.1" });
  const url = `http://127.0.0.1:${server.port}`;
  const node = await createNode({
    id,
    url,
    stateMachine: kvStateMachine(),
    secret: SECRET,
    transport: httpTransport(),
    bootstrap: join === null,
    readOnly,
    heartbeatMs: 20,
    electionMs: 200,
    onError: () => {},
    ...extra,
  });
  const app = createApp(node);
  handler = (req) => app.fetch(req);
  if (join !== null) await node.join(join, { timeoutMs: 10_000 });
  return { node, server, url };
}

/** Stops a node and its server. */
export async function stop(m: Member): Promise<void> {
  await m.server.shutdown();
  await m.node.stop();
}

/** Polls `cond` every 10 ms for at most `ms`. */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  ms = 10_000,
): Promise<void> {
  for (let i = 0; i < ms / 10; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`Timed out waiting for ${what}`);
}
