/**
 * The clock-free peer proof, rule by rule: the replay window, the
 * verifier's challenges and sessions (with an injected clock, and with
 * `Date.now` stubbed to show it is never read), the seals of a stream's
 * frames, and the whole of it over real HTTP on loopback: signed streams
 * and requests, a peer that restarts behind the same server, tampered
 * streams, tampered forwarded answers, and a sender that borrows another
 * sender's session. Nothing sleeps: conditions are polled a bounded number
 * of times.
 *
 * @module
 */

import { deepStrictEqual, match, notStrictEqual, ok, strictEqual } from "node:assert/strict";
import { concatBytes } from "@noble/hashes/utils.js";
import { Hono } from "hono";
import { WaterCraftError } from "../../../src/errors.ts";
import { errorResponse } from "../../../src/http/errors.ts";
import type { HeartbeatMessage, Message } from "../../../src/core/messages.ts";
import {
  requestSignature,
  type SignedRequest,
  streamKey,
} from "../../../src/transport/http/auth.ts";
import { PeerCredentials } from "../../../src/transport/http/credentials.ts";
import { encodeForwardedAnswer, encodeMessages } from "../../../src/transport/http/frames.ts";
import { STREAM_PATH } from "../../../src/transport/http/peer_stream.ts";
import { peerRoutes } from "../../../src/transport/http/routes.ts";
import {
  FORWARD_PATH,
  type HttpTransport,
  httpTransport,
  type HttpTransportOptions,
  MESSAGES_PATH,
  type PeerFailure,
} from "../../../src/transport/http/sender.ts";
import { FrameOpener, FrameSealer } from "../../../src/transport/http/stream_seal.ts";
import {
  PeerVerifier,
  PENDING_MAX,
  PENDING_TTL_MS,
  REPLAY_WINDOW,
  ReplayWindow,
  SESSIONS_MAX,
  SESSIONS_PER_SENDER,
  type VerifyInput,
  type VerifyResult,
} from "../../../src/transport/http/verifier.ts";
import type {
  ForwardedAnswer,
  ForwardedProposal,
  PeerHandler,
} from "../../../src/transport/transport.ts";

const SECRET = "proof-test-secret";
const WRONG_SECRET = "not-the-secret";

// ------------------------------------------------------------------ helpers

/** Resolves after `ms` on the timer queue: one step of a bounded poll. */
function tick(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `done` every 5 ms until it holds, failing after `limitMs`. */
async function until(done: () => boolean, what: string, limitMs = 3000): Promise<void> {
  const rounds = Math.ceil(limitMs / 5);
  for (let round = 0; round < rounds; round++) {
    if (done()) return;
    await tick(5);
  }
  if (!done()) throw new Error(`Gave up waiting for ${what} after ${limitMs} ms`);
}

function heartbeat(commit: number, from = "n1", to = "n2"): HeartbeatMessage {
  return { type: "heartbeat", from, to, term: 1, commit, context: null, seen: {} };
}

function commitsOf(messages: readonly Message[]): number[] {
  return messages.map((m) => (m as HeartbeatMessage).commit);
}

/** A copy of `bytes` with the byte at `at` flipped. */
function flipped(bytes: Uint8Array, at: number): Uint8Array {
  const copy = bytes.slice();
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

// ---- verifier inputs

const RPC_BODY = new Uint8Array([7, 7, 7]);

function unsignedInput(from: string): VerifyInput {
  return {
    method: "POST",
    path: MESSAGES_PATH,
    headers: new Headers({ "X-Raft-From": from }),
    body: RPC_BODY,
  };
}

function signedInput(
  from: string,
  challenge: string,
  seq: number,
  secret = SECRET,
): VerifyInput {
  const signature = requestSignature(secret, {
    method: "POST",
    path: MESSAGES_PATH,
    from,
    challenge,
    seq,
    body: RPC_BODY,
  });
  return {
    method: "POST",
    path: MESSAGES_PATH,
    headers: new Headers({
      "X-Raft-From": from,
      "X-Raft-Challenge": challenge,
      "X-Raft-Seq": String(seq),
      "X-Raft-Signature": signature,
    }),
    body: RPC_BODY,
  };
}

/** Asserts a refusal and returns it. */
function refused(result: VerifyResult, what: string): Extract<VerifyResult, { ok: false }> {
  ok(!result.ok, `${what} was accepted`);
  return result;
}

/** Asserts a refusal that hands out a fresh challenge, and returns that challenge. */
function refusedWithChallenge(result: VerifyResult, what: string, reason: RegExp): string {
  const refusal = refused(result, what);
  match(refusal.reason, reason);
  ok(refusal.challenge !== null, `${what}: refused without a challenge`);
  match(refusal.challenge, /^[0-9a-f]{32}$/);
  return refusal.challenge;
}

/** A sender's session at a verifier: the challenge and the last number used. */
interface Session {
  readonly from: string;
  readonly challenge: string;
  seq: number;
}

/** Opens a session as an honest sender does: unsigned first, then signed under the challenge. */
function openSession(verifier: PeerVerifier, from: string): Session {
  const challenge = refusedWithChallenge(
    verifier.verify(unsignedInput(from)),
    `the unsigned request of ${from}`,
    /no X-Raft-Challenge yet/,
  );
  const first = verifier.verify(signedInput(from, challenge, 1));
  ok(first.ok, `the first signed request of ${from}: ${JSON.stringify(first)}`);
  return { from, challenge, seq: 1 };
}

/** The session's next request, signed with the secret. */
function nextRequest(verifier: PeerVerifier, session: Session): VerifyResult {
  session.seq++;
  return verifier.verify(signedInput(session.from, session.challenge, session.seq));
}

// ---- replay window

/** Offers `seq` to the window as the verifier does: checked, recorded when accepted. */
function offer(window: ReplayWindow, seq: number): string | null {
  const problem = window.check(seq);
  if (problem === null) window.record(seq);
  return problem;
}

function acceptedOnce(window: ReplayWindow, seq: number): void {
  strictEqual(offer(window, seq), null, `${seq} refused the first time`);
  match(offer(window, seq) ?? "accepted", /already used \(a replay\)/, `${seq} accepted twice`);
}

function tooOld(window: ReplayWindow, seq: number): void {
  match(offer(window, seq) ?? "accepted", /too far behind/, `${seq} not refused as too old`);
}

// ---- peers over HTTP

/** A node behind the peer routes: what reached it, and whether it still runs. */
interface Inbox {
  readonly messages: Message[];
  readonly senders: Set<string>;
  readonly forwards: ForwardedProposal[];
  /** False once "stopped": the stream route then ends the sender's stream (503). */
  running: boolean;
  readonly handler: PeerHandler;
}

function inbox(): Inbox {
  const box: Inbox = {
    messages: [],
    senders: new Set(),
    forwards: [],
    running: true,
    handler: {
      receive(from, messages) {
        if (!box.running) return false;
        box.senders.add(from);
        box.messages.push(...messages);
        return true;
      },
      forwarded(_from, proposal) {
        box.forwards.push(proposal);
        const echo = "command" in proposal
          ? new TextDecoder().decode(proposal.command)
          : proposal.kind;
        return Promise.resolve<ForwardedAnswer>({ ok: true, value: { echo } });
      },
    },
  };
  return box;
}

/** A node's app: the peer routes with the secret, errors in the API.md shape. */
function peerApp(box: Inbox, secret: string = SECRET): Hono {
  const app = new Hono();
  app.onError((e, c) => errorResponse(c, e));
  app.route("/", peerRoutes(box.handler, { secret }));
  return app;
}

/**
 * A loopback server whose app can be replaced, as an embedder replaces a
 * restarted node behind the same server. Counts the requests per path.
 */
function servePeer(app: Hono) {
  let current = app;
  const paths: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      paths.push(new URL(request.url).pathname);
      return current.fetch(request);
    },
  );
  return {
    server,
    paths,
    url: `http://127.0.0.1:${server.addr.port}`,
    replace(next: Hono): void {
      current = next;
    },
  };
}

