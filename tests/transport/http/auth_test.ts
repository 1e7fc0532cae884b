/**
 * Cluster-secret proof on peer requests: what is signed, what is refused.
 *
 * @module
 */

import { deepStrictEqual, match, ok, rejects, strictEqual, throws } from "node:assert/strict";
import {
  AUTH_WINDOW_MS,
  createRequestVerifier,
  NONCE_HEADER,
  SIGNATURE_HEADER,
  signRequest,
  TIME_HEADER,
  type VerifyResult,
} from "../../../src/transport/http/auth.ts";

const SECRET = "correct horse battery staple";
const NOW = 1_700_000_000_000;
const BODY = JSON.stringify({ messages: [{ type: "timeoutNow", from: "n1", to: "n2", term: 1 }] });

async function signed(
  overrides: { secret?: string; body?: string | Uint8Array; nowMs?: number } = {},
) {
  const headers = await signRequest({
    secret: overrides.secret ?? SECRET,
    from: "n1",
    method: "POST",
    path: "/raft/messages",
    body: overrides.body ?? BODY,
    nowMs: overrides.nowMs ?? NOW,
  });
  return {
    method: "POST",
    path: "/raft/messages",
    headers: new Headers(headers),
    body: BODY,
    nowMs: NOW,
  };
}

function refused(result: VerifyResult, reason: RegExp): void {
  ok(!result.ok, "the request was accepted");
  match(result.reason, reason);
}

Deno.test("signRequest() produces headers that verifyRequest() accepts", async () => {
  const request = await signed();
  strictEqual(request.headers.get("X-Raft-From"), "n1");
  strictEqual(request.headers.get(TIME_HEADER), String(NOW));
  match(request.headers.get(NONCE_HEADER)!, /^[0-9a-f]{32}$/);
  match(request.headers.get(SIGNATURE_HEADER)!, /^[0-9a-f]{64}$/);
  const verifier = createRequestVerifier({ secret: SECRET });
  deepStrictEqual(await verifier.verifyRequest(request), { ok: true, from: "n1" });
  strictEqual(verifier.nonces, 1);
});

Deno.test("signRequest() signs a string body as its UTF-8 bytes", async () => {
  const body = JSON.stringify({ note: "héllo ✓" });
  const request = await signed({ body: new TextEncoder().encode(body) });
  const verifier = createRequestVerifier({ secret: SECRET });
  deepStrictEqual(await verifier.verifyRequest({ ...request, body }), { ok: true, from: "n1" });
});

Deno.test("signRequest() draws a fresh nonce every time", async () => {
  const a = await signed();
  const b = await signed();
  ok(a.headers.get(NONCE_HEADER) !== b.headers.get(NONCE_HEADER));
  ok(a.headers.get(SIGNATURE_HEADER) !== b.headers.get(SIGNATURE_HEADER));
});

