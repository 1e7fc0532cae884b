/**
 * The HTTP transport and the peer routes over real HTTP on loopback: batching
 * and order, bounded queues for dead peers, authentication, forwarding.
 * Nothing sleeps: conditions are polled with a bounded number of short waits.
 *
 * @module
 */

import { WaterCraftError } from "../../../src/errors.ts";
import { deepStrictEqual, match, ok, rejects, strictEqual, throws } from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Hono } from "hono";
import type { AppendMessage, HeartbeatMessage, Message } from "../../../src/core/messages.ts";
import { peerRoutes, type PeerRoutesOptions } from "../../../src/transport/http/routes.ts";
import { errorResponse } from "../../../src/http/errors.ts";
import { requestSignature } from "../../../src/transport/http/auth.ts";
import {
  decodeMessages,
  encodeForwardedProposal,
  encodeMessages,
} from "../../../src/transport/http/frames.ts";
import { STREAM_PATH } from "../../../src/transport/http/peer_stream.ts";
import {
  type HttpTransport,
  httpTransport,
  type HttpTransportOptions,
  type PeerFailure,
} from "../../../src/transport/http/sender.ts";
import type {
  ForwardedAnswer,
  ForwardedProposal,
  PeerHandler,
} from "../../../src/transport/transport.ts";
import { createTestPki, type TestCert } from "../../process/tls/pki.ts";

// ------------------------------------------------------------------ helpers

