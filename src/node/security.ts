/**
 * Which security each node was created with (its `secret` or `insecure`
 * option), for the HTTP app that serves it: given once, to the node, and
 * kept out of the node's public shape, so that the secret is not one
 * property away from anyone who holds the node. Not part of the public API.
 *
 * @module
 */

import type { PeerSecurity } from "../transport/transport.ts";

const securities = new WeakMap<object, PeerSecurity | null>();

/**
 * Records a node's security; the node does it when it is created.
 *
 * @param node The node.
 * @param security Its security; null when it has neither a secret nor `insecure`.
 */
export function recordSecurity(node: object, security: PeerSecurity | null): void {
  securities.set(node, security);
}

/**
 * The security a node was created with.
 *
 * @param node The node.
 * @returns Its security; null when it has neither a secret nor `insecure`
 *   (or was not created as a node).
 */
export function peerSecurityOf(node: object): PeerSecurity | null {
  return securities.get(node) ?? null;
}
