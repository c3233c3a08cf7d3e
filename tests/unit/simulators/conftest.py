from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from intake.domain.crosswalk import Crosswalk
from intake.domain.feeds.open311.record import reports_from_open311
from intake.domain.process import Inbound, Intake
from intake.geography import ViewGeography

CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"


@pytest.fixture(scope="session")
def reference_view():
    from grid_registry.reference import reference_view

    view = reference_view()
    view.grid_index()
    return view


@pytest.fixture(scope="session")
def city():
    from simulators.domain.city import reference_city

    return reference_city()


@pytest.fixture
def make_intake(reference_view):
    """A fresh intake core as the service runs it, with the Open311 adapter fed the headers the
    Open311 API would set (a request id and the time it was received)."""

    def build() -> Intake:
        def open311(inbound: Inbound):
            headers = {
                "open311_service_request_id": str(uuid.uuid5(uuid.NAMESPACE_URL, inbound.value.decode())),
                "open311_received_at": datetime.now(UTC).isoformat(),
            }
            return reports_from_open311(inbound.value, headers)

        return Intake(crosswalk=Crosswalk.load(), geography=ViewGeography(reference_view), open311=open311)

    return build


def validator(name: str) -> Draft202012Validator:
    schemas = [json.loads(p.read_text(encoding="utf-8")) for p in (CONTRACTS / "schemas").glob("*.json")]
    registry = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in schemas])
    schema = next(s for s in schemas if s["$id"].endswith(name))
    return Draft202012Validator(schema, registry=registry)
