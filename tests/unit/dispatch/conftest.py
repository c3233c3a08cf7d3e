"""Fixtures for dispatch unit tests: a directory over the sample registry and a lifecycle."""

from __future__ import annotations

import pytest

from dispatch.domain.lifecycle import Lifecycle, Policy
from dispatch.domain.routing import Directory

from .sample import as_records, registry_records


@pytest.fixture
def directory() -> Directory:
    return Directory(as_records(registry_records()))


@pytest.fixture
def lifecycle(directory: Directory) -> Lifecycle:
    return Lifecycle(directory, Policy(reopen_window_s=3 * 86400, arbitration_s=3600))
