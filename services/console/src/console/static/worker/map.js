// The worker's grid as inline SVG: the boundary from /worker/api/grids (simplified by the server as
// the console's map), the cases as dots, the phone's or picked point as a cross. Longitude and
// latitude are projected equirectangularly (x scaled by cos(latitude)), as the console's map does;
// a tap is projected back to WGS-84 for "pick on the map".
const SVG = "http://www.w3.org/2000/svg";
const W = 340;
const COLOURS = { self_handle: "#fa8c16", verify: "#722ed1", supplement: "#f5222d", follow: "#1677ff" };

function el(tag, attrs) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
  return n;
}

export function drawMap(container, grids, { cases = [], point = null, onPick = null } = {}) {
  container.replaceChildren();
  const bbox = grids && grids.bbox;
  if (!bbox) return;
  const pad = 0.0008;
  const [minX, minY, maxX, maxY] = [bbox[0] - pad, bbox[1] - pad, bbox[2] + pad, bbox[3] + pad];
  const kx = Math.cos(((minY + maxY) / 2) * Math.PI / 180);
  const scale = W / Math.max((maxX - minX) * kx, 1e-9);
  const H = Math.ceil((maxY - minY) * scale);
  const xy = ([lon, lat]) => [(lon - minX) * kx * scale, (maxY - lat) * scale];
  const back = (x, y) => [minX + x / (kx * scale), maxY - y / scale];
  const root = el("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", class: "map", role: "img" });
  for (const f of grids.features) {
    const polys = f.geometry.type === "Polygon" ? [f.geometry.coordinates] : f.geometry.coordinates;
    const d = polys.flatMap((rings) => rings.map((r) => "M" + r.map((p) => xy(p).map((v) => v.toFixed(1)).join(",")).join("L") + "Z")).join("");
    root.append(el("path", { d, class: f.properties.level === "grid" ? "grid" : "micro", "data-code": f.properties.code }));
  }
  for (const c of cases) {
    if (c.lon == null) continue;
    const [x, y] = xy([c.lon, c.lat]);
    const dot = el("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 7, fill: COLOURS[c.expected] || "#1677ff", class: "case-dot", "data-case": c.case_id });
    root.append(dot);
  }
  if (point) {
    const [x, y] = xy([point.lon, point.lat]);
    root.append(el("path", { d: `M${x - 9},${y}L${x + 9},${y}M${x},${y - 9}L${x},${y + 9}`, class: "here" }));
  }
  if (onPick) {
    root.addEventListener("click", (ev) => {
      // the tap in the drawing's own units (the drawing may be letterboxed in its box)
      const p = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(root.getScreenCTM().inverse());
      const [lon, lat] = back(p.x, p.y);
      onPick({ lat: +lat.toFixed(6), lon: +lon.toFixed(6) });
    });
  }
  container.append(root);
}
