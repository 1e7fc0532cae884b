/**
 * Runs the storage conformance suite on `memoryStorage` (src/storage/memory.ts),
 * the reference the suite compares every adapter with. A restart hands the
 * same object to the next "process", as the memory storage's doc prescribes.
 *
 * @module
 */

import { memoryStorage } from "../../src/storage/memory.ts";
import { runStorageConformance } from "./conformance.ts";

runStorageConformance("memoryStorage", () => {
  const storage = memoryStorage();
  return Promise.resolve({
    storage,
    reopen: () => Promise.resolve(storage),
    crash: { crashAndReopen: () => Promise.resolve(storage) },
  });
});
