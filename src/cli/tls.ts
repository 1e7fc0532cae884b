/**
 * The TLS files the CLI's flags name (`--tls-cert`, `--tls-key`, `--ca`),
 * read and checked before anything starts, so that a wrong path is a usage
 * error rather than a failed handshake later.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { type CliOptions, UsageError } from "./flags.ts";

/** The TLS material named by the flags. */
export interface TlsFiles {
  /** PEM certificate and key to serve HTTPS with, or null for plain HTTP. */
  readonly serve: { cert: string; key: string } | null;
  /** PEM of the extra CA to trust when calling peers (`--ca`), or null. */
  readonly ca: string | null;
}

/**
 * Reads the TLS files named by the options.
 *
 * @param options The parsed settings.
 * @returns The PEM texts.
 * @throws {UsageError} When a file cannot be read or is not PEM.
 *
 * @example Plain HTTP reads no file
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { loadTls } from "./tls.ts";
 *
 * deepStrictEqual(loadTls({ tlsCert: null, tlsKey: null, ca: null }), { serve: null, ca: null });
 * ```
 */
export function loadTls(options: Pick<CliOptions, "tlsCert" | "tlsKey" | "ca">): TlsFiles {
  const ca = options.ca === null ? null : readPem("--ca", options.ca, "CERTIFICATE");
  if (options.tlsCert === null || options.tlsKey === null) return { serve: null, ca };
  return {
    serve: {
      cert: readPem("--tls-cert", options.tlsCert, "CERTIFICATE"),
      key: readPem("--tls-key", options.tlsKey, "PRIVATE KEY"),
    },
    ca,
  };
}

function readPem(flag: string, path: string, kind: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new UsageError(`${flag}: cannot read ${path}${code ? ` (${code})` : ""}`);
  }
  if (!new RegExp(`-----BEGIN [A-Z ]*${kind}-----`).test(text)) {
    throw new UsageError(`${flag}: ${path} holds no PEM ${kind.toLowerCase()}`);
  }
  return text;
}
