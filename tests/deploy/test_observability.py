"""Dashboards and alerting rules as code: they parse, say what operators need, and every metric they
name is one of ours (tests/integration/test_metrics_named.py checks the names against the running
services); the collector config forwards traces."""

from __future__ import annotations

import json

import pytest
import yaml
from support.promql import OBSERVABILITY, dashboard_exprs, metric_names, named_metrics, rule_exprs


def rules() -> dict[str, dict]:
    doc = yaml.safe_load((OBSERVABILITY / "prometheus-rules.yaml").read_text(encoding="utf-8"))
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def dashboards() -> dict[str, dict]:
    return {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((OBSERVABILITY / "grafana").glob("*.json"))
    }


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (group) (rate(onegrid_messages_consumed_total{group=~"$group"}[5m]))',
            {"onegrid_messages_consumed_total"},
        ),
        ("histogram_quantile(0.95, sum by (le) (rate(x_seconds_bucket[5m])))", {"x_seconds_bucket"}),
        ("a - b offset 10m > 1000 and on (group) c", {"a", "b", "c"}),
        (
            'time() - max(audit_last_signed_head_timestamp_seconds{job="x"}) > 900',
            {"audit_last_signed_head_timestamp_seconds"},
        ),
        ("label_values(onegrid_messages_consumed_total, group)", {"onegrid_messages_consumed_total"}),
        ("deriv(sum(lag)[10m:1m]) > 0", {"lag"}),
    ],
)
def test_metric_names_of_an_expression(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_an_expression_that_is_not_promql_is_refused() -> None:
    with pytest.raises(ValueError):
        metric_names("sum by (group (rate(x[5m]))")


def test_every_dashboard_and_rule_expression_is_promql() -> None:
    for where, expr in [*dashboard_exprs(), *rule_exprs()]:
        try:
            metric_names(expr)
        except ValueError as exc:
            raise AssertionError(f"{where}: {exc}: {expr}") from exc


def test_the_dashboards_parse_and_every_panel_queries_prometheus() -> None:
    boards = dashboards()
    assert set(boards) == {"onegrid-streams", "onegrid-loop", "onegrid-audit"}
    for name, board in boards.items():
        assert board["uid"] == name and board["title"].startswith("OneGrid")
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        assert board["templating"]["list"][0]["type"] == "datasource"
        for panel in board["panels"]:
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
            assert set(panel["gridPos"]) == {"x", "y", "w", "h"}


def test_the_dashboards_show_what_the_issue_asks_for() -> None:
    titles = {n: " | ".join(p["title"].lower() for p in b["panels"]) for n, b in dashboards().items()}
    for word in (
        "consumed",
        "lag, by group and partition",
        "dead letters and quarantine",
        "end-to-end latency",
    ):
        assert word in titles["onegrid-streams"], word
    for word in ("cases by state", "sla breaches", "whistles", "returns", "webhook"):
        assert word in titles["onegrid-loop"], word
    for word in ("signed tree size", "age of the newest signed head", "verify failures"):
        assert word in titles["onegrid-audit"], word


def test_every_alert_has_a_severity_a_summary_and_runbook_notes() -> None:
    for name, rule in rules().items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name
        runbook = rule["annotations"]["runbook"]
        assert all(part in runbook for part in ("Means:", "Look:", "Do:")), name
        assert "for" in rule, name


def test_the_alerts_the_issue_asks_for() -> None:
    r = rules()
    lag = r["OneGridConsumerLagGrowing"]
    assert lag["for"] == "10m" and "offset 10m" in lag["expr"]
    assert "dead_lettered" in r["OneGridDeadLetterRatioHigh"]["expr"]
    assert "intake_records_total" in r["OneGridFeedSilent"]["expr"]
    assert "900" in r["OneGridNoSignedTreeHead"]["expr"]  # 15 minutes
    assert "dispatch_webhook_stuck_deliveries" in r["OneGridWebhookStuck"]["expr"]
    # an outbox no instance relays: nothing of the service reaches Kafka
    assert "onegrid_outbox_relay_active" in r["OneGridOutboxNotRelayed"]["expr"]
    assert 'outcome="failed"' in r["OneGridAuditVerifyFailed"]["expr"]
    ledger = r["OneGridLedgerImbalance"]["expr"]
    assert "intake_ledger_unaccounted" in ledger and "intake_ledger_duplicated" in ledger


def test_every_named_metric_is_in_our_namespaces() -> None:
    names = named_metrics()
    assert len(list(dashboard_exprs())) > 15 and len(list(rule_exprs())) >= 6
    assert all(n.startswith(("onegrid_", "intake_", "dispatch_", "audit_")) for n in names), sorted(names)


def test_the_collector_forwards_traces_and_takes_the_services_otlp() -> None:
    config = yaml.safe_load((OBSERVABILITY / "otel-collector.yaml").read_text(encoding="utf-8"))
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"] and traces["exporters"] == ["otlp/traces"]
    assert config["exporters"]["otlp/traces"]["endpoint"] == "${env:TRACES_OTLP_ENDPOINT}"
    for pipeline in config["service"]["pipelines"].values():
        for part in ("receivers", "processors", "exporters"):
            assert all(p in config[part] for p in pipeline.get(part, [])), pipeline
