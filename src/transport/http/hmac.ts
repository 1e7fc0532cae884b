/**
 * HMAC-SHA256 for the peer proof and the stream seals: the runtime's
 * native one (`node:crypto`, which Deno, Bun and Node all have, reached
 * through `process.getBuiltinModule` so that nothing is imported where it
 * is missing), else `@noble/hashes`. Both are synchronous; the native one
 * is some seven times faster on a 30 KB frame (measured on Deno 2.9), which
 * is what a stream of appends under load is made of.
 *
 * @module
 */

import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { builtinModule } from "./builtin_module.ts";

/** The part of `node:crypto` used here. */
interface NativeCrypto {
  createHmac(
    algorithm: "sha256",
    key: Uint8Array,
  ): { update(data: Uint8Array): unknown; digest(): Uint8Array };
}

const native: NativeCrypto | null = builtinModule<NativeCrypto>(
  "node:crypto",
  (crypto) => typeof crypto.createHmac === "function",
);

/**
 * HMAC-SHA256 of the concatenation of `parts`.
 *
 * @param key The key.
 * @param parts The message, in pieces.
 * @returns The 32-byte MAC.
 *
 * @example RFC 4231, test case 2
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
 * import { hmacSha256 } from "./hmac.ts";
 *
 * const mac = hmacSha256(utf8ToBytes("Jefe"), [utf8ToBytes("what do ya want "), utf8ToBytes("for nothing?")]);
 * strictEqual(bytesToHex(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
 * ```
 */
export function hmacSha256(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array {
  if (native !== null) {
    const mac = native.createHmac("sha256", key);
    for (const part of parts) mac.update(part);
    const digest = mac.digest();
    return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
  }
  const mac = hmac.create(sha256, key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}
