// Overview: throughput per topic, lag per group and partition, quarantine and DLQ, SLA.
"use strict";

const OPERATOR_KEY = "onegrid.console.operator";

function operatorInput() {
  return el("label", { class: "operator" }, el("span", { i18n: "operator" }), " ",
    el("input", {
      id: "operator", placeholder: "staff:hj-0042", value: localStorage.getItem(OPERATOR_KEY) || "",
      onchange: (e) => localStorage.setItem(OPERATOR_KEY, e.target.value.trim()),
    }));
}

async function replay(body) {
  const actor = (document.getElementById("operator") || {}).value || "";
  if (!actor.trim()) { alert(t("operator") + "?"); return; }
  try {
    const result = await getJson("/api/quarantine/replay", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify(Object.assign({ actor: actor.trim() }, body)),
    });
    fill("replay-result", el("span", { class: "ok" },
      t("replayed") + ": " + result.replayed.map((r) => r.position + " → " + r.to).join(", ")));
  } catch (err) {
    fill("replay-result", el("span", { class: "error" }, err.message));
  }
}

function renderThroughput(rows) {
  const total = rows.reduce((s, r) => s + r.per_second, 0);
  fill("throughput",
    el("p", { class: "big", id: "total-rate", "data-rate": total.toFixed(3) }, total.toFixed(1), " ",
      el("span", { i18n: "rate" })),
    table([
      ["topic", (r) => r.topic],
      ["via", (r) => r.via || ""],
      ["rate", (r) => r.per_second.toFixed(2)],
      ["total", (r) => r.end_offsets],
      ["partitions", (r) => r.partitions],
    ], rows, (r) => ({ class: r.per_second > 0 ? "topic-row flowing" : "topic-row", "data-topic": r.topic, "data-rate": r.per_second })));
}

function renderLag(rows, totals) {
  const groups = Object.entries(totals).map(([group, lag]) => ({ group, lag }));
  fill("lag",
    table([["group", (g) => g.group], ["lag", (g) => g.lag]], groups,
      (g) => ({ class: g.lag > 0 ? "behind" : null, "data-group": g.group, "data-lag": g.lag })),
    el("details", { open: renderLag.open ? "" : null, ontoggle: (e) => { renderLag.open = e.target.open; } },
      el("summary", { i18n: "partition" }),
      table([
        ["group", (r) => r.group], ["topic", (r) => r.topic], ["partition", (r) => r.partition],
        ["committed", (r) => r.committed], ["end", (r) => r.end], ["lag", (r) => r.lag],
      ], rows, (r) => ({ class: r.lag > 0 ? "behind" : null }))));
}

function renderSetAside(kind, shelf) {
  const canReplay = kind === "quarantine";
  const reasons = table([
    ["reason", (r) => r.reason],
    ["count", (r) => r.count],
    ...(canReplay ? [["replay_all", (r) => el("button", { onclick: () => replay({ reason: r.reason }), i18n: "replay_all" })]] : []),
  ], shelf.by_reason, (r) => ({ "data-reason": r.reason, "data-count": r.count }));
  const latest = table([
    ["at", (r) => r.at],
    ["reason", (r) => r.reason],
    ["detail", (r) => el("span", { class: "detail", title: r.detail }, r.detail)],
    ["origin", (r) => r.origin],
    ...(canReplay ? [["replay", (r) => r.replayed_by
      ? el("span", { class: "ok" }, t("replayed") + " · " + r.replayed_by)
      : el("button", { onclick: () => replay({ topic: r.topic, partition: r.partition, offset: r.offset }), i18n: "replay" })]] : []),
  ], shelf.latest);
  fill(kind,
    el("p", { class: "big", id: kind + "-total", "data-count": shelf.total }, String(shelf.total)),
    canReplay ? operatorInput() : null,
    canReplay ? el("p", { id: "replay-result" }) : null,
    reasons, latest);
}

function renderSla(sla) {
  const states = Object.entries(sla.by_state).map(([state, n]) => state + " " + n).join(" · ");
  fill("sla",
    el("p", { class: "big" },
      el("span", { id: "open-count", "data-count": sla.open }, String(sla.open)), " ", el("span", { i18n: "open_cases" }),
      " · ", el("span", { id: "overdue-count", "data-count": sla.overdue_total }, String(sla.overdue_total)), " ",
      el("span", { i18n: "overdue" }),
      " · ", el("span", { id: "alert-count", "data-count": sla.alert_total }, String(sla.alert_total)), " ",
      el("span", { i18n: "alerts" })),
    el("p", { class: "states" }, states),
    el("h3", { i18n: "alerts" }),
    table([
      ["at", (a) => a.at], ["case", (a) => caseLink(a.case_id)], ["action", (a) => a.action],
      ["reason", (a) => a.reason], ["state", (a) => a.state], ["department", (a) => a.department],
      ["grid", (a) => a.grid],
    ], sla.alerts, () => ({ class: "alert-row" })),
    el("h3", { i18n: "overdue" }),
    table([
      ["case", (c) => caseLink(c.case_id)], ["state", (c) => c.state], ["department", (c) => c.department],
      ["overdue", (c) => c.overdue.join(", ")], ["grid", (c) => c.grid],
    ], sla.overdue));
}

async function renderRanking() {
  // Refreshed every 30 s: the figures move with closures, not with every message.
  if (renderRanking.at && Date.now() - renderRanking.at < 30000) return;
  renderRanking.at = Date.now();
  const r = await getJson("/api/rankings?dimension=department&metric=on_time_closure_rate&period=month");
  fill("ranking",
    r.error ? el("p", { class: "error" }, r.error) : null,
    el("p", {}, el("span", { i18n: "min_cases" }), ": " + r.min_cases),
    table([
      ["rank", (x) => x.rank], ["unit", (x) => x.value],
      ["figure", (x) => (100 * x.figure).toFixed(1) + "%"], ["sample", (x) => x.sample],
    ], r.ranked || []),
    el("h3", { i18n: "insufficient_sample" }),
    table([["unit", (x) => x.value], ["sample", (x) => x.sample]], r.unranked || []));
}

async function render() {
  const o = await getJson("/api/overview");
  const age = o.sample_age_s === null ? "—" : o.sample_age_s + " " + t("seconds_ago");
  fill("status",
    el("span", {}, t("sampled") + ": " + age),
    o.sample_error ? el("span", { class: "error" }, " · " + o.sample_error) : null,
    el("span", {}, " · " + t("spans_stored") + ": " + o.spans.stored));
  renderThroughput(o.throughput);
  renderLag(o.lag, o.lag_by_group);
  // Keep the operator's half-typed name and open <details> across polls: re-render only what changed.
  const q = JSON.stringify(o.set_aside.quarantine);
  if (q !== renderSetAside.lastQ) { renderSetAside("quarantine", o.set_aside.quarantine); renderSetAside.lastQ = q; }
  renderSetAside("dlq", o.set_aside.dlq);
  renderSla(o.sla);
  await renderRanking();
}

boot("/");
poll(render, 2000);
