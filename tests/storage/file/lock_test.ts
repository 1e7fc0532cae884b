/**
 * The data directory's lock: a lock whose process is gone, or is a zombie
 * (killed, not yet reaped), is stale and taken over.
 *
 * @module
 */

import { strictEqual } from "node:assert/strict";
import { isZombie } from "../../../src/storage/file/lock.ts";

Deno.test("isZombie() reads the state after the command name of /proc/PID/stat", async (t) => {
  const rows: { name: string; stat: string | null; want: boolean }[] = [
    { name: "a zombie", stat: "4242 (deno) Z 1 4242 4242 0 -1 4194572", want: true },
    { name: "running", stat: "4242 (deno) R 1 4242 4242 0 -1", want: false },
    { name: "sleeping", stat: "4242 (node) S 1 4242", want: false },
    { name: "a name with spaces and a parenthesis", stat: "7 (a) Z b) S 1 7", want: false },
    { name: "a zombie whose name holds a parenthesis", stat: "7 (a) S b) Z 1 7", want: true },
    { name: "no /proc (not Linux)", stat: null, want: false },
  ];
  for (const row of rows) {
    await t.step(row.name, () => strictEqual(isZombie(row.stat), row.want));
  }
});
