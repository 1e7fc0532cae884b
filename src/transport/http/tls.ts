/**
 * A `fetch` that trusts extra certificate authorities for HTTPS, on
 * whichever runtime is running, and the wording of `fetch` failures.
 *
 * Web-standard `fetch` has no way to name a CA, so this is the one place
 * that knows each runtime's own:
 *
 * - Deno: a client from `Deno.createHttpClient({ caCerts })`, passed as
 *   `client` (its CAs are added to the default roots);
 * - Bun: the `tls: { ca }` option of its `fetch`;
 * - Node: an `Agent` of the undici that Node bundles for its `fetch`,
 *   passed as `dispatcher`; Node 20 and later expose no import of it, but
 *   they install one as the global dispatcher under
 *   `Symbol.for("undici.globalDispatcher.1")` (the key undici shares with
 *   its npm package), so its class comes from there. Should that ever be
 *   missing, requests to `https:` URLs go through `node:https` instead.
 *
 * Bun's and Node's `ca` option replaces the default roots rather than
 * adding to them, so there the runtime's default roots are passed along.
 * Nothing runtime-specific is loaded unless a CA is asked for, so the rest
 * of the transport stays Web-standard.
 *
 * @module
 */

/** A `fetch` bound to extra trusted CAs, and what it holds open. */
export interface TrustingFetch {
  /** Like `globalThis.fetch`, trusting the CAs too for `https:` URLs. */
  readonly fetch: typeof fetch;
  /** How the CAs reach the runtime, for diagnostics. */
  readonly via: "deno-client" | "bun-tls" | "undici-agent" | "node-https";
  /**
   * Releases the runtime's client (connections, TLS state); `fetch` must
   * not be used afterwards. Safe to call twice.
   *
   * @returns Once released.
   */
  close(): Promise<void>;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** The key under which undici (Node's bundled copy and its npm package) keeps the global dispatcher. */
const UNDICI_GLOBAL_DISPATCHER = Symbol.for("undici.globalDispatcher.1");

/** The parts of an undici `Agent` used here. */
interface UndiciAgent {
  dispatch(...args: unknown[]): unknown;
  close(): Promise<void>;
}

/** The parts of `node:tls` used here (`getCACertificates` is Node 22.15 and later). */
interface NodeTls {
  readonly rootCertificates: readonly string[];
  getCACertificates?(kind: "default"): string[];
}

/**
 * Creates a `fetch` that also trusts `ca` when calling `https:` URLs, with
 * the running runtime's own mechanism (see the module documentation).
 *
 * @param ca PEM text of one or more CA certificates (a bundle, or a list).
 * @returns The fetch and its `close()`.
 * @throws {TypeError} When `ca` holds no PEM certificate.
 *
 * @example A fetch that trusts a CA, for an HTTPS peer with a private CA
 * ```ts ignore
 * import { trustingFetch } from "./tls.ts";
 *
 * const tls = trustingFetch(await Deno.readTextFile("ca.pem"));
 * const res = await tls.fetch("https://127.0.0.1:6969/healthz");
 * await res.body?.cancel();
 * await tls.close();
 * ```
 */
export function trustingFetch(ca: string | readonly string[]): TrustingFetch {
  const pems = typeof ca === "string" ? [ca] : [...ca];
  if (pems.length === 0 || !pems.every((pem) => PEM_CERTIFICATE.test(pem))) {
    throw new TypeError("The extra CA must be PEM text holding at least one certificate");
  }
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  if (g.Bun !== undefined) return bunFetch(pems);
  if (g.Deno !== undefined) return denoFetch(pems);
  return nodeFetch(pems);
}

function denoFetch(pems: readonly string[]): TrustingFetch {
  const deno = (globalThis as {
    Deno: { createHttpClient(options: { caCerts: string[] }): { close(): void } };
  }).Deno;
  const client = deno.createHttpClient({ caCerts: [...pems] });
  let closed = false;
  return {
    via: "deno-client",
    fetch: (input, init) => fetch(input, extend(init, { client })),
    close() {
      if (!closed) client.close();
      closed = true;
      return Promise.resolve();
    },
  };
}

function bunFetch(pems: readonly string[]): TrustingFetch {
  let ca: Promise<string[]> | null = null;
  return {
    via: "bun-tls",
    fetch: async (input, init) => {
      ca ??= defaultRoots().then((roots) => [...roots, ...pems]);
      return await fetch(input, extend(init, { tls: { ca: await ca } }));
    },
    close: () => Promise.resolve(),
  };
}

function nodeFetch(pems: readonly string[]): TrustingFetch {
  // Touching `Response` loads Node's bundled undici, which installs its
  // global Agent; its class is how to make another one.
  void globalThis.Response;
  const global = (globalThis as Record<symbol, unknown>)[UNDICI_GLOBAL_DISPATCHER] as
    | UndiciAgent
    | undefined;
  const Agent = global?.constructor as
    | (new (options: { connect: { ca: string[] } }) => UndiciAgent)
    | undefined;
  if (Agent === undefined || Agent.name !== "Agent" || typeof global?.dispatch !== "function") {
    return nodeHttpsFetch(pems);
  }
  let agent: Promise<UndiciAgent> | null = null;
  let closed = false;
  return {
    via: "undici-agent",
    fetch: async (input, init) => {
      agent ??= defaultRoots().then((roots) => new Agent({ connect: { ca: [...roots, ...pems] } }));
      return await fetch(input, extend(init, { dispatcher: await agent }));
    },
    async close() {
      if (closed || agent === null) return;
      closed = true;
      await (await agent).close();
    },
  };
}

/** `init` with a runtime's own fetch option added, which `RequestInit` does not know of. */
function extend(init: RequestInit | undefined, extra: Record<string, unknown>): RequestInit {
  return Object.assign({}, init, extra);
}

/** The CAs the runtime trusts by default, as PEM. */
async function defaultRoots(): Promise<readonly string[]> {
  const tls = await import("node:tls") as unknown as NodeTls;
  // "default" also holds NODE_EXTRA_CA_CERTS, where the runtime has it.
  return tls.getCACertificates?.("default") ?? tls.rootCertificates;
}

/**
 * A `fetch` for Node-compatible runtimes that sends `https:` requests
 * through `node:https` with the CAs (and everything else through the
 * global `fetch`). It is the Node fallback of {@linkcode trustingFetch},
 * for when Node's bundled undici cannot be reached; it buffers request
 * bodies, which peer calls keep small.
 *
 * @param ca PEM text of one or more CA certificates.
 * @returns The fetch and its `close()`.
 * @throws {TypeError} When `ca` holds no PEM certificate.
 */
export function nodeHttpsFetch(ca: string | readonly string[]): TrustingFetch {
  const pems = typeof ca === "string" ? [ca] : [...ca];
  if (pems.length === 0 || !pems.every((pem) => PEM_CERTIFICATE.test(pem))) {
    throw new TypeError("The extra CA must be PEM text holding at least one certificate");
  }
  let agent: Promise<import("node:https").Agent> | null = null;
  let closed = false;
  const getAgent = () =>
    agent ??= Promise.all([import("node:https"), defaultRoots()]).then(([https, roots]) =>
      new https.Agent({ keepAlive: true, ca: [...roots, ...pems] })
    );
  return {
    via: "node-https",
    fetch: async (input, init) => {
      const request = new Request(input, init);
      if (new URL(request.url).protocol !== "https:") return await fetch(request);
      const [https, { Readable }, httpsAgent] = await Promise.all([
        import("node:https"),
        import("node:stream"),
        getAgent(),
      ]);
      const body = request.body === null ? null : new Uint8Array(await request.arrayBuffer());
      const signal = init?.signal ?? undefined;
      const headers: Record<string, string> = Object.fromEntries(request.headers);
      if (body !== null) headers["content-length"] = String(body.byteLength);
      return await new Promise<Response>((resolve, reject) => {
        const req = https.request(request.url, {
          method: request.method,
          headers,
          agent: httpsAgent,
          ...(signal ? { signal } : {}),
        }, (res) => {
          const answer = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value === undefined) continue;
            for (const v of Array.isArray(value) ? value : [value]) answer.append(name, v);
          }
          const status = res.statusCode ?? 500;
          const empty = status === 204 || status === 304 || request.method === "HEAD";
          if (empty) res.resume();
          resolve(
            new Response(empty ? null : Readable.toWeb(res) as ReadableStream<Uint8Array>, {
              status,
              statusText: res.statusMessage ?? "",
              headers: answer,
            }),
          );
        });
        req.once(
          "error",
          (error) =>
            reject(
              signal?.aborted ? signal.reason : new TypeError("fetch failed", { cause: error }),
            ),
        );
        req.end(body ?? undefined);
      });
    },
    async close() {
      if (closed || agent === null) return;
      closed = true;
      (await agent).destroy();
    },
  };
}

