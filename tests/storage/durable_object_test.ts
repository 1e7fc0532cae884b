/**
 * Tests for `durableObjectStorage` (src/storage/durable_object.ts), run for
 * real inside workerd (miniflare): the shared conformance suite, each case in
 * a Durable Object of its own, then what is specific to the adapter (two
 * instances on one object, damage, chunked entries), then a crash: workerd is
 * killed with SIGKILL after a workload of awaited writes, and a new workerd on
 * the same persisted storage must load exactly what they wrote.
 *
 * miniflare is installed from npm into `.tools/miniflare/` on first use.
 *
 * @module
 */

import { deepStrictEqual, ok } from "node:assert/strict";
import { request } from "../process/harness.ts";
import {
  bundleWorker,
  ensureMiniflare,
  type MiniflareOptions,
  MiniflareProcess,
  workerdUnusable,
} from "../edge/miniflare.ts";

/** Every case gets an object of its own, and every run objects of their own. */
const RUN = crypto.randomUUID().slice(0, 8);

Deno.test("durableObjectStorage passes the storage conformance suite inside workerd", async (t) => {
  const found = await ensureMiniflare();
  const unusable = await workerdUnusable(found);
  if (unusable !== null) {
    console.warn(`Skipped: ${unusable}`);
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "watercraft-do-storage-" });
  const options: MiniflareOptions = {
    label: "conformance@workerd",
    script: await bundleWorker("tests/edge/conformance_worker.ts", `${dir}/worker.js`),
    durableObjects: { CONFORMANCE: { className: "ConformanceObject", useSQLite: true } },
    persist: `${dir}/persist`,
    // node:assert/strict for the suite; the adapter itself needs none of it.
    compatibilityFlags: ["nodejs_compat"],
  };
  let worker: MiniflareProcess | null = await MiniflareProcess.start(options);
  try {
    const names = (await request("GET", `${worker.url}/cases`)).body as Record<string, string[]>;
    ok(names.conformance!.length >= 15, JSON.stringify(names));
    for (const suite of ["conformance", "adapter"] as const) {
      for (const [index, name] of names[suite]!.entries()) {
        await t.step(`${suite}: ${name}`, async () => {
          const url = `${
            worker!.url
          }/case?suite=${suite}&index=${index}&object=${RUN}-${suite}-${index}`;
          const answer = await request("POST", url, { timeoutMs: 30_000 });
          deepStrictEqual(answer.body, { ok: true }, answer.body?.error ?? answer.text);
        });
      }
    }

    await t.step("what resolved before workerd was killed (SIGKILL) loads whole", async () => {
      const object = `${RUN}-crash`;
      const wrote = await request("POST", `${worker!.url}/crash/write?object=${object}`);
      deepStrictEqual(wrote.body, { ok: true }, wrote.body?.error ?? wrote.text);
      await worker!.crash();
      worker = null;
      worker = await MiniflareProcess.start(options);
      const checked = await request("GET", `${worker.url}/crash/check?object=${object}`);
      ok(checked.body?.ok === true, checked.body?.error ?? checked.text);
      ok(checked.body.entries > 0);
    });
  } finally {
    await worker?.close();
    await Deno.remove(dir, { recursive: true });
  }
});
