// Map of open cases over the grid polygons: inline SVG, lon/lat projected equirectangularly
// (x scaled by cos(latitude), good enough over a city).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 960;
const STATE_COLOURS = {
  reported: "#8c8c8c", registered: "#1677ff", dispatched: "#13c2c2", acknowledged: "#52c41a",
  in_progress: "#a0d911", resolved: "#722ed1", verified: "#2f54eb", returned: "#fa8c16",
  escalated: "#f5222d", suspended: "#bfbfbf", reopened: "#eb2f96",
};
let grids = null;
let gridsKey = "";

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function projection(bbox) {
  const [minX, minY, maxX, maxY] = bbox;
  const kx = Math.cos(((minY + maxY) / 2) * Math.PI / 180);
  const w = Math.max((maxX - minX) * kx, 1e-9), h = Math.max(maxY - minY, 1e-9);
  const scale = WIDTH / w;
  return { height: Math.ceil(h * scale), xy: ([lon, lat]) => [((lon - minX) * kx * scale).toFixed(1), ((maxY - lat) * scale).toFixed(1)] };
}

function ringsPath(geometry, xy) {
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  return polygons.flatMap((rings) => rings.map((ring) => "M" + ring.map((p) => xy(p).join(",")).join("L") + "Z")).join("");
}

async function loadGrids() {
  const level = document.getElementById("level").value;
  const within = document.getElementById("within").value.trim();
  const key = level + "|" + within;
  if (grids && key === gridsKey) return grids;
  grids = await getJson("/api/map/grids?level=" + encodeURIComponent(level) + "&within=" + encodeURIComponent(within));
  gridsKey = key;
  return grids;
}

let drawn = null; // {key, root, xy}: the polygons are drawn once per level, the dots every poll

function drawGrids(fc, cases) {
  let bbox = fc.bbox;
  if (!bbox && cases.length) {
    const lons = cases.map((c) => c.lon), lats = cases.map((c) => c.lat);
    bbox = [Math.min(...lons) - 0.01, Math.min(...lats) - 0.01, Math.max(...lons) + 0.01, Math.max(...lats) + 0.01];
  }
  if (!bbox) return null;
  const { height, xy } = projection(bbox);
  const root = svg("svg", { viewBox: `0 0 ${WIDTH} ${height}`, width: "100%", class: "grid-map" });
  const layer = svg("g", { class: "grids" });
  for (const f of fc.features) {
    const path = svg("path", { d: ringsPath(f.geometry, xy), class: "grid", "data-code": f.properties.code });
    const title = svg("title");
    title.textContent = f.properties.code + " " + f.properties.name;
    path.append(title);
    layer.append(path);
  }
  root.append(layer, svg("g", { class: "cases" }));
  fill("map", root);
  return { key: gridsKey, root, xy, features: fc.features.length };
}

async function render() {
  const [fc, open] = await Promise.all([loadGrids(), getJson("/api/map/cases")]);
  const cases = open.cases;
  if (!drawn || drawn.key !== gridsKey) drawn = drawGrids(fc, cases);
  if (!drawn) { fill("map", el("p", { i18n: "no_data" })); fill("cases"); return; }
  const dots = svg("g", { class: "cases" });
  for (const c of cases) {
    const [x, y] = drawn.xy([c.lon, c.lat]);
    const link = svg("a", { href: "/cases/" + c.case_id });
    const dot = svg("circle", { cx: x, cy: y, r: c.overdue.length ? 6 : 4, fill: STATE_COLOURS[c.state] || "#000", class: "case-dot", "data-case": c.case_id });
    const title = svg("title");
    title.textContent = [c.state, c.category, c.title].filter(Boolean).join(" · ");
    dot.append(title);
    link.append(dot);
    dots.append(link);
  }
  drawn.root.replaceChild(dots, drawn.root.querySelector("g.cases"));
  fill("status", el("span", {}, drawn.features + " · " + t("open_cases") + ": " + cases.length));
  fill("cases", table([
    ["case", (c) => caseLink(c.case_id)], ["state", (c) => c.state], ["category", (c) => c.category],
    ["department", (c) => c.department], ["grid", (c) => c.grid], ["overdue", (c) => c.overdue.join(", ")],
  ], cases.slice(0, 200)));
}

boot("/map");
for (const id of ["level", "within"]) document.getElementById(id).addEventListener("change", () => render());
poll(render, 2000);
