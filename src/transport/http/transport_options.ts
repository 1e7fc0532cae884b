/**
 * The options of the HTTP transport (`sender.ts`), and their resolution:
 * defaults applied and bounds checked once, when the transport is created,
 * so that a wrong limit fails there and not at the first message.
 *
 * @module
 */

import { MAX_MESSAGES_PER_BATCH } from "./frames.ts";
import type { JoinRetry } from "./join.ts";
import type { BatchLimits } from "./peer_queue.ts";

/** Options of `httpTransport()` (`sender.ts`). */
export interface HttpTransportOptions {
  /** Client token the cluster's members require, sent when joining. */
  readonly clientToken?: string;
  /** Timeout of one message request, ms. Default 2000. */
  readonly timeoutMs?: number;
  /** Most messages queued per peer; the oldest are dropped past it. Default 10 000. */
  readonly maxQueuedMessages?: number;
  /** Most (estimated) bytes queued per peer; the oldest are dropped past it. Default 32 MiB. */
  readonly maxQueuedBytes?: number;
  /**
   * Most (estimated) bytes per request; keep it under the peers' body limit
   * (4 MiB by default). A single larger message still goes, alone. Default 1 MiB.
   */
  readonly maxRequestBytes?: number;
  /** Most messages per request. Default 4096 (at most 10 000). */
  readonly maxRequestMessages?: number;
  /**
   * Send Raft messages over one long-lived stream per peer (`POST
   * /raft/stream`, frames written as they are queued). With `false`, each
   * batch is its own `POST /raft/messages` (for proxies that buffer request
   * bodies). Default true.
   */
  readonly streams?: boolean;
  /** First back-off after a failed request, ms. Default 50. */
  readonly backoffMinMs?: number;
  /** Longest back-off, ms. Default 1000. */
  readonly backoffMaxMs?: number;
  /** The `fetch` to use, e.g. one with a custom TLS client. Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch;
  /**
   * PEM text of CA certificates to trust, besides the runtime's defaults,
   * when calling peers over HTTPS (what the CLI's `--ca FILE` holds). Not
   * together with `fetch`.
   */
  readonly ca?: string | readonly string[];
  /**
   * Hears why a peer's message requests fail: called at the first failure
   * after a success (or after the peer became known), not on every retry.
   * It must not throw.
   */
  readonly onPeerError?: (failure: PeerFailure) => void;
  /**
   * Hears each failed attempt of a join, with why (default: a line on
   * `console.warn`). It must not throw.
   */
  readonly onJoinRetry?: (retry: JoinRetry) => void;
}

/** Why requests to a peer fail, for {@linkcode HttpTransportOptions.onPeerError}. */
export interface PeerFailure {
  /** The peer's id. */
  readonly id: string;
  /** The peer's base URL. */
  readonly url: string;
  /**
   * What went wrong, with the underlying causes, e.g. "fetch failed: ...
   * invalid peer certificate: UnknownIssuer" or "answered 401 unauthorized: ...".
   */
  readonly message: string;
  /** Whether the peer's certificate was refused (fix `ca` or the peer's certificate). */
  readonly certificate: boolean;
}

/** The numeric options of an HTTP transport, with their defaults, checked. */
export interface ResolvedTransportOptions {
  /** Timeout of one message request, ms. */
  readonly timeoutMs: number;
  /** Most messages queued per peer. */
  readonly maxQueuedMessages: number;
  /** Most (estimated) bytes queued per peer. */
  readonly maxQueuedBytes: number;
  /** Bounds of one request, or of one write to a stream. */
  readonly batchLimits: BatchLimits;
  /** Whether messages go over one stream per peer. */
  readonly streams: boolean;
  /** First back-off after a failed request, ms. */
  readonly backoffMinMs: number;
  /** Longest back-off, ms. */
  readonly backoffMaxMs: number;
}

/**
 * Applies the defaults of {@linkcode HttpTransportOptions} and checks the
 * limits.
 *
 * @param options What the caller gave.
 * @returns The resolved limits.
 * @throws {RangeError} When a limit is not a positive integer, a request
 *   may hold more messages than a frame can, or the longest back-off is
 *   shorter than the first.
 *
 * @example
 * ```ts
 * import { strictEqual, throws } from "node:assert/strict";
 * import { resolveTransportOptions } from "./transport_options.ts";
 *
 * strictEqual(resolveTransportOptions({}).timeoutMs, 2000);
 * throws(() => resolveTransportOptions({ timeoutMs: 0 }), RangeError);
 * ```
 */
export function resolveTransportOptions(options: HttpTransportOptions): ResolvedTransportOptions {
  const maxRequestMessages = positive("maxRequestMessages", options.maxRequestMessages ?? 4096);
  if (maxRequestMessages > MAX_MESSAGES_PER_BATCH) {
    throw new RangeError(`maxRequestMessages must be at most ${MAX_MESSAGES_PER_BATCH}`);
  }
  const backoffMinMs = positive("backoffMinMs", options.backoffMinMs ?? 50);
  const backoffMaxMs = positive("backoffMaxMs", options.backoffMaxMs ?? 1000);
  if (backoffMaxMs < backoffMinMs) {
    throw new RangeError("backoffMaxMs must be at least backoffMinMs");
  }
  return {
    timeoutMs: positive("timeoutMs", options.timeoutMs ?? 2000),
    maxQueuedMessages: positive("maxQueuedMessages", options.maxQueuedMessages ?? 10_000),
    maxQueuedBytes: positive("maxQueuedBytes", options.maxQueuedBytes ?? 32 << 20),
    batchLimits: {
      maxMessages: maxRequestMessages,
      maxBytes: positive("maxRequestBytes", options.maxRequestBytes ?? 1 << 20),
    },
    streams: options.streams ?? true,
    backoffMinMs,
    backoffMaxMs,
  };
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer, not ${value}`);
  }
  return value;
}
