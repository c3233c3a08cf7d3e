"""The reference city as a registry view, built without Kafka: the records `make up` seeds into an
empty registry (Yangzhou, 邗江区 subdivided into grids), applied to a `RegistryView` exactly as the
services apply `grid.registry.v1`. The seed is the registry's knowledge, so the view of it is built
here; the feed checker (`onegrid-intake[check]`) and the tests read it from this module."""

from __future__ import annotations

import json

from grid_registry.domain.geography import DEFAULT_SEED
from grid_registry.domain.seed import seed_records
from registry_client import RegistryView


def reference_view(seed: int = DEFAULT_SEED) -> RegistryView:
    """A view holding every seed record, keyed as on the changelog (`<kind>:<code>`)."""
    view = RegistryView()
    for record in seed_records(seed):
        view.apply(f"{record['kind']}:{record['code']}", json.dumps(record).encode())
    return view
