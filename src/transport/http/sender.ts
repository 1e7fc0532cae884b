/**
 * The HTTP transport, its options and counters, and the sending of Raft
 * messages to each peer: binary frames (`frames.ts`) travel by `fetch`, or
 * a stream's on a socket of its own, to the peer routes of each node's Hono
 * app (`routes.ts`), which also receives them; this side only sends.
 * Forwarded writes are `forward_client.ts`'s, joining is `join.ts`'s.
 *
 * Per peer, messages wait in a bounded FIFO queue (`peer_queue.ts`; past
 * its bound the oldest are dropped and counted) and leave over one
 * long-lived stream (`peer_stream.ts`), or, with `streams: false`, by one
 * `POST {url}/raft/messages` (`message_post.ts`) in flight at a time,
 * everything queued meanwhile leaving together in the next request: that
 * batches under load and keeps each peer's messages in FIFO order, which
 * Raft's pipelined appends rely on. A failed request or stream backs that
 * peer off (50 ms doubling to 1 s, reset on success); its lost messages
 * are not retried, Raft resends. A stream leaves out an append answer equal
 * to the one it carried last (`repeated_answers.ts`).
 *
 * Only Web standards are needed (`fetch`, `AbortController`, Web Crypto),
 * so the same code runs on Deno, Bun, Node 20 and edge runtimes. Where the
 * runtime has `node:net` and `node:tls`, streams use them
 * (`socket_carrier.ts`); the `ca` option (HTTPS peers whose certificates
 * come from a private CA) reaches `fetch` each runtime its own way, which
 * `tls.ts` knows, and loads only then.
 *
 * When a peer's requests start failing, `onPeerError` hears why, once per
 * streak of failures (the error's causes included: an untrusted
 * certificate, a refused connection, a 401 for a wrong secret), and the
 * peer's `lastError` in {@linkcode HttpTransport.stats} keeps it.
 *
 * @module
 */

import { WaterCraftError } from "../../errors.ts";
import type { Message } from "../../core/messages.ts";
import { FROM_HEADER } from "./auth.ts";
import { PeerCredentials, type Proof } from "./credentials.ts";
import { encodeMessages } from "./frames.ts";
import { ForwardClient } from "./forward_client.ts";
import { MESSAGES_PATH, type PeerProblem, postMessages } from "./message_post.ts";
import { PeerQueue } from "./peer_queue.ts";
import { fetchCarrier } from "./fetch_carrier.ts";
import { type OpenCarrier, PeerStream, STREAM_PATH } from "./peer_stream.ts";
import { socketCarrier } from "./socket_carrier.ts";
import { RepeatedAnswerFilter } from "./repeated_answers.ts";
import { FrameSealer } from "./stream_seal.ts";
import {
  type HttpTransportOptions,
  type PeerFailure,
  type ResolvedTransportOptions,
  resolveTransportOptions,
} from "./transport_options.ts";
import { describeFetchError, isCertificateError, trustingFetch } from "./tls.ts";
import type {
  ForwardedAnswer,
  ForwardedProposal,
  JoinAnswer,
  JoinRequest,
  PeerHandler,
  PeerSecurity,
  Transport,
} from "../transport.ts";
import { joinCluster, type JoinRetry } from "./join.ts";

export { FORWARD_PATH } from "./forward_client.ts";
export { MESSAGES_PATH } from "./message_post.ts";
export type { HttpTransportOptions, PeerFailure } from "./transport_options.ts";

/** What one peer's queue holds now. */
export interface HttpPeerStats {
  /** The peer's base URL. */
  readonly url: string;
  /** Messages waiting. */
  readonly queued: number;
  /** Their estimated size, bytes. */
  readonly queuedBytes: number;
  /** Whether a message request is in flight, or a stream is open. */
  readonly inFlight: boolean;
  /** Current back-off after failures, ms (0 when healthy). */
  readonly backoffMs: number;
  /** Why the latest message request failed, while it keeps failing; null when healthy. */
  readonly lastError: string | null;
}

/** Counters of an {@linkcode HttpTransport} since it was created. */
export interface HttpTransportStats {
  /** Message requests sent (successful or not); streams opened count one each. */
  readonly requests: number;
  /** Messages in requests that succeeded, or written to an open stream. */
  readonly messagesSent: number;
  /** Messages dropped: queue overflow, unknown or removed peer, closed transport. */
  readonly dropped: number;
  /** Of `dropped`, those addressed to a peer with no known URL. */
  readonly droppedUnknown: number;
  /** Message requests and streams that failed (network error, timeout or non-2xx). */
  readonly failures: number;
  /** Streams dropped because the node had not heard from their peer for a while. */
  readonly streamResets: number;
  /** Messages in requests that failed. */
  readonly messagesFailed: number;
  /** Forwarded writes sent. */
  readonly forwards: number;
  /** Each known peer's queue, by id. */
  readonly peers: Readonly<Record<string, HttpPeerStats>>;
}

