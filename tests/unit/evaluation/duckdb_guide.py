"""Runs the DuckDB example of contracts/bi/README.md (the SQL block after `<!-- duckdb-example -->`)
on a lake, exactly as a BI team would paste it, with `lake/` pointing at the given directory.

Shared by the unit test (a lake written from the pure facts) and the integration test (a lake written
by the service from a replayed stream), which loads this file by path."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

GUIDE = Path(__file__).resolve().parents[3] / "contracts" / "bi" / "README.md"
LIST_COLUMNS = ("rule_versions", "taxonomy_versions", "grid_versions")


def guide_statements() -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    after = text.split("<!-- duckdb-example -->", 1)[1]
    m = re.search(r"```sql\n(.*?)```", after, re.S)
    assert m is not None, "the guide has no DuckDB example"
    return [s for s in m.group(1).split(";\n") if s.strip()]


def run_guide(lake: Path) -> dict[tuple[str, str, str, date], dict[str, Any]]:
    """The example's rows by (dimension, value, granularity, period_start), lists as tuples."""
    con = duckdb.connect()
    try:
        statements = [s.replace("'lake/", f"'{lake.as_posix()}/") for s in guide_statements()]
        for s in statements[:-1]:
            con.execute(s)
        cur = con.execute(statements[-1])
        names = [c[0] for c in cur.description]
        out: dict[tuple[str, str, str, date], dict[str, Any]] = {}
        for values in cur.fetchall():
            row = dict(zip(names, values, strict=True))
            for c in LIST_COLUMNS:
                row[c] = tuple(row[c])
            out[(row["dimension"], row["value"], row["granularity"], row["period_start"])] = row
        return out
    finally:
        con.close()
