import { type PlantedBug, runSeed } from "./cluster.ts";
import { loadMutant } from "./mutants.ts";
const mutants = {
  staleVotes: [{
    from: "} else if (m.term !== 0 && m.term < this.#term) {",
    to: '} else if (m.term !== 0 && m.term < this.#term && m.type !== "voteResponse") {',
  }],
  commitOldTerm: [{
    from: "if (index <= this.log.committed || this.log.term(index) !== this.#term) return;",
    to: "if (index <= this.log.committed) return;",
  }],
  noUpToDate: [{
    from: "if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {",
    to: "if (canVote) {",
  }],
  countUnpersisted: [{
    from: "id === this.id ? this.log.stable :",
    to: "id === this.id ? this.log.lastIndex() :",
  }],
  readNoQuorum: [{
    from: "if (voters.length === 1 && voters[0] === this.id) {",
    to: "if (voters.length >= 1) {",
  }],
};
for (const [name, muts] of Object.entries(mutants)) {
  const core = await loadMutant(name, muts);
  for (const nodes of [3, 5]) {
    let first = -1, count = 0;
    for (let s = 1; s <= 300; s++) {
      const r = runSeed({ seed: s, nodes, steps: 2000, core });
      if (r.violation) {
        count++;
        if (first < 0) {
          first = s;
          console.log(name, nodes, r.violation.slice(0, 150));
        }
      }
    }
    console.log(name, nodes, "first", first, "count", count);
  }
}
for (const bug of ["forgetVote", "ackBeforePersist"] as PlantedBug[]) {
  for (const nodes of [3, 5]) {
    let first = -1, count = 0;
    for (let s = 1; s <= 300; s++) {
      const r = runSeed({ seed: s, nodes, steps: 2000, bug });
      if (r.violation) {
        count++;
        if (first < 0) first = s;
      }
    }
    console.log(bug, nodes, "first", first, "count", count);
  }
}
