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
  ];
  fill("case",
    c.title ? el("p", { class: "title" }, c.title) : null,
    el("dl", { class: "facts", id: "case-state", "data-state": c.state },
      ...rows.flatMap(([k, v]) => [el("dt", { i18n: k }), el("dd", {}, v === null || v === undefined ? "—" : String(v))])));
}

// Thumbnails by hash, fetched once through the case (the operator's scope decides): hash -> a
// promise of an object URL, or of null when the console's store has no file of that hash.
const thumbs = new Map();

function byLabel(by) {
  return I18N["by_" + by] ? t("by_" + by) : by;
}

function photoFigure(p) {
  const base = "/api/cases/" + encodeURIComponent(caseId) + "/photos/" + p.sha256;
  const img = el("img", { class: "thumb", alt: byLabel(p.by) + " " + p.sha256.slice(0, 12) });
  const hash = el("code", { title: p.ref }, p.sha256.slice(0, 16) + "…");
  const fig = el("figure", { class: "photo", "data-sha256": p.sha256, "data-by": p.by }, img,
    el("figcaption", {}, byLabel(p.by) + (p.at ? " · " + p.at.slice(0, 19).replace("T", " ") : ""), el("br"), hash));
  if (!thumbs.has(p.sha256)) thumbs.set(p.sha256, getDataUrl(base + "?size=thumb").catch(() => null));
  thumbs.get(p.sha256).then((url) => {
    if (url) {
      img.src = url;
      const full = el("a", { href: "#", class: "open-full", i18n: "open_full" });
      full.addEventListener("click", async (ev) => {
        ev.preventDefault();
        const big = await getDataUrl(base + "?size=full");
        if (big) showFull(big, p);
      });
      fig.querySelector("figcaption").append(" · ", full);
    } else {
      // a department's evidence kept in its own system: its reference, named by the hash
      fig.classList.add("missing");
      img.replaceWith(el("p", { class: "muted", i18n: "photo_missing" }));
    }
  });
  return fig;
}

// The photo as stored, over the page until clicked.
function showFull(url, p) {
  const box = el("div", { class: "lightbox", id: "lightbox", title: p.sha256 },
    el("img", { src: url, alt: byLabel(p.by) + " " + p.sha256.slice(0, 12) }));
  box.addEventListener("click", () => box.remove());
  document.getElementById("lightbox")?.remove();
  document.body.append(box);
}

function renderPhotos(c) {
  const photos = (c && c.photos) || [];
  const refs = (c && c.evidence) || [];
  if (!photos.length && !refs.length) { fill("photos", el("p", { class: "muted", i18n: "no_data" })); return; }
  // redrawn only when the list changes: the page polls every two seconds
  const key = JSON.stringify([photos.map((p) => p.ref), refs.map((e) => e.ref)]);
  const node = document.getElementById("photos");
  if (node && node.dataset.key === key) return;
  fill("photos",
    el("div", { class: "photos" }, ...photos.map(photoFigure)),
    refs.length ? el("ul", { class: "evidence-refs" }, ...refs.map((e) =>
      el("li", { class: "evidence-ref" }, byLabel(e.by) + " · ", el("code", {}, e.ref)))) : null);
  if (node) node.dataset.key = key;
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
  renderPhotos(doc.case);
  renderTrail(doc);
  renderTraces(doc);
}

boot("");
document.getElementById("case-id").textContent = caseId;
poll(render, 2000);
