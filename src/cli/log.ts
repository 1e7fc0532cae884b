/**
 * The CLI node's log: one line per event, with a timestamp, a level, an
 * event name and fields, as text (`--log-format text`, the default) or as
 * JSON (`--log-format json`, one object per line).
 *
 * Debug and info go to stdout, warnings and errors to stderr. In the text
 * format a warning or an error is the one line `watercraft: <message>` that
 * the command line has always printed (API.md section 1: "one clear line on
 * stderr"), and the contract's own lines (`watercraft listening on ...`)
 * are printed as they are; in the JSON format every line is an object.
 *
 * A small logger of our own rather than a library: it needs nothing a
 * runtime lacks, and the text format must keep the contract's lines.
 *
 * @module
 */

/** The levels, least severe first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];

/** The formats of `--log-format`. */
export const LOG_FORMATS = ["text", "json"] as const;

/** A log format. */
export type LogFormat = typeof LOG_FORMATS[number];

/** Values a log field may hold. */
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

/** Where a {@linkcode Logger} writes, and how. */
export interface LoggerOptions {
  /** Text or JSON. Default text. */
  readonly format?: LogFormat;
  /** The least severe level written. Default info. */
  readonly level?: LogLevel;
  /** Writes one stdout line (no newline). Default `console.log`. */
  readonly out?: (line: string) => void;
  /** Writes one stderr line (no newline). Default `console.error`. */
  readonly err?: (line: string) => void;
  /** The time of a record. Default `new Date()`. */
  readonly now?: () => Date;
}

/** Writes events as lines. */
export class Logger {
  readonly #format: LogFormat;
  readonly #min: number;
  readonly #out: (line: string) => void;
  readonly #err: (line: string) => void;
  readonly #now: () => Date;

  /**
   * Creates a logger.
   *
   * @param options Format, level and where to write.
   *
   * @example
   * ```ts
   * import { deepStrictEqual } from "node:assert/strict";
   * import { Logger } from "./log.ts";
   *
   * const lines: string[] = [];
   * const log = new Logger({ format: "json", out: (l) => lines.push(l), now: () => new Date(0) });
   * log.info("leader.changed", { leader: "n2", term: 3 });
   * log.debug("not.written");
   * deepStrictEqual(lines.map((l) => JSON.parse(l)), [
   *   { time: "1970-01-01T00:00:00.000Z", level: "info", event: "leader.changed", leader: "n2", term: 3 },
   * ]);
   * ```
   */
  constructor(options: LoggerOptions = {}) {
    this.#format = options.format ?? "text";
    this.#min = LOG_LEVELS.indexOf(options.level ?? "info");
    this.#out = options.out ?? ((line) => console.log(line));
    this.#err = options.err ?? ((line) => console.error(line));
    this.#now = options.now ?? (() => new Date());
  }

  /** The format lines are written in. */
  get format(): LogFormat {
    return this.#format;
  }

  /**
   * Logs a debug event.
   *
   * @param event The event's name, dotted (`peer.down`).
   * @param fields What happened.
   */
  debug(event: string, fields: LogFields = {}): void {
    this.#write("debug", event, fields);
  }

  /**
   * Logs an info event.
   *
   * @param event The event's name.
   * @param fields What happened.
   */
  info(event: string, fields: LogFields = {}): void {
    this.#write("info", event, fields);
  }

  /**
   * Logs a warning: in text, the line `watercraft: <msg>` on stderr.
   *
   * @param event The event's name.
   * @param fields What happened; `msg` is the line's text.
   */
  warn(event: string, fields: LogFields = {}): void {
    this.#write("warn", event, fields);
  }

  /**
   * Logs an error: in text, the line `watercraft: <msg>` on stderr.
   *
   * @param event The event's name.
   * @param fields What happened; `msg` is the line's text.
   */
  error(event: string, fields: LogFields = {}): void {
    this.#write("error", event, fields);
  }

  /**
   * Prints a line the contract fixes (such as `watercraft listening on ...`):
   * as it is in text, as the `msg` of an info event in JSON. Written
   * whatever the level.
   *
   * @param event The event's name.
   * @param text The line.
   * @param fields More fields for the JSON format.
   */
  announce(event: string, text: string, fields: LogFields = {}): void {
    if (this.#format === "text") this.#out(text);
    else this.#out(this.#json("info", event, { ...fields, msg: text }));
  }

  #write(level: LogLevel, event: string, fields: LogFields): void {
    if (LOG_LEVELS.indexOf(level) < this.#min) return;
    const severe = level === "warn" || level === "error";
    if (this.#format === "json") {
      (severe ? this.#err : this.#out)(this.#json(level, event, fields));
      return;
    }
    if (severe) {
      this.#err(`watercraft: ${fields.msg ?? event}`);
      return;
    }
    const pairs = Object.entries(fields).filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${textValue(v)}`);
    this.#out(
      [this.#now().toISOString(), level.toUpperCase(), event, ...pairs].join(" "),
    );
  }

  #json(level: LogLevel, event: string, fields: LogFields): string {
    return JSON.stringify({ time: this.#now().toISOString(), level, event, ...fields });
  }
}

/** A field's value in the text format: bare when it needs no quotes. */
function textValue(value: string | number | boolean | null | undefined): string {
  if (typeof value !== "string") return String(value);
  return /^[A-Za-z0-9._:/@,+-]+$/.test(value) ? value : JSON.stringify(value);
}