/**
 * Words a `fetch` failure for an operator: the error's message followed by
 * its causes' and their codes (Node and Deno say only "fetch failed" at the
 * top; the reason, such as an untrusted certificate, is in the cause).
 *
 * @param error What `fetch` threw.
 * @returns One line.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { describeFetchError } from "./tls.ts";
 *
 * const cause = Object.assign(new Error("unable to verify the first certificate"), {
 *   code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
 * });
 * strictEqual(
 *   describeFetchError(new TypeError("fetch failed", { cause })),
 *   "fetch failed: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)",
 * );
 * ```
 */
export function describeFetchError(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e !== undefined && e !== null; depth++) {
    if (typeof e !== "object") {
      parts.push(String(e));
      break;
    }
    const { message, code, cause } = e as { message?: unknown; code?: unknown; cause?: unknown };
    let part = typeof message === "string" && message !== "" ? message : String(e);
    if (typeof code === "string" && code !== "" && !part.includes(code)) part += ` (${code})`;
    if (!parts.includes(part)) parts.push(part);
    e = cause;
  }
  return parts.join(": ").replace(/\s*\n\s*/g, " ");
}

/**
 * Whether a `fetch` failure is a refused server certificate (an unknown
 * issuer, a self-signed or expired certificate, a name mismatch): a setting
 * to fix (`--ca`, the peer's certificate), which retrying does not. Runtimes
 * word it differently (Deno: "invalid peer certificate: UnknownIssuer";
 * Node and Bun: codes such as `UNABLE_TO_VERIFY_LEAF_SIGNATURE`), so the
 * error and its causes are searched.
 *
 * @param error What `fetch` threw.
 * @returns True for a certificate failure.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { isCertificateError } from "./tls.ts";
 *
 * const deno = new TypeError("fetch failed", {
 *   cause: new Error("client error (Connect): invalid peer certificate: UnknownIssuer"),
 * });
 * strictEqual(isCertificateError(deno), true);
 * strictEqual(isCertificateError(new TypeError("Connection refused")), false);
 * ```
 */
export function isCertificateError(error: unknown): boolean {
  const certificate =
    /certificate|UnknownIssuer|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|SELF_SIGNED|CERT_HAS_EXPIRED|ERR_TLS_CERT|CERT_NOT_YET_VALID|CERT_UNTRUSTED/i;
  let e: unknown = error;
  for (let depth = 0; depth < 5 && e !== undefined && e !== null; depth++) {
    if (typeof e !== "object") return typeof e === "string" && certificate.test(e);
    const { message, code } = e as { message?: unknown; code?: unknown };
    for (const text of [message, code]) {
      if (typeof text === "string" && certificate.test(text)) return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
