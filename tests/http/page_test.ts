/**
 * Tests of the live cluster page, `GET /`: served without the client token
 * (it holds no data), locked down by a content security policy whose nonce
 * is the one its script and style carry, and a script that parses and
 * never writes markup from the cluster's data.
 *
 * @module
 */

import { match, ok, strictEqual } from "node:assert/strict";
import { createApp, createNode, kvStateMachine } from "../../mod.ts";
import { MemoryNetwork } from "../../src/testing.ts";

Deno.test("GET / serves the live page, open, with a fresh nonce in its content security policy", async () => {
  const node = await createNode({
    id: "n1",
    stateMachine: kvStateMachine(),
    transport: new MemoryNetwork().transport(),
    insecure: true,
  });
  try {
    const app = createApp(node, { clientToken: "t0ken" });
    const res = await app.request("/");
    strictEqual(res.status, 200);
    match(res.headers.get("content-type") ?? "", /^text\/html/);
    const policy = res.headers.get("content-security-policy") ?? "";
    const nonce = policy.match(/script-src 'nonce-([0-9a-f]{32})'/)?.[1];
    ok(nonce, policy);
    match(policy, /default-src 'none'/);
    match(policy, /connect-src 'self'/);
    const html = await res.text();
    ok(html.startsWith("<!doctype html>"));
    const script = html.match(new RegExp(`<script nonce="${nonce}">([\\s\\S]*?)</script>`))?.[1];
    ok(script, "the script carries the policy's nonce");
    match(html, new RegExp(`<style nonce="${nonce}">`));
    // It parses, and puts what the cluster says in the page as text only.
    new Function(script);
    ok(!/innerHTML|outerHTML|insertAdjacentHTML|document\.write/.test(script));
    match(script, /\/v1\/watch/);
    const again = await app.request("/");
    ok(!(again.headers.get("content-security-policy") ?? "").includes(nonce), "a nonce per answer");
  } finally {
    await node.stop();
  }
});
