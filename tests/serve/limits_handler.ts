/**
 * The handler of the connection-limit probes (`probes.ts`): it answers at
 * once, except `/slow?ms=N`, which answers after N ms; `POST /stream`, which
 * answers at once with a body that says `open`, then, once the request's
 * body has ended, its size (so a client knows its request is in progress);
 * and other `PUT`s and `POST`s, which read the whole body first and answer
 * with its size.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Answers one probe request.
 *
 * @param request The request.
 * @returns The answer.
 */
export async function limitsHandler(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (url.pathname === "/slow") {
    const ms = Math.min(Number(url.searchParams.get("ms") ?? "0"), 60_000);
    await new Promise((resolve) => setTimeout(resolve, ms));
    return Response.json({ slow: ms });
  }
  if (url.pathname === "/stream" && request.body !== null) {
    const body = request.body;
    return new Response(
      new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(encoder.encode("open\n"));
          let bytes = 0;
          try {
            for await (const chunk of body) bytes += chunk.length;
            controller.enqueue(encoder.encode(`bytes ${bytes}\n`));
          } catch {
            // The client went away.
          }
          controller.close();
        },
      }),
    );
  }
  if (request.method === "PUT" || request.method === "POST") {
    const body = new Uint8Array(await request.arrayBuffer());
    return Response.json({ bytes: body.length });
  }
  return Response.json({ ok: true });
}
