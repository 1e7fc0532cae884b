/**
 * With a cluster secret set, a node that lacks it, or has a wrong one, can
 * neither join, vote, append, forward a write, nor change membership: each
 * attempt gets `401 unauthorized` and leaves the term, the log and the
 * member list as they were. The same requests made with the secret do take
 * effect, so the 401 is what stops them.
 *
 * Real HTTP on loopback: one node, a one-member cluster (no election can
 * happen, so its term and log move only when a request moves them), served
 * with `serve()`, attacked with `fetch` and with nodes that try to join.
 *
 * @module
 */

import { WaterCraftError } from "../../../src/errors.ts";
import { deepStrictEqual, rejects, strictEqual } from "node:assert/strict";
import { concatBytes } from "@noble/hashes/utils.js";
import { PeerCredentials } from "../../../src/transport/http/credentials.ts";
import { FrameSealer } from "../../../src/transport/http/stream_seal.ts";
import { encodeForwardedProposal, encodeMessages } from "../../../src/transport/http/frames.ts";
import { STREAM_PATH } from "../../../src/transport/http/peer_stream.ts";
import { FORWARD_PATH, MESSAGES_PATH } from "../../../src/transport/http/sender.ts";
import {
  createApp,
  createNode,
  httpTransport,
  kvStateMachine,
  serve,
  type Server,
  type WaterCraftNode,
} from "../../../mod.ts";
import type { Message } from "../../../src/core/mod.ts";

const SECRET = "the-cluster-secret";
const WRONG = "a-guess";

/** Where nobody listens: intruders claim it as their URL, and are never called. */
const NOWHERE = "http://127.0.0.1:9";

interface Target {
  readonly node: WaterCraftNode;
  readonly server: Server;
  readonly url: string;
}

/** A one-member cluster with the secret, on a loopback port. */
async function startTarget(): Promise<Target> {
  let handler: (req: Request) => Response | Promise<Response> = () =>
    new Response("starting", { status: 503 });
  const server = await serve((req) => handler(req), { port: 0, hostname: "127.0.0.1" });
  const url = `http://127.0.0.1:${server.port}`;
  const node = await createNode({
    id: "n1",
    url,
    stateMachine: kvStateMachine(),
    secret: SECRET,
    transport: httpTransport(),
    bootstrap: true,
    onError: () => {},
  });
  const app = createApp(node);
  handler = (req) => app.fetch(req);
  return { node, server, url };
}

async function stopTarget(target: Target): Promise<void> {
  await target.server.shutdown();
  await target.node.stop();
}

/** What no refused request may change. */
function state(node: WaterCraftNode) {
  const status = node.status();
  const members = node.members();
  return {
    role: status.role,
    term: status.term,
    lastIndex: status.lastIndex,
    commitIndex: status.commitIndex,
    appliedIndex: status.appliedIndex,
    head: status.head,
    configIndex: members.configIndex,
    members: members.members.map((m) => ({ id: m.id, url: m.url, voter: m.voter })),
  };
}