Deno.test("verifyRequest() refuses forged, tampered and stale requests", async (t) => {
  const verifier = createRequestVerifier({ secret: SECRET });
  await t.step("wrong secret", async () => {
    refused(await verifier.verifyRequest(await signed({ secret: "guess" })), /wrong signature/);
  });
  await t.step("tampered body", async () => {
    refused(
      await verifier.verifyRequest({ ...await signed(), body: BODY.replace("n2", "n3") }),
      /wrong signature/,
    );
  });
  await t.step("another path", async () => {
    refused(
      await verifier.verifyRequest({ ...await signed(), path: "/raft/forward" }),
      /wrong signature/,
    );
  });
  await t.step("another method", async () => {
    refused(await verifier.verifyRequest({ ...await signed(), method: "PUT" }), /wrong signature/);
  });
  await t.step("another sender", async () => {
    const request = await signed();
    request.headers.set("X-Raft-From", "n3");
    refused(await verifier.verifyRequest(request), /wrong signature/);
  });
  await t.step("another time", async () => {
    const request = await signed();
    request.headers.set(TIME_HEADER, String(NOW + 1));
    refused(await verifier.verifyRequest(request), /wrong signature/);
  });
  await t.step("flipped signature digit", async () => {
    const request = await signed();
    const signature = request.headers.get(SIGNATURE_HEADER)!;
    request.headers.set(SIGNATURE_HEADER, (signature[0] === "0" ? "1" : "0") + signature.slice(1));
    refused(await verifier.verifyRequest(request), /wrong signature/);
  });
  await t.step("uppercase signature", async () => {
    const request = await signed();
    request.headers.set(
      SIGNATURE_HEADER,
      request.headers.get(SIGNATURE_HEADER)!.toUpperCase().replace(/^./, "A"),
    );
    refused(await verifier.verifyRequest(request), /malformed X-Raft-Signature/);
  });
  for (const header of ["X-Raft-From", TIME_HEADER, NONCE_HEADER, SIGNATURE_HEADER]) {
    await t.step(`missing ${header}`, async () => {
      const request = await signed();
      request.headers.delete(header);
      refused(await verifier.verifyRequest(request), new RegExp(`missing or malformed ${header}`));
    });
  }
  await t.step("time too old", async () => {
    refused(
      await verifier.verifyRequest({
        ...await signed({ nowMs: NOW - AUTH_WINDOW_MS - 1 }),
        nowMs: NOW,
      }),
      /more than 300000 ms away/,
    );
  });
  await t.step("time too far ahead", async () => {
    refused(
      await verifier.verifyRequest({
        ...await signed({ nowMs: NOW + AUTH_WINDOW_MS + 1 }),
        nowMs: NOW,
      }),
      /more than 300000 ms away/,
    );
  });
  await t.step("time at the edge of the window", async () => {
    strictEqual(
      (await verifier.verifyRequest({ ...await signed({ nowMs: NOW - AUTH_WINDOW_MS }) })).ok,
      true,
    );
    strictEqual(
      (await verifier.verifyRequest({ ...await signed({ nowMs: NOW + AUTH_WINDOW_MS }) })).ok,
      true,
    );
  });
  await t.step("nothing refused was remembered", () => {
    strictEqual(verifier.nonces, 2);
  });
});

Deno.test("verifyRequest() refuses a replayed nonce, even when replayed concurrently", async () => {
  const verifier = createRequestVerifier({ secret: SECRET });
  const request = await signed();
  strictEqual((await verifier.verifyRequest(request)).ok, true);
  refused(await verifier.verifyRequest(request), /already used/);
  refused(await verifier.verifyRequest({ ...request, nowMs: NOW + 60_000 }), /already used/);

  const twin = await signed();
  const results = await Promise.all([verifier.verifyRequest(twin), verifier.verifyRequest(twin)]);
  strictEqual(results.filter((r) => r.ok).length, 1);
});

Deno.test("verifyRequest() bounds its nonce cache and still refuses replays of evicted nonces", async () => {
  const verifier = createRequestVerifier({ secret: SECRET, nonceCacheMax: 10 });
  const requests = [];
  for (let i = 0; i < 50; i++) requests.push(await signed({ nowMs: NOW + i }));
  for (const [i, request] of requests.entries()) {
    strictEqual((await verifier.verifyRequest({ ...request, nowMs: NOW + i })).ok, true);
    ok(verifier.nonces <= 10);
  }
  // The first nonce is gone from the cache; its time is now below the floor.
  refused(
    await verifier.verifyRequest({ ...requests[0]!, nowMs: NOW + 50 }),
    /too old to check for replay/,
  );
  // A fresh request from the same sender still passes.
  strictEqual(
    (await verifier.verifyRequest({ ...await signed({ nowMs: NOW + 50 }), nowMs: NOW + 50 })).ok,
    true,
  );
});

Deno.test("verifyRequest() forgets nonces once their time is out of the window", async () => {
  const verifier = createRequestVerifier({ secret: SECRET });
  for (let i = 0; i < 5; i++) await verifier.verifyRequest(await signed());
  strictEqual(verifier.nonces, 5);
  const later = NOW + AUTH_WINDOW_MS + 1;
  strictEqual(
    (await verifier.verifyRequest({ ...await signed({ nowMs: later }), nowMs: later })).ok,
    true,
  );
  strictEqual(verifier.nonces, 1);
});

Deno.test("createRequestVerifier() and signRequest() refuse bad options", async () => {
  throws(() => createRequestVerifier({ secret: "" }), TypeError);
  throws(() => createRequestVerifier({ secret: SECRET, windowMs: 0 }), RangeError);
  throws(() => createRequestVerifier({ secret: SECRET, nonceCacheMax: 1.5 }), RangeError);
  await rejects(
    signRequest({ secret: "", from: "n1", method: "POST", path: "/", body: "" }),
    TypeError,
  );
});
