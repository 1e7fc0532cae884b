/**
 * A WaterCraft member as a Cloudflare Durable Object: one object per member
 * id, keeping its log in the object's own SQLite storage
 * (`durableObjectStorage`), taking its ticks from the object's alarm
 * (`alarm_clock.ts`), talking to its peers with the HTTP transport, running
 * the built-in key-value state machine, and serving the Hono app of
 * `createApp` (client routes and peer routes) for every request the Worker
 * hands it (`worker.ts`).
 *
 * - The node starts in the constructor, while the runtime holds every event
 *   back (`blockConcurrencyWhile`), so the first request, and the first
 *   alarm after an eviction, find it loaded from storage.
 * - It joins its cluster in the background when its storage is empty and
 *   `WATERCRAFT_JOIN` names members; a failed join is retried on a later
 *   request or alarm.
 * - A node that stopped after an error (a storage write refused because a
 *   second instance of the object wrote, see `durableObjectStorage`) is
 *   replaced from storage by a later request or alarm, at most once per
 *   {@linkcode RESTART_DELAY_MS}.
 * - Settings come from the Worker's bindings, named as the Deno edge
 *   example's environment variables (`../config.ts`): `WATERCRAFT_ID`,
 *   `WATERCRAFT_ADVERTISE`, `WATERCRAFT_JOIN`, `WATERCRAFT_READ_ONLY`,
 *   `WATERCRAFT_SECRET` (a secret binding), `WATERCRAFT_CLIENT_TOKEN`,
 *   `WATERCRAFT_HEARTBEAT_MS`, `WATERCRAFT_ELECTION_MS`.
 *
 * It uses only Web-standard APIs and the Durable Object API: no `node:`
 * module, no compatibility flag.
 *
 * @module
 */

import type { WaterCraftNode } from "../../../src/node/node.ts";
import {
  durableObjectStorage,
  type DurableObjectStorageLike,
} from "../../../src/storage/durable_object.ts";
import { type EdgeConfig, readConfig } from "../config.ts";
import { startEdgeNode } from "../edge_node.ts";
import { type AlarmClock, alarmClock } from "./alarm_clock.ts";

/** The part of a Durable Object's state (`ctx`) the member uses. */
export interface MemberState {
  /** The object's storage: SQLite-backed, with alarms. */
  readonly storage: DurableObjectStorageLike & {
    setAlarm(scheduledTimeMs: number): Promise<void>;
  };
  /** Holds every event back until `fn` settles. */
  blockConcurrencyWhile<T>(fn: () => Promise<T>): Promise<T>;
}

/** The Worker's bindings the member reads: strings, by name. */
export type MemberEnv = Readonly<Record<string, unknown>>;

/**
 * Least time between two starts of the node, ms: a node that keeps failing
 * must not reload its log on every request.
 */
export const RESTART_DELAY_MS = 2000;
/** How long one join may take before a later request or alarm tries again, ms. */
const JOIN_TIMEOUT_MS = 20_000;
/** Path of the member's own diagnostics route (not part of the API). */
export const TIMERS_PATH = "/edge/timers";

/** A started node and what serves it. */
interface Running {
  readonly node: WaterCraftNode;
  readonly app: { fetch(request: Request): Response | Promise<Response> };
  readonly config: EdgeConfig;
  joining: Promise<void> | null;
  joined: boolean;
}

/** The Durable Object class of a member: export it from the Worker and bind it. */
export class WaterCraftMember {
  readonly #state: MemberState;
  readonly #env: MemberEnv;
  readonly #clock: AlarmClock;
  /** The node, or null before the first start and after a failed one. */
  #running: Running | null = null;
  /** The start in flight: one at a time. */
  #starting: Promise<Running> | null = null;
  /** No start before this time. */
  #notBeforeMs = 0;
  /** Why the last start or the node failed, for the answers while it cannot run. */
  #problem: string | null = null;
  /** Starts of the node in this instance of the object. */
  #starts = 0;
  /** When this instance of the object was created. */
  readonly #bornMs = Date.now();

