/**
 * What both edge members (the Deno Deploy one in `main.ts`, the Durable
 * Object in `workers/member.ts`) start from their settings: a node with the
 * built-in key-value state machine on the HTTP transport, and its Hono app.
 * Each brings its own storage and clock, which is where the two platforms
 * differ.
 *
 * @module
 */

import { createApp } from "../../src/http/app.ts";
import { kvStateMachine } from "../../src/kv/mod.ts";
import { createNode } from "../../src/node/create_node.ts";
import type { WaterCraftNode } from "../../src/node/node.ts";
import type { Clock } from "../../src/clock.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { httpTransport } from "../../src/transport/http/sender.ts";
import type { EdgeConfig } from "./config.ts";

/** A started edge node and the app that serves it. */
export interface EdgeNode {
  /** The node. */
  readonly node: WaterCraftNode;
  /** Its client and peer routes. */
  readonly app: ReturnType<typeof createApp>;
  /** The URL it advertises. */
  readonly url: string;
}

/**
 * Starts the node an edge member runs.
 *
 * @param config The member's settings.
 * @param origin The first request's origin: the advertised URL when none is set.
 * @param platform The storage and the clock the platform provides.
 * @returns The node, its app and its URL.
 * @throws {TypeError} When there is no URL to advertise.
 */
export async function startEdgeNode(
  config: EdgeConfig,
  origin: string | null,
  platform: { readonly storage: Storage; readonly clock: Clock },
): Promise<EdgeNode> {
  const url = config.advertise ?? origin;
  if (url === null) {
    throw new TypeError("Cannot start without an advertised URL: set WATERCRAFT_ADVERTISE");
  }
  const clientToken = config.clientToken === null ? {} : { clientToken: config.clientToken };
  const node = await createNode({
    id: config.id,
    url,
    stateMachine: kvStateMachine(),
    ...(config.secret === null ? { insecure: true } : { secret: config.secret }),
    transport: httpTransport(clientToken),
    storage: platform.storage,
    bootstrap: config.join.length === 0,
    readOnly: config.readOnly,
    heartbeatMs: config.heartbeatMs,
    electionMs: config.electionMs,
    clock: platform.clock,
    onError: (error) => console.error(`watercraft: node ${config.id} stopped:`, error),
  });
  return { node, app: createApp(node, clientToken), url };
}
