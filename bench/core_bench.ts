/**
 * The core's throughput: committing entries through three in-process cores
 * (messages stepped by hand, nothing persisted), against a baseline of just
 * hashing the same entries (work no implementation can skip). `deno bench`
 * reports each as a ratio of the baseline measured in the same run.
 *
 * @module
 */

import {
  createEntry,
  type Entry,
  GENESIS_HASH,
  type Message,
  Raft,
  seededPrng,
} from "../src/core/mod.ts";

const ENTRIES = 1000;
const payload = new TextEncoder().encode(
  JSON.stringify({ c: { op: "put", key: "some-key", value: 12345 } }),
);

function cluster(): Map<string, Raft> {
  const members = ["a", "b", "c"].map((id) => ({ id, voter: true }));
  return new Map(
    members.map((
      m,
      i,
    ) => [m.id, new Raft({ id: m.id, prng: seededPrng(i + 1), bootstrap: { members } })]),
  );
}

function settle(nodes: Map<string, Raft>): void {
  for (let round = 0; round < 1000; round++) {
    const out: Message[] = [];
    for (const n of nodes.values()) {
      while (n.hasReady()) {
        out.push(...n.ready().messages);
        n.advance();
      }
    }
    if (out.length === 0) return;
    for (const m of out) nodes.get(m.to)!.step(m);
  }
}

Deno.bench({
  name: `baseline: hash ${ENTRIES} entries`,
  group: "commit",
  baseline: true,
  fn() {
    let prev = GENESIS_HASH;
    const entries: Entry[] = [];
    for (let i = 1; i <= ENTRIES; i++) {
      const e = createEntry(i, prev, {
        term: 2,
        kind: "command",
        proposer: "a",
        timeMs: i,
        data: payload,
      });
      entries.push(e);
      prev = e.hash;
    }
  },
});

for (const batch of [1, 100]) {
  Deno.bench({
    name: `commit ${ENTRIES} entries on 3 cores, ${batch} per batch`,
    group: "commit",
    fn(b) {
      const nodes = cluster();
      const leader = nodes.get("a")!;
      leader.campaign();
      settle(nodes);
      b.start();
      for (let i = 0; i < ENTRIES; i += batch) {
        for (let j = 0; j < batch; j++) leader.propose(payload, i + j);
        settle(nodes);
      }
      b.end();
      if (leader.log.committed < ENTRIES) throw new Error("not all committed");
    },
  });
}
