// Shared by every console page: bilingual labels, safe DOM building, polling. No framework, no build.
"use strict";

const I18N = {
  title: ["运行监控台", "Operations console"],
  nav_overview: ["总览", "Overview"],
  nav_map: ["地图", "Map"],
  throughput: ["吞吐量", "Throughput"],
  ranking: ["考核排名（按期结案率）", "Ranking (on-time closure rate)"],
  insufficient_sample: ["样本不足，不参与排名", "Insufficient sample: not ranked"],
  unit: ["单位", "Unit"],
  rank: ["名次", "Rank"],
  figure: ["指标", "Figure"],
  sample: ["案件数", "Cases"],
  min_cases: ["最少案件数", "Minimum cases"],
  topic: ["主题", "Topic"],
  via: ["经由", "Via"],
  rate: ["条/秒", "msg/s"],
  total: ["累计", "Total"],
  partitions: ["分区", "Partitions"],
  lag: ["消费滞后", "Consumer lag"],
  group: ["消费组", "Group"],
  partition: ["分区", "Partition"],
  committed: ["已提交", "Committed"],
  end: ["末端", "End"],
  dlq: ["死信", "Dead letters"],
  quarantine: ["隔离", "Quarantine"],
  reason: ["原因", "Reason"],
  count: ["数量", "Count"],
  detail: ["详情", "Detail"],
  origin: ["原始位置", "Origin"],
  at: ["时间", "Time"],
  replay: ["重放", "Replay"],
  replay_all: ["全部重放", "Replay all"],
  replayed: ["已重放", "Replayed"],
  operator: ["操作员", "Operator"],
  sla: ["时限与督办", "SLA"],
  open_cases: ["在办案件", "Open cases"],
  overdue: ["超时", "Overdue"],
  photos: ["照片与证据", "Photos and evidence"],
  by_report: ["上报", "Report"],
  by_self_handle: ["自行处置", "Handled on the spot"],
  by_resolve: ["部门处置", "Department's resolve"],
  by_verify: ["核查", "Check"],
  by_rework: ["核查不通过", "Check failed"],
  photo_missing: ["文件不在平台照片库", "File not in the console's photo store"],
  open_full: ["查看原图", "Full size"],
  alerts: ["超时与吹哨", "Breaches and escalations"],
  action: ["动作", "Action"],
  state: ["状态", "State"],
  department: ["部门", "Department"],
  grid: ["网格", "Grid"],
  case: ["案件", "Case"],
  category: ["类别", "Category"],
  severity: ["等级", "Severity"],
  network: ["来源网络", "Network"],
  deadlines: ["时限", "Deadlines"],
  trail: ["审计轨迹", "Audit trail"],
  trace: ["链路追踪", "Trace"],
  event: ["事件", "Event"],
  actor: ["操作者", "Actor"],
  position: ["位置", "Position"],
  service: ["服务", "Service"],
  span: ["环节", "Span"],
  duration: ["耗时", "Duration"],
  level: ["层级", "Level"],
  no_data: ["暂无数据", "No data yet"],
  no_spans: ["尚未收到该链路的跨度", "No span of this trace received yet"],
  sampled: ["采样", "Sampled"],
  seconds_ago: ["秒前", "s ago"],
  spans_stored: ["已存跨度", "Spans stored"],
  unavailable: ["不可用", "Unavailable"],
  linked: ["关联", "linked"],
  lang: ["语言", "Language"],
  ledger: ["受理台账（每条原始记录的去向）", "Ledger (what became of every legacy record)"],
  feed: ["来源", "Feed"],
  hour: ["小时", "Hour"],
  received: ["收到", "Received"],
  "case.reported": ["立案", "Case"],
  "case.linked": ["并案", "Linked"],
  "case.amended": ["更新", "Amended"],
  "case.cancelled": ["撤销", "Cancelled"],
  measurement: ["监测数据", "Measurement"],
  duplicate: ["重复", "Duplicate"],
  dead_letter: ["死信", "Dead letter"],
  pending: ["处理中", "Pending"],
  unaccounted: ["去向不明", "Unaccounted"],
  duplicated: ["重复处理", "Processed twice"],
  balanced: ["账实相符", "Balanced"],
  not_balanced: ["账实不符：告警", "Does not balance: alarm"],
};

