/**
 * Checks `src/transport/http/tls.ts` on the runtime that runs this script
 * (`deno run -A`, `bun`, `node --import tsx`): it serves HTTPS on loopback
 * with the given certificate and prints one JSON line of what each way of
 * calling it gave. `https_test.ts` runs it on every runtime and asserts.
 *
 * Usage: `fetch_check.ts CA_FILE CERT_FILE KEY_FILE OTHER_CA_FILE`
 *
 * @module
 */

import { readFileSync } from "node:fs";
import process from "node:process";
import { serve } from "../../../src/serve.ts";
import {
  describeFetchError,
  isCertificateError,
  nodeHttpsFetch,
  type TrustingFetch,
  trustingFetch,
} from "../../../src/transport/http/tls.ts";

/** What one way of fetching gave. */
export interface Outcome {
  /** The `via` of the fetch used, or "global". */
  readonly via: string;
  /** The answer's status and body, when it answered. */
  readonly answer?: { readonly status: number; readonly body: string };
  /** Whether the failure was a certificate one, when it failed. */
  readonly certificate?: boolean;
  /** The failure, worded by `describeFetchError`. */
  readonly error?: string;
}

/** What the script prints, as one JSON line. */
export interface FetchCheck {
  /** `trustingFetch(ca)`, a POST that the server echoes. */
  readonly trusted: Outcome;
  /** `nodeHttpsFetch(ca)`, the Node fallback (Deno's `node:https` runs it too). */
  readonly fallback: Outcome;
  /** `nodeHttpsFetch(ca)` against plain HTTP, which goes through the global fetch. */
  readonly fallbackHttp: Outcome;
  /** The global `fetch`, which does not trust the CA. */
  readonly untrusted: Outcome;
  /** `trustingFetch(otherCa)`: a CA that did not sign the certificate. */
  readonly otherCa: Outcome;
}

async function attempt(fetcher: typeof fetch, url: string, via = "global"): Promise<Outcome> {
  try {
    const res = await fetcher(url, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "ping",
      signal: AbortSignal.timeout(10_000),
    });
    return { via, answer: { status: res.status, body: await res.text() } };
  } catch (error) {
    return { via, certificate: isCertificateError(error), error: describeFetchError(error) };
  }
}

async function withFetch(tls: TrustingFetch, url: string): Promise<Outcome> {
  try {
    return await attempt(tls.fetch, url, tls.via);
  } finally {
    await tls.close();
  }
}

async function main(): Promise<void> {
  const [caFile, certFile, keyFile, otherCaFile] = process.argv.slice(-4);
  const ca = readFileSync(caFile!, "utf8");
  const otherCa = readFileSync(otherCaFile!, "utf8");
  const echo = async (request: Request) =>
    new Response(`${request.method} ${await request.text()}`);
  const secure = await serve(echo, {
    port: 0,
    hostname: "127.0.0.1",
    tls: { cert: readFileSync(certFile!, "utf8"), key: readFileSync(keyFile!, "utf8") },
  });
  const plain = await serve(echo, { port: 0, hostname: "127.0.0.1" });
  try {
    const url = `https://127.0.0.1:${secure.port}/echo`;
    const result: FetchCheck = {
      trusted: await withFetch(trustingFetch(ca), url),
      fallback: await withFetch(nodeHttpsFetch(ca), url),
      fallbackHttp: await withFetch(nodeHttpsFetch(ca), `http://127.0.0.1:${plain.port}/echo`),
      untrusted: await attempt(fetch, url),
      otherCa: await withFetch(trustingFetch(otherCa), url),
    };
    console.log(JSON.stringify(result));
  } finally {
    await secure.shutdown();
    await plain.shutdown();
  }
}

await main();
process.exit(0);