/** A transport of node n1 that knows peer n2 at `url`, signing with `secret`. */
async function senderTo(
  url: string,
  options: HttpTransportOptions = {},
  secret: string = SECRET,
): Promise<HttpTransport> {
  const transport = httpTransport(options);
  await transport.start("n1", inbox().handler, { secret });
  transport.setPeers(new Map([["n2", url]]));
  return transport;
}

/** Sends a heartbeat every 10 ms until `done` holds (bounded), numbering them from `from`. */
async function pump(
  transport: HttpTransport,
  done: () => boolean,
  what: string,
  from: number,
  limitMs = 3000,
): Promise<number> {
  let commit = from;
  for (let round = 0; round < limitMs / 10 && !done(); round++) {
    transport.send([heartbeat(commit++)]);
    await tick(10);
  }
  if (!done()) {
    const { requests, failures, peers } = transport.stats();
    const state = JSON.stringify({ requests, failures, lastError: peers.n2?.lastError });
    throw new Error(`Gave up waiting for ${what} after ${limitMs} ms; the sender: ${state}`);
  }
  return commit;
}

/** Asks the peer for a challenge as n1 does at first (an unsigned request), and learns it. */
async function learnChallenge(url: string, credentials: PeerCredentials): Promise<void> {
  const res = await fetch(url + MESSAGES_PATH, {
    method: "POST",
    headers: { "X-Raft-From": "n1", "content-type": "application/octet-stream" },
    body: new Uint8Array(0),
  });
  await res.body?.cancel();
  strictEqual(res.status, 401);
  ok(credentials.learn(url, res), "no challenge in the 401");
}

/** Posts `body` with `headers` and returns the status and the error body, if any. */
async function post(
  url: string,
  headers: Record<string, string>,
  body: Uint8Array,
): Promise<{ status: number; message: string; challenge: string | null }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { ...headers, "content-type": "application/octet-stream" },
    body: body as Uint8Array<ArrayBuffer>,
  });
  const text = await res.text();
  const message = text === "" ? "" : String(JSON.parse(text).error?.message ?? "");
  return { status: res.status, message, challenge: res.headers.get("X-Raft-Challenge") };
}

const COMMAND = new TextEncoder().encode('{"op":"put","key":"k","value":1}');

const PROPOSAL: ForwardedProposal = { command: COMMAND, wait: "committed", timeoutMs: 1000 };

const ECHO = { echo: new TextDecoder().decode(COMMAND) };

// ------------------------------------------------------------------ 1. replay window

