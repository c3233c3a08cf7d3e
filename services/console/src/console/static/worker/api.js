// The worker's token and the API calls, all same-origin under /worker/api/.
const KEY = "onegrid.worker.token";

export function token() { return localStorage.getItem(KEY) || ""; }
export function setToken(t) { if (t) localStorage.setItem(KEY, t); else localStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

export async function call(method, path, { json, body, headers } = {}) {
  const h = { Authorization: "Bearer " + token(), ...(headers || {}) };
  let payload = body;
  if (json !== undefined) { h["Content-Type"] = "application/json"; payload = JSON.stringify(json); }
  const resp = await fetch("/worker/api" + path, { method, headers: h, body: payload, cache: "no-store" });
  const text = await resp.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch { doc = { detail: text }; }
  if (!resp.ok) {
    const d = doc && doc.detail;
    const said = typeof d === "string" ? d : JSON.stringify(d || doc);
    // dispatch's refusals name their reason code (e.g. self_handle.category_not_allowed): shown with the detail
    const code = doc && typeof doc.outcome === "string" ? doc.outcome.replace(/^refused:/, "") + ": " : "";
    throw new ApiError(resp.status, code + said);
  }
  return doc;
}

export const get = (path) => call("GET", path);
