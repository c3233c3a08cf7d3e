"""Traces across Kafka and HTTP, metrics, and JSON logs with trace ids.

- The W3C `traceparent` travels in Kafka headers, so a consumer's span is a child of the producer's.
- Spans are per batch on the hot path; a batch span links every message's remote context (a span per
  message would cost ~40 µs each).
- Metrics go to Prometheus (`/metrics` on every service) and, when configured, to OTLP.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

from onegrid.settings import TelemetrySettings

Headers = list[tuple[str, bytes]]


class _HeaderGetter(Getter[Sequence[tuple[str, bytes]]]):
    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        vals = [v.decode("latin-1") for k, v in carrier if k == key and v is not None]
        return vals or None

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [k for k, _ in carrier]


class _HeaderSetter(Setter[Headers]):
    def set(self, carrier: Headers, key: str, value: str) -> None:
        carrier[:] = [(k, v) for k, v in carrier if k != key]
        carrier.append((key, value.encode("latin-1")))


_GETTER = _HeaderGetter()
_SETTER = _HeaderSetter()


def inject(headers: Headers, ctx: otel_context.Context | None = None) -> Headers:
    """Write the current (or given) trace context into Kafka headers, in place; returns them."""
    propagate.inject(headers, context=ctx, setter=_SETTER)
    return headers


def extract(headers: Sequence[tuple[str, bytes]] | None) -> otel_context.Context:
    """The remote trace context carried by Kafka headers (an empty context when there is none)."""
    return propagate.extract(list(headers or ()), getter=_GETTER)


def batch_links(headers_list: Sequence[Sequence[tuple[str, bytes]] | None]) -> list[trace.Link]:
    """Links from one batch span to each distinct remote producer span, so traces stay connected."""
    links: list[trace.Link] = []
    seen: set[int] = set()
    # The headers the configured propagator reads: a record carrying none of them links nothing,
    # and is passed over without the propagator's extraction (~2 µs a record even then).
    fields = propagate.get_global_textmap().fields
    for headers in headers_list:
        if not headers or not any(key in fields for key, _ in headers):
            continue
        sc = trace.get_current_span(extract(headers)).get_span_context()
        if sc.is_valid and sc.span_id not in seen:
            seen.add(sc.span_id)
            links.append(trace.Link(sc))
            if len(links) >= 128:  # links beyond this add cost and no insight
                break
    return links


_configured = False


def configure(
    service_name: str,
    settings: TelemetrySettings,
    *,
    extra_span_exporters: Sequence[SpanExporter] = (),
) -> None:
    """Install the process-wide tracer and meter providers and the JSON log format. Idempotent."""
    global _configured
    configure_logging(service_name, settings)
    if _configured:
        return
    _configured = True
    resource = Resource.create({"service.name": service_name})
    provider = TracerProvider(resource=resource, sampler=ParentBasedTraceIdRatio(settings.sample_ratio))
    if settings.exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    for exporter in extra_span_exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    readers: list[Any] = [PrometheusMetricReader()]
    if settings.exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        endpoint = settings.exporter_otlp_endpoint.rstrip("/") + "/v1/metrics"
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint)))
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the active trace and span ids."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service_name,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        sc = trace.get_current_span().get_span_context()
        if sc.is_valid:
            entry["trace_id"] = format(sc.trace_id, "032x")
            entry["span_id"] = format(sc.span_id, "016x")
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(service_name: str, settings: TelemetrySettings) -> None:
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_json:
        handler.setFormatter(JsonLogFormatter(service_name))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {service_name} %(levelname)s %(name)s %(message)s")
        )
    root.handlers[:] = [handler]
    # aiokafka logs every coordinator hiccup at INFO; keep the stream readable.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def tracer(name: str = "onegrid") -> trace.Tracer:
    return trace.get_tracer(name)


def meter(name: str = "onegrid") -> metrics.Meter:
    return metrics.get_meter(name)


GaugeCallback = Callable[[Any], Iterable[metrics.Observation]]
_gauges: dict[tuple[int, str, str], list[Callable[[], GaugeCallback | None]]] = {}
_gauges_lock = threading.Lock()


def observe_gauge(
    name: str,
    callback: GaugeCallback,
    *,
    meter_name: str = "onegrid",
    description: str = "",
    unit: str = "",
    provider: metrics.MeterProvider | None = None,
) -> None:
    """Report `callback`'s observations under the gauge `name`, with those of every other callback
    registered under it in this process.

    OpenTelemetry keeps the callbacks of a name's first registration only (a second
    `create_observable_gauge` of a name is the same instrument): two consumer loops in one process
    each creating `onegrid_consumer_lag` showed the first loop's lag alone. Bound methods are held
    weakly, so a gauge never keeps its object alive; a dead one stops reporting. `provider`: another
    meter provider than the global one (tests)."""
    # a plain function is held for good, through a strong reference shaped like a weak one
    ref: Callable[[], GaugeCallback | None] = (
        weakref.WeakMethod(callback) if inspect.ismethod(callback) else lambda: callback
    )
    key = (id(provider) if provider is not None else 0, meter_name, name)
    with _gauges_lock:
        first = key not in _gauges
        _gauges.setdefault(key, []).append(ref)
    if not first:
        return

    def observe(options: Any) -> Iterable[metrics.Observation]:
        with _gauges_lock:
            refs = _gauges[key]
            live = [(r, cb) for r in refs if (cb := r()) is not None]
            refs[:] = [r for r, _ in live]
        return [o for _, cb in live for o in cb(options)]

    m = (provider or metrics.get_meter_provider()).get_meter(meter_name)
    m.create_observable_gauge(name, callbacks=[observe], description=description, unit=unit)
