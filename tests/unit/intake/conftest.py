from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/support


@pytest.fixture(scope="session")
def reference_view():
    from grid_registry.reference import reference_view

    view = reference_view()
    view.grid_index()
    return view
