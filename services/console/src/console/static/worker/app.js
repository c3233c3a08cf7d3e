// The grid worker's app: My work, Patrol report, a case (self-handle, escalate, verify), Outbox.
// Every report and action goes through the IndexedDB outbox (outbox.js) and is sent from there
// with its idempotency key, online or not: one path, so what works offline is what works online.
import { ApiError, call, get, setToken, token } from "./api.js";
import * as outbox from "./outbox.js";
import { downscale } from "./photos.js";
import { drawMap } from "./map.js";
import { language, t, toggle } from "./i18n.js";

const $ = (sel, root = document) => root.querySelector(sel);
const state = { me: null, grids: null, categories: [], work: [], here: null, sent: loadSent(), syncing: false };

function h(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick" || k === "oninput" || k === "onchange") n[k] = v;
    else if (v !== null && v !== undefined && v !== false) n.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) n.append(c instanceof Node ? c : String(c));
  return n;
}

function loadSent() { try { return JSON.parse(localStorage.getItem("onegrid.worker.sent") || "[]"); } catch { return []; } }
function saveSent() { localStorage.setItem("onegrid.worker.sent", JSON.stringify(state.sent.slice(-50))); }
const uuid = () => crypto.randomUUID();
const when = (iso) => (iso ? new Date(iso).toLocaleString(language() === "zh" ? "zh-CN" : "en-GB", { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit" }) : "");

// -- chrome -------------------------------------------------------------------------------------
function chrome() {
  document.title = t("app") + " · OneGrid";
  $("#title").textContent = t("app");
  $("#lang").textContent = language() === "zh" ? "EN" : "中文";
  $("#tab-work").firstChild.textContent = t("work");
  $("#tab-report").firstChild.textContent = t("report");
  $("#tab-outbox").firstChild.textContent = t("outbox") + " ";
  const net = $("#net");
  net.textContent = navigator.onLine ? t("online") : "离线 Offline";
  net.className = navigator.onLine ? "net" : "net off";
  const banner = $("#banner");
  banner.hidden = navigator.onLine;
  banner.textContent = t("offline");
  const tab = (location.hash.slice(1) || "work").split("/")[0];
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("on", a.dataset.tab === tab);
}

async function refreshCount() {
  const items = await outbox.all();
  $("#queued-count").textContent = items.length ? `(${items.length})` : "";
  return items;
}

// -- data ---------------------------------------------------------------------------------------
async function load() {
  if (!navigator.onLine) return;
  try {
    if (!state.me) state.me = await get("/me");
    if (!state.grids) state.grids = await get("/grids");
    if (!state.categories.length) state.categories = (await get("/categories")).categories;
    const q = state.here ? `?lat=${state.here.lat}&lon=${state.here.lon}` : "";
    state.work = (await get("/work" + q)).cases;
    localStorage.setItem("onegrid.worker.cache", JSON.stringify({ me: state.me, grids: state.grids, categories: state.categories, work: state.work }));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { setToken(""); location.hash = "#signin"; }
  }
}

function fromCache() {
  try {
    const c = JSON.parse(localStorage.getItem("onegrid.worker.cache") || "null");
    if (c) Object.assign(state, { me: state.me || c.me, grids: state.grids || c.grids, categories: state.categories.length ? state.categories : c.categories, work: state.work.length ? state.work : c.work });
  } catch { /* a broken cache is only a slower start */ }
}

// -- sending ------------------------------------------------------------------------------------
async function sendItem(item) {
  for (const p of item.photos) {
    await call("PUT", "/photos/" + p.sha256, { body: p.bytes, headers: { "Content-Type": p.media_type } });
  }
  const photos = item.photos.map((p) => ({ sha256: p.sha256, media_type: p.media_type }));
  if (item.kind === "patrol") {
    await call("POST", "/patrol", { json: { ...item.body, photos } });
    state.sent.push({ report_id: item.key, title: item.body.description.split("\n")[0].slice(0, 40), at: item.created });
    saveSent();
  } else {
    await call("POST", `/cases/${item.case_id}/${item.action}`, { json: { ...item.body, photos }, headers: { "Idempotency-Key": item.key } });
  }
}

export async function sync() {
  if (state.syncing || !navigator.onLine || !token()) return;
  state.syncing = true;
  try {
    const items = (await outbox.all()).sort((a, b) => a.created.localeCompare(b.created));
    for (const item of items) {
      try {
        await sendItem(item);
        await outbox.remove(item.key);
      } catch (e) {
        // a refusal (4xx) is kept with its reason for the worker to see; anything else: retry later
        if (e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) {
          await outbox.put({ ...item, error: `${e.status} ${e.message}` });
          continue;
        }
        break;
      }
    }
  } finally {
    state.syncing = false;
    await refreshCount();
  }
  await load();
  render();
}

async function enqueue(item) {
  await outbox.put({ created: new Date().toISOString(), error: null, ...item });
  await refreshCount();
  await render();
  sync();
}

// -- screens ------------------------------------------------------------------------------------
function signinScreen() {
  const input = h("textarea", { id: "token", placeholder: t("token_hint"), rows: 4 });
  return h("section", { id: "signin" },
    h("div", { class: "card" }, h("label", { for: "token" }, t("token_hint")), input,
      h("button", { class: "wide", id: "signin-button", onclick: () => { setToken(input.value.trim()); location.hash = "#work"; start(); } }, t("signin"))));
}

function caseCard(c) {
  const overdue = (c.overdue || []).length > 0;
  const due = c.deadlines && (c.deadlines.verify_by || c.deadlines.resolve_by || c.deadlines.acknowledge_by);
  return h("a", { class: "card case", href: `#case/${c.case_id}`, "data-case": c.case_id, "data-expected": c.expected },
    h("h3", {}, c.title || c.category || c.case_id.slice(0, 8)),
    h("div", {}, h("span", { class: `tag ${c.expected}` }, t("expected_" + c.expected)), overdue ? h("span", { class: "tag overdue" }, t("overdue")) : null,
      h("span", { class: "meta" }, t("state_" + c.state))),
    h("div", { class: "meta" }, c.distance_m != null ? `${c.distance_m} ${t("metres")} · ` : "", due ? `${t("due")} ${when(due)}` : "", c.department ? ` · ${c.department}` : ""));
}

function workScreen() {
  const map = h("div", { id: "work-map" });
  drawMap(map, state.grids, { cases: state.work, point: state.here, onPick: null });
  const grids = (state.me ? state.me.grids : []).map((g) => `${g.name || ""} ${g.code}`).join("、");
  const mine = state.sent.slice().reverse().slice(0, 5).map((s) => {
    const c = state.work.find((w) => w.source_id === s.report_id);
    return h("div", { class: "meta", "data-report": s.report_id }, `${s.title} · `, c ? h("a", { href: `#case/${c.case_id}`, class: "ok" }, t("case_opened")) : t("waiting_case"));
  });
  return h("section", { id: "work" },
    h("div", { class: "meta" }, `${t("my_grids")}: ${grids}`),
    map,
    h("h2", {}, t("work")),
    state.work.length ? state.work.map(caseCard) : h("p", { class: "meta", id: "no-cases" }, t("no_cases")),
    mine.length ? h("div", { class: "card", id: "my-reports" }, h("strong", {}, t("my_reports")), mine) : null);
}

function photoPicker(id, photos, onchange, label = t("take_photo")) {
  const input = h("input", { type: "file", accept: "image/*", capture: "environment", id, multiple: true });
  const thumbs = h("div", { class: "thumbs" }, photos.map((p) => h("img", { src: p.preview, alt: p.sha256.slice(0, 8) })));
  const err = h("div", { class: "error" });
  input.onchange = async () => {
    for (const f of input.files) {
      if (photos.length >= 6) break;
      try {
        const p = await downscale(f);
        if (!photos.some((q) => q.sha256 === p.sha256)) photos.push(p);
      } catch (e) { err.textContent = String(e.message || e); }
    }
    input.value = "";
    onchange();
  };
  return h("div", {}, h("button", { type: "button", class: "secondary wide", onclick: () => input.click() }, `${label} (${photos.length}/6)`), input, thumbs, err);
}

const draft = { category: null, query: "", description: "", severity: "IV", location: null, photos: [], grid: null, error: "" };

function reportScreen() {
  const grids = state.me ? state.me.grids : [];
  draft.grid = draft.grid || (grids[0] && grids[0].code);
  const q = draft.query.trim().toLowerCase();
  const matches = state.categories.filter((c) => !q || c.zh.includes(q) || c.en.toLowerCase().includes(q) || c.group_zh.includes(q) || c.code.includes(q)).slice(0, 30);
  const choices = h("div", { class: "choices", id: "category-choices" }, matches.map((c) =>
    h("button", { type: "button", class: "choice" + (draft.category === c.code ? " on" : ""), "data-code": c.code, onclick: () => { draft.category = c.code; render(); } }, `${c.zh} · ${c.group_zh}`, h("div", { class: "meta" }, c.en))));
  const search = h("input", { id: "category-search", type: "search", placeholder: t("search_category"), value: draft.query });
  search.oninput = () => { draft.query = search.value; const pos = search.selectionStart; render(); const s = $("#category-search"); s.focus(); s.setSelectionRange(pos, pos); };
  const desc = h("textarea", { id: "description", rows: 3 });
  desc.value = draft.description;
  desc.oninput = () => { draft.description = desc.value; };
  const map = h("div", { id: "pick-map" });
  drawMap(map, state.grids, { point: draft.location, onPick: (p) => { draft.location = { ...p, source: "map", accuracy_m: null }; render(); } });
  const chosen = state.categories.find((c) => c.code === draft.category);
  return h("section", { id: "report" },
    h("label", { for: "category-search" }, t("category"), chosen ? h("span", { class: "ok", id: "chosen-category" }, ` ✓ ${chosen.zh}`) : null),
    search, choices,
    h("label", { for: "description" }, t("description")), desc,
    h("label", {}, t("location")),
    h("button", { type: "button", class: "secondary wide", id: "use-gps", onclick: useGps }, t("use_gps")),
    h("div", { class: "meta" }, draft.location ? `WGS-84 ${draft.location.lat.toFixed(5)}, ${draft.location.lon.toFixed(5)} (${draft.location.source})` : t("pick_on_map")),
    map,
    h("label", {}, t("photos")), photoPicker("report-photos", draft.photos, render),
    h("label", {}, t("severity")),
    h("div", { class: "sev" }, ["I", "II", "III", "IV"].map((s) => h("button", { type: "button", class: draft.severity === s ? "on" : "", onclick: () => { draft.severity = s; render(); } }, t("sev_" + s)))),
    grids.length > 1 ? h("label", {}, t("grid")) : null,
    grids.length > 1 ? h("select", { id: "grid", onchange: (e) => { draft.grid = e.target.value; } }, grids.map((g) => h("option", { value: g.code, selected: g.code === draft.grid }, `${g.name} ${g.code}`))) : null,
    h("div", { class: "error", id: "report-error" }, draft.error),
    h("button", { class: "wide", id: "submit-report", onclick: submitReport }, t("submit")));
}

function useGps() {
  if (!navigator.geolocation) return;
  navigator.geolocation.getCurrentPosition(
    (pos) => { draft.location = { lat: +pos.coords.latitude.toFixed(6), lon: +pos.coords.longitude.toFixed(6), source: "gps", accuracy_m: pos.coords.accuracy }; state.here = draft.location; render(); },
    () => { draft.error = t("need_location"); render(); },
    { enableHighAccuracy: true, timeout: 15000 });
}

async function submitReport() {
  const missing = !draft.category ? "need_category" : !draft.description.trim() ? "need_description" : !draft.location ? "need_location" : !draft.photos.length ? "need_photo" : null;
  if (missing) { draft.error = t(missing); render(); return; }
  const report_id = uuid();
  const body = {
    report_id, grid_code: draft.grid, category: draft.category, description: draft.description.trim(), severity: draft.severity,
    location: draft.location, reported_at: new Date().toISOString(),
  };
  const photos = draft.photos.map(({ sha256, media_type, bytes }) => ({ sha256, media_type, bytes }));
  Object.assign(draft, { category: null, query: "", description: "", location: null, photos: [], error: "", severity: "IV" });
  location.hash = "#outbox";
  await enqueue({ key: report_id, kind: "patrol", body, photos });
}

const act = { photos: [], before: [], note: "", reason: "beyond_grid", error: "" };

function caseScreen(id) {
  const c = state.work.find((w) => w.case_id === id);
  if (!c) return h("section", { id: "case", "data-state": "gone" }, h("p", {}, t("done")), h("a", { href: "#work", class: "button" }, t("back")));
  const note = h("textarea", { id: "action-note", rows: 2 });
  note.value = act.note;
  note.oninput = () => { act.note = note.value; };
  const parts = [h("div", { class: "card" }, h("h3", {}, c.title || c.category),
    h("div", { class: "meta" }, `${t("state")}: ${t("state_" + c.state)} · ${c.category || ""}`),
    c.department ? h("div", { class: "meta" }, `${t("department")}: ${c.department}`) : null,
    h("div", { class: "meta" }, `${t("due")}: ${when(c.deadlines && (c.deadlines.verify_by || c.deadlines.resolve_by))}`))];
  const map = h("div", {});
  drawMap(map, state.grids, { cases: [c] });
  parts.push(map);
  if (c.expected === "self_handle") {
    parts.push(h("div", { class: "card", id: "self-handle" }, h("h3", {}, t("self_handle")),
      photoPicker("before-photos", act.before, render, t("before_photo")),
      photoPicker("after-photos", act.photos, render, t("after_photo")),
      h("label", { for: "action-note" }, t("note")), note,
      h("button", { class: "wide", id: "confirm-self-handle", onclick: () => submitAction(c, "self_handle", { reason: "self_handle.on_spot" }, [...act.before, ...act.photos]) }, t("confirm_handled"))));
  }
  if (c.expected === "verify") {
    parts.push(h("div", { class: "card", id: "verify" }, h("h3", {}, t("verify")),
      photoPicker("verify-photos", act.photos, render),
      h("label", { for: "action-note" }, t("note")), note,
      h("div", { class: "row" },
        h("button", { id: "verify-pass", onclick: () => submitAction(c, "verify", { reason: "verify.passed" }, act.photos) }, t("pass")),
        h("button", { class: "danger", id: "verify-fail", onclick: () => submitAction(c, "rework", { reason: "verify.failed" }, act.photos) }, t("fail")))));
  }
  if (!["resolved", "escalated", "verified"].includes(c.state)) {
    const reasons = ["beyond_grid", "needs_enforcement", "emergency", "safety_risk"];
    parts.push(h("div", { class: "card", id: "escalate" }, h("h3", {}, t("escalate")),
      h("label", { for: "escalate-reason" }, t("reason")),
      h("select", { id: "escalate-reason", onchange: (e) => { act.reason = e.target.value; } }, reasons.map((r) => h("option", { value: r, selected: act.reason === r }, t("reason_" + r)))),
      h("button", { class: "wide danger", id: "escalate-button", onclick: () => submitAction(c, "escalate", { reason: "whistle." + act.reason }, []) }, t("send_up"))));
  }
  parts.push(h("div", { class: "error", id: "action-error" }, act.error), h("a", { href: "#work", class: "button secondary" }, t("back")));
  return h("section", { id: "case", "data-case": id, "data-state": c.state }, parts);
}

async function submitAction(c, action, extra, photos) {
  if ((action === "self_handle" && !act.photos.length) || (action !== "escalate" && action !== "verify" && !photos.length)) {
    act.error = t("need_photo"); render(); return;
  }
  const body = { ...extra, note: act.note || null };
  const sent = photos.map(({ sha256, media_type, bytes }) => ({ sha256, media_type, bytes }));
  Object.assign(act, { photos: [], before: [], note: "", error: "" });
  location.hash = "#outbox";
  await enqueue({ key: uuid(), kind: "action", case_id: c.case_id, action, body, photos: sent });
}

async function outboxScreen() {
  const items = await outbox.all();
  const section = h("section", { id: "outbox" }, h("h2", {}, t("outbox")));
  if (!items.length) section.append(h("p", { class: "meta", id: "outbox-empty" }, t("nothing_queued")));
  for (const i of items) {
    section.append(h("div", { class: "card", "data-key": i.key, "data-kind": i.kind },
      h("strong", {}, i.kind === "patrol" ? `${t("report")}: ${i.body.description.slice(0, 30)}` : `${t(i.action)} ${i.case_id.slice(0, 8)}`),
      h("div", { class: "meta" }, `${when(i.created)} · ${i.photos.length} 张照片 photos · ${i.error ? t("failed") + ": " + i.error : t("queued")}`)));
  }
  section.append(h("button", { class: "wide", id: "send-now", onclick: sync }, t("send_now")));
  if (token()) section.append(h("button", { class: "wide secondary", onclick: () => { setToken(""); location.hash = "#signin"; } }, t("signout")));
  return section;
}

// -- routing ------------------------------------------------------------------------------------
export async function render() {
  chrome();
  const [tab, arg] = (location.hash.slice(1) || "work").split("/");
  const screen = $("#screen");
  let node;
  if (!token() || tab === "signin") node = signinScreen();
  else if (tab === "report") node = reportScreen();
  else if (tab === "case") node = caseScreen(arg);
  else if (tab === "outbox") node = await outboxScreen();
  else node = workScreen();
  screen.replaceChildren(node);
  document.body.dataset.screen = token() ? tab : "signin";
}

async function start() {
  fromCache();
  await refreshCount();
  await render();
  await load();
  await render();
  sync();
}

// A sign-in link (`/worker/#token=<jwt>`, as the console's) keeps the token on the phone and leaves
// the address bar without it.
function takeTokenFromHash() {
  const m = location.hash.match(/token=([^&]+)/);
  if (!m) return false;
  setToken(decodeURIComponent(m[1]));
  Object.assign(state, { me: null, grids: null, work: [] });
  history.replaceState(null, "", "/worker/#work");
  return true;
}

// An error the app did not expect is shown, not swallowed: the worker can tell the hotline what it said.
function shout(what) {
  const banner = $("#banner");
  banner.hidden = false;
  banner.textContent = String(what);
  console.error(String(what));
}
window.addEventListener("error", (e) => shout(e.message));
window.addEventListener("unhandledrejection", (e) => shout(e.reason && e.reason.stack ? e.reason.stack : e.reason));

takeTokenFromHash();
$("#lang").onclick = () => { toggle(); render(); };
window.addEventListener("hashchange", () => { if (takeTokenFromHash()) start(); else render(); });
window.addEventListener("online", () => { chrome(); sync(); });
window.addEventListener("offline", () => { chrome(); });
// My work follows the cases every 3 s; a case's screen is redrawn only when the case moved on (what
// the worker is typing or has photographed is kept in `act` either way).
function stale() {
  const [tab, id] = (location.hash.slice(1) || "work").split("/");
  if (tab === "work") return true;
  const shown = document.querySelector("#case");
  const c = state.work.find((w) => w.case_id === id);
  return tab === "case" && !!shown && shown.dataset.state !== (c ? c.state : "gone");
}
setInterval(() => { if (navigator.onLine && !state.syncing) load().then(() => { if (stale()) render(); }); }, 3000);
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/worker/sw.js", { scope: "/worker/" }).catch(() => {});
start();
window.onegridWorker = { sync, render, state };
