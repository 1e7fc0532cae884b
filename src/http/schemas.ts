/**
 * zod schemas of the client routes' bodies, parameters and headers (those
 * the key-value routes share are in `src/validation.ts`).
 *
 * @module
 */

import { z } from "zod";
import { NODE_ID_PATTERN, NODE_ID_RULE } from "../core/config.ts";
import { jsonValue } from "../validation.ts";

/**
 * What a client token may hold: RFC 6750's `b64token`, the only tokens an
 * `Authorization: Bearer` header can carry (base64, base64url and hex all fit).
 */
export const CLIENT_TOKEN_PATTERN: RegExp = /^[A-Za-z0-9._~+/-]+=*$/;

/** {@linkcode CLIENT_TOKEN_PATTERN} in words, for error messages. */
export const CLIENT_TOKEN_RULE =
  "letters, digits and - . _ ~ + / only, optionally ending in = (an RFC 6750 bearer token)";

/** A node id. */
export const nodeId = z.string().regex(NODE_ID_PATTERN, `must match ${NODE_ID_RULE}`);

/** An entry id: lowercase hex SHA-256. */
export const entryId = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits");

/** `POST /v1/entries` body. */
export const entryBody = z.object({ data: jsonValue }).strict();

/** `POST /v1/leader/transfer` body. */
export const transferBody = z.object({ id: nodeId.optional() }).strict();

/** `POST /v1/members` body. */
export const memberBody = z.object({
  id: nodeId,
  url: z.url({ protocol: /^https?$/ }),
  readOnly: z.boolean().optional(),
}).strict();

/** `?wait=` of `POST /v1/entries`. */
export const waitQuery = z.enum(["accepted", "committed"]).default("committed");
