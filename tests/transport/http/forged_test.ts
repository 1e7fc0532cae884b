/**
 * What one forged peer request can do to a node of an unsecured cluster
 * (`--insecure`): never wedge its terms, never stop the process. (A secured
 * cluster refuses such requests outright: `secret_test.ts`.)
 *
 * @module
 */

import { match, strictEqual } from "node:assert/strict";
import { createApp, createNode, kvStateMachine } from "../../../mod.ts";
import { TERM_MAX } from "../../../src/core/messages.ts";
import { encodeMessages } from "../../../src/transport/http/frames.ts";
import { MemoryNetwork } from "../../../src/testing.ts";

async function soloLeader() {
  const node = await createNode({
    id: "n1",
    stateMachine: kvStateMachine(),
    transport: new MemoryNetwork().transport(),
    insecure: true,
    onError: () => {},
  });
  return { node, app: createApp(node) };
}

function forge(
  app: { request: (path: string, init: RequestInit) => Response | Promise<Response> },
  from: string,
  body: Uint8Array,
) {
  return app.request("/raft/messages", {
    method: "POST",
    headers: { "X-Raft-From": from, "content-type": "application/octet-stream" },
    body: body as BodyInit,
  });
}

Deno.test("a forged heartbeat with a term past TERM_MAX is refused (400) and the cluster keeps writing", async () => {
  const { node, app } = await soloLeader();
  try {
    const term = node.status().term;
    const res = await forge(
      app,
      "evil",
      encodeMessages([{
        type: "heartbeat",
        from: "evil",
        to: "n1",
        term: Number.MAX_SAFE_INTEGER,
        commit: 0,
        context: null,
        seen: {},
      }]),
    );
    strictEqual(res.status, 400);
    strictEqual((await res.json()).error.code, "invalid_request");
    strictEqual(node.status().term, term);
    strictEqual((await node.propose({ op: "put", key: "a", value: 1 })).state, "committed");
  } finally {
    await node.stop();
  }
});

Deno.test("a forged heartbeat whose commit is past the log does not stop the node", async () => {
  const { node, app } = await soloLeader();
  try {
    const res = await forge(
      app,
      "evil",
      encodeMessages([{
        type: "heartbeat",
        from: "evil",
        to: "n1",
        term: node.status().term + 1,
        commit: node.status().lastIndex + 1000,
        context: null,
        seen: {},
      }]),
    );
    strictEqual(res.status, 204);
    strictEqual(node.failure, null, String(node.failure));
    strictEqual(node.status().commitIndex <= node.status().lastIndex, true);
    strictEqual(TERM_MAX > node.status().term, true);
    match(await (await app.request("/metrics")).text(), /watercraft_peer_messages_refused_total 1/);
  } finally {
    await node.stop();
  }
});
