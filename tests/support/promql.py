"""The metric names a PromQL expression reads, and the expressions of our dashboards and rules.

Expressions are parsed by a real PromQL parser (`promql-parser`, the Rust parser's Python binding):
a syntax error fails the test that asks; the names are those of every vector selector in the tree.
Grafana's `label_values(metric, label)` (a template query, not PromQL) yields `metric`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import promql_parser
import yaml

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy/k8s/base/observability"


def metric_names(expr: str) -> set[str]:
    """Raises ValueError when `expr` is not PromQL."""
    label_values = re.fullmatch(r"\s*label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)\s*", expr)
    if label_values:
        return {label_values.group(1)}
    names: set[str] = set()

    def visit(node: object, *_: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    for path in sorted((OBSERVABILITY / "grafana").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for panel in doc["panels"]:
            for target in panel["targets"]:
                yield f"{path.name}: {panel['title']}", target["expr"]
        for var in doc["templating"]["list"]:
            if var["type"] == "query":
                yield f"{path.name}: ${var['name']}", var["query"]["query"]


def rule_exprs() -> Iterator[tuple[str, str]]:
    doc = yaml.safe_load((OBSERVABILITY / "prometheus-rules.yaml").read_text(encoding="utf-8"))
    for group in doc["groups"]:
        for rule in group["rules"]:
            yield f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]


def named_metrics() -> dict[str, set[str]]:
    """Every metric name the dashboards and rules read, with where each is read."""
    found: dict[str, set[str]] = {}
    for where, expr in [*dashboard_exprs(), *rule_exprs()]:
        for name in metric_names(expr):
            found.setdefault(name, set()).add(where)
    return found