Deno.test("ReplayWindow accepts numbers in and out of order once each, refuses replays", () => {
  const window = new ReplayWindow(64);
  for (const seq of [1, 2, 3]) strictEqual(offer(window, seq), null);
  // Concurrent requests arrive out of order, within the window.
  for (const seq of [10, 5, 7, 6, 4]) strictEqual(offer(window, seq), null);
  for (const seq of [1, 2, 3, 4, 5, 6, 7, 10]) {
    match(offer(window, seq) ?? "accepted", /already used \(a replay\)/, `${seq} replayed`);
  }
  // Never seen, below the highest: still good, once.
  acceptedOnce(window, 9);
  acceptedOnce(window, 8);
});

Deno.test("ReplayWindow refuses a number a whole window or more behind the highest as too old", () => {
  const window = new ReplayWindow(64);
  for (let seq = 1; seq <= 10; seq++) offer(window, seq);
  strictEqual(offer(window, 100), null);
  // 35's bit was cleared by the move to 100: only the age rule refuses it.
  tooOld(window, 35);
  tooOld(window, 36); // exactly 64 behind
  acceptedOnce(window, 37); // 63 behind: the oldest the window can tell
  tooOld(window, 1);
});

Deno.test("ReplayWindow, after a jump past the window, accepts each number of the new window once", () => {
  const window = new ReplayWindow(64);
  for (let seq = 1; seq <= 10; seq++) offer(window, seq);
  offer(window, 37);
  offer(window, 100);
  strictEqual(offer(window, 1000), null);
  // 937..999 share their slots with numbers seen before the jump (1..10, 37, 100).
  for (let seq = 937; seq < 1000; seq++) acceptedOnce(window, seq);
  match(offer(window, 1000) ?? "accepted", /already used/);
  tooOld(window, 936);
  tooOld(window, 100);
  tooOld(window, 10);
});

Deno.test("ReplayWindow clears the bits of numbers it skips over: each is accepted when it comes", () => {
  const window = new ReplayWindow(64);
  for (let seq = 1; seq <= 64; seq++) strictEqual(offer(window, seq), null);
  strictEqual(offer(window, 70), null); // skips 65..69, whose slots 1..5 held
  for (let seq = 65; seq < 70; seq++) acceptedOnce(window, seq);
  tooOld(window, 6);
  match(offer(window, 7) ?? "accepted", /already used/);
  // And a small step forward clears the one slot it skips.
  for (let seq = 71; seq <= 200; seq += 2) strictEqual(offer(window, seq), null);
  for (let seq = 138; seq <= 200; seq += 2) acceptedOnce(window, seq);
});

Deno.test("PeerVerifier's window is REPLAY_WINDOW numbers wide", () => {
  const verifier = new PeerVerifier({ secret: SECRET, now: () => 0 });
  const session = openSession(verifier, "n1");
  ok(verifier.verify(signedInput("n1", session.challenge, REPLAY_WINDOW + 1)).ok);
  match(refused(verifier.verify(signedInput("n1", session.challenge, 1)), "1").reason, /too far/);
  ok(verifier.verify(signedInput("n1", session.challenge, 2)).ok, "2 is within the window");
  match(refused(verifier.verify(signedInput("n1", session.challenge, 2)), "2").reason, /replay/);
});

// ------------------------------------------------------------------ 2. verifier

Deno.test("PeerVerifier: a challenge expires PENDING_TTL_MS after it was handed out, on its own clock", () => {
  let clock = 5_000;
  const verifier = new PeerVerifier({ secret: SECRET, now: () => clock });
  const late = verifier.challenge();
  const onTime = verifier.challenge();
  clock += PENDING_TTL_MS;
  ok(verifier.verify(signedInput("n1", onTime, 1)).ok, "refused at exactly PENDING_TTL_MS");
  clock += 1;
  const fresh = refusedWithChallenge(
    verifier.verify(signedInput("n2", late, 1)),
    "a request under an expired challenge",
    /unknown or expired X-Raft-Challenge/,
  );
  notStrictEqual(fresh, late);
  ok(verifier.verify(signedInput("n2", fresh, 1)).ok, "the fresh challenge does not work");
  // A session, once open, has no deadline.
  clock += 100 * PENDING_TTL_MS;
  ok(verifier.verify(signedInput("n1", onTime, 2)).ok, "an open session expired");
});

Deno.test("PeerVerifier keeps at most PENDING_MAX challenges, forgetting the oldest", () => {
  const verifier = new PeerVerifier({ secret: SECRET, now: () => 0 });
  const oldest = verifier.challenge();
  const second = verifier.challenge();
  for (let i = 2; i < PENDING_MAX; i++) verifier.challenge();
  strictEqual(verifier.pending, PENDING_MAX);
  verifier.challenge();
  strictEqual(verifier.pending, PENDING_MAX);
  ok(verifier.verify(signedInput("n1", second, 1)).ok, "the second oldest was forgotten");
  strictEqual(verifier.pending, PENDING_MAX - 1, "a used challenge stayed pending");
  refusedWithChallenge(
    verifier.verify(signedInput("n1", oldest, 1)),
    "the oldest challenge",
    /unknown or expired/,
  );
  strictEqual(verifier.pending, PENDING_MAX);
});

Deno.test("PeerVerifier keeps SESSIONS_PER_SENDER sessions per sender: its oldest is forgotten, and re-challenged", () => {
  const verifier = new PeerVerifier({ secret: SECRET, now: () => 0 });
  const other = openSession(verifier, "n2");
  const own: Session[] = [];
  for (let i = 0; i <= SESSIONS_PER_SENDER; i++) own.push(openSession(verifier, "n1"));
  strictEqual(verifier.sessions, SESSIONS_PER_SENDER + 1, "n1's sessions plus n2's");
  refusedWithChallenge(
    nextRequest(verifier, own[0]!),
    "the next request of n1's oldest session",
    /unknown or expired/,
  );
  for (let i = 1; i < own.length; i++) {
    const result = nextRequest(verifier, own[i]!);
    ok(result.ok, `n1's session ${i} was forgotten: ${JSON.stringify(result)}`);
  }
  ok(nextRequest(verifier, other).ok, "another sender's session was forgotten");
});

