/**
 * The peer codecs head to head: encode then decode one append of 64 entries
 * of 256 bytes, with the JSON codec (`codec.ts`: base64 data, zod checks,
 * `JSON.parse`) as the baseline and the binary frames (`frames.ts`) next to
 * it, in the same run. The JSON codec is measured twice: on text, as
 * `codec_test.ts` calls it, and with the UTF-8 step a real body takes.
 * Encode and decode are also measured apart. The sizes on the wire are
 * printed first.
 *
 * Run: `deno bench -A bench/frames_bench.ts`.
 *
 * @module
 */

import { createEntry, type Entry, GENESIS_HASH } from "../src/core/entry.ts";
import type { Message } from "../src/core/messages.ts";
import * as json from "../src/transport/http/codec.ts";
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
const utf8 = new TextEncoder();
const text = new TextDecoder();
const jsonText = json.encodeMessages(messages);
const frame = frames.encodeMessages(messages);
console.log(
  `${ENTRIES} entries of ${ENTRY_BYTES} bytes: JSON ${utf8.encode(jsonText).length} bytes, ` +
    `frame ${frame.length} bytes (data alone ${ENTRIES * ENTRY_BYTES})`,
);

let sink = 0;
const group = `encode+decode ${ENTRIES}x${ENTRY_BYTES}B`;

Deno.bench({
  name: "json codec (text)",
  group,
  baseline: true,
  fn() {
    sink += json.decodeMessages(JSON.parse(json.encodeMessages(messages))).length;
  },
});

Deno.bench({
  name: "json codec (UTF-8 bytes, as a body)",
  group,
  fn() {
    const body = utf8.encode(json.encodeMessages(messages));
    sink += json.decodeMessages(JSON.parse(text.decode(body))).length;
  },
});

Deno.bench({
  name: "binary frames",
  group,
  fn() {
    sink += frames.decodeMessages(frames.encodeMessages(messages)).length;
  },
});

Deno.bench({
  name: "json codec (text)",
  group: "encode",
  baseline: true,
  fn() {
    sink += json.encodeMessages(messages).length;
  },
});

Deno.bench({
  name: "binary frames",
  group: "encode",
  fn() {
    sink += frames.encodeMessages(messages).length;
  },
});

Deno.bench({
  name: "json codec (text)",
  group: "decode",
  baseline: true,
  fn() {
    sink += json.decodeMessages(JSON.parse(jsonText)).length;
  },
});

Deno.bench({
  name: "binary frames",
  group: "decode",
  fn() {
    sink += frames.decodeMessages(frame).length;
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === 0) console.log("nothing was measured");
});
