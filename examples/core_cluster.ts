/**
 * Three Raft cores in one process, stepped by hand: elect a leader, commit
 * three commands, and show that every node reports the same head.
 *
 * Run: deno run examples/core_cluster.ts
 *
 * @module
 */

import { type Message, Raft, seededPrng } from "../src/core/mod.ts";

const ids = ["n1", "n2", "n3"];
const members = ids.map((id) => ({ id, voter: true }));
const nodes = new Map(
  ids.map((id, i) => [id, new Raft({ id, prng: seededPrng(i), bootstrap: { members } })]),
);

/** One driver pass: persist (here: nothing to do), send, apply, advance. */
function drain(): Message[] {
  const outbox: Message[] = [];
  for (const node of nodes.values()) {
    while (node.hasReady()) {
      const rd = node.ready();
      outbox.push(...rd.messages);
      for (const entry of rd.committed) {
        if (entry.kind === "command") {
          console.log(
            `${node.id} applies #${entry.index}: ${new TextDecoder().decode(entry.data)}`,
          );
        }
      }
      node.advance();
    }
  }
  return outbox;
}

/** Delivers messages until the cluster is quiet. */
function settle(): void {
  for (let round = 0; round < 100; round++) {
    const outbox = drain();
    if (outbox.length === 0) return;
    for (const m of outbox) nodes.get(m.to)!.step(m);
  }
}

nodes.get("n1")!.campaign();
settle();
const leader = nodes.get("n1")!;
console.log(`leader: ${leader.leader} in term ${leader.term}`);

for (const command of ["set x=1", "set y=2", "set x=3"]) {
  leader.propose(new TextEncoder().encode(command));
}
settle();

for (const node of nodes.values()) {
  const { commitIndex, head } = node.status();
  console.log(`${node.id}: commit ${commitIndex} head ${head.slice(0, 16)}`);
}
