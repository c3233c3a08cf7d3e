"""The reference city (the registry's seed) is the grid registry's knowledge: intake's service code
never imports the registry, and the feed checker, the one tool that judges places against that city,
gets it through its declared extra (`onegrid-intake[check]`)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from support.imports import imported_modules

from intake.check import main

INTAKE = Path(__file__).resolve().parents[3] / "services" / "intake"


def test_only_the_feed_checker_imports_the_grid_registry() -> None:
    # Before: intake.geography built the reference view from grid_registry's seed, so the service's
    # own geography module imported another service's package.
    importers = {
        str(path.relative_to(INTAKE / "src"))
        for path in (INTAKE / "src").rglob("*.py")
        if any(module.split(".")[0] == "grid_registry" for module in imported_modules(path))
    }
    assert importers == {"intake/check.py"}


def test_the_feed_checker_declares_the_registry_as_its_extra() -> None:
    project = tomllib.loads((INTAKE / "pyproject.toml").read_text())["project"]
    assert "onegrid-grid-registry" not in project["dependencies"]
    assert project["optional-dependencies"]["check"] == ["onegrid-grid-registry"]


def test_without_the_registry_the_checker_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # As in an intake image installed without the extra: the import of the registry fails.
    monkeypatch.setitem(sys.modules, "grid_registry.reference", None)
    record = tmp_path / "alert.cap"
    record.write_text("<alert/>", encoding="utf-8")
    status = main(["--feed", "cap", str(record)])
    captured = capsys.readouterr()
    assert status == 3 and captured.out == ""
    assert "onegrid-intake[check]" in captured.err and "Traceback" not in captured.err