/** A {@linkcode Transport} over HTTP, with counters. */
export interface HttpTransport extends Transport {
  /**
   * Counters and queue lengths, for metrics and tests.
   *
   * @returns A snapshot.
   */
  stats(): HttpTransportStats;
  /**
   * Drops the open stream to a peer the node has not heard from for a while.
   *
   * @param peer The silent peer's id.
   */
  unreachable(peer: string): void;
}

/**
 * Creates an HTTP transport. Receiving is the Hono app's job (mount
 * `peerRoutes`), so `start()` only records this node's id and the node's
 * security (its cluster secret, or `insecure`), which it signs with: the
 * secret is given to the node, not here.
 *
 * @param options Timeouts and bounds.
 * @returns The transport.
 * @throws {RangeError} When a limit is not a positive integer.
 *
 * @example Messages to an unknown peer are dropped and counted
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { httpTransport } from "./sender.ts";
 *
 * const transport = httpTransport({ timeoutMs: 500 });
 * await transport.start(
 *   "n1",
 *   { receive() {}, forwarded: () => Promise.resolve({ ok: true, value: null }) },
 *   { secret: "s3cret" },
 * );
 * transport.send([{ type: "timeoutNow", from: "n1", to: "n9", term: 1 }]);
 * strictEqual(transport.stats().droppedUnknown, 1);
 * await transport.close();
 * ```
 */
export function httpTransport(options: HttpTransportOptions = {}): HttpTransport {
  return new HttpTransportImpl(options);
}

/** Sending state of one peer. */
interface Peer {
  readonly id: string;
  url: string;
  /** Messages waiting, bounded. */
  readonly queue: PeerQueue;
  /** The request in flight, if any. */
  inFlight: Promise<void> | null;
  /** The open stream, if any. */
  stream: PeerStream | null;
  /** Drops the append answers that would repeat the last one written to `stream`. */
  answers: RepeatedAnswerFilter;
  abort: AbortController | null;
  /** Back-off timer, if backing off. */
  timer: ReturnType<typeof setTimeout> | null;
  backoffMs: number;
  /** A flush is scheduled in a microtask. */
  scheduled: boolean;
  /** A stream is being opened (its headers signed). */
  opening: Promise<void> | null;
  /** When the open stream was opened, ms (`performance.now()`). */
  streamOpenedMs: number;
  /** The last stream was reopened at once under a challenge the peer handed out. */
  relearned: boolean;
  removed: boolean;
  /** Why the latest request failed, while failing. */
  lastError: string | null;
}

class HttpTransportImpl implements HttpTransport {
  readonly networked = true;
  /** Signs requests once `start()` gave the node's security. */
  #credentials: PeerCredentials = new PeerCredentials(null);
  readonly #clientToken: string | undefined;
  /** The limits, defaults applied. */
  readonly #limits: ResolvedTransportOptions;
  readonly #fetch: typeof fetch;
  /** Carries streams by `fetch`. */
  readonly #fetchStreams: OpenCarrier;
  /** Carries streams on sockets of their own, unless a fetch was given. */
  readonly #socketStreams: ReturnType<typeof socketCarrier>;
  /** Releases the CA-trusting fetch, when `ca` made one. */
  readonly #closeFetch: () => Promise<void>;
  readonly #onPeerError: ((failure: PeerFailure) => void) | undefined;
  readonly #onJoinRetry: ((retry: JoinRetry) => void) | undefined;
  /** Aborts forwarded writes in flight when the transport closes. */
  readonly #closing = new AbortController();
  readonly #forwarder: ForwardClient;

  #id: string | null = null;
  #closed = false;
  readonly #peers = new Map<string, Peer>();
  /** Requests in flight that `close()` must wait for. */
  readonly #pending = new Set<Promise<unknown>>();

  #requests = 0;
  #messagesSent = 0;
  #dropped = 0;
  #droppedUnknown = 0;
  #failures = 0;
  #streamResets = 0;
  #messagesFailed = 0;

