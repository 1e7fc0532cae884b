/**
 * A loopback HTTP proxy that stands for the platform's routing in front of
 * a Durable Object: the cluster reaches the Workers member at the proxy's
 * URL, and the test decides which workerd process ("instance" of the
 * object) gets the traffic. Switching cuts every request in flight (the
 * peers' long-lived streams included), so the next ones go to the new
 * target, as when the platform moves an object.
 *
 * @module
 */

/**
 * Headers a hop must not pass on; `accept-encoding` too, so that bodies pass
 * as they are (fetch would decode a compressed answer but keep its header).
 */
const HOP_HEADERS = [
  "host",
  "connection",
  "content-length",
  "transfer-encoding",
  "keep-alive",
  "accept-encoding",
  "content-encoding",
];

/** A running proxy. */
export interface SwitchProxy {
  /** The proxy's URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Where requests go now (a base URL), or null to answer 502. */
  readonly target: string | null;
  /**
   * Sends later requests to `target` and cuts those in flight.
   *
   * @param target A base URL, or null.
   */
  switchTo(target: string | null): void;
  /** Stops the proxy. */
  close(): Promise<void>;
}

/**
 * Starts a proxy on a free loopback port.
 *
 * @param target Where requests go first (a base URL), or null.
 * @returns The proxy.
 */
export function startSwitchProxy(target: string | null): SwitchProxy {
  let current = target;
  const inFlight = new Set<AbortController>();
  const cut = () => {
    for (const controller of inFlight) controller.abort(new Error("The proxy switched"));
    inFlight.clear();
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    if (current === null) return new Response("no target", { status: 502 });
    const url = new URL(request.url);
    const controller = new AbortController();
    inFlight.add(controller);
    const done = (): void => {
      inFlight.delete(controller);
    };
    const headers = new Headers(request.headers);
    for (const name of HOP_HEADERS) headers.delete(name);
    try {
      const answer = await fetch(current + url.pathname + url.search, {
        method: request.method,
        headers,
        body: request.body,
        signal: controller.signal,
        redirect: "manual",
        duplex: "half",
      } as RequestInit);
      const body = answer.body?.pipeThrough(new TransformStream({ flush: done })) ?? null;
      if (body === null) done();
      const answerHeaders = new Headers(answer.headers);
      for (const name of HOP_HEADERS) answerHeaders.delete(name);
      return new Response(body, { status: answer.status, headers: answerHeaders });
    } catch (error) {
      done();
      return new Response(`proxy: ${error instanceof Error ? error.message : error}`, {
        status: 502,
      });
    }
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    get target() {
      return current;
    },
    switchTo(next) {
      current = next;
      cut();
    },
    async close() {
      current = null;
      cut();
      await server.shutdown();
    },
  };
}
