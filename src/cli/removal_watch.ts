/**
 * Finds out that this node was removed from its cluster. A leader stops
 * sending to a member as soon as it appends the member's removal, so the
 * removed node hears nothing more, not even the entry that removed it: it
 * only sees the leader fall silent. While it knows no leader, it asks the
 * other members it knows (their `GET /v1/members`); one that knows a
 * leader and a newer configuration without this node settles it, and the
 * node stops campaigning (`WaterCraftNode.noteRemoved`).
 *
 * @module
 */

import type { WaterCraftNode } from "../node/node.ts";

/** Options of {@linkcode watchRemoval}. */
export interface RemovalWatchOptions {
  /** How often to look, ms (a few election timeouts). */
  readonly everyMs: number;
  /** The client token the members require, if any. */
  readonly clientToken: string | null;
  /** The `fetch` to ask with (one that trusts `--ca` over HTTPS). Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch;
}

/** How long one member may take to answer. */
const ASK_MS = 1_000;

/**
 * Asks the other members, whenever this node knows no leader, whether it
 * is still a member; stops when the returned function is called.
 *
 * @param node The node.
 * @param options Pace and credentials.
 * @returns Stops watching.
 */
export function watchRemoval(node: WaterCraftNode, options: RemovalWatchOptions): () => void {
  const ask = options.fetch ?? fetch;
  let asking = false;
  const timer = setInterval(() => {
    if (asking || node.removed || node.failure !== null) return;
    let status;
    try {
      status = node.status();
    } catch {
      return;
    }
    if (status.leader !== null || status.members.length === 0) return;
    asking = true;
    const others = status.members.filter((m) => m.id !== node.id && m.url !== null);
    (async () => {
      for (const member of others) {
        const headers: Record<string, string> = {};
        if (options.clientToken !== null) headers.authorization = `Bearer ${options.clientToken}`;
        try {
          const res = await ask(`${member.url}/v1/members`, {
            headers,
            signal: AbortSignal.timeout(ASK_MS),
          });
          const body = await res.json();
          if (!res.ok || body?.leader === null || !Array.isArray(body?.members)) continue;
          const listed = body.members.some((m: { id?: unknown }) => m.id === node.id);
          if (!listed && Number.isSafeInteger(body.configIndex)) {
            node.noteRemoved(body.configIndex);
            return;
          }
          if (listed) return;
        } catch {
          // Unreachable or not answering: ask the next.
        }
      }
    })().finally(() => asking = false);
  }, options.everyMs);
  (timer as { unref?: () => void }).unref?.();
  return () => clearInterval(timer);
}
