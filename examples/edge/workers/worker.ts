/**
 * The Worker of a WaterCraft member on Cloudflare Workers (or `workerd`
 * locally): every request goes to the member's Durable Object, the one
 * named by `WATERCRAFT_ID`, which serves it (`member.ts`). The object class
 * is exported from here, as the runtime requires, and bound as
 * `WATERCRAFT_MEMBER` (see `wrangler.jsonc` and README.md).
 *
 * @module
 */

import { WaterCraftMember } from "./member.ts";

export { WaterCraftMember };

/** A Durable Object namespace binding: the part used here. */
interface MemberNamespace {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(request: Request): Promise<Response> };
}

/** The Worker's bindings. */
interface Env {
  readonly WATERCRAFT_MEMBER: MemberNamespace;
  readonly WATERCRAFT_ID?: string;
}

export default {
  /**
   * Hands the request to the member's object.
   *
   * @param request The request.
   * @param env The Worker's bindings.
   * @returns The object's answer.
   */
  fetch(request: Request, env: Env): Promise<Response> {
    const name = env.WATERCRAFT_ID?.trim() || "edge";
    return env.WATERCRAFT_MEMBER.get(env.WATERCRAFT_MEMBER.idFromName(name)).fetch(request);
  },
};
