/**
 * A node's metrics: counters and latency histograms, rendered in the
 * Prometheus text format.
 *
 * @module
 */

/** Upper bounds (seconds) of the latency histogram buckets. */
const BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** A latency histogram in seconds. */
export class Histogram {
  readonly #counts = new Array<number>(BUCKETS_S.length).fill(0);
  #sum = 0;
  #count = 0;

  /** Records one observation, in milliseconds. */
  observeMs(ms: number): void {
    const s = Math.max(0, ms) / 1000;
    this.#sum += s;
    this.#count++;
    for (let i = 0; i < BUCKETS_S.length; i++) if (s <= BUCKETS_S[i]!) this.#counts[i]!++;
  }

  /** Number of observations. */
  get count(): number {
    return this.#count;
  }

  /** Renders the histogram's sample lines under `name`. */
  render(name: string): string[] {
    const lines = BUCKETS_S.map((b, i) => `${name}_bucket{le="${b}"} ${this.#counts[i]}`);
    lines.push(`${name}_bucket{le="+Inf"} ${this.#count}`);
    lines.push(`${name}_sum ${this.#sum}`, `${name}_count ${this.#count}`);
    return lines;
  }
}

/** One metric family for rendering. */
export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  readonly value: number | Histogram | ReadonlyMap<string, number>;
  /** Label name for map values. */
  readonly label?: string;
}

/**
 * Renders metric families in the Prometheus text exposition format (0.0.4).
 *
 * @param families The metrics.
 * @returns The text, ending with a newline.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { renderMetrics } from "./metrics.ts";
 *
 * const text = renderMetrics([{ name: "x_total", help: "X.", type: "counter", value: 3 }]);
 * strictEqual(text, "# HELP x_total X.\n# TYPE x_total counter\nx_total 3\n");
 * ```
 */
export function renderMetrics(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    if (f.value instanceof Histogram) out.push(...f.value.render(f.name));
    else if (typeof f.value === "number") out.push(`${f.name} ${f.value}`);
    else {
      for (const [k, v] of f.value) {
        out.push(`${f.name}{${f.label ?? "label"}="${escapeLabel(k)}"} ${v}`);
      }
    }
  }
  return out.join("\n") + "\n";
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** What a node counts, for {@linkcode nodeMetrics}. */
export interface NodeStats {
  /** Writes received. */
  proposals: number;
  /** Writes that ended in an error. */
  proposalsFailed: number;
  /** Times the known leader changed. */
  leaderChanges: number;
  /** Reads received. */
  reads: number;
  /** Entries applied. */
  applied: number;
  /** Snapshots taken. */
  snapshotsTaken: number;
  /** Snapshots installed from a leader. */
  snapshotsInstalled: number;
  /** Snapshot chunks sent. */
  snapshotChunksSent: number;
  /** Leader: read rounds sent to part of the voters, then widened to all. */
  readRoundsWidened: number;
  /** Election and transfer messages dropped as sent by a non-member. */
  nonMemberMessages: number;
  /** Leader: from proposal until committed. */
  readonly replication: Histogram;
  /** Time to make one batch durable. */
  readonly diskSync: Histogram;
  /** Time to apply one batch. */
  readonly apply: Histogram;
}

/**
 * Creates zeroed counters.
 *
 * @returns Fresh stats.
 */
export function nodeStats(): NodeStats {
  return {
    proposals: 0,
    proposalsFailed: 0,
    leaderChanges: 0,
    reads: 0,
    applied: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    snapshotChunksSent: 0,
    readRoundsWidened: 0,
    nonMemberMessages: 0,
    replication: new Histogram(),
    diskSync: new Histogram(),
    apply: new Histogram(),
  };
}

/** The node's state that metrics report. */
export interface MetricsView {
  /** The role `/v1/status` reports. */
  readonly role: "leader" | "follower" | "candidate" | "learner";
  /** Current term. */
  readonly term: number;
  /** Highest committed index. */
  readonly commitIndex: number;
  /** Highest applied index. */
  readonly appliedIndex: number;
  /** Last log index. */
  readonly lastIndex: number;
  /** Peer messages refused as impossible from a correct peer. */
  readonly refusedMessages: number;
  /** Whether this node knows a leader (itself included). */
  readonly hasLeader?: boolean;
  /** On a leader, entries each follower trails its last index by. */
  readonly followerLag?: ReadonlyMap<string, number>;
}

