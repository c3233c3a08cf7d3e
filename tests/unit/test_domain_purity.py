"""The domain core imports no framework: no Kafka client, ORM, web framework or server under any
`domain/` folder (STYLE.md). Checked on the syntax tree, so a lazy import inside a function counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.imports import imported_modules

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "aiokafka",
    "sqlalchemy",
    "fastapi",
    "asyncpg",
    "uvicorn",
    "starlette",
    "alembic",
    "onegrid.kafka",
    "onegrid.service",
    "onegrid.wiring",
    "onegrid.db",
}
DOMAIN_FILES = sorted(ROOT.glob("services/*/src/*/domain/**/*.py"))


def test_there_is_domain_code_to_check() -> None:
    assert len(DOMAIN_FILES) > 10


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_module_is_pure(path: Path) -> None:
    bad = {m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