Deno.test("PeerVerifier keeps SESSIONS_MAX sessions in all, forgetting the least recently used", () => {
  const verifier = new PeerVerifier({ secret: SECRET, now: () => 0 });
  const sessions: Session[] = [];
  for (let i = 0; i < SESSIONS_MAX; i++) sessions.push(openSession(verifier, `s${i}`));
  strictEqual(verifier.sessions, SESSIONS_MAX);
  ok(nextRequest(verifier, sessions[0]!).ok); // s0 used again: s1 is now the least recent
  const late = openSession(verifier, "late");
  strictEqual(verifier.sessions, SESSIONS_MAX);
  refusedWithChallenge(
    nextRequest(verifier, sessions[1]!),
    "the least recently used session",
    /unknown or expired/,
  );
  ok(nextRequest(verifier, sessions[0]!).ok, "a recently used session was forgotten");
  ok(nextRequest(verifier, sessions[2]!).ok);
  ok(nextRequest(verifier, late).ok);
});

Deno.test("PeerVerifier refuses a session's challenge used by another sender, with a challenge of its own", () => {
  const verifier = new PeerVerifier({ secret: SECRET, now: () => 0 });
  const session = openSession(verifier, "n1");
  // Signed with the secret, for n3, under n1's session.
  const fresh = refusedWithChallenge(
    verifier.verify(signedInput("n3", session.challenge, 50)),
    "n3 under n1's session",
    /belongs to another sender/,
  );
  notStrictEqual(fresh, session.challenge);
  ok(nextRequest(verifier, session).ok, "n1's session suffered from n3's attempt");
  ok(verifier.verify(signedInput("n3", fresh, 1)).ok, "n3 cannot open its own session");
});

Deno.test("PeerVerifier refuses a wrong secret without a challenge, and records nothing of it", () => {
  const verifier = new PeerVerifier({ secret: SECRET, now: () => 0 });
  const challenge = refusedWithChallenge(
    verifier.verify(unsignedInput("n1")),
    "an unsigned request",
    /no X-Raft-Challenge/,
  );
  for (const [seq, what] of [[1, "under a pending challenge"], [2, "in a session"]] as const) {
    const pendingBefore = verifier.pending;
    const wrong = refused(
      verifier.verify(signedInput("n1", challenge, seq, WRONG_SECRET)),
      `a wrong secret ${what}`,
    );
    match(wrong.reason, /cluster secret differs/);
    strictEqual(wrong.challenge, null, `a wrong secret ${what} was handed a challenge`);
    strictEqual(verifier.pending, pendingBefore, "a challenge was handed out anyway");
    // The refused number was not used up.
    ok(verifier.verify(signedInput("n1", challenge, seq)).ok, `seq ${seq} ${what}`);
  }
  strictEqual(verifier.sessions, 1);
});

Deno.test("PeerVerifier never reads Date.now: it verifies with the wall clock hours off, or unreadable", () => {
  const realNow = Date.now;
  const verifier = new PeerVerifier({ secret: SECRET }); // its default clock
  try {
    const first = refusedWithChallenge(
      verifier.verify(unsignedInput("n1")),
      "an unsigned request",
      /no X-Raft-Challenge/,
    );
    const session: Session = { from: "n1", challenge: first, seq: 0 };
    const clocks: [string, () => number][] = [
      ["five hours ahead", () => realNow() + 5 * 3_600_000],
      ["unreadable", () => {
        throw new Error("the verifier read Date.now");
      }],
      ["five hours behind", () => realNow() - 5 * 3_600_000],
      ["a day ahead", () => realNow() + 86_400_000],
    ];
    for (const [what, clock] of clocks) {
      Date.now = clock;
      const result = nextRequest(verifier, session);
      ok(result.ok, `with the wall clock ${what}: ${JSON.stringify(result)}`);
      match(
        refused(
          verifier.verify(signedInput("n1", first, session.seq)),
          `a replay with the wall clock ${what}`,
        ).reason,
        /replay/,
      );
      const other = openSession(verifier, `other-${session.seq}`);
      ok(nextRequest(verifier, other).ok);
    }
  } finally {
    Date.now = realNow;
  }
});

// ------------------------------------------------------------------ 3. stream seals