/**
 * Renders a node's metrics in the Prometheus text format.
 *
 * @param stats What the node counted.
 * @param st Its state now.
 * @returns The metrics text.
 */
export function nodeMetrics(stats: NodeStats, st: MetricsView): string {
  const roles = new Map<string, number>(
    (["leader", "follower", "candidate", "learner"] as const).map((r) => [r, 0]),
  );
  roles.set(st.role, 1);
  const families: MetricFamily[] = [
    {
      name: "watercraft_role",
      help: "1 for the role this node has.",
      type: "gauge",
      value: roles,
      label: "role",
    },
    { name: "watercraft_term", help: "Current Raft term.", type: "gauge", value: st.term },
    {
      name: "watercraft_has_leader",
      help: "1 when this node knows a leader (itself included), else 0.",
      type: "gauge",
      value: st.hasLeader ? 1 : 0,
    },
    {
      name: "watercraft_follower_lag_entries",
      help: "Leader only: entries each follower's log trails the leader's last index by.",
      type: "gauge",
      value: st.followerLag ?? new Map(),
      label: "peer",
    },
    {
      name: "watercraft_commit_index",
      help: "Highest committed index.",
      type: "gauge",
      value: st.commitIndex,
    },
    {
      name: "watercraft_applied_index",
      help: "Highest applied index.",
      type: "gauge",
      value: st.appliedIndex,
    },
    {
      name: "watercraft_last_index",
      help: "Last log index.",
      type: "gauge",
      value: st.lastIndex,
    },
    {
      name: "watercraft_proposals_total",
      help: "Writes received.",
      type: "counter",
      value: stats.proposals,
    },
    {
      name: "watercraft_proposals_failed_total",
      help: "Writes that ended in an error.",
      type: "counter",
      value: stats.proposalsFailed,
    },
    {
      name: "watercraft_reads_total",
      help: "Reads received.",
      type: "counter",
      value: stats.reads,
    },
    {
      name: "watercraft_applied_total",
      help: "Entries applied.",
      type: "counter",
      value: stats.applied,
    },
    {
      name: "watercraft_snapshots_taken_total",
      help: "Snapshots of the state machine taken (each compacts the log).",
      type: "counter",
      value: stats.snapshotsTaken,
    },
    {
      name: "watercraft_snapshots_installed_total",
      help: "Snapshots received from a leader and installed.",
      type: "counter",
      value: stats.snapshotsInstalled,
    },
    {
      name: "watercraft_snapshot_chunks_sent_total",
      help: "Snapshot chunks sent to followers behind the compacted log.",
      type: "counter",
      value: stats.snapshotChunksSent,
    },
    {
      name: "watercraft_read_rounds_widened_total",
      help:
        "Leader: linearizable-read rounds sent to as many voters as a quorum needs and widened to every peer, no quorum having answered within a tenth of the heartbeat interval (often: a slow or paused follower).",
      type: "counter",
      value: stats.readRoundsWidened,
    },
    {
      name: "watercraft_peer_messages_refused_total",
      help:
        "Peer messages no correct peer sends (a term past the bound, a commit past the log): a bug or a forgery.",
      type: "counter",
      value: st.refusedMessages,
    },
    {
      name: "watercraft_peer_messages_from_non_members_total",
      help:
        "Election and leadership-transfer messages dropped because their sender is not a member (removed, or never one).",
      type: "counter",
      value: stats.nonMemberMessages,
    },
    {
      name: "watercraft_leader_changes_total",
      help: "Times the known leader changed.",
      type: "counter",
      value: stats.leaderChanges,
    },
    {
      name: "watercraft_write_replication_seconds",
      help:
        "Leader: from proposal until committed (replication round trip, followers' disk included).",
      type: "histogram",
      value: stats.replication,
    },
    {
      name: "watercraft_disk_sync_seconds",
      help: "Time to make one batch durable.",
      type: "histogram",
      value: stats.diskSync,
    },
    {
      name: "watercraft_apply_seconds",
      help: "Time to apply one batch.",
      type: "histogram",
      value: stats.apply,
    },
  ];
  return renderMetrics(families);
}