/** Waits (bounded) until the node leads and has committed and applied all it has. */
async function settled(node: WaterCraftNode): Promise<ReturnType<typeof state>> {
  for (let i = 0; i < 1000; i++) {
    const now = state(node);
    if (
      now.role === "leader" && now.lastIndex > 0 && now.commitIndex === now.lastIndex &&
      now.appliedIndex === now.commitIndex
    ) {
      return now;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`The node did not settle: ${JSON.stringify(state(node))}`);
}

/** The ways an intruder may present itself. */
type Credential = "no proof" | "a wrong secret";

const CREDENTIALS: readonly Credential[] = ["no proof", "a wrong secret"];

/**
 * Sends a request as a peer from `from` would: unsigned (secret null), or
 * signed with `secret` under the challenge the target hands out (the first
 * attempt learns it). A stream's body is one frame followed by its seal.
 */
async function peerFetch(
  target: Target,
  secret: string | null,
  from: string,
  method: string,
  path: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): Promise<Response> {
  const credentials = new PeerCredentials(secret);
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const stream = path === STREAM_PATH;
  for (let attempt = 1;; attempt++) {
    const proof = credentials.sign(
      target.url,
      from,
      method,
      path,
      stream ? new Uint8Array(0) : bytes,
    );
    const key = stream ? credentials.streamKey(proof.signed) : null;
    const sent = key === null ? bytes : concatBytes(bytes, new FrameSealer(key).seal(bytes));
    const res = await fetch(target.url + path, {
      method,
      headers: { ...headers, ...proof.headers },
      ...(method === "DELETE" ? {} : { body: sent as BodyInit }),
    });
    if (attempt === 1 && credentials.learn(target.url, res)) {
      await res.body?.cancel();
      continue;
    }
    return res;
  }
}

function secretOf(credential: Credential): string | null {
  return credential === "no proof" ? null : WRONG;
}

/** Sends a peer RPC (`POST /raft/...`) and reads the answer. */
async function peerRpc(
  target: Target,
  path: string,
  body: string | Uint8Array,
  secret: string | null,
  from = "n2",
): Promise<{ status: number; code: string | undefined }> {
  const res = await peerFetch(target, secret, from, "POST", path, body, {
    "content-type": "application/octet-stream",
  });
  const text = await res.text();
  const code = text === "" ? undefined : (JSON.parse(text) as { error?: { code?: string } })
    .error?.code;
  return { status: res.status, code };
}

/** A vote request that, were it admitted, would depose the leader: higher term, longer log, a transfer (past the leader lease). */
function voteFor(target: Target, term: number): Message {
  return {
    type: "vote",
    from: "n2",
    to: target.node.id,
    term,
    preVote: false,
    transfer: true,
    lastIndex: 1000,
    lastTerm: term - 1,
  };
}

/** An append from a "leader" of a higher term, which a follower must obey. */
function appendFrom(target: Target, term: number): Message {
  const before = state(target.node);
  return {
    type: "append",
    from: "n2",
    to: target.node.id,
    term,
    prevIndex: before.lastIndex,
    prevTerm: before.term,
    prevHash: before.head,
    entries: [],
    commit: before.commitIndex,
  };
}

Deno.test("with --secret set, a node without it or with a wrong one gets 401 and changes nothing", async (t) => {
  const target = await startTarget();
  try {
    const before = await settled(target.node);
    const unchanged = (what: string) =>
      deepStrictEqual(state(target.node), before, `${what} changed the node`);

    for (const credential of CREDENTIALS) {
      const secret = secretOf(credential);

      await t.step(`join with ${credential}`, async () => {
        const intruder = await createNode({
          id: "intruder",
          url: NOWHERE,
          stateMachine: kvStateMachine(),
          ...(secret === null ? { insecure: true } : { secret }),
          transport: httpTransport(),
          bootstrap: false,
          onError: () => {},
        });
        try {
          await rejects(
            intruder.join([target.url], { timeoutMs: 10_000 }),
            (e: unknown) => e instanceof WaterCraftError && e.code === "unauthorized",
          );
        } finally {
          await intruder.stop();
        }
        unchanged(`a join with ${credential}`);
      });

      await t.step(`vote request with ${credential}`, async () => {
        const body = encodeMessages([voteFor(target, before.term + 10)]);
        deepStrictEqual(await peerRpc(target, MESSAGES_PATH, body, secret), {
          status: 401,
          code: "unauthorized",
        });
        unchanged(`a vote request with ${credential}`);
      });

      await t.step(`stream with ${credential}`, async () => {
        const body = encodeMessages([voteFor(target, before.term + 10)]);
        deepStrictEqual(await peerRpc(target, STREAM_PATH, body, secret), {
          status: 401,
          code: "unauthorized",
        });
        unchanged(`a stream with ${credential}`);
      });

      await t.step(`append with ${credential}`, async () => {
        const body = encodeMessages([appendFrom(target, before.term + 10)]);
        deepStrictEqual(await peerRpc(target, MESSAGES_PATH, body, secret), {
          status: 401,
          code: "unauthorized",
        });
        unchanged(`an append with ${credential}`);
      });

      await t.step(`forwarded write with ${credential}`, async () => {
        const body = JSON.stringify({
          command: { op: "put", key: "k", value: 1 },
          wait: "committed",
          timeoutMs: 1000,
        });
        deepStrictEqual(await peerRpc(target, FORWARD_PATH, body, secret), {
          status: 401,
          code: "unauthorized",
        });
        unchanged(`a forwarded write with ${credential}`);
      });

      for (
        const [method, path, body] of [
          ["POST", "/v1/members", JSON.stringify({ id: "intruder", url: NOWHERE })],
          ["DELETE", "/v1/members/n1", ""],
        ] as const
      ) {
        await t.step(`${method} ${path} with ${credential}`, async () => {
          const json = { "content-type": "application/json" };
          const attempts: (() => Promise<Response>)[] = secret === null
            ? [
              () =>
                fetch(target.url + path, {
                  method,
                  headers: json,
                  ...(body === "" ? {} : { body }),
                }),
            ]
            : [
              // What a joining node with the wrong secret sends.
              () => peerFetch(target, secret, "intruder", method, path, body, json),
              // What an operator with the wrong secret sends.
              () =>
                fetch(target.url + path, {
                  method,
                  headers: { ...json, "X-WaterCraft-Secret": secret },
                  ...(body === "" ? {} : { body }),
                }),
            ];
          for (const attempt of attempts) {
            const res = await attempt();
            const answer = await res.json();
            strictEqual(res.status, 401, JSON.stringify(answer));
            strictEqual(answer.error.code, "unauthorized");
          }
          unchanged(`${method} ${path} with ${credential}`);
        });
      }
    }
  } finally {
    await stopTarget(target);
  }
});

Deno.test("with --secret set, the same requests made with the secret take effect", async (t) => {
  const target = await startTarget();
  try {
    const before = await settled(target.node);

    await t.step("membership: add and remove a member with the secret", async () => {
      const add = await fetch(`${target.url}/v1/members`, {
        method: "POST",
        headers: { "content-type": "application/json", "X-WaterCraft-Secret": SECRET },
        body: JSON.stringify({ id: "probe", url: NOWHERE }),
      });
      strictEqual(add.status, 200, await add.text());
      deepStrictEqual(state(target.node).members.map((m) => m.id), ["n1", "probe"]);
      const path = "/v1/members/probe";
      const remove = await peerFetch(target, SECRET, "n1", "DELETE", path, "");
      strictEqual(remove.status, 200, await remove.text());
      deepStrictEqual(state(target.node).members, before.members);
    });

    await t.step("a signed forward of a command over the client body limit gets 413", async () => {
      const last = state(target.node).lastIndex;
      const body = encodeForwardedProposal({
        command: new Uint8Array((1 << 20) + 1),
        wait: "committed",
        timeoutMs: 1000,
      });
      deepStrictEqual(await peerRpc(target, FORWARD_PATH, body, SECRET), {
        status: 413,
        code: "too_large",
      });
      strictEqual(state(target.node).lastIndex, last);
    });

    await t.step("a signed vote request deposes the leader: its term moves", async () => {
      const body = encodeMessages([voteFor(target, before.term + 10)]);
      deepStrictEqual(await peerRpc(target, MESSAGES_PATH, body, SECRET), {
        status: 204,
        code: undefined,
      });
      const after = state(target.node);
      strictEqual(after.term, before.term + 10);
      strictEqual(after.role, "follower");
    });

    await t.step(
      "a stream signed when it opens, its frame sealed, is obeyed: its term moves",
      async () => {
        const term = state(target.node).term + 3;
        const res = await peerFetch(
          target,
          SECRET,
          "n2",
          "POST",
          STREAM_PATH,
          encodeMessages([voteFor(target, term)]),
        );
        strictEqual(res.status, 204, await res.text());
        strictEqual(state(target.node).term, term);
      },
    );

    await t.step("a signed append of a higher term is obeyed: its term moves", async () => {
      const term = state(target.node).term + 5;
      const body = encodeMessages([appendFrom(target, term)]);
      deepStrictEqual(await peerRpc(target, MESSAGES_PATH, body, SECRET), {
        status: 204,
        code: undefined,
      });
      strictEqual(state(target.node).term, term);
    });
  } finally {
    await stopTarget(target);
  }
});
