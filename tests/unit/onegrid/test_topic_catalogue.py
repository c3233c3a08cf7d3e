"""The topic catalogue (onegrid.topics) is the only source of what a topic is: every topic states its
facts, no other module spells a topic's name, and what used to be written beside it (the audit tap's
subscription and trust, the console's followed topics, intake's feeds, the services' own topic specs,
the orders topics' name and pattern) is derived from it."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from onegrid import topics
from onegrid.topic_access import SERVICE_TOPICS
from onegrid.wiring import Wiring

ROOT = Path(__file__).resolve().parents[3]
# Python outside the tests; contracts/ describe the topics for outsiders, and clients/ is the
# departments' kit, which cannot import the library (checked against it below); migrations are history.
SKIPPED_TOP = {".venv", ".cache", ".run", "tests", "contracts", "clients", "node_modules"}
SERVICES = {a.service for a in SERVICE_TOPICS}
OUTSIDERS = {topics.DEPARTMENTS, topics.LEGACY_GATEWAYS}
EVERY = [*topics.CATALOGUE, topics.ORDERS]


def _python_modules() -> list[Path]:
    return sorted(
        p
        for p in ROOT.rglob("*.py")
        if p.relative_to(ROOT).parts[0] not in SKIPPED_TOP and "migrations" not in p.relative_to(ROOT).parts
    )


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _names_in_code(path: Path) -> set[str]:
    """The topic names this module's string values spell (prose in comments and docstrings aside;
    a regular expression's escaped dots count)."""
    wanted = {spec.name: spec.name for spec in topics.CATALOGUE}
    wanted[topics.ORDERS_TOPIC_TEMPLATE] = topics.orders_topic_prefix()
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    prose = _docstrings(tree)
    spelled = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            text = node.value.replace("\\.", ".")
            for name, needle in wanted.items():
                # A CloudEvents type such as cn.onegrid.dispatch.feedback.v1 is not the topic.
                if re.search(rf"(?<![\w.]){re.escape(needle)}(?![\w])", text):
                    spelled.add(name)
    return spelled


def test_each_topic_name_is_spelled_in_exactly_one_python_module() -> None:
    where: dict[str, list[str]] = {}
    for path in _python_modules():
        for name in _names_in_code(path):
            where.setdefault(name, []).append(str(path.relative_to(ROOT)))
    catalogue = "libs/onegrid/src/onegrid/topics.py"
    assert {name: files for name, files in where.items() if files != [catalogue]} == {}
    assert sorted(where) == sorted([*(s.name for s in topics.CATALOGUE), topics.ORDERS_TOPIC_TEMPLATE])


def test_the_departments_kit_names_the_orders_topics_as_the_catalogue_does() -> None:
    from onegrid_departments.consumer import orders_topic

    assert orders_topic("chengguan") == topics.dispatch_orders_topic("chengguan")


@pytest.mark.parametrize("spec", EVERY, ids=lambda s: s.name)
def test_every_topic_states_its_owner_readers_and_key(spec: topics.TopicSpec) -> None:
    assert spec.owner in SERVICES | OUTSIDERS, spec.owner
    assert set(spec.readers) <= SERVICES | OUTSIDERS
    assert set(spec.also_written_by) <= SERVICES
    assert spec.key
    assert spec.keyed == (spec.role == "data")  # set-aside copies keep their original's key, not its order
    if spec.audited:
        assert spec.owner != "audit", "the trail must not record its own topics"


def test_every_service_that_consumes_has_its_own_dead_letter_topic() -> None:
    for a in SERVICE_TOPICS:
        if a.groups:
            assert topics.spec_of(topics.dlq_of(a.service)).role == "dlq"


def test_the_audit_tap_subscribes_every_topic_but_the_trails_own_and_the_correlation_stages_marks() -> None:
    from audit.settings import TAP_PATTERN

    tapped = {s.name for s in topics.catalogue(["chengguan"]) if re.fullmatch(TAP_PATTERN, s.name)}
    every = {s.name for s in topics.catalogue(["chengguan"])}
    # The correlation stage's topics carry watermarks and its changelog even while the city is idle
    # (tens of records a second): recorded, they grew the trail without bound. Their evidence is
    # elsewhere: the legacy records they forward (on the feeds), the decisions (cases, ledger).
    # The outbox relays' positions topic holds no record (its groups' offsets are the positions).
    assert every - tapped == {
        topics.AUDIT_HEADS,
        topics.AUDIT_DLQ,
        topics.INTAKE_CORRELATE,
        topics.INTAKE_CORRELATE_STATE,
        topics.OUTBOX_PASSES,
    }
    assert {topics.DISPATCH_DLQ, topics.EVALUATION_DLQ, topics.INTAKE_STATE} <= tapped


def test_the_audit_trusts_case_facts_only_on_the_topics_the_catalogue_marks() -> None:
    from audit.domain.capture import DEFAULT_TRUST

    for spec in topics.catalogue(["chengguan"]):
        assert DEFAULT_TRUST.names_cases(spec.name) == (
            spec.case_facts or bool(topics.orders_topic_pattern().fullmatch(spec.name))
        )
        assert DEFAULT_TRUST.is_opaque(spec.name) == (spec.feed is not None), spec.name
        assert DEFAULT_TRUST.carries_dead_letters(spec.name) == (spec.role != "data"), spec.name


def test_the_console_follows_what_the_catalogue_says_it_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEGRID_ENVIRONMENT", "development")
    from console.bootstrap import followed_topics
    from console.settings import Settings

    followed = followed_topics(Settings())
    expected = [s for s in topics.CATALOGUE if "console" in s.readers and s.feed is None]
    assert followed == expected
    renamed = followed_topics(Settings(cases_topic="t.cases"))
    assert topics.spec_of(topics.CASES).named("t.cases") in renamed


def test_intake_reads_the_catalogues_legacy_feeds() -> None:
    from intake.pipeline import IntakeTopics

    assert IntakeTopics().feeds == {s.name: s.feed for s in topics.CATALOGUE if s.feed}


def test_a_renamed_topic_keeps_the_catalogues_spec() -> None:
    specs = {s.name: s for s in topics.renamed({topics.DISPATCH_DLQ: "t.dlq", topics.CASES: topics.CASES})}
    assert specs["t.dlq"] == topics.spec_of(topics.DISPATCH_DLQ).named("t.dlq")
    assert len(specs) == len(topics.CATALOGUE) + 1


def test_the_orders_pattern_matches_every_departments_topic_and_nothing_else() -> None:
    pattern = topics.orders_topic_pattern()
    assert pattern.fullmatch(topics.dispatch_orders_topic("jiedao_zhifa"))
    assert not any(pattern.fullmatch(s.name) for s in topics.CATALOGUE)
    assert topics.spec_of(topics.dispatch_orders_topic("chengguan")).owner == "dispatch"


def test_a_consumer_loop_names_its_dead_letter_topic() -> None:
    """No default: a service's loop used to fall back silently on intake's dead-letter topic."""
    parameter = inspect.signature(Wiring.add_loop).parameters["dlq_topic"]
    assert parameter.default is inspect.Parameter.empty
