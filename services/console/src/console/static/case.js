// A case: where it stands, its audit trail (every record about it, in log order) and its trace(s)
// as waterfalls of the spans the services exported.
"use strict";

const caseId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");

function renderCase(doc) {
  const c = doc.case;
  if (!c) {
    fill("case", el("p", {}, doc.ended ? t("state") + ": " + doc.ended : t("no_data")));
    return;
  }
  const rows = [
    ["state", c.state], ["category", c.category], ["severity", c.severity], ["network", c.network],
    ["department", c.department], ["grid", c.grid],
    ["deadlines", Object.entries(c.deadlines || {}).map(([k, v]) => k + " " + (v || "—")).join(" · ")],
    ["overdue", (c.overdue || []).join(", ")],
    // photos by content hash (the same hashes are in the audit trail's records)
    ["photos", (c.photos || []).map((p) => p.by + " " + p.sha256).join(" · ")],
  ];
  fill("case",
    c.title ? el("p", { class: "title" }, c.title) : null,
    el("dl", { class: "facts", id: "case-state", "data-state": c.state },
      ...rows.flatMap(([k, v]) => [el("dt", { i18n: k }), el("dd", {}, v === null || v === undefined ? "—" : String(v))])));
}

function renderTrail(doc) {
  const parts = [];
  if (doc.trail_error) parts.push(el("p", { class: "error" }, t("unavailable") + ": " + doc.trail_error));
  parts.push(table([
    ["at", (e) => e.recorded_at],
    ["event", (e) => e.event_type],
    ["topic", (e) => e.topic],
    ["position", (e) => e.position],
    ["actor", (e) => e.actor],
    ["reason", (e) => e.reason],
    ["trace", (e) => e.trace_id ? el("a", { href: "#trace-" + e.trace_id }, e.trace_id.slice(0, 8)) : ""],
  ], doc.trail, (e) => ({ class: "trail-entry", "data-seq": e.seq, "data-event-type": e.event_type, "data-topic": e.topic })));
  fill("trail", ...parts);
}

function waterfall(traceId, spans) {
  if (!spans.length) return el("p", { class: "muted" }, t("no_spans"));
  const end = Math.max(...spans.map((s) => s.offset_ms + s.duration_ms), 1);
  const rows = spans.map((s) => {
    const left = (100 * s.offset_ms / end).toFixed(2), width = Math.max(0.3, 100 * s.duration_ms / end).toFixed(2);
    return el("div", {
      class: "span-row" + (s.status === "error" ? " failed" : "") + (s.linked ? " linked" : ""),
      "data-trace-id": s.trace_id, "data-span-id": s.span_id, "data-service": s.service,
    },
      el("div", { class: "span-label", style: `padding-left:${s.depth * 14}px` },
        el("span", { class: "svc" }, s.service), " ", s.name, s.linked ? el("em", {}, " (" + t("linked") + ")") : null),
      el("div", { class: "span-track" },
        el("div", { class: "span-bar", style: `left:${left}%;width:${width}%`, title: JSON.stringify(s.attributes) })),
      el("div", { class: "span-ms" }, s.duration_ms.toFixed(1) + " ms"));
  });
  return el("div", { class: "waterfall" }, ...rows);
}

function renderTraces(doc) {
  const ids = Object.keys(doc.traces);
  if (!ids.length) { fill("traces", el("p", { class: "muted", i18n: "no_data" })); return; }
  fill("traces", ...ids.map((tid) => el("div", { class: "trace", id: "trace-" + tid, "data-trace-id": tid },
    el("h3", {}, el("code", {}, tid), " · " + doc.traces[tid].length + " " + t("span")),
    waterfall(tid, doc.traces[tid]))));
}

async function render() {
  const doc = await getJson("/api/cases/" + encodeURIComponent(caseId));
  fill("status");
  renderCase(doc);
  renderTrail(doc);
  renderTraces(doc);
}

boot("");
document.getElementById("case-id").textContent = caseId;
poll(render, 2000);