  /**
   * Called by the runtime when the object is created (first use, or after
   * an eviction).
   *
   * @param state The object's state (`ctx`).
   * @param env The Worker's bindings.
   */
  constructor(state: MemberState, env: MemberEnv) {
    this.#state = state;
    this.#env = env;
    this.#clock = alarmClock({
      arm: (atMs) => {
        state.storage.setAlarm(atMs).catch((error) =>
          console.error("watercraft: cannot set the alarm:", error)
        );
      },
    });
    // Without a configured URL only a request can tell the node where it lives.
    const advertise = env.WATERCRAFT_ADVERTISE;
    if (typeof advertise === "string" && advertise.trim() !== "") {
      void state.blockConcurrencyWhile(() => this.#live(null).catch(() => null));
    }
  }

  /**
   * Serves one request: fires the timers due, then hands the request to the
   * node's app.
   *
   * @param request The request, as the Worker passed it on.
   * @returns The app's answer, or `503 unavailable` while the node cannot run.
   */
  async fetch(request: Request): Promise<Response> {
    let running: Running;
    try {
      running = await this.#live(new URL(request.url).origin);
    } catch (error) {
      return unavailable(error);
    }
    this.#drive(running);
    if (new URL(request.url).pathname === TIMERS_PATH) return this.#timers(request, running);
    return await running.app.fetch(request);
  }

  /** Called by the runtime when the alarm rings: fires the due timers and sets the next alarm. */
  async alarm(): Promise<void> {
    let running: Running;
    try {
      running = await this.#live(null);
    } catch (error) {
      console.error("watercraft: alarm:", error instanceof Error ? error.message : error);
      // Ring again: the alarm is the only thing that wakes an idle object.
      this.#clock.setTimer(() => {}, RESTART_DELAY_MS);
      return;
    }
    this.#clock.ring();
    this.#ensureJoined(running);
  }

  /** The node, started (or restarted after a failure) when needed. */
  async #live(origin: string | null): Promise<Running> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const running = this.#running ?? await this.#launch(origin);
      if (running.node.failure === null) return running;
      if (this.#running === running) {
        this.#running = null;
        this.#problem = `the node stopped after an error: ${String(running.node.failure)}`;
        await running.node.stop().catch(() => {});
      }
    }
    throw new Error("The node stopped after an error and is restarting");
  }

  #launch(origin: string | null): Promise<Running> {
    if (this.#starting !== null) return this.#starting;
    const waitMs = this.#notBeforeMs - Date.now();
    if (waitMs > 0) {
      return Promise.reject(
        new Error(`The node is not running (${this.#problem}); it starts again in ${waitMs} ms`),
      );
    }
    this.#notBeforeMs = Date.now() + RESTART_DELAY_MS;
    const starting = this.#start(origin);
    this.#starting = starting;
    starting.then(
      (running) => this.#running = running,
      (error) => {
        this.#problem = `it could not start: ${error instanceof Error ? error.message : error}`;
        console.error("watercraft: cannot start the member:", error);
      },
    ).finally(() => this.#starting = null);
    return starting;
  }

  async #start(origin: string | null): Promise<Running> {
    const env = this.#env;
    const config = readConfig((name) => typeof env[name] === "string" ? env[name] : undefined);
    const { node, app, url } = await startEdgeNode(config, origin, {
      storage: durableObjectStorage(this.#state.storage),
      clock: this.#clock,
    });
    this.#starts++;
    const st = node.status();
    console.log(
      `watercraft member ${node.id} at ${url} started in a Durable Object: ` +
        `${node.readOnly ? "read-only" : "voter"}, log ${st.lastIndex} entries, term ${st.term}`,
    );
    // A node that has a log rejoins from it; only an empty one joins.
    const joined = config.join.length === 0 || st.lastIndex > 0;
    return { node, app, config, joining: null, joined };
  }

  /** Fires the timers due and makes sure the node joins. */
  #drive(running: Running): void {
    this.#clock.runDue();
    this.#ensureJoined(running);
  }

  #ensureJoined(running: Running): void {
    if (running.joined || running.joining !== null) return;
    const { config, node } = running;
    const via = config.join.join(",");
    running.joining = node.join(config.join, { timeoutMs: JOIN_TIMEOUT_MS }).then(
      (added) => {
        running.joined = true;
        console.log(
          added
            ? `watercraft joined the cluster via ${via} as ${node.id}`
            : `watercraft has state already: ${node.id} rejoins its cluster`,
        );
      },
      (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        console.error(`watercraft: cannot join via ${via}: ${message} (retried later)`);
      },
    ).finally(() => running.joining = null);
  }

  /** How the alarm has kept time, for the operator (and the test that measures it). */
  #timers(request: Request, running: Running): Response {
    const token = running.config.clientToken;
    if (token !== null && request.headers.get("authorization") !== `Bearer ${token}`) {
      return Response.json({ error: { code: "unauthorized", message: "Bad token" } }, {
        status: 401,
      });
    }
    return Response.json({
      bornMs: this.#bornMs,
      starts: this.#starts,
      armedAtMs: this.#clock.armedAtMs,
      pending: this.#clock.pending,
      ...this.#clock.lateness,
    });
  }
}

function unavailable(error: unknown): Response {
  const message = error instanceof Error ? error.message : String(error);
  return Response.json({ error: { code: "unavailable", message } }, { status: 503 });
}
