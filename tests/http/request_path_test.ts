/**
 * Tests for src/http/request_path.ts (the raw path of a request and the
 * check every runtime applies to it) and for `serve()` applying it on Deno
 * before the handler, to a request line sent byte for byte over loopback
 * (`fetch` would resolve the dot segments before sending).
 *
 * @module
 */

import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { isDotSegment, pathProblem, requestPath } from "../../src/http/request_path.ts";
import { serve } from "../../src/serve.ts";

Deno.test("requestPath() returns the path as written, nothing resolved or decoded", async (t) => {
  const rows = [
    { name: "a full URL", input: "http://127.0.0.1:6969/v1/kv/a", want: "/v1/kv/a" },
    { name: "dot segments kept", input: "http://h/v1/kv/../x/./y", want: "/v1/kv/../x/./y" },
    { name: "escapes kept", input: "https://h/v1/kv/%ZZ%2e", want: "/v1/kv/%ZZ%2e" },
    { name: "the query cut", input: "http://h/v1/kv?prefix=../a", want: "/v1/kv" },
    { name: "a fragment cut", input: "http://h/v1/kv/a#..", want: "/v1/kv/a" },
    { name: "a request-target", input: "/v1/kv/..?x", want: "/v1/kv/.." },
    { name: "no path", input: "http://h", want: "/" },
    { name: "no path but a query", input: "http://h?x=1", want: "/" },
    { name: "a backslash kept", input: "http://h/v1/kv/a\\b", want: "/v1/kv/a\\b" },
  ];
  for (const row of rows) {
    await t.step(row.name, () => strictEqual(requestPath(row.input), row.want));
  }
});

Deno.test("isDotSegment() matches the spellings of . and .. that the URL parser resolves", async (t) => {
  const dots = [".", "..", "%2e", "%2E", ".%2e", "%2e.", "%2E%2e", "%2e%2E"];
  const others = ["", "...", "a.", ".a", "%2e%2e%2e", "%2f", "%252e", "%2e%2ea", ". "];
  for (const segment of dots) {
    await t.step(
      `${JSON.stringify(segment)} is one`,
      () => strictEqual(isDotSegment(segment), true),
    );
  }
  for (const segment of others) {
    await t.step(`${JSON.stringify(segment)} is not`, () => {
      strictEqual(isDotSegment(segment), false);
    });
  }
});

Deno.test("pathProblem() names the first segment runtimes would read differently", async (t) => {
  const rows: { input: string; want: RegExp | undefined }[] = [
    { input: "/v1/kv/a", want: undefined },
    { input: "/v1/kv/a%2Fb", want: undefined },
    { input: "/v1/kv/%25ZZ", want: undefined },
    { input: "/v1/kv/%C3%A9", want: undefined },
    { input: "/v1/kv/é", want: undefined },
    { input: "/v1/kv/a%5Cb", want: undefined },
    { input: "/v1/kv/...", want: undefined },
    { input: "/", want: undefined },
    { input: "/v1/kv/", want: undefined },
    { input: "/v1/kv/..", want: /^segment "\.\." is a dot segment, / },
    { input: "/v1/kv/.", want: /^segment "\." is a dot segment, / },
    { input: "/v1/kv/%2E%2e/cas", want: /^segment "%2E%2e" is a dot segment, / },
    { input: "/v1/../kv/a", want: /^segment "\.\." is a dot segment, / },
    { input: "/v1/kv/%ZZ", want: /^segment "%ZZ" has a % not followed by two hex digits/ },
    { input: "/v1/kv/a%", want: /^segment "a%" has a % not followed by two hex digits/ },
    { input: "/v1/kv/%4", want: /^segment "%4" has a % not followed by two hex digits/ },
    { input: "/v1/kv/%FF", want: /^segment "%FF" has percent-escapes that are not UTF-8$/ },
    { input: "/v1/kv/%C3", want: /^segment "%C3" has percent-escapes that are not UTF-8$/ },
    { input: "/v1/kv/%ED%A0%80", want: /that are not UTF-8$/ },
    { input: "/v1/kv/a\\b", want: /^segment "a\\\\b" holds a backslash, .*%5C/ },
    { input: `/v1/kv/${"x".repeat(200)}%`, want: /^segment "x{77}\.\.\." has a % not/ },
  ];
  for (const row of rows) {
    await t.step(row.input.slice(0, 40), () => {
      const problem = pathProblem(row.input);
      if (row.want === undefined) strictEqual(problem, undefined);
      else ok(problem !== undefined && row.want.test(problem), String(problem));
    });
  }
});

/** Sends one HTTP/1.1 request line byte for byte and returns the status and body of the answer. */
async function sendRaw(
  port: number,
  requestLine: string,
): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const head = `${requestLine}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;
    await conn.write(new TextEncoder().encode(head));
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(4096);
    let text = "";
    // The server closes the connection after its answer (Connection: close).
    for (let reads = 0; reads < 1000; reads++) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n), { stream: true });
    }
    const status = Number(text.slice(9, 12));
    return { status, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
  } finally {
    conn.close();
  }
}

Deno.test("serve() refuses a path runtimes read differently before the handler sees it", async () => {
  const seen: string[] = [];
  const server = await serve((request) => {
    seen.push(new URL(request.url).pathname);
    return new Response("handled");
  }, { port: 0, hostname: "127.0.0.1" });
  try {
    for (const target of ["/v1/kv/..", "/v1/kv/%2e", "/x/../v1/status", "/v1/kv/%ZZ"]) {
      const { status, body } = await sendRaw(server.port, `GET ${target} HTTP/1.1`);
      strictEqual(status, 400, target);
      const error = JSON.parse(body).error;
      strictEqual(error.code, "invalid_request", target);
      ok(error.message.startsWith("Invalid path: segment "), error.message);
    }
    deepStrictEqual(seen, [], "the handler saw a refused request");
    const ok200 = await sendRaw(server.port, "GET /v1/kv/a%2Fb?prefix=.. HTTP/1.1");
    deepStrictEqual([ok200.status, ok200.body.endsWith("handled")], [200, true]);
    deepStrictEqual(seen, ["/v1/kv/a%2Fb"]);
  } finally {
    await server.shutdown();
  }
});