Deno.test("FrameOpener refuses a frame altered, reordered, replayed, or sealed for another stream", async (t) => {
  const opening = (seq: number): SignedRequest => ({
    method: "POST",
    path: STREAM_PATH,
    from: "n1",
    challenge: "ab".repeat(16),
    seq,
    body: new Uint8Array(0),
  });
  const key = streamKey(SECRET, opening(1));
  const frames = [1, 2, 3].map((commit) => encodeMessages([heartbeat(commit)]));
  const sealer = new FrameSealer(key);
  const seals = frames.map((frame) => sealer.seal(frame));

  await t.step("in order, with their seals: accepted", () => {
    const opener = new FrameOpener(key);
    for (let i = 0; i < frames.length; i++) strictEqual(opener.open(frames[i]!, seals[i]!), null);
  });

  await t.step("a byte of the frame changed", () => {
    for (const at of [0, 5, frames[0]!.length - 1]) {
      const result = new FrameOpener(key).open(flipped(frames[0]!, at), seals[0]!);
      match(result ?? "accepted", /frame 0 has a wrong seal/, `byte ${at}`);
    }
  });

  await t.step("a byte of the tag changed", () => {
    for (const at of [6, 13, seals[0]!.length - 1]) {
      const result = new FrameOpener(key).open(frames[0]!, flipped(seals[0]!, at));
      match(result ?? "accepted", /wrong seal/, `byte ${at}`);
    }
  });

  await t.step("two frames swapped, with their seals", () => {
    const opener = new FrameOpener(key);
    match(opener.open(frames[1]!, seals[1]!) ?? "accepted", /frame 0 has a wrong seal/);
    match(opener.open(frames[0]!, seals[0]!) ?? "accepted", /frame 1 has a wrong seal/);
  });

  await t.step("a frame and its seal replayed", () => {
    const opener = new FrameOpener(key);
    strictEqual(opener.open(frames[0]!, seals[0]!), null);
    match(opener.open(frames[0]!, seals[0]!) ?? "accepted", /frame 1 has a wrong seal/);
  });

  await t.step("sealed with another stream's key", () => {
    for (const other of [streamKey(SECRET, opening(2)), streamKey(WRONG_SECRET, opening(1))]) {
      const foreign = new FrameSealer(other).seal(frames[0]!);
      match(new FrameOpener(key).open(frames[0]!, foreign) ?? "accepted", /wrong seal/);
    }
  });

  await t.step("a frame that is not a seal where the seal is due", () => {
    match(
      new FrameOpener(key).open(frames[0]!, frames[1]!) ?? "accepted",
      /not followed by its seal/,
    );
    // A seal frame whose kind byte says "messages" is not a seal.
    const relabelled = seals[0]!.slice();
    relabelled[5] = 1;
    match(new FrameOpener(key).open(frames[0]!, relabelled) ?? "accepted", /not followed/);
    // Nor one cut short.
    const cut = seals[0]!.subarray(0, seals[0]!.length - 1);
    match(new FrameOpener(key).open(frames[0]!, cut) ?? "accepted", /not followed/);
  });
});

// ------------------------------------------------------------------ 4. over HTTP

