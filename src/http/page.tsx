/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
/**
 * The live cluster page, `GET /`: the members with their role and how
 * recently each was heard from, this node's indexes and head, and the
 * committed log as it grows, fed by `/v1/watch`. Rendered with Hono's JSX
 * on the server (no build step); a small inline script keeps it live with
 * `fetch` only, nothing from a CDN.
 *
 * The page holds no data: its script reads the client API, with the client
 * token if the cluster has one (give it after `#token=` in the URL: a
 * fragment never leaves the browser). Everything the cluster says is put
 * in the page as text, never as markup, and a content security policy
 * allows only this page's own script and style, and requests to its own
 * origin.
 *
 * @module
 */

import type { Context } from "hono";

/** Entries the page shows at most; older ones scroll away. */
const ENTRIES_SHOWN = 50;

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2733; background: #f6f8fa; }
h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
.muted { color: #5b6b7b; } code, td.mono { font-family: ui-monospace, monospace; font-size: 12px; }
table { border-collapse: collapse; background: #fff; min-width: 40rem; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #e3e8ee; }
th { font-weight: 600; background: #eef2f6; }
.up { color: #137333; } .down { color: #b3261e; } .leader { font-weight: 600; }
#error { color: #b3261e; min-height: 1.2em; }
`;

/**
 * The script: polls the status and members once a second and follows the
 * log. Plain DOM calls and `textContent` only.
 */
const SCRIPT = `
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const headers = token ? { authorization: "Bearer " + token } : {};
const $ = (id) => document.getElementById(id);
const cell = (row, text, cls) => { const td = row.insertCell(); td.textContent = String(text); if (cls) td.className = cls; return td; };
const say = (text) => { $("error").textContent = text; };
async function getJson(path) {
  const res = await fetch(path, { headers });
  if (!res.ok) throw new Error(path + ": HTTP " + res.status + (res.status === 401 ? " (add #token=... to the URL)" : ""));
  return res.json();
}
async function refresh() {
  try {
    const [status, members] = await Promise.all([getJson("/v1/status"), getJson("/v1/members")]);
    $("node").textContent = status.id + " · " + status.role + (status.readOnly ? " (read-only)" : "");
    $("term").textContent = status.term;
    $("leader").textContent = status.leader ? status.leader.id : "none";
    $("indexes").textContent = "commit " + status.commitIndex + " · applied " + status.appliedIndex + " · last " + status.lastIndex;
    $("head").textContent = status.head;
    const body = $("members").tBodies[0];
    body.replaceChildren();
    for (const m of members.members) {
      const row = body.insertRow();
      const isLeader = members.leader && members.leader.id === m.id;
      cell(row, m.id + (isLeader ? " ★" : ""), isLeader ? "leader" : "");
      cell(row, m.url ?? "", "mono");
      cell(row, m.voter ? "voter" : (m.readOnly ? "read-only" : "learner"));
      cell(row, m.alive ? "alive" : "silent", m.alive ? "up" : "down");
      cell(row, m.lastSeenMs + " ms");
    }
    say("");
  } catch (e) { say(String(e.message ?? e)); }
}
function show(entry) {
  const body = $("entries").tBodies[0];
  const row = body.insertRow(0);
  cell(row, entry.index); cell(row, entry.term); cell(row, entry.kind); cell(row, entry.proposer);
  cell(row, entry.data === null ? "" : JSON.stringify(entry.data).slice(0, 120), "mono");
  cell(row, entry.error ? entry.error.code : (entry.result === undefined ? "" : JSON.stringify(entry.result).slice(0, 60)), "mono");
  cell(row, entry.id.slice(0, 12) + "…", "mono");
  while (body.rows.length > ${ENTRIES_SHOWN}) body.deleteRow(-1);
}
function event(name, data) {
  if (name === "entry") show(JSON.parse(data));
  if (name === "leader") {
    const e = JSON.parse(data);
    const li = document.createElement("li");
    li.textContent = new Date().toLocaleTimeString() + ": term " + e.term + ", leader " + (e.leader ? e.leader.id : "none");
    $("leaders").prepend(li);
  }
}
async function follow() {
  let last = null;
  for (let tries = 0; ; tries++) {
    try {
      let path = "/v1/watch";
      if (last === null) {
        const status = await getJson("/v1/status");
        path += "?after=" + Math.max(0, status.appliedIndex - ${ENTRIES_SHOWN});
      }
      const res = await fetch(path, { headers: last === null ? headers : { ...headers, "last-event-id": last } });
      if (res.status === 410) { last = null; continue; }
      if (!res.ok) throw new Error("/v1/watch: HTTP " + res.status);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let text = "", name = "", data = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
        let nl;
        while ((nl = text.indexOf("\\n")) !== -1) {
          const line = text.slice(0, nl); text = text.slice(nl + 1);
          if (line === "") { if (data) event(name, data); name = ""; data = ""; continue; }
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data = line.slice(5).trim();
          else if (line.startsWith("id:")) last = line.slice(3).trim();
        }
      }
    } catch (e) { say(String(e.message ?? e)); }
    await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.min(tries, 5))));
  }
}
refresh(); setInterval(refresh, 1000); follow();
`;

/**
 * Answers `GET /` with the page.
 *
 * @param c The request's context.
 * @returns The page, with its content security policy.
 */
export function clusterPage(c: Context): Response | Promise<Response> {
  const nonce = Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
  c.header(
    "content-security-policy",
    `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; ` +
      "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  );
  c.header("cache-control", "no-store");
  return c.html(
    "<!doctype html>" +
      (
        <html lang="en">
          <head>
            <meta charset="utf-8" />
            <meta name="viewport" content="width=device-width, initial-scale=1" />
            <title>WaterCraft cluster</title>
            <style nonce={nonce} dangerouslySetInnerHTML={{ __html: STYLE }} />
          </head>
          <body>
            <h1>
              WaterCraft · <span id="node">…</span>
            </h1>
            <div class="muted">
              term <span id="term">…</span> · leader <span id="leader">…</span> ·{" "}
              <span id="indexes">…</span>
            </div>
            <div class="muted">
              head <code id="head">…</code>
            </div>
            <div id="error"></div>
            <h2>Members</h2>
            <table id="members">
              <thead>
                <tr>
                  <th>id</th>
                  <th>url</th>
                  <th>kind</th>
                  <th>state</th>
                  <th>last heard</th>
                </tr>
              </thead>
              <tbody></tbody>
            </table>
            <h2>Committed log (newest first)</h2>
            <table id="entries">
              <thead>
                <tr>
                  <th>index</th>
                  <th>term</th>
                  <th>kind</th>
                  <th>proposer</th>
                  <th>command</th>
                  <th>result</th>
                  <th>id</th>
                </tr>
              </thead>
              <tbody></tbody>
            </table>
            <h2>Leader changes seen</h2>
            <ul id="leaders"></ul>
            <script nonce={nonce} dangerouslySetInnerHTML={{ __html: SCRIPT }} />
          </body>
        </html>
      ),
  );
}
