/**
 * The file storage on the simulated disk (tests/sim/disk.ts): the shared
 * conformance suite, once with clean restarts and once with a power loss at
 * every restart, and the seeded crash stories of `sim_workload.ts`, with
 * and without synchronized writes.
 *
 * @module
 */

import { ok } from "node:assert/strict";
import { fileStorage } from "../../../src/storage/file/storage.ts";
import type { Storage } from "../../../src/storage/storage.ts";
import { SimDisk } from "../../sim/disk.ts";
import { type OpenedStorage, runStorageConformance } from "../conformance.ts";
import { runSeed, SIM_DIR, zeroCounts } from "./sim_workload.ts";

/** Seeds the crash stories run; `SIM_DISK_SEEDS` raises it for a long run. */
const SEEDS = Number(Deno.env.get("SIM_DISK_SEEDS") ?? 300);

function openSim(options: { crashOnRestart: boolean; segmentBytes?: number }) {
  return (): Promise<OpenedStorage> => {
    const disk = new SimDisk({ seed: 7 });
    const open = (): Storage =>
      fileStorage(SIM_DIR, {
        fs: disk,
        onWarning: () => {},
        ...(options.segmentBytes === undefined ? {} : { segmentBytes: options.segmentBytes }),
      });
    return Promise.resolve({
      storage: open(),
      reopen: () => {
        if (options.crashOnRestart) disk.crash();
        return Promise.resolve(open());
      },
      crash: {
        crashAndReopen: () => {
          disk.crash();
          return Promise.resolve(open());
        },
      },
    });
  };
}

runStorageConformance("fileStorage on SimDisk", openSim({ crashOnRestart: false }));
runStorageConformance(
  "fileStorage on SimDisk, power lost at every restart",
  openSim({ crashOnRestart: true, segmentBytes: 2048 }),
);

for (const synchronizedWrites of [false, true]) {
  const how = synchronizedWrites ? ", segments opened for O_DSYNC writes" : "";
  Deno.test(`fileStorage on SimDisk${how}: ${SEEDS} seeded crash stories lose no resolved call and read no wrong byte`, async () => {
    const counts = zeroCounts();
    for (let seed = 1; seed <= SEEDS; seed++) await runSeed(seed, counts, { synchronizedWrites });
    console.log(JSON.stringify(counts));
    ok(counts.crashes > SEEDS && counts.kills > SEEDS / 2, JSON.stringify(counts));
    ok(counts.tornCut > 0 && counts.inFlightKept > 0, JSON.stringify(counts));
    ok(counts.syncFailures > 0 && counts.diskFull > 0, JSON.stringify(counts));
    ok(counts.flips > 0 && counts.flipsDetected > 0, JSON.stringify(counts));
  });
}
