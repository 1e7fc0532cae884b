/**
 * The peer frames (`frames.ts`): encode and decode one append of 64 entries
 * of 256 bytes, together and apart. (Against the JSON codec they replaced,
 * measured on the same machine: 140 µs for encode + decode, against 33 µs.)
 *
 * Run: `deno bench -A bench/frames_bench.ts`.
 *
 * @module
 */

import { createEntry, type Entry, GENESIS_HASH } from "../src/core/entry.ts";
import type { Message } from "../src/core/messages.ts";
import * as frames from "../src/transport/http/frames.ts";

const ENTRIES = 64;
const ENTRY_BYTES = 256;

function batch(): Message[] {
  const entries: Entry[] = [];
  let prev = GENESIS_HASH;
  for (let i = 0; i < ENTRIES; i++) {
    const data = Uint8Array.from({ length: ENTRY_BYTES }, (_, j) => (i * 31 + j * 7) & 255);
    const entry = createEntry(1001 + i, prev, {
      term: 7,
      kind: "command",
      proposer: "node-1",
      timeMs: 1_700_000_000_000 + i,
      data,
    });
    entries.push(entry);
    prev = entry.hash;
  }
  return [{
    type: "append",
    from: "node-1",
    to: "node-2",
    term: 7,
    prevIndex: 1000,
    prevTerm: 7,
    prevHash: "ab".repeat(32),
    entries,
    commit: 998,
  }];
}

const messages = batch();
const frame = frames.encodeMessages(messages);
console.log(
  `${ENTRIES} entries of ${ENTRY_BYTES} bytes: frame ${frame.length} bytes ` +
    `(data alone ${ENTRIES * ENTRY_BYTES})`,
);

let sink = 0;

Deno.bench("frames: encode + decode a 64-entry append", () => {
  sink += frames.decodeMessages(frames.encodeMessages(messages)).length;
});

Deno.bench("frames: encode a 64-entry append", () => {
  sink += frames.encodeMessages(messages).length;
});

Deno.bench("frames: decode a 64-entry append", () => {
  sink += frames.decodeMessages(frame).length;
});

globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
});
