/**
 * Tests for chunked snapshot transfer (src/core/snapshot_transfer.ts): how
 * the leader cuts chunks and takes answers (`SnapshotSender`), and which
 * chunks a follower joins (`SnapshotReceiver`): only consecutive ones of one
 * transfer, that is the same leader, term, snapshot index, hash and size.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { EMPTY_CONFIG } from "../../src/core/config.ts";
import type { SnapshotMessage } from "../../src/core/messages.ts";
import {
  type ChunkOutcome,
  SNAPSHOT_CHUNK_MIN_BYTES,
  SnapshotReceiver,
  SnapshotSender,
} from "../../src/core/snapshot_transfer.ts";

/** Bytes 0, 1, 2, ... of the given length. */
function bytes(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => i % 256);
}

/** A sender of a snapshot at index 7 holding `data` (a 4096-byte one by default). */
function senderOf(data: Uint8Array = bytes(4096)): SnapshotSender {
  return new SnapshotSender({
    meta: { index: 7, term: 1, hash: "h7", config: EMPTY_CONFIG },
    data,
  });
}

Deno.test("SnapshotSender.nextChunk() cuts from the acknowledged offset, at least SNAPSHOT_CHUNK_MIN_BYTES", async (t) => {
  const rows = [
    { name: "a large bound", size: 10_000, maxMsgBytes: 4096, acked: 0, want: [0, 4096] },
    {
      name: "a tiny bound is raised",
      size: 10_000,
      maxMsgBytes: 10,
      acked: 0,
      want: [0, SNAPSHOT_CHUNK_MIN_BYTES],
    },
    {
      name: "from the acknowledged offset",
      size: 10_000,
      maxMsgBytes: 4096,
      acked: 8192,
      want: [8192, 1808],
    },
    {
      name: "a snapshot smaller than a chunk",
      size: 100,
      maxMsgBytes: 4096,
      acked: 0,
      want: [0, 100],
    },
    { name: "an empty snapshot", size: 0, maxMsgBytes: 4096, acked: 0, want: [0, 0] },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const data = bytes(row.size);
      const sender = senderOf(data);
      if (row.acked > 0) sender.maybeAck(7, row.acked);
      const chunk = sender.nextChunk(row.maxMsgBytes);
      deepStrictEqual([chunk.offset, chunk.data.length], row.want);
      deepStrictEqual(chunk.data, data.subarray(row.want[0], row.want[0]! + row.want[1]!));
    });
  }
});

Deno.test("SnapshotSender.maybeAck() takes current answers and drops stale ones", async (t) => {
  const rows = [
    { name: "a new count", acked: 1024, index: 7, received: 2048, want: true, wantAcked: 2048 },
    {
      name: "the same count again, while a chunk is out, answers a repeated chunk",
      acked: 1024,
      index: 7,
      received: 1024,
      want: false,
      wantAcked: 1024,
    },
    {
      name: "a smaller count is stale",
      acked: 2048,
      index: 7,
      received: 1024,
      want: false,
      wantAcked: 2048,
    },
    { name: "0 starts over", acked: 2048, index: 7, received: 0, want: true, wantAcked: 0 },
    {
      name: "another snapshot's answer",
      acked: 1024,
      index: 6,
      received: 4096,
      want: false,
      wantAcked: 1024,
    },
    {
      name: "more than the whole snapshot is refused",
      acked: 1024,
      index: 7,
      received: 4097,
      want: false,
      wantAcked: 1024,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const sender = senderOf();
      sender.maybeAck(7, row.acked);
      sender.sent(1);
      strictEqual(sender.maybeAck(row.index, row.received), row.want);
      strictEqual(sender.acked, row.wantAcked);
      strictEqual(sender.inFlight, !row.want, "a taken answer frees the next chunk");
    });
  }
});

Deno.test("SnapshotSender.maybeAck() takes the same count again when no chunk is out", () => {
  const sender = senderOf();
  strictEqual(sender.maybeAck(7, 1024), true);
  strictEqual(sender.maybeAck(7, 1024), true);
  strictEqual(sender.inFlight, false);
});

Deno.test("SnapshotSender.maybeExpire() gives up a chunk unanswered for longer than the timeout", async (t) => {
  const rows = [
    { name: "nothing in flight", sent: false, now: 100, want: false },
    { name: "within the timeout", sent: true, now: 15, want: false },
    { name: "exactly at the timeout", sent: true, now: 20, want: false },
    { name: "past the timeout", sent: true, now: 21, want: true },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const sender = senderOf();
      if (row.sent) sender.sent(10);
      strictEqual(sender.maybeExpire(row.now, 10), row.want);
      strictEqual(sender.inFlight, row.sent && !row.want);
    });
  }
});