const LANG_KEY = "onegrid.console.lang";
let lang = localStorage.getItem(LANG_KEY) || "both";

function t(key) {
  const pair = I18N[key];
  if (!pair) return key;
  if (lang === "zh") return pair[0];
  if (lang === "en") return pair[1];
  return pair[0] + " " + pair[1];
}

// Elements are built with textContent only: record contents (reasons, details, titles) are untrusted.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = String(v);
    else if (k === "i18n") { node.dataset.i18n = v; node.textContent = t(v); }
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function relabel(root) {
  for (const node of (root || document).querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  document.title = "OneGrid " + t("title");
}

function table(columns, rows, rowAttrs) {
  const head = el("tr", {}, ...columns.map(([key]) => el("th", { i18n: key })));
  const body = rows.map((row, i) =>
    el("tr", rowAttrs ? rowAttrs(row, i) : {}, ...columns.map(([, cell]) => {
      const v = cell(row);
      return el("td", {}, v instanceof Node ? v : (v === null || v === undefined ? "" : String(v)));
    })));
  if (!rows.length) body.push(el("tr", { class: "empty" }, el("td", { colspan: columns.length, i18n: "no_data" })));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
}

function fill(id, ...children) {
  const node = document.getElementById(id);
  if (node) node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
}

function caseLink(caseId) {
  return el("a", { href: "/cases/" + encodeURIComponent(caseId), class: "case-link" }, caseId.slice(0, 8));
}

// The operator's access token: handed over in the URL fragment (`/#token=...`, never sent to a server
// or written to a log), kept for this tab in sessionStorage, and sent on every API call.
function accessToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("onegrid_token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("onegrid_token") || "";
}

// A file the API serves (a photo) as a data: URL for <img>: fetched with the token, which an
// <img src> cannot carry (the pages' policy allows data: images, not blob:). Resolves to null when
// the API has no such file (404).
async function getDataUrl(url) {
  const token = accessToken();
  const resp = await fetch(url, token ? { headers: { Authorization: "Bearer " + token } } : {});
  if (resp.status === 404) return null;
  if (!resp.ok) throw new Error("HTTP " + resp.status);
  const blob = await resp.blob();
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

async function getJson(url, options) {
  const opts = Object.assign({ cache: "no-store" }, options || {});
  const token = accessToken();
  if (token) opts.headers = Object.assign({}, opts.headers || {}, { Authorization: "Bearer " + token });
  const resp = await fetch(url, opts);
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.detail ? JSON.stringify(body.detail) : "HTTP " + resp.status);
  return body;
}

// Calls `render` now and then every `ms`; a failed poll is shown in #status and retried.
function poll(render, ms) {
  let busy = false;
  async function tick() {
    if (busy) return;
    busy = true;
    try {
      await render();
      document.body.dataset.loaded = "true";
    } catch (err) {
      fill("status", el("span", { class: "error" }, t("unavailable") + ": " + err.message));
    } finally {
      busy = false;
    }
  }
  tick();
  return setInterval(tick, ms || 2000);
}

function header(active) {
  const link = (href, key) => el("a", { href, class: href === active ? "active" : null, i18n: key });
  const langs = [["zh", "中文"], ["en", "English"], ["both", "中文 / English"]].map(([code, label]) =>
    el("button", {
      class: code === lang ? "lang active" : "lang",
      onclick: () => { lang = code; localStorage.setItem(LANG_KEY, code); location.reload(); },
    }, label));
  return el("header", {},
    el("h1", {}, "OneGrid 多网合一 · ", el("span", { i18n: "title" })),
    el("nav", {}, link("/", "nav_overview"), link("/map", "nav_map")),
    el("div", { class: "langs" }, ...langs));
}

function boot(active) {
  document.body.prepend(header(active));
  relabel();
}