/** Polls `cond` every 5 ms, at most `timeoutMs / 5` times. */
async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  for (let i = 0; i < timeoutMs / 5; i++) {
    if (cond()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  if (!cond()) throw new Error(`Timed out waiting for ${what}`);
}

/** Lets pending I/O and timers run once. */
function yieldOnce(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** A promise the test resolves when it wants. */
function gate(): { wait(): Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { wait: () => promise, open };
}

/** A PeerHandler that records what reaches it. */
interface Recorder {
  readonly calls: { from: string; messages: readonly Message[] }[];
  readonly forwards: { from: string; proposal: ForwardedProposal }[];
  /** How `forwarded()` answers; tests replace it. */
  answer: (proposal: ForwardedProposal) => Promise<ForwardedAnswer>;
  readonly messages: Message[];
  readonly handler: PeerHandler;
}

function recorder(): Recorder {
  const rec: Recorder = {
    calls: [],
    forwards: [],
    answer: (proposal) =>
      Promise.resolve({
        ok: true,
        value: {
          echo: "command" in proposal ? new TextDecoder().decode(proposal.command) : proposal.kind,
        },
      }),
    get messages(): Message[] {
      return rec.calls.flatMap((c) => c.messages);
    },
    handler: {
      receive(from, messages) {
        rec.calls.push({ from, messages });
      },
      forwarded(from, proposal) {
        rec.forwards.push({ from, proposal });
        return rec.answer(proposal);
      },
    },
  };
  return rec;
}

/** A peer: a Hono app with the peer routes behind an optional gate, served on loopback. */
function servePeer(options: Partial<PeerRoutesOptions> = {}) {
  const rec = recorder();
  const peer = { rec, arrivals: 0, gate: null as null | { wait(): Promise<void> } };
  const app = new Hono();
  app.onError((e, c) => errorResponse(c, e));
  app.use("/raft/*", async (_c, next) => {
    peer.arrivals++;
    if (peer.gate !== null) await peer.gate.wait();
    await next();
  });
  app.route("/", peerRoutes(rec.handler, { secret: null, ...options }));
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  return { ...peer, peer, server, url: `http://127.0.0.1:${server.addr.port}` };
}

/** A loopback port nothing listens on. */
function deadPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

function heartbeat(to: string, commit: number, from = "n1"): HeartbeatMessage {
  return { type: "heartbeat", from, to, term: 1, commit, context: null, seen: {} };
}

/** A frame whose second message is addressed to an id no node can have. */
function withBadRecipient(): Uint8Array {
  const frame = encodeMessages([heartbeat("n2", 1), heartbeat("nX", 2)]);
  const at = frame.findLastIndex((b, i) => b === 0x6e && frame[i + 1] === 0x58);
  frame[at + 1] = 0x20; // "nX" becomes "n ", which the id pattern refuses
  return frame;
}

function commits(messages: readonly Message[]): number[] {
  return messages.map((m) => (m as HeartbeatMessage).commit);
}

/**
 * A transport in request mode (one POST per batch) unless `options` says
 * otherwise; signing with `secret`, else open.
 */
function transportTo(
  peers: Record<string, string>,
  { secret, ...options }: HttpTransportOptions & { secret?: string } = {},
) {
  const transport = httpTransport({ streams: false, ...options });
  transport.start("n1", recorder().handler, secret === undefined ? { insecure: true } : { secret });
  transport.setPeers(new Map(Object.entries(peers)));
  return transport;
}

/** Calls `unreachable(peer)` until the transport drops the stream, which it does once the stream is a second old. */
async function dropOnceOld(transport: HttpTransport, peer: string): Promise<void> {
  const resets = transport.stats().streamResets;
  await waitFor(
    () => {
      transport.unreachable(peer);
      return transport.stats().streamResets === resets + 1;
    },
    "the stream dropped once it is a second old",
    5000,
  );
}

function range(lo: number, hi: number): number[] {
  return Array.from({ length: hi - lo }, (_, i) => lo + i);
}

const PROPOSAL: ForwardedProposal = {
  command: new TextEncoder().encode('{"op":"put","key":"k","value":1}'),
  wait: "committed",
  timeoutMs: 1000,
};

// ------------------------------------------------------------------ messages

Deno.test("httpTransport streams every message to a peer over one request, in order", async () => {
  const peer = servePeer();
  const transport = transportTo({ n2: peer.url }, { streams: true });
  try {
    for (let i = 1; i <= 300; i++) {
      transport.send([heartbeat("n2", i)]);
      if (i % 50 === 0) await yieldOnce();
    }
    await waitFor(() => peer.rec.messages.length === 300, "all 300 messages");
    deepStrictEqual(commits(peer.rec.messages), range(1, 301));
    const stats = transport.stats();
    strictEqual(stats.requests, 1, "one stream carried them all");
    strictEqual(peer.peer.arrivals, 1);
    strictEqual(stats.messagesSent, 300);
    strictEqual(stats.failures, 0);
    ok(stats.peers.n2!.inFlight, "the stream stays open");
    ok(peer.rec.calls.every((c) => c.from === "n1"));
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("httpTransport reopens a stream the peer refused, and later messages arrive", async () => {
  const peer = servePeer();
  let refuse = 2;
  const refusing: typeof fetch = (input, init) => {
    if (String(input).endsWith(STREAM_PATH) && refuse-- > 0) {
      return Promise.resolve(new Response("busy", { status: 503 }));
    }
    return fetch(input, init);
  };
  const failures: string[] = [];
  const transport = transportTo({ n2: peer.url }, {
    streams: true,
    fetch: refusing,
    backoffMinMs: 5,
    onPeerError: (f) => failures.push(f.message),
  });
  try {
    // Raft sends again and again (heartbeats); each send finds the stream gone and reopens it.
    for (let i = 1; i <= 200 && peer.rec.messages.length === 0; i++) {
      transport.send([heartbeat("n2", i)]);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    ok(peer.rec.messages.length > 0, "messages arrive once the peer takes the stream");
    strictEqual(transport.stats().failures, 2);
    deepStrictEqual(
      failures.length,
      1,
      `one report per streak of failures: ${failures.join(" | ")}`,
    );
    match(failures[0]!, /503 busy/);
    const got = commits(peer.rec.messages);
    deepStrictEqual(got, [...got].sort((a, b) => a - b), "in order");
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("httpTransport.unreachable() drops a stream that is not young, and the next send reopens it", async () => {
  const peer = servePeer();
  const transport = transportTo({ n2: peer.url }, { streams: true });
  try {
    transport.send([heartbeat("n2", 1)]);
    await waitFor(() => peer.rec.messages.length === 1, "the first message");
    transport.unreachable("n2");
    strictEqual(transport.stats().streamResets, 0, "a young stream is left alone");
    await dropOnceOld(transport, "n2");
    strictEqual(transport.stats().peers.n2!.inFlight, false);
    transport.send([heartbeat("n2", 2)]);
    await waitFor(() => peer.rec.messages.length === 2, "the message after the reset");
    strictEqual(peer.peer.arrivals, 2, "a new stream carried it");
    strictEqual(transport.stats().failures, 0, "a reset is not a failure");
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("httpTransport writes an append answer equal to the one before it on a stream once; a new stream carries it again", async () => {
  const peer = servePeer();
  const transport = transportTo({ n2: peer.url }, { streams: true });
  const answer = (index: number): Message => ({
    type: "appendResponse",
    from: "n1",
    to: "n2",
    term: 1,
    success: true,
    index,
    hintIndex: 0,
    hintTerm: 0,
  });
  const indexes = () => peer.rec.messages.map((m) => m.type === "appendResponse" ? m.index : -1);
  try {
    transport.send([answer(5), answer(5)]);
    await yieldOnce();
    transport.send([answer(5), heartbeat("n2", 1), answer(6)]);
    await waitFor(() => indexes().includes(6), "the answer for 6");
    deepStrictEqual(indexes(), [5, -1, 6]);
    strictEqual(transport.stats().messagesSent, 3);
    // The stream is dropped: the next one starts afresh.
    await dropOnceOld(transport, "n2");
    transport.send([answer(6)]);
    await waitFor(() => indexes().length === 4, "the answer on the new stream");
    deepStrictEqual(indexes(), [5, -1, 6, 6]);
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("peerRoutes keeps one stream per sender: a new one ends the one before", async () => {
  const peer = servePeer();
  const open = () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    const answered = fetch(peer.url + STREAM_PATH, {
      method: "POST",
      headers: { "X-Raft-From": "n1", "content-type": "application/octet-stream" },
      body,
      duplex: "half",
    } as RequestInit);
    return { controller, answered };
  };
  const first = open();
  first.controller.enqueue(encodeMessages([heartbeat("n2", 1)]));
  await waitFor(() => peer.rec.messages.length === 1, "the first stream's message");
  const second = open();
  second.controller.enqueue(encodeMessages([heartbeat("n2", 2)]));
  await waitFor(() => peer.rec.messages.length === 2, "the second stream's message");
  // The first stream is no longer read: what it carries now is not stepped.
  first.controller.enqueue(encodeMessages([heartbeat("n2", 99)]));
  second.controller.enqueue(encodeMessages([heartbeat("n2", 3)]));
  await waitFor(() => peer.rec.messages.length === 3, "the second stream's next message");
  deepStrictEqual(commits(peer.rec.messages), [1, 2, 3]);
  first.controller.close();
  second.controller.close();
  strictEqual((await second.answered).status, 204);
  await (await first.answered).body?.cancel();
  await peer.server.shutdown();
});

Deno.test("httpTransport batches what queues while a request is in flight, in FIFO order", async () => {
  const peer = servePeer();
  const hold = gate();
  peer.peer.gate = hold;
  const transport = transportTo({ n2: peer.url });
  try {
    transport.send([heartbeat("n2", 1)]);
    await waitFor(() => peer.peer.arrivals === 1, "the first request");
    for (let i = 2; i <= 200; i++) {
      transport.send([heartbeat("n2", i)]);
      if (i % 25 === 0) await yieldOnce();
    }
    strictEqual(transport.stats().peers.n2!.queued, 199);
    strictEqual(transport.stats().requests, 1);
    hold.open();
    await waitFor(
      () => peer.rec.messages.length === 200 && transport.stats().messagesSent === 200,
      "all 200 messages",
    );
    deepStrictEqual(commits(peer.rec.messages), range(1, 201));
    strictEqual(peer.rec.calls.length, 2);
    const stats = transport.stats();
    strictEqual(stats.requests, 2);
    strictEqual(stats.messagesSent, 200);
    strictEqual(stats.dropped, 0);
    strictEqual(stats.failures, 0);
    ok(peer.rec.calls.every((c) => c.from === "n1"));
  } finally {
    hold.open();
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("httpTransport sends one tick's messages to each peer in one request", async () => {
  const a = servePeer();
  const b = servePeer();
  const transport = transportTo({ n2: a.url, n3: b.url });
  try {
    transport.send([heartbeat("n2", 1), heartbeat("n3", 1), heartbeat("n2", 2)]);
    transport.send([heartbeat("n3", 2)]);
    await waitFor(() => a.rec.messages.length === 2 && b.rec.messages.length === 2, "both peers");
    deepStrictEqual(commits(a.rec.messages), [1, 2]);
    deepStrictEqual(commits(b.rec.messages), [1, 2]);
    strictEqual(transport.stats().requests, 2);
  } finally {
    await transport.close();
    await a.server.shutdown();
    await b.server.shutdown();
  }
});

Deno.test("httpTransport bounds a dead peer's queue and keeps serving healthy peers", async () => {
  const healthy = servePeer();
  const revived = servePeer();
  const cap = 1000;
  const dead = `http://127.0.0.1:${deadPort()}`;
  // Each round sends `cap` messages at once, so a queue that drops the
  // oldest holds exactly the latest round whenever a request leaves; one
  // that dropped the newest would hold an older round.
  let round = -1;
  const attempts: { round: number; commits: number[] }[] = [];
  const recording: typeof fetch = (input, init) => {
    if (String(input).startsWith(dead)) {
      attempts.push({ round, commits: commits(decodeMessages(init!.body as Uint8Array)) });
    }
    return fetch(input, init);
  };
  const transport = transportTo(
    { dead, n2: healthy.url },
    { maxQueuedMessages: cap, timeoutMs: 1000, fetch: recording },
  );
  try {
    const total = 100_000;
    let maxQueued = 0;
    for (round = 0; round < total / 1000; round++) {
      transport.send(range(0, 1000).map((i) => heartbeat("dead", round * 1000 + i)));
      transport.send([heartbeat("n2", round)]);
      const queued = transport.stats().peers.dead!.queued;
      maxQueued = Math.max(maxQueued, queued);
      ok(queued <= cap, `queue of ${queued} over the cap`);
      await yieldOnce();
    }
    // Requests that leave from now on carry what is left of the last round.
    round = total / 1000 - 1;
    await waitFor(
      () => healthy.rec.messages.length === 100 && transport.stats().messagesSent === 100,
      "the healthy peer's messages",
    );
    deepStrictEqual(commits(healthy.rec.messages), range(0, 100));
    await waitFor(() => !transport.stats().peers.dead!.inFlight, "the dead peer's request to fail");
    const stats = transport.stats();
    const deadStats = stats.peers.dead!;
    strictEqual(maxQueued, cap);
    ok(stats.failures >= 1, "no failure counted");
    ok(deadStats.backoffMs >= 50, "no back-off");
    ok(stats.dropped >= total - cap - stats.messagesFailed);
    // Every message to the dead peer is accounted for exactly once.
    strictEqual(stats.dropped + stats.messagesFailed + deadStats.queued, total);
    strictEqual(stats.messagesSent, 100);
    // On a loaded machine the last round may have left already, in a request
    // sent after the previous one failed: then nothing is queued.
    if (deadStats.queued === 0) strictEqual(deadStats.queuedBytes, 0);
    else ok(deadStats.queuedBytes > 0 && deadStats.queuedBytes <= 32 << 20);

    // Which messages survived: each request to the dead peer carried the
    // round sent last before it left, whole and in order.
    ok(attempts.length >= 1, "no request to the dead peer");
    strictEqual(attempts.length, stats.failures);
    for (const [i, attempt] of attempts.entries()) {
      const lo = attempt.round * 1000;
      deepStrictEqual(attempt.commits, range(lo, lo + 1000), `request ${i}`);
      if (i > 0) ok(attempt.round > attempts[i - 1]!.round, `request ${i} went back in time`);
    }
    strictEqual(attempts[0]!.round, 0);
    // What is still queued arrives once the peer is back: the newest messages.
    const queued = deadStats.queued;
    transport.setPeers(new Map([["dead", revived.url], ["n2", healthy.url]]));
    await waitFor(() => revived.rec.messages.length === queued, "the queue to drain");
    deepStrictEqual(commits(revived.rec.messages), range(total - queued, total));
    // So the dropped messages are exactly the others: every round but the
    // ones that left whole, each dropped by the next round's messages.
    const survivors = [...attempts.flatMap((a) => a.commits), ...commits(revived.rec.messages)];
    strictEqual(survivors.at(-1), total - 1, "the newest message was dropped");
    strictEqual(survivors.length, total - stats.dropped);
    ok(survivors.every((c, i) => i === 0 || c > survivors[i - 1]!), "survivors out of order");
  } finally {
    await transport.close();
    await healthy.server.shutdown();
    await revived.server.shutdown();
  }
});

Deno.test("httpTransport bounds a peer's queue in bytes, dropping the oldest", async () => {
  const peer = servePeer();
  const transport = transportTo({ n2: peer.url }, { maxQueuedBytes: 10_000 });
  try {
    // Appends of one size, told apart by prevIndex and their entry's bytes.
    const append = (i: number): Message => ({
      type: "append",
      from: "n1",
      to: "n2",
      term: 1,
      prevIndex: i,
      prevTerm: 1,
      prevHash: "0".repeat(64),
      entries: [{
        index: i + 1,
        term: 1,
        kind: "command",
        proposer: "n1",
        timeMs: 0,
        data: new Uint8Array(3000).fill(i),
        hash: "0".repeat(64),
      }],
      commit: 0,
    });
    // No await in between: the first request leaves after the last send.
    let before = 0;
    for (let i = 0; i < 20; i++) {
      transport.send([append(i)]);
      ok(transport.stats().peers.n2!.queuedBytes <= 10_000);
      // Each message makes room for itself only: the queue never shrinks.
      const { queued } = transport.stats().peers.n2!;
      ok(queued >= before, `the queue shrank from ${before} to ${queued}`);
      strictEqual(transport.stats().dropped + queued, i + 1);
      before = queued;
    }
    const { dropped, peers } = transport.stats();
    ok(dropped >= 15);
    const { queued, queuedBytes } = peers.n2!;
    strictEqual(dropped + queued, 20);
    ok(queued >= 1, "the newest message was dropped");
    // It drops no more than it must: one more message of the same size would not fit.
    ok(queuedBytes + queuedBytes / queued > 10_000, `${queued} messages in ${queuedBytes} bytes`);

    await waitFor(() => transport.stats().messagesSent === queued, "the queued messages");
    const received = peer.rec.messages as AppendMessage[];
    deepStrictEqual(received.map((m) => m.prevIndex), range(20 - queued, 20));
    deepStrictEqual(
      received.map((m) => m.entries[0]!.data),
      range(20 - queued, 20).map((i) => new Uint8Array(3000).fill(i)),
    );
    strictEqual(transport.stats().dropped, dropped);
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("httpTransport drops and counts messages to unknown or removed peers", async () => {
  const peer = servePeer();
  const hold = gate();
  peer.peer.gate = hold;
  const transport = transportTo({ n2: peer.url });
  try {
    transport.send([heartbeat("n9", 1)]);
    strictEqual(transport.stats().droppedUnknown, 1);
    transport.send([heartbeat("n2", 1)]);
    await waitFor(() => peer.peer.arrivals === 1, "the request");
    transport.send([heartbeat("n2", 2), heartbeat("n2", 3)]);
    transport.setPeers(new Map());
    const stats = transport.stats();
    strictEqual(stats.dropped, 3);
    deepStrictEqual(stats.peers, {});
    transport.send([heartbeat("n2", 4)]);
    strictEqual(transport.stats().droppedUnknown, 2);
  } finally {
    hold.open();
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("httpTransport.close() aborts a request in flight", async () => {
  const peer = servePeer();
  const hold = gate();
  peer.peer.gate = hold;
  const transport = transportTo({ n2: peer.url });
  try {
    transport.send([heartbeat("n2", 1)]);
    await waitFor(() => peer.peer.arrivals === 1, "the request");
    await transport.close();
    strictEqual(transport.stats().failures, 1);
    transport.send([heartbeat("n2", 2)]);
    strictEqual(transport.stats().dropped, 1);
  } finally {
    hold.open();
    await peer.server.shutdown();
  }
});

// ------------------------------------------------------------------ authentication

Deno.test("peerRoutes answers 401 to unsigned or wrongly signed requests and nothing reaches the node", async () => {
  const peer = servePeer({ secret: "s3cret" });
  try {
    const body = encodeMessages([heartbeat("n2", 1)]);
    const post = (path: string, headers: Record<string, string>, data = body) =>
      fetch(peer.url + path, {
        method: "POST",
        headers: { "content-type": "application/octet-stream", ...headers },
        body: data as BodyInit,
      });
    /** Headers signed under `challenge` with `secret`, over `signedBody` for `path`. */
    const signed = (
      challenge: string,
      seq: number,
      { secret = "s3cret", path = "/raft/messages", signedBody = body } = {},
    ) => ({
      "X-Raft-From": "n1",
      "X-Raft-Challenge": challenge,
      "X-Raft-Seq": String(seq),
      "X-Raft-Signature": requestSignature(secret, {
        method: "POST",
        path,
        from: "n1",
        challenge,
        seq,
        body: signedBody,
      }),
    });

    let challenge = "";
    for (const path of ["/raft/messages", "/raft/forward"]) {
      const res = await post(path, { "X-Raft-From": "n1" });
      strictEqual(res.status, 401);
      const json = await res.json();
      strictEqual(json.error.code, "unauthorized");
      match(json.error.message, /no X-Raft-Challenge yet/);
      challenge = res.headers.get("X-Raft-Challenge")!;
      match(challenge, /^[0-9a-f]{32}$/);
    }

    const wrong = await post("/raft/messages", signed(challenge, 1, { secret: "guess" }));
    strictEqual(wrong.status, 401);
    match((await wrong.json()).error.message, /cluster secret differs/);
    strictEqual(wrong.headers.get("X-Raft-Challenge"), null, "no new challenge for a wrong secret");

    // Signed for another body, for the other route, under a challenge never handed out.
    const other = signed(challenge, 2, { signedBody: new Uint8Array([1]) });
    strictEqual((await post("/raft/messages", other)).status, 401);
    strictEqual(
      (await post("/raft/messages", signed(challenge, 3, { path: "/raft/forward" }))).status,
      401,
    );
    const made = await post("/raft/messages", signed("ab".repeat(16), 1));
    strictEqual(made.status, 401);
    match((await made.json()).error.message, /unknown or expired X-Raft-Challenge/);
    match(made.headers.get("X-Raft-Challenge")!, /^[0-9a-f]{32}$/);

    // Signed right: accepted once, then the replay is refused.
    const right = signed(challenge, 4);
    strictEqual((await post("/raft/messages", right)).status, 204);
    const replay = await post("/raft/messages", right);
    strictEqual(replay.status, 401);
    match((await replay.json()).error.message, /already used \(a replay\)/);
    // A lower number not seen yet is still good: concurrent requests arrive out of order.
    strictEqual((await post("/raft/messages", signed(challenge, 2))).status, 204);

    strictEqual(peer.rec.calls.length, 2);
    strictEqual(peer.rec.forwards.length, 0);
  } finally {
    await peer.server.shutdown();
  }
});

Deno.test("httpTransport with the cluster secret is accepted; with a wrong one it is refused", async () => {
  const peer = servePeer({ secret: "s3cret" });
  const good = transportTo({ n2: peer.url }, { secret: "s3cret" });
  const bad = transportTo({ n2: peer.url }, { secret: "guess" });
  try {
    bad.send([heartbeat("n2", 1)]);
    good.send([heartbeat("n2", 2)]);
    await waitFor(
      () =>
        peer.rec.messages.length === 1 && bad.stats().failures === 1 &&
        good.stats().messagesSent === 1,
      "both requests",
    );
    deepStrictEqual(commits(peer.rec.messages), [2]);
    strictEqual(bad.stats().messagesSent, 0);
    strictEqual(good.stats().messagesSent, 1);

    deepStrictEqual(await good.forward("n2", PROPOSAL, new AbortController().signal), {
      ok: true,
      value: { echo: new TextDecoder().decode(PROPOSAL.command) },
    });
    // The refusal of a wrong secret is unsigned (there is no shared key to
    // sign it with), and anyone on the path could have written it: the
    // outcome stays unknown rather than "not written".
    await rejects(
      bad.forward("n2", PROPOSAL, new AbortController().signal),
      (e: unknown) =>
        e instanceof WaterCraftError && e.code === "timeout" &&
        /Cannot trust the refusal .* \(401\)/.test(e.message),
    );
    strictEqual(peer.rec.forwards.length, 1);
  } finally {
    await good.close();
    await bad.close();
    await peer.server.shutdown();
  }
});

// ------------------------------------------------------------------ validation

Deno.test("peerRoutes refuses bad requests with the API.md error shape", async (t) => {
  const peer = servePeer({ bodyLimitBytes: 4096 });
  const post = (
    headers: Record<string, string>,
    body: BodyInit | Uint8Array,
    path = "/raft/messages",
  ) =>
    fetch(peer.url + path, {
      method: "POST",
      headers: { "content-type": "application/octet-stream", ...headers },
      body: body as BodyInit,
      // A stream body must say so; other bodies ignore it.
      duplex: "half",
    } as RequestInit);
  const expect = async (res: Response, status: number, code: string, message?: RegExp) => {
    strictEqual(res.status, status);
    const json = await res.json();
    strictEqual(json.error.code, code);
    if (message) match(json.error.message, message);
  };
  try {
    await t.step("missing X-Raft-From", async () => {
      await expect(await post({}, encodeMessages([])), 400, "invalid_request", /X-Raft-From/);
    });
    await t.step("malformed X-Raft-From", async () => {
      await expect(
        await post({ "X-Raft-From": "n 1" }, encodeMessages([])),
        400,
        "invalid_request",
        /X-Raft-From/,
      );
    });
    await t.step("not a frame", async () => {
      await expect(
        await post({ "X-Raft-From": "n1" }, "{nope"),
        400,
        "invalid_request",
        /Cannot decode a peer frame/,
      );
    });
    await t.step("a bad field is named", async () => {
      await expect(
        await post({ "X-Raft-From": "n1" }, withBadRecipient()),
        400,
        "invalid_request",
        /messages\.1\.to/,
      );
    });
    for (
      const [name, body] of [["a bad field", withBadRecipient()], [
        "a cut frame",
        encodeMessages([heartbeat("n2", 1)]).subarray(0, 9),
      ]] as const
    ) {
      await t.step(`${name} on a stream ends it with 400`, async () => {
        await expect(
          await post({ "X-Raft-From": "n1" }, body, STREAM_PATH),
          400,
          "invalid_request",
          /Cannot decode a peer frame/,
        );
      });
    }
    await t.step("a message from someone else on a stream", async () => {
      const body = encodeMessages([heartbeat("n2", 1), heartbeat("n2", 2, "n3")]);
      await expect(
        await post({ "X-Raft-From": "n1" }, body, STREAM_PATH),
        400,
        "invalid_request",
        /messages\.1\.from/,
      );
    });
    await t.step("a message from someone else", async () => {
      const body = encodeMessages([heartbeat("n2", 1), heartbeat("n2", 2, "n3")]);
      await expect(
        await post({ "X-Raft-From": "n1" }, body),
        400,
        "invalid_request",
        /messages\.1\.from/,
      );
    });
    await t.step("over the body limit", async () => {
      const body = encodeMessages(range(0, 1000).map((i) => heartbeat("n2", i)));
      await expect(await post({ "X-Raft-From": "n1" }, body), 413, "too_large");
    });
    await t.step("over the body limit, streamed without a length", async () => {
      const chunk = new TextEncoder().encode(" ".repeat(1024));
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent++ < 8) controller.enqueue(chunk);
          else controller.close();
        },
      });
      await expect(await post({ "X-Raft-From": "n1" }, stream), 413, "too_large");
    });
    await t.step("a bad forwarded proposal", async () => {
      const body = encodeForwardedProposal(PROPOSAL);
      await expect(
        await post({ "X-Raft-From": "n1" }, body.subarray(0, body.length - 1), "/raft/forward"),
        400,
        "invalid_request",
        /Cannot decode a peer frame/,
      );
    });
    await t.step("nothing reached the node", () => {
      strictEqual(peer.rec.calls.length, 0);
      strictEqual(peer.rec.forwards.length, 0);
    });
  } finally {
    await peer.server.shutdown();
  }
});

// ------------------------------------------------------------------ forwarding

Deno.test("httpTransport.forward() round-trips a proposal and the leader's answers", async () => {
  const peer = servePeer();
  const transport = transportTo({ n2: peer.url });
  const signal = new AbortController().signal;
  try {
    const proposal: ForwardedProposal = { ...PROPOSAL, idempotencyKey: "key-1", wait: "accepted" };
    deepStrictEqual(await transport.forward("n2", proposal, signal), {
      ok: true,
      value: { echo: new TextDecoder().decode(PROPOSAL.command) },
    });
    deepStrictEqual(peer.rec.forwards, [{ from: "n1", proposal }]);

    const refusal: ForwardedAnswer = {
      ok: false,
      code: "not_leader",
      message: "Cannot write: this node is no longer the leader",
      details: { leader: { id: "n3", url: "http://127.0.0.1:1" } },
    };
    peer.rec.answer = () => Promise.resolve(refusal);
    deepStrictEqual(await transport.forward("n2", PROPOSAL, signal), refusal);

    peer.rec.answer = () => Promise.resolve({ ok: true, value: undefined });
    deepStrictEqual(await transport.forward("n2", PROPOSAL, signal), {
      ok: true,
      value: undefined,
    });
    strictEqual(transport.stats().forwards, 3);
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("httpTransport.forward() returns the error of a non-2xx answer", async () => {
  const peer = servePeer();
  const transport = transportTo({ n2: peer.url });
  try {
    peer.rec.answer = () => Promise.reject(new Error("a bug on the leader"));
    const answer = await transport.forward("n2", PROPOSAL, new AbortController().signal);
    // A 500 leaves the outcome unknown.
    deepStrictEqual(answer, {
      ok: false,
      code: "timeout",
      message: "The leader n2 refused the forwarded write (500): Internal error",
    });
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("httpTransport.forward() to a dead port throws unavailable", async () => {
  const transport = transportTo({ n2: `http://127.0.0.1:${deadPort()}` });
  try {
    await rejects(transport.forward("n2", PROPOSAL, new AbortController().signal), (e: unknown) => {
      ok(e instanceof WaterCraftError);
      strictEqual(e.code, "unavailable");
      return true;
    });
    await rejects(
      transport.forward("n9", PROPOSAL, new AbortController().signal),
      /address is unknown/,
    );
  } finally {
    await transport.close();
  }
});

Deno.test("httpTransport.forward() throws timeout when the leader may have the write but does not answer", async () => {
  const peer = servePeer();
  const hold = gate();
  peer.rec.answer = async () => {
    await hold.wait();
    return { ok: true, value: "late" };
  };
  const transport = transportTo({ n2: peer.url }, { timeoutMs: 50 });
  try {
    await rejects(
      transport.forward("n2", { ...PROPOSAL, timeoutMs: 50 }, new AbortController().signal),
      (e: unknown) => {
        ok(e instanceof WaterCraftError);
        strictEqual(e.code, "timeout");
        return true;
      },
    );
    strictEqual(peer.rec.forwards.length, 1);

    // The caller's signal ends the wait too.
    const controller = new AbortController();
    const pending = transport.forward("n2", PROPOSAL, controller.signal);
    await waitFor(() => peer.rec.forwards.length === 2, "the second forward");
    controller.abort();
    await rejects(pending, (e: unknown) => e instanceof WaterCraftError && e.code === "timeout");
  } finally {
    hold.open();
    await transport.close();
    await peer.server.shutdown();
  }
});

// ------------------------------------------------------------------ HTTPS and the ca option

/** A peer like {@linkcode servePeer}, over HTTPS with `cert`. */
function serveTlsPeer(cert: TestCert, options: Partial<PeerRoutesOptions> = {}) {
  const rec = recorder();
  const app = new Hono();
  app.onError((e, c) => errorResponse(c, e));
  app.route("/", peerRoutes(rec.handler, { secret: null, ...options }));
  const server = Deno.serve({
    port: 0,
    hostname: "127.0.0.1",
    cert: readFileSync(cert.cert, "utf8"),
    key: readFileSync(cert.key, "utf8"),
    onListen() {},
  }, app.fetch);
  return { rec, server, url: `https://127.0.0.1:${server.addr.port}` };
}

Deno.test("httpTransport({ ca }) sends messages and forwards writes to an HTTPS peer of that CA", async () => {
  const pki = createTestPki("transport-ca");
  const peer = serveTlsPeer(pki.cert);
  const failures: PeerFailure[] = [];
  const transport = transportTo({ n2: peer.url }, {
    ca: pki.ca.pem,
    onPeerError: (failure) => failures.push(failure),
  });
  try {
    transport.send([heartbeat("n2", 1), heartbeat("n2", 2)]);
    await waitFor(() => transport.stats().messagesSent === 2, "the messages");
    deepStrictEqual(commits(peer.rec.messages), [1, 2]);
    deepStrictEqual(await transport.forward("n2", PROPOSAL, new AbortController().signal), {
      ok: true,
      value: { echo: new TextDecoder().decode(PROPOSAL.command) },
    });
    strictEqual(transport.stats().peers.n2!.lastError, null);
    deepStrictEqual(failures, []);
  } finally {
    await transport.close();
    await peer.server.shutdown();
    pki.remove();
  }
});

Deno.test("httpTransport refuses an HTTPS peer of an untrusted CA and reports why, once per streak", async (t) => {
  const pki = createTestPki("transport-untrusted");
  const peer = serveTlsPeer(pki.cert);
  try {
    for (
      const [name, options] of [
        ["without ca", {}],
        ["with another CA", { ca: pki.otherCa.pem }],
      ] as const
    ) {
      await t.step(name, async () => {
        const failures: PeerFailure[] = [];
        const transport = transportTo({ n2: peer.url }, {
          ...options,
          backoffMinMs: 1,
          backoffMaxMs: 2,
          onPeerError: (failure) => failures.push(failure),
        });
        try {
          for (let i = 1; i <= 3; i++) {
            transport.send([heartbeat("n2", i)]);
            await waitFor(() => transport.stats().failures >= i, `failure ${i}`);
          }
          strictEqual(peer.rec.messages.length, 0);
          strictEqual(failures.length, 1, "one report for the streak, not one per retry");
          const [failure] = failures;
          strictEqual(failure!.id, "n2");
          strictEqual(failure!.url, peer.url);
          strictEqual(failure!.certificate, true);
          match(failure!.message, /invalid peer certificate: UnknownIssuer/);
          strictEqual(transport.stats().peers.n2!.lastError, failure!.message);
          // Nothing reached the leader: a forwarded write is safe to retry elsewhere.
          await rejects(
            transport.forward("n2", PROPOSAL, new AbortController().signal),
            (e: unknown) => {
              ok(e instanceof WaterCraftError);
              strictEqual(e.code, "unavailable");
              match(e.message, /UnknownIssuer/);
              return true;
            },
          );
          strictEqual(peer.rec.forwards.length, 0);
        } finally {
          await transport.close();
        }
      });
    }
  } finally {
    await peer.server.shutdown();
    pki.remove();
  }
});

Deno.test("httpTransport reports a peer's 401 with the peer's reason", async () => {
  const peer = servePeer({ secret: "s3cret" });
  const failures: PeerFailure[] = [];
  const transport = transportTo({ n2: peer.url }, {
    secret: "guess",
    onPeerError: (failure) => failures.push(failure),
  });
  try {
    transport.send([heartbeat("n2", 1)]);
    await waitFor(() => failures.length === 1, "the report");
    strictEqual(failures[0]!.certificate, false);
    match(failures[0]!.message, /^answered 401 unauthorized: \S/);
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("httpTransport reports a failing peer again only after a success in between", async () => {
  const healthy = servePeer();
  const dead = `http://127.0.0.1:${deadPort()}`;
  const failures: PeerFailure[] = [];
  const transport = transportTo({ n2: dead }, {
    backoffMinMs: 1,
    backoffMaxMs: 2,
    onPeerError: (failure) => failures.push(failure),
  });
  try {
    transport.send([heartbeat("n2", 1)]);
    await waitFor(() => failures.length === 1, "the first report");
    match(failures[0]!.message, /Connection refused|ECONNREFUSED|tcp connect error/i);
    transport.send([heartbeat("n2", 2)]);
    await waitFor(() => transport.stats().failures >= 2, "the second failure");
    strictEqual(failures.length, 1, "one streak, one report");

    transport.setPeers(new Map([["n2", healthy.url]]));
    transport.send([heartbeat("n2", 3)]);
    await waitFor(() => transport.stats().messagesSent === 1, "a success");
    strictEqual(transport.stats().peers.n2!.lastError, null);

    transport.setPeers(new Map([["n2", dead]]));
    transport.send([heartbeat("n2", 4)]);
    await waitFor(() => failures.length === 2, "the report of the new streak");
  } finally {
    await transport.close();
    await healthy.server.shutdown();
  }
});

Deno.test("httpTransport refuses a ca that is not PEM, and a ca together with a fetch", () => {
  throws(() => httpTransport({ ca: "not a certificate" }), TypeError);
  throws(() => httpTransport({ ca: [] }), TypeError);
  throws(
    () => httpTransport({ ca: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----", fetch }),
    /either a fetch or a ca/,
  );
});