  constructor(options: HttpTransportOptions) {
    this.#limits = resolveTransportOptions(options);
    this.#clientToken = options.clientToken;
    if (options.fetch !== undefined && options.ca !== undefined) {
      throw new TypeError("Give the transport either a fetch or a ca, not both");
    }
    if (options.ca !== undefined) {
      const tls = trustingFetch(options.ca);
      this.#fetch = tls.fetch;
      this.#closeFetch = () => tls.close();
    } else {
      this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
      this.#closeFetch = () => Promise.resolve();
    }
    this.#fetchStreams = fetchCarrier(this.#fetch);
    this.#socketStreams = options.fetch === undefined
      ? socketCarrier(typeof options.ca === "string" ? [options.ca] : options.ca)
      : null;
    this.#onPeerError = options.onPeerError;
    this.#onJoinRetry = options.onJoinRetry;
    this.#forwarder = new ForwardClient({
      fetch: this.#fetch,
      timeoutMs: this.#limits.timeoutMs,
      prove: (url, path, body) => this.#prove(url, path, body),
      learn: (url, response) => this.#credentials.learn(url, response),
      authentic: (proof, response, body) =>
        this.#credentials.answerIsAuthentic(proof.signed, response, body),
      closing: this.#closing.signal,
    });
  }

  start(id: string, _handler: PeerHandler, security: PeerSecurity | null): void {
    if (security === null) {
      throw new TypeError(
        "A node on the HTTP transport needs the cluster secret (secret) or an explicit insecure: true",
      );
    }
    this.#id = id;
    this.#credentials = new PeerCredentials("secret" in security ? security.secret : null);
  }

  setPeers(peers: ReadonlyMap<string, string>): void {
    if (this.#closed) return;
    for (const [id, peer] of this.#peers) {
      if (!peers.has(id)) this.#removePeer(peer);
    }
    for (const [id, url] of peers) {
      const base = url.replace(/\/+$/, "");
      const peer = this.#peers.get(id);
      if (peer !== undefined) {
        if (peer.url !== base) {
          peer.url = base;
          // The open stream still goes to the old address.
          peer.stream?.close();
          peer.stream = null;
        }
        continue;
      }
      this.#peers.set(id, {
        id,
        url: base,
        queue: new PeerQueue({
          maxMessages: this.#limits.maxQueuedMessages,
          maxBytes: this.#limits.maxQueuedBytes,
        }),
        inFlight: null,
        stream: null,
        answers: new RepeatedAnswerFilter(),
        abort: null,
        timer: null,
        backoffMs: 0,
        scheduled: false,
        opening: null,
        streamOpenedMs: 0,
        relearned: false,
        removed: false,
        lastError: null,
      });
    }
  }

  send(messages: readonly Message[]): void {
    if (this.#closed || this.#id === null) {
      this.#dropped += messages.length;
      return;
    }
    for (const message of messages) {
      const peer = this.#peers.get(message.to);
      if (peer === undefined) {
        this.#dropped++;
        this.#droppedUnknown++;
        continue;
      }
      this.#dropped += peer.queue.push(message);
      this.#schedule(peer);
    }
  }

  async forward(
    to: string,
    proposal: ForwardedProposal,
    signal: AbortSignal,
  ): Promise<ForwardedAnswer> {
    const peer = this.#peers.get(to);
    if (this.#closed || this.#id === null) {
      throw new WaterCraftError(
        "unavailable",
        `Cannot forward the write to ${to}: the transport is not running`,
      );
    }
    if (peer === undefined) {
      throw new WaterCraftError(
        "unavailable",
        `Cannot forward the write to ${to}: its address is unknown`,
      );
    }
    const work = this.#forwarder.forward({ url: peer.url, to, proposal, signal });
    this.#pending.add(work);
    try {
      return await work;
    } finally {
      this.#pending.delete(work);
    }
  }

  join(request: JoinRequest): Promise<JoinAnswer> {
    return joinCluster({
      ...request,
      ...(this.#onJoinRetry === undefined ? {} : { onRetry: this.#onJoinRetry }),
      fetch: this.#fetch,
      credentials: this.#credentials,
      ...(this.#clientToken === undefined ? {} : { clientToken: this.#clientToken }),
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort(new DOMException("The transport closed", "AbortError"));
    for (const peer of this.#peers.values()) this.#removePeer(peer);
    this.#peers.clear();
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    await this.#closeFetch();
  }

  stats(): HttpTransportStats {
    const peers: Record<string, HttpPeerStats> = {};
    for (const peer of this.#peers.values()) {
      peers[peer.id] = {
        url: peer.url,
        queued: peer.queue.length,
        queuedBytes: peer.queue.bytes,
        inFlight: peer.inFlight !== null || peer.stream !== null,
        backoffMs: peer.backoffMs,
        lastError: peer.lastError,
      };
    }
    return {
      requests: this.#requests,
      messagesSent: this.#messagesSent,
      dropped: this.#dropped,
      droppedUnknown: this.#droppedUnknown,
      failures: this.#failures,
      streamResets: this.#streamResets,
      messagesFailed: this.#messagesFailed,
      forwards: this.#forwarder.forwards,
      peers,
    };
  }

  #removePeer(peer: Peer): void {
    peer.removed = true;
    this.#peers.delete(peer.id);
    this.#dropped += peer.queue.clear();
    peer.abort?.abort(new DOMException("The peer was removed", "AbortError"));
    peer.stream?.close();
    peer.stream = null;
    if (peer.timer !== null) clearTimeout(peer.timer);
    peer.timer = null;
    this.#credentials.forget(peer.url);
  }

  /** Flushes `peer` in a microtask, so that sends of one tick share a request. */
  #schedule(peer: Peer): void {
    if (peer.scheduled || peer.inFlight !== null || peer.timer !== null) return;
    peer.scheduled = true;
    queueMicrotask(() => {
      peer.scheduled = false;
      this.#flush(peer);
    });
  }

  #flush(peer: Peer): void {
    if (this.#closed || peer.removed || peer.inFlight !== null || peer.timer !== null) return;
    if (peer.queue.length === 0) return;
    if (this.#limits.streams) {
      this.#flushStream(peer);
      return;
    }
    const work = this.#postMessages(peer, peer.queue.take(this.#limits.batchLimits));
    peer.inFlight = work;
    this.#pending.add(work);
    const done = () => this.#pending.delete(work);
    work.then(done, done);
  }

  /** Writes what is queued to the peer's stream, opening one if none is open. */
  #flushStream(peer: Peer): void {
    if (peer.stream === null) {
      if (peer.opening !== null) return;
      peer.opening = this.#openStream(peer).finally(() => {
        peer.opening = null;
        this.#flush(peer);
      });
      return;
    }
    const stream = peer.stream;
    for (let guard = 0; guard < 10_000 && peer.queue.length > 0 && stream.writable; guard++) {
      const batch = peer.answers.filter(peer.queue.take(this.#limits.batchLimits));
      if (batch.length === 0) continue;
      stream.write(encodeMessages(batch));
      this.#messagesSent += batch.length;
    }
  }

  async #openStream(peer: Peer): Promise<void> {
    // Not before the end of the flush that asked for it.
    await Promise.resolve();
    if (this.#closed || peer.removed) return;
    // The first stream to a peer would open unsigned, be refused, and lose
    // what was written into it (a vote request: the election would wait a
    // whole timeout). Learn the peer's challenge first; the messages wait
    // in the queue meanwhile.
    if (this.#credentials.secured && !this.#credentials.knows(peer.url)) {
      await this.#learnChallenge(peer);
      if (this.#closed || peer.removed) return;
    }
    const proof = this.#prove(peer.url, STREAM_PATH, new Uint8Array(0));
    const key = this.#credentials.streamKey(proof.signed);
    this.#requests++;
    const stream: PeerStream = new PeerStream({
      url: peer.url,
      open: this.#socketStreams?.carries(peer.url) ? this.#socketStreams.open : this.#fetchStreams,
      headers: proof.headers,
      sealer: key === null ? null : new FrameSealer(key),
      bufferBytes: this.#limits.batchLimits.maxBytes,
      keepaliveMs: KEEPALIVE_MS,
      keepalive: KEEPALIVE_FRAME,
      onDrain: () => this.#schedule(peer),
      onEnd: (problem, answer) => {
        if (peer.stream === stream) peer.stream = null;
        if (this.#closed || peer.removed) return;
        // The peer handed out a new challenge (it restarted, or this is the
        // first stream to it): always learn it; open again at once, signed
        // under it, unless that already happened just before (then back off
        // like after any failure).
        const learned = answer !== null && this.#credentials.learn(peer.url, answer);
        // Any other end may be the peer's restart, which forgot the
        // challenge held here: a stream signed under it would be refused,
        // and the frames written into it lost (a vote answer, sent once:
        // the election would wait a whole timeout). The next stream learns
        // a fresh challenge first.
        if (!learned) this.#credentials.forget(peer.url);
        if (problem === null) return;
        if (learned && !peer.relearned) {
          peer.relearned = true;
          this.#flush(peer);
          return;
        }
        this.#failures++;
        this.#peerFailed(peer, {
          message: describeFetchError(problem),
          certificate: isCertificateError(problem),
        });
      },
    });
    peer.stream = stream;
    peer.answers = new RepeatedAnswerFilter();
    peer.streamOpenedMs = performance.now();
    // A refused stream ends at once; one still open a while later was taken:
    // the peer is healthy again (and a later failure is a new streak).
    const settle = setTimeout(() => {
      if (peer.stream !== stream || stream.ended) return;
      peer.relearned = false;
      peer.backoffMs = 0;
      peer.lastError = null;
    }, STREAM_SETTLE_MS);
    stream.ending.then(() => clearTimeout(settle));
  }

  /**
   * Asks a peer for a challenge: an unsigned, empty message request, which
   * it refuses with one (before reading any body). A failure is left to
   * the stream that follows, which fails the same way and backs off.
   */
  async #learnChallenge(peer: Peer): Promise<void> {
    try {
      this.#requests++;
      const response = await this.#fetch(peer.url + MESSAGES_PATH, {
        method: "POST",
        headers: { [FROM_HEADER]: this.#id!, "content-type": "application/octet-stream" },
        body: new Uint8Array(0),
        signal: AbortSignal.any([
          this.#closing.signal,
          AbortSignal.timeout(this.#limits.timeoutMs),
        ]),
      });
      this.#credentials.learn(peer.url, response);
      await response.body?.cancel();
    } catch {
      // Unreachable now: the stream's own attempt reports it.
    }
  }

  /**
   * Drops the stream to a peer the node has not heard from for a while: it
   * may look open while dead (half-open, or a peer that stopped reading).
   * The next send opens a new one. A stream younger than a second is left
   * alone, so that a slow peer is not reconnected over and over.
   *
   * @param id The silent peer.
   */
  unreachable(id: string): void {
    const peer = this.#peers.get(id);
    const stream = peer?.stream;
    if (peer === undefined || stream == null) return;
    if (performance.now() - peer.streamOpenedMs < STREAM_SETTLE_MS * 4) return;
    peer.stream = null;
    this.#streamResets++;
    stream.close();
  }

  /** Reports a failure (once per run of failures) and backs off before trying again. */
  #peerFailed(peer: Peer, problem: PeerProblem): void {
    const first = peer.lastError === null;
    peer.lastError = problem.message;
    if (first) this.#reportPeerError({ id: peer.id, url: peer.url, ...problem });
    peer.backoffMs = peer.backoffMs === 0
      ? this.#limits.backoffMinMs
      : Math.min(peer.backoffMs * 2, this.#limits.backoffMaxMs);
    if (peer.timer !== null) return;
    peer.timer = setTimeout(() => {
      peer.timer = null;
      this.#flush(peer);
    }, peer.backoffMs);
  }

  async #postMessages(peer: Peer, batch: Message[]): Promise<void> {
    const controller = new AbortController();
    peer.abort = controller;
    let problem: PeerProblem | null;
    try {
      problem = await postMessages({
        fetch: this.#fetch,
        url: peer.url,
        batch,
        timeoutMs: this.#limits.timeoutMs,
        prove: (path, body) => this.#prove(peer.url, path, body),
        learn: (response) => this.#credentials.learn(peer.url, response),
        controller,
        onSending: () => {
          this.#requests++;
        },
      });
    } finally {
      peer.abort = null;
      peer.inFlight = null;
    }
    if (problem === null) {
      this.#messagesSent += batch.length;
      peer.backoffMs = 0;
      peer.lastError = null;
    } else {
      this.#failures++;
      this.#messagesFailed += batch.length;
    }
    if (this.#closed || peer.removed) return;
    if (problem === null) {
      this.#flush(peer);
      return;
    }
    this.#peerFailed(peer, problem);
  }

  #reportPeerError(failure: PeerFailure): void {
    try {
      this.#onPeerError?.(failure);
    } catch {
      // A reporting hook must not break sending.
    }
  }

  #prove(url: string, path: string, body: Uint8Array): Proof {
    return this.#credentials.sign(url, this.#id!, "POST", path, body);
  }
}

/** How long a stream must stay open before its peer counts as healthy again, ms. */
const STREAM_SETTLE_MS = 250;

/** How long an open stream may stay silent before it carries a keepalive, ms. */
const KEEPALIVE_MS = 4000;

/** An empty batch of messages: what a keepalive carries. */
const KEEPALIVE_FRAME: Uint8Array = encodeMessages([]);
