"""The metric names a PromQL expression reads, and the expressions of our dashboards and rules.

Well-defined on purpose rather than a PromQL parser: strings, label matchers `{...}`, ranges and
subqueries `[...]`, grouping clauses (`by (...)`, `without`, `on`, `ignoring`, `group_left/right`)
and Grafana variables (`$name`) are removed; what remains that is a name not followed by `(` and not
a PromQL keyword is a metric name. `label_values(metric, label)` yields `metric`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy/k8s/base/observability"
KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "le",
    "atan2",
}


def metric_names(expr: str) -> set[str]:
    label_values = re.findall(r"label_values\(\s*([a-zA-Z_:][\w:]*)", expr)
    if label_values:
        return set(label_values)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\w+", "", text)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
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
