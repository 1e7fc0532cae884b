/**
 * Tests for the simulated disk (tests/sim/disk.ts): that its faults are the
 * ones it promises, since every storage test on it trusts them.
 *
 * @module
 */

import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { SimDisk } from "../sim/disk.ts";

const BYTES = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);

/** A disk with a durable directory `/d` holding a durable file `/d/f` of `BYTES`. */
async function diskWithFile(seed: number, synchronizedWrites = false): Promise<SimDisk> {
  const disk = new SimDisk({ seed, synchronizedWrites });
  await disk.mkdir("/d");
  await disk.syncDir("/");
  const file = await disk.open("/d/f", "wx");
  await file.write(BYTES, 0, BYTES.length, 0);
  await file.sync();
  await file.close();
  await disk.syncDir("/d");
  return disk;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

Deno.test("SimDisk keeps a synced file in a synced directory across crashes", async () => {
  for (let seed = 0; seed < 20; seed++) {
    const disk = await diskWithFile(seed);
    disk.crash();
    deepStrictEqual(await disk.readFile("/d/f"), BYTES, `seed ${seed}`);
  }
});

Deno.test("SimDisk: a crash keeps a prefix of unsynced appends, maybe torn, never more", async () => {
  const extra = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7 + 1) & 0xff);
  const outcomes = { none: 0, whole: 0, partial: 0 };
  for (let seed = 0; seed < 200; seed++) {
    const disk = await diskWithFile(seed);
    const file = await disk.open("/d/f", "r+");
    await file.write(extra, 0, extra.length, BYTES.length);
    deepStrictEqual(await disk.readFile("/d/f"), concat(BYTES, extra), "reads see the cache");
    disk.crash();
    const after = await disk.readFile("/d/f");
    deepStrictEqual(after.subarray(0, BYTES.length), BYTES, `seed ${seed}: durable bytes kept`);
    ok(after.length <= BYTES.length + extra.length, `seed ${seed}: grew past the write`);
    if (after.length === BYTES.length) outcomes.none++;
    else if (
      after.length === BYTES.length + extra.length &&
      after.every((b, i) => i < 8 || b === extra[i - 8])
    ) {
      outcomes.whole++;
    } else outcomes.partial++;
  }
  ok(outcomes.none > 20 && outcomes.whole > 20 && outcomes.partial > 20, JSON.stringify(outcomes));
});

Deno.test("SimDisk: a new name is durable only once its directory is synced", async () => {
  let lost = 0;
  for (let seed = 0; seed < 60; seed++) {
    const disk = await diskWithFile(seed);
    const file = await disk.open("/d/g", "wx");
    await file.write(BYTES, 0, BYTES.length, 0);
    await file.sync();
    await disk.unlink("/d/f");
    disk.crash();
    const names = await disk.readdir("/d");
    // Directory operations survive in order: g's creation before f's deletion.
    ok(
      [["f"], ["f", "g"], ["g"]].some((want) => want.join() === names.join()),
      `seed ${seed}: ${names}`,
    );
    if (!names.includes("g")) lost++;
    else deepStrictEqual(await disk.readFile("/d/g"), BYTES);
  }
  ok(lost > 5 && lost < 55, `lost ${lost} of 60`);
  const disk = await diskWithFile(1);
  await disk.rename("/d/f", "/d/h");
  await disk.syncDir("/d");
  disk.crash();
  deepStrictEqual(await disk.readdir("/d"), ["h"]);
});

Deno.test("SimDisk: a failed sync rejects with EIO and a later sync does not save what it lost", async () => {
  let lost = 0;
  for (let seed = 0; seed < 60; seed++) {
    const disk = await diskWithFile(seed);
    const file = await disk.open("/d/f", "r+");
    await file.write(BYTES, 0, BYTES.length, BYTES.length);
    disk.failNextSyncs();
    await rejects(file.sync(), (e: Error & { code?: string }) => e.code === "EIO");
    deepStrictEqual((await disk.readFile("/d/f")).length, 16, "reads still see the write");
    await file.sync();
    disk.crash();
    const after = await disk.readFile("/d/f");
    if (after.length === 8) lost++;
  }
  ok(lost > 5, `lost ${lost} of 60`);
});

