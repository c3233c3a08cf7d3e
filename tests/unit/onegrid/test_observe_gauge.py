"""Gauges observed by several objects of one process under one name (telemetry.observe_gauge)."""

from __future__ import annotations

import gc

from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from onegrid import telemetry


class Source:
    def __init__(self, name: str, value: int) -> None:
        self.name = name
        self.value = value

    def observe(self, _options: object) -> list[Observation]:
        return [Observation(self.value, {"source": self.name})]


def _points(reader: InMemoryMetricReader, name: str) -> dict[str, float]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        str(p.attributes["source"]): p.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
        for p in m.data.data_points
    }


def test_every_object_registered_under_a_name_reports_and_a_dead_one_stops() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    a, b = Source("a", 1), Source("b", 2)
    telemetry.observe_gauge("t_lag", a.observe, provider=provider)
    telemetry.observe_gauge("t_lag", b.observe, provider=provider)
    assert _points(reader, "t_lag") == {"a": 1, "b": 2}  # not the first one's alone

    b.value = 5
    del a
    gc.collect()
    assert _points(reader, "t_lag") == {"b": 5}  # held weakly: a gauge never keeps its object alive


def test_a_plain_function_is_held_for_good() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    telemetry.observe_gauge("t_const", lambda _o: [Observation(7, {"source": "f"})], provider=provider)
    gc.collect()
    assert _points(reader, "t_const") == {"f": 7}
