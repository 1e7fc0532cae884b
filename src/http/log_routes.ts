/**
 * The routes that read the committed log: `GET /v1/entries?after=&limit=`
 * lists entries with their hashes, and `GET /v1/watch?after=` follows it
 * as Server-Sent Events (API.md, "Watch and the log").
 *
 * @module
 */

/**
 * `Hono` is public in its own package, but doc lint reports every type from
 * a dependency as private (denoland/deno#27364); the tag silences that.
 *
 * @ignore
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import type { WaterCraftNode } from "../node/node.ts";
import type { WatchEvent } from "../node/watch.ts";
import { parseWith } from "../validation.ts";
import { eventStream, type SseEvent } from "./event_stream.ts";

/** Entries one listing gives at most. */
export const ENTRIES_LIMIT_MAX = 1000;
/** Entries one listing gives without `limit`. */
const ENTRIES_LIMIT_DEFAULT = 100;

const index = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const limit = z.coerce.number().int().min(1).max(ENTRIES_LIMIT_MAX);

/**
 * Where a watch or a listing starts: `Last-Event-ID` (a reconnecting event
 * stream sends it) over `?after=`; by default `fallback`.
 */
export function startAfter(c: Context, fallback: number | undefined): number | undefined {
  const resumed = c.req.header("last-event-id");
  if (resumed !== undefined && resumed !== "") {
    return parseWith(index, resumed, "header Last-Event-ID");
  }
  const after = c.req.query("after");
  return after === undefined ? fallback : parseWith(index, after, "query parameter after");
}

/**
 * The log routes, for `createApp` to mount.
 *
 * @param node The node whose log they read.
 * @returns The sub-app.
 */
export function logRoutes(node: WaterCraftNode): Hono {
  const app = new Hono();
  app.get("/v1/entries", (c) => {
    const after = startAfter(c, 0)!;
    const count = c.req.query("limit") === undefined
      ? ENTRIES_LIMIT_DEFAULT
      : parseWith(limit, c.req.query("limit"), "query parameter limit");
    return c.json(node.entries(after, count));
  });
  app.get("/v1/watch", (c) => {
    const after = startAfter(c, undefined);
    const events = node.watch(after === undefined ? {} : { after });
    return eventStream(c, events, renderWatchEvent);
  });
  return app;
}

/**
 * A watch event on the wire: `entry` events have the index as their id;
 * the others the index they follow, so a client resumes after them alike.
 */
function renderWatchEvent(event: WatchEvent): SseEvent {
  switch (event.type) {
    case "entry":
      return { event: "entry", data: event.entry, id: String(event.entry.index) };
    case "leader":
      return { event: "leader", data: { term: event.term, leader: event.leader } };
    case "dropped":
      return {
        event: "dropped",
        data: { reason: event.reason, resumeAfter: event.resumeAfter },
        id: String(event.resumeAfter),
      };
  }
}