Deno.test("SimDisk: a full disk takes what fits, then rejects with ENOSPC", async () => {
  const disk = new SimDisk({ seed: 3, capacityBytes: 10 });
  const file = await disk.open("/f", "wx");
  strictEqual((await file.write(BYTES, 0, 8, 0)).bytesWritten, 8);
  strictEqual((await file.write(BYTES, 0, 8, 8)).bytesWritten, 2);
  await rejects(file.write(BYTES, 0, 8, 10), (e: Error & { code?: string }) => e.code === "ENOSPC");
  disk.capacityBytes = 100;
  strictEqual((await file.write(BYTES, 0, 8, 10)).bytesWritten, 8);
});

Deno.test("SimDisk.flipBit() flips exactly one durable bit", async () => {
  const disk = await diskWithFile(4);
  const flipped = disk.flipBit();
  ok(flipped !== null);
  strictEqual(flipped.path, "/d/f");
  const after = await disk.readFile("/d/f");
  strictEqual(after[flipped.offset], BYTES[flipped.offset]! ^ (1 << flipped.bit));
  after[flipped.offset] = BYTES[flipped.offset]!;
  deepStrictEqual(after, BYTES);
});

Deno.test("SimDisk: the schedule hook decides when operations settle; a crash strands them", async () => {
  const queue: (() => void)[] = [];
  const disk = new SimDisk({ seed: 5, schedule: (fn) => queue.push(fn) });
  let done = false;
  const made = disk.mkdir("/d").then(() => done = true);
  await Promise.resolve();
  strictEqual(done, false, "settled before the scheduler ran it");
  strictEqual(queue.length, 1);
  queue.shift()!();
  await made;
  strictEqual(done, true);
  let stranded = false;
  disk.readdir("/d").then(() => stranded = true, () => stranded = true);
  disk.crash();
  queue.shift()!();
  await Promise.resolve();
  strictEqual(stranded, false, "an operation of the crashed machine settled");
});

Deno.test("SimDisk.crashAfter() crashes instead of completing the chosen operation", async () => {
  const disk = new SimDisk({ seed: 6 });
  const crashed = disk.crashAfter(2);
  await disk.mkdir("/d");
  const second = disk.syncDir("/");
  await crashed;
  const race = await Promise.race([second.then(() => "settled"), Promise.resolve("stranded")]);
  strictEqual(race, "stranded");
});

Deno.test("SimDisk.openSynced(): a write is durable once it resolves, and lost if a crash falls before its sync", async () => {
  const extra = new Uint8Array([9, 9, 9]);
  const grown = concat(BYTES, extra);
  let lost = 0;
  for (let seed = 0; seed < 20; seed++) {
    const disk = await diskWithFile(seed, true);
    const file = await disk.openSynced!("/d/f", "r+");
    await file.write(extra, 0, extra.length, BYTES.length);
    disk.crash();
    deepStrictEqual(await disk.readFile("/d/f"), grown, `seed ${seed}: resolved, so durable`);

    const cut = await diskWithFile(seed, true);
    const cutFile = await cut.openSynced!("/d/f", "r+");
    // The write is the next operation, its sync the one after: the crash takes the sync's place.
    const crashed = cut.crashAfter(2);
    void cutFile.write(extra, 0, extra.length, BYTES.length);
    await crashed;
    const kept = await cut.readFile("/d/f");
    deepStrictEqual(kept.subarray(0, BYTES.length), BYTES, `seed ${seed}: the synced bytes stay`);
    if (kept.length < grown.length) lost++;
  }
  ok(lost > 0, "a crash before the sync never lost the write");
  strictEqual(new SimDisk({ seed: 1 }).openSynced, undefined, "only when asked for");
});
