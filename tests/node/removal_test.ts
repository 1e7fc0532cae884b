/**
 * When a node counts itself removed (`src/node/removal.ts`): only once the
 * configuration that leaves it out is committed, or on another member's
 * word while no leader is heard. Until the removal commits this node may be
 * the one an election of the old configuration needs, so it must go on
 * campaigning (the node simulator found a cluster that stalled for good
 * when it did not).
 *
 * @module
 */

import { strictEqual } from "node:assert/strict";
import type { Raft } from "../../src/core/raft.ts";
import { Removal } from "../../src/node/removal.ts";

/** The parts of a core that {@linkcode Removal} reads. */
interface CoreView {
  role: "leader" | "follower" | "candidate";
  leader: string | null;
  committed: number;
  configIndex: number;
  members: string[];
}

function removalOf(id: string, view: CoreView): Removal {
  const raft = {
    get role() {
      return view.role;
    },
    get leader() {
      return view.leader;
    },
    log: {
      get committed() {
        return view.committed;
      },
      config: () => ({
        index: view.configIndex,
        config: { members: view.members.map((m) => ({ id: m, voter: true })) },
      }),
    },
  } as unknown as Raft;
  return new Removal(id, () => raft);
}

Deno.test("a node whose log holds its own removal is removed only once the removal commits", () => {
  const view: CoreView = {
    role: "follower",
    leader: null,
    committed: 9,
    configIndex: 10,
    members: ["n1", "n2"],
  };
  const removal = removalOf("n3", view);
  strictEqual(removal.removed, false, "uncommitted: an old configuration's election may need it");
  view.role = "candidate";
  strictEqual(removal.removed, false);
  view.committed = 10;
  strictEqual(removal.removed, true);
  view.role = "leader";
  strictEqual(removal.removed, false, "a leader that removed itself leads until it hands over");
});

Deno.test("a member's word that a newer configuration leaves this node out counts while no leader is heard", () => {
  const view: CoreView = {
    role: "follower",
    leader: "n1",
    committed: 10,
    configIndex: 10,
    members: ["n1", "n2", "n3"],
  };
  const removal = removalOf("n3", view);
  removal.note(9);
  strictEqual(removal.removed, false, "an older configuration says nothing");
  removal.note(12);
  strictEqual(removal.removed, false, "a leader is heard: its word wins");
  view.leader = null;
  strictEqual(removal.removed, true);
  view.configIndex = 12;
  view.members = ["n1", "n2", "n3"];
  strictEqual(
    removal.removed,
    false,
    "added back: the log now holds a newer configuration with it",
  );
});