Deno.test("over HTTP, a transport streaming with the secret delivers heartbeats, and forwards round-trip", async () => {
  const box = inbox();
  const peer = servePeer(peerApp(box));
  const transport = await senderTo(peer.url);
  try {
    // First contact learns the peer's challenge with an empty message
    // request; the one stream then opens signed, and carries everything.
    let commit = await pump(transport, () => box.messages.length > 0, "a first heartbeat", 1);
    const before = box.messages.length;
    const batch = Array.from({ length: 20 }, () => heartbeat(commit++));
    transport.send(batch);
    await until(() => box.messages.length === before + 20, "the batch of 20");
    deepStrictEqual(commitsOf(box.messages.slice(before)), commitsOf(batch));
    deepStrictEqual([...box.senders], ["n1"]);
    const stats = transport.stats();
    strictEqual(stats.failures, 0);
    strictEqual(stats.requests, 2, "the challenge's request, then the stream");
    strictEqual(stats.peers.n2!.lastError, null);
    ok(stats.peers.n2!.inFlight, "the stream stays open");
    strictEqual(peer.paths.filter((p) => p === STREAM_PATH).length, 1);

    const signal = new AbortController().signal;
    deepStrictEqual(await transport.forward("n2", PROPOSAL, signal), { ok: true, value: ECHO });
    deepStrictEqual(await transport.forward("n2", PROPOSAL, signal), { ok: true, value: ECHO });
    strictEqual(box.forwards.length, 2);
    strictEqual(transport.stats().failures, 0);
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("over HTTP, a transport with streams: false and the secret delivers heartbeats, and forwards round-trip", async () => {
  const box = inbox();
  const peer = servePeer(peerApp(box));
  const transport = await senderTo(peer.url, { streams: false });
  try {
    // The unsigned first request is refused with a challenge and sent again, signed.
    const batch = Array.from({ length: 20 }, (_, i) => heartbeat(i + 1));
    transport.send(batch);
    await until(() => box.messages.length === 20, "the batch of 20");
    deepStrictEqual(commitsOf(box.messages), commitsOf(batch));
    transport.send([heartbeat(21)]);
    await until(() => box.messages.length === 21, "one more");
    const stats = transport.stats();
    strictEqual(stats.failures, 0);
    strictEqual(stats.messagesSent, 21);
    strictEqual(stats.requests, 3, "the unsigned request, its signed resend, the next one");
    strictEqual(peer.paths.filter((p) => p === STREAM_PATH).length, 0);
    deepStrictEqual(
      await transport.forward("n2", PROPOSAL, new AbortController().signal),
      { ok: true, value: ECHO },
    );
    strictEqual(box.forwards.length, 1);
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("over HTTP, a sender with a wrong secret is refused without a challenge: no request is sent twice", async () => {
  const box = inbox();
  const peer = servePeer(peerApp(box));
  const failures: PeerFailure[] = [];
  const transport = await senderTo(
    peer.url,
    { streams: false, backoffMinMs: 5, onPeerError: (f) => failures.push(f) },
    WRONG_SECRET,
  );
  try {
    transport.send([heartbeat(1)]);
    await until(() => transport.stats().failures === 1, "the first failure");
    strictEqual(transport.stats().requests, 2, "the unsigned request, and the wrongly signed one");
    transport.send([heartbeat(2)]);
    await until(() => transport.stats().failures === 2, "the second failure");
    strictEqual(transport.stats().requests, 3, "a wrongly signed request was sent twice");
    strictEqual(peer.paths.length, 3);
    strictEqual(failures.length, 1, "one streak, one report");
    match(failures[0]!.message, /^answered 401 unauthorized: .*cluster secret differs/);
    strictEqual(box.messages.length, 0);
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("over HTTP with streams: false, a peer replaced by a fresh one keeps receiving, with no failure", async () => {
  const first = inbox();
  const peer = servePeer(peerApp(first));
  const failures: PeerFailure[] = [];
  const transport = await senderTo(peer.url, {
    streams: false,
    onPeerError: (f) => failures.push(f),
  });
  try {
    const commit = await pump(transport, () => first.messages.length > 0, "the first peer", 1);
    // The peer restarts: a new verifier, which knows none of the old challenges.
    const second = inbox();
    peer.replace(peerApp(second));
    first.running = false;
    await pump(transport, () => second.messages.length > 0, "the replaced peer", commit);
    const stats = transport.stats();
    strictEqual(stats.failures, 0, "the relearned challenge counted as a failure");
    strictEqual(failures.length, 0);
    strictEqual(stats.peers.n2!.lastError, null);
    deepStrictEqual([...second.senders], ["n1"]);
    deepStrictEqual(
      await transport.forward("n2", PROPOSAL, new AbortController().signal),
      { ok: true, value: ECHO },
    );
    strictEqual(second.forwards.length, 1);
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("over HTTP with streams, the first message to a peer that restarted after its stream ended is not lost to the old challenge", async () => {
  const first = inbox();
  const peer = servePeer(peerApp(first));
  const transport = await senderTo(peer.url, { backoffMinMs: 5 });
  try {
    transport.send([heartbeat(1)]);
    await until(() => first.messages.length === 1, "the first message", 3000);
    // The peer goes down: its stream ends on the next frame.
    first.running = false;
    transport.send([heartbeat(2)]);
    await until(() => transport.stats().failures >= 1, "the stream to end", 3000);
    // It comes back with none of its old challenges, and is sent one
    // message, as a vote answer is sent once: it must not be written into a
    // stream signed under the challenge the old process handed out.
    const second = inbox();
    peer.replace(peerApp(second));
    transport.send([heartbeat(3)]);
    await until(() => second.messages.length === 1, "the message to the restarted peer", 3000);
    deepStrictEqual(commitsOf(second.messages), [3]);
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("over HTTP with streams, the first message to a peer is not lost to the unsigned first contact", async () => {
  const box = inbox();
  const peer = servePeer(peerApp(box));
  const transport = await senderTo(peer.url);
  try {
    // Sent once, as a vote request is: no later send carries it again.
    transport.send([heartbeat(7)]);
    await until(() => box.messages.length === 1, "the only message", 3000);
    deepStrictEqual(commitsOf(box.messages), [7]);
    strictEqual(transport.stats().failures, 0);
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("over HTTP, a forward to a leader that forgot its challenge (it restarted) is resent once, after a signed refusal", async () => {
  const first = inbox();
  const peer = servePeer(peerApp(first));
  const transport = await senderTo(peer.url, { streams: false });
  try {
    const signal = new AbortController().signal;
    deepStrictEqual(await transport.forward("n2", PROPOSAL, signal), { ok: true, value: ECHO });
    const second = inbox();
    peer.replace(peerApp(second));
    const before = peer.paths.length;
    // Signed under the forgotten challenge: refused with a signed 401, so
    // the sender knows nothing ran, learns the new challenge and resends.
    deepStrictEqual(await transport.forward("n2", PROPOSAL, signal), { ok: true, value: ECHO });
    strictEqual(peer.paths.length - before, 2, "one refusal, one resend");
    strictEqual(second.forwards.length, 1, "the write ran once");
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("over HTTP with streams, a peer replaced after the stream settled keeps receiving, one failure at most", async () => {
  const first = inbox();
  const peer = servePeer(peerApp(first));
  const failures: PeerFailure[] = [];
  // The first stream is refused once (503): the failure's lastError is
  // cleared only when a stream has stayed open a while, which tells this
  // test, without a clock, when the stream has settled.
  let refuse = 1;
  const refusingOnce: typeof fetch = (input, init) => {
    if (String(input).endsWith(STREAM_PATH) && refuse-- > 0) {
      return Promise.resolve(new Response("starting", { status: 503 }));
    }
    return fetch(input, init);
  };
  const transport = await senderTo(peer.url, {
    fetch: refusingOnce,
    backoffMinMs: 5,
    onPeerError: (f) => failures.push(f),
  });
  try {
    let commit = await pump(transport, () => first.messages.length > 0, "the first peer", 1);
    commit = await pump(
      transport,
      () => transport.stats().peers.n2!.lastError === null,
      "the stream to settle",
      commit,
    );
    const before = { failures: transport.stats().failures, reports: failures.length };
    strictEqual(before.failures, 1, "the refused first stream");
    const second = inbox();
    peer.replace(peerApp(second));
    first.running = false; // the old stream ends at its next frame
    await pump(transport, () => second.messages.length > 0, "the replaced peer", commit);
    const after = transport.stats();
    ok(after.failures - before.failures <= 1, `${after.failures - before.failures} failures`);
    ok(failures.length - before.reports <= 1, `${failures.length - before.reports} reports`);
    deepStrictEqual([...second.senders], ["n1"]);
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("over HTTP with streams, a peer replaced right after the first stream opened keeps receiving", async () => {
  const first = inbox();
  const peer = servePeer(peerApp(first));
  const failures: PeerFailure[] = [];
  const transport = await senderTo(peer.url, { onPeerError: (f) => failures.push(f) });
  try {
    const commit = await pump(transport, () => first.messages.length > 0, "the first peer", 1);
    // Restarted at once: the sender has just relearned a challenge for its first stream.
    const second = inbox();
    peer.replace(peerApp(second));
    first.running = false;
    // Bounded: a sender that stops learning challenges never gets through.
    await pump(transport, () => second.messages.length > 0, "the replaced peer", commit, 2000);
    // The old stream's end is one failure; the new challenge, coming so soon
    // after the first one, may count as a second; the streak is one report.
    ok(transport.stats().failures <= 2, `${transport.stats().failures} failures`);
    strictEqual(failures.length, 1, "reports of one streak");
    deepStrictEqual([...second.senders], ["n1"]);
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

Deno.test("over HTTP, a stream frame followed by a wrong seal gets 401 and does not reach the node", async (t) => {
  const box = inbox();
  const peer = servePeer(peerApp(box));
  const credentials = new PeerCredentials(SECRET);
  try {
    await learnChallenge(peer.url, credentials);
    let commit = 0;
    /**
     * Opens a signed stream whose body is a frame and its seal, then what
     * `bad` makes of the next frame, then a third frame and its seal.
     * Returns why it was refused.
     */
    const stream = async (
      bad: (frame: Uint8Array, sealer: FrameSealer, first: Uint8Array[]) => Uint8Array[],
    ) => {
      const proof = credentials.sign(peer.url, "n1", "POST", STREAM_PATH, new Uint8Array(0));
      const sealer = new FrameSealer(credentials.streamKey(proof.signed)!);
      const good = encodeMessages([heartbeat(++commit)]);
      const first = [good, sealer.seal(good)];
      const target = encodeMessages([heartbeat(++commit)]);
      const parts = [...first, ...bad(target, sealer, first)];
      const after = encodeMessages([heartbeat(++commit)]);
      parts.push(after, sealer.seal(after));
      const before = box.messages.length;
      const answer = await post(peer.url + STREAM_PATH, proof.headers, concatBytes(...parts));
      strictEqual(answer.status, 401, answer.message);
      match(answer.message, /^Cannot accept the peer request: the stream's frame 1 /);
      deepStrictEqual(commitsOf(box.messages.slice(before)), [commit - 2], "what reached the node");
      return answer.message;
    };

    await t.step("a seal made with another stream's key", async () => {
      const otherProof = credentials.sign(peer.url, "n1", "POST", STREAM_PATH, new Uint8Array(0));
      const other = new FrameSealer(credentials.streamKey(otherProof.signed)!);
      match(
        await stream((frame, sealer) => {
          sealer.seal(frame); // keeps the count in step
          other.seal(new Uint8Array(0));
          return [frame, other.seal(frame)];
        }),
        /wrong seal/,
      );
    });

    await t.step("a tag with a flipped bit", async () => {
      match(
        await stream((frame, sealer) => [frame, flipped(sealer.seal(frame), 10)]),
        /wrong seal/,
      );
    });

    await t.step("the frame altered after sealing", async () => {
      match(
        await stream((frame, sealer) => {
          const seal = sealer.seal(frame);
          return [encodeMessages([heartbeat(999)]), seal];
        }),
        /wrong seal/,
      );
    });

    await t.step("the first frame and its seal replayed", async () => {
      match(
        await stream((frame, sealer, first) => {
          sealer.seal(frame);
          return first;
        }),
        /wrong seal/,
      );
    });

    await t.step("no seal at all", async () => {
      match(
        await stream((frame) => [frame, encodeMessages([heartbeat(998)])]),
        /not followed by its seal/,
      );
    });

    // Sealed right, the same stream is obeyed: the refusals above came from the seals.
    const proof = credentials.sign(peer.url, "n1", "POST", STREAM_PATH, new Uint8Array(0));
    const sealer = new FrameSealer(credentials.streamKey(proof.signed)!);
    const frames = [101, 102].map((c) => encodeMessages([heartbeat(c)]));
    const before = box.messages.length;
    const answer = await post(
      peer.url + STREAM_PATH,
      proof.headers,
      concatBytes(...frames.flatMap((f) => [f, sealer.seal(f)])),
    );
    strictEqual(answer.status, 204, answer.message);
    deepStrictEqual(commitsOf(box.messages.slice(before)), [101, 102]);
  } finally {
    await peer.server.shutdown();
  }
});

Deno.test("over HTTP, a forwarded write whose answer is altered in transit is not trusted: timeout", async (t) => {
  const box = inbox();
  const peer = servePeer(peerApp(box));
  type Tamper =
    | "none"
    | "a forged body"
    | "no signature"
    | "an earlier answer"
    | "another signature"
    | "a forged refusal"
    | "the status turned to 503"
    | "the status turned to 400"
    | "a 401 with a fresh challenge";
  let tamper: Tamper = "none";
  let earlier: { body: Uint8Array; headers: Headers } | null = null;
  /** A fetch that changes the leader's accepted answers on their way back. */
  const onPath: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (!String(input).endsWith(FORWARD_PATH) || res.status !== 200) return res;
    const body = new Uint8Array(await res.arrayBuffer());
    const headers = new Headers(res.headers);
    headers.delete("content-length");
    const signature = headers.get("X-Raft-Signature") ?? "";
    const answer = (bytes: Uint8Array, status = 200, sent = headers) =>
      new Response(bytes as Uint8Array<ArrayBuffer>, { status, headers: sent });
    switch (tamper) {
      case "none":
        earlier = { body, headers: new Headers(headers) };
        return answer(body);
      case "a forged body":
        return answer(encodeForwardedAnswer({ ok: true, value: { echo: "forged" } }));
      case "no signature":
        headers.delete("X-Raft-Signature");
        return answer(body);
      case "an earlier answer":
        return answer(earlier!.body, 200, earlier!.headers);
      case "another signature":
        headers.set("X-Raft-Signature", [...signature].reverse().join(""));
        return answer(body);
      case "a forged refusal":
        return Response.json(
          { error: { code: "unavailable", message: "Not written, honestly" } },
          { status: 503 },
        );
      case "the status turned to 503":
        return answer(body, 503);
      case "the status turned to 400":
        return answer(body, 400);
      case "a 401 with a fresh challenge": {
        // Anyone can get a challenge from the leader: ask with no proof.
        const probe = await fetch(String(input), {
          method: "POST",
          headers: { "X-Raft-From": "n9", "content-type": "application/octet-stream" },
          body: new Uint8Array(0),
        });
        await probe.body?.cancel();
        const challenge = probe.headers.get("X-Raft-Challenge") ?? "";
        return Response.json(
          { error: { code: "unauthorized", message: "Sign under the new challenge" } },
          { status: 401, headers: { "X-Raft-Challenge": challenge } },
        );
      }
    }
  };
  const transport = await senderTo(peer.url, { streams: false, fetch: onPath });
  const signal = new AbortController().signal;
  /** How a forward ends: "ok", or the code of its error, thrown or answered. */
  const outcome = async (): Promise<string> => {
    try {
      const answer = await transport.forward("n2", PROPOSAL, signal);
      if (answer.ok) {
        deepStrictEqual(answer.value, ECHO, "a forged value was trusted");
        return "ok";
      }
      return answer.code;
    } catch (e) {
      ok(e instanceof WaterCraftError, String(e));
      return e.code;
    }
  };
  try {
    await t.step("untouched, the answer is trusted", async () => {
      strictEqual(await outcome(), "ok");
      ok(earlier !== null);
    });
    const tampers: Tamper[] = [
      "a forged body",
      "no signature",
      "an earlier answer",
      "another signature",
      "a forged refusal",
      "the status turned to 503",
      "the status turned to 400",
      // The write must not run twice because of it.
      "a 401 with a fresh challenge",
    ];
    for (const how of tampers) {
      await t.step(`with ${how}: timeout`, async () => {
        tamper = how;
        const received = box.forwards.length;
        // The leader got the write: only "the outcome is unknown" is true.
        const code = await outcome();
        strictEqual(box.forwards.length, received + 1, "times the leader ran the write");
        strictEqual(code, "timeout");
      });
    }
    tamper = "none";
    strictEqual(await outcome(), "ok");
  } finally {
    await transport.close();
    await peer.server.shutdown();
  }
});

// ------------------------------------------------------------------ 5. X-Raft-From

Deno.test("over HTTP, a request naming another sender than its session's is refused", async () => {
  const box = inbox();
  const peer = servePeer(peerApp(box));
  const credentials = new PeerCredentials(SECRET);
  try {
    await learnChallenge(peer.url, credentials);
    const own = encodeMessages([heartbeat(1)]);
    const proof = credentials.sign(peer.url, "n1", "POST", MESSAGES_PATH, own);
    strictEqual((await post(peer.url + MESSAGES_PATH, proof.headers, own)).status, 204);
    const challenge = proof.signed!.challenge;

    // Signed with the secret, as n3, under n1's session, on each route.
    const foreign = encodeMessages([heartbeat(2, "n3")]);
    for (
      const [path, body, seq] of [[MESSAGES_PATH, foreign, 40], [STREAM_PATH, null, 41]] as const
    ) {
      const signed = body ?? new Uint8Array(0);
      const headers = {
        "X-Raft-From": "n3",
        "X-Raft-Challenge": challenge,
        "X-Raft-Seq": String(seq),
        "X-Raft-Signature": requestSignature(SECRET, {
          method: "POST",
          path,
          from: "n3",
          challenge,
          seq,
          body: signed,
        }),
      };
      const answer = await post(peer.url + path, headers, foreign);
      strictEqual(answer.status, 401, `${path}: ${answer.message}`);
      match(answer.message, /X-Raft-Challenge belongs to another sender/);
      match(answer.challenge ?? "", /^[0-9a-f]{32}$/);
    }
    deepStrictEqual([...box.senders], ["n1"]);
    deepStrictEqual(commitsOf(box.messages), [1]);
    // n1's session is unharmed.
    const next = encodeMessages([heartbeat(3)]);
    const again = credentials.sign(peer.url, "n1", "POST", MESSAGES_PATH, next);
    strictEqual((await post(peer.url + MESSAGES_PATH, again.headers, next)).status, 204);
    deepStrictEqual(commitsOf(box.messages), [1, 3]);
  } finally {
    await peer.server.shutdown();
  }
});