const META = { index: 9, term: 2, hash: "h9", config: EMPTY_CONFIG };

/** A chunk of a 6-byte snapshot at index 9, from leader a in term 2, unless overridden. */
function chunk(
  offset: number,
  data: number[],
  fields: Partial<SnapshotMessage> = {},
): SnapshotMessage {
  return {
    type: "snapshot",
    from: "a",
    to: "b",
    term: 2,
    meta: META,
    total: 6,
    offset,
    data: new Uint8Array(data),
    ...fields,
  };
}

Deno.test("SnapshotReceiver.receive() joins only consecutive chunks of one transfer", async (t) => {
  const rows: { name: string; chunks: SnapshotMessage[]; want: ChunkOutcome[] }[] = [
    {
      name: "in order, to completion",
      chunks: [chunk(0, [1, 2]), chunk(2, [3, 4]), chunk(4, [5, 6])],
      want: [
        { done: false, received: 2 },
        { done: false, received: 4 },
        { done: true, data: new Uint8Array([1, 2, 3, 4, 5, 6]) },
      ],
    },
    {
      name: "one chunk holding everything",
      chunks: [chunk(0, [1, 2, 3, 4, 5, 6])],
      want: [{ done: true, data: new Uint8Array([1, 2, 3, 4, 5, 6]) }],
    },
    {
      name: "a chunk past the end of what is held is dropped",
      chunks: [chunk(0, [1, 2]), chunk(4, [5, 6])],
      want: [{ done: false, received: 2 }, { done: false, received: 2 }],
    },
    {
      name: "a repeated chunk is dropped",
      chunks: [chunk(0, [1, 2]), chunk(2, [3, 4]), chunk(2, [3, 4])],
      want: [
        { done: false, received: 2 },
        { done: false, received: 4 },
        { done: false, received: 4 },
      ],
    },
    {
      name: "a chunk overrunning the total is dropped",
      chunks: [chunk(0, [1, 2]), chunk(2, [3, 4, 5, 6, 7])],
      want: [{ done: false, received: 2 }, { done: false, received: 2 }],
    },
    {
      name: "a later chunk without the start asks for the start",
      chunks: [chunk(2, [3, 4])],
      want: [{ done: false, received: 0 }],
    },
    ...([
      ["another leader", { from: "c" }],
      ["another term", { term: 3 }],
      ["another snapshot index", { meta: { ...META, index: 10 } }],
      ["another snapshot hash", { meta: { ...META, hash: "h9'" } }],
      ["another size", { total: 8 }],
    ] as const).flatMap(([what, fields]) => [
      {
        name: `a later chunk of ${what} asks for the start`,
        chunks: [chunk(0, [1, 2]), chunk(2, [3, 4], fields)],
        want: [{ done: false, received: 2 }, { done: false, received: 0 }] as ChunkOutcome[],
      },
      {
        name: `the first chunk of ${what} replaces the transfer held`,
        chunks: [chunk(0, [1, 2]), chunk(0, [9], fields), chunk(2, [3, 4])],
        want: [
          { done: false, received: 2 },
          { done: false, received: 1 },
          { done: false, received: 0 },
        ] as ChunkOutcome[],
      },
    ]),
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      const receiver = new SnapshotReceiver();
      deepStrictEqual(row.chunks.map((m) => receiver.receive(m)), row.want);
    });
  }
});

Deno.test("SnapshotReceiver forgets a transfer once complete or reset", async (t) => {
  await t.step("complete", () => {
    const receiver = new SnapshotReceiver();
    receiver.receive(chunk(0, [1, 2, 3, 4, 5, 6]));
    strictEqual(receiver.receiving, false);
    deepStrictEqual(receiver.receive(chunk(2, [3, 4])), { done: false, received: 0 });
  });
  await t.step("reset", () => {
    const receiver = new SnapshotReceiver();
    receiver.receive(chunk(0, [1, 2]));
    strictEqual(receiver.receiving, true);
    receiver.reset();
    strictEqual(receiver.receiving, false);
    deepStrictEqual(receiver.receive(chunk(2, [3, 4])), { done: false, received: 0 });
  });
});
