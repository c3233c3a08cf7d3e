"""Metric rows kept from each case's contribution (Member) per unit and registration day, as the
read models keep them in `metric_member`: batch after batch, replacing only the changed cases'
members and recombining only the keys they count in (before and after) gives the rows `aggregate_all`
gives over all facts, whatever the cases do (move between units and periods, get cancelled, merged,
reopened, charged to several departments)."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from support import scripted_stream as script
from support.lifecycles import batches, decoded

from evaluation.domain.case_facts import CaseFacts, Policy, fold
from evaluation.domain.metrics import (
    Member,
    MetricKey,
    MetricRow,
    aggregate_all,
    combine,
    keys_of,
    member,
    members_of,
    row_of,
)
from evaluation.domain.periods import local_date, period_end
from onegrid_contracts.lifecycle import LifecycleEvent

from .test_scripted_figures import POLICY, facts_by_name

DEFINITION = POLICY.definition()
MemberKey = tuple[str, str, date, str]  # dimension, value, day, case_id


class MemberTable:
    """What `metric_member` holds and what one batch does to it (store.py), in memory."""

    def __init__(self) -> None:
        self.members: dict[MemberKey, Member] = {}
        self.rows: dict[MetricKey, MetricRow] = {}

    def apply(self, before: dict[str, CaseFacts], after: dict[str, CaseFacts]) -> None:
        keys: set[MetricKey] = set()
        for cid, f in after.items():
            self.members = {k: m for k, m in self.members.items() if k[3] != cid}
            day = local_date(f.registered_at)
            self.members |= {(d, v, day, cid): m for (d, v), m in members_of(f).items()}
            keys |= keys_of(f) | (keys_of(before[cid]) if cid in before else set())
        for k in keys:
            end = period_end(k.period_start, k.granularity)  # type: ignore[arg-type]
            inside = [
                m
                for (d, v, day, _), m in self.members.items()
                if (d, v) == (k.dimension, k.value) and k.period_start <= day < end
            ]
            if inside:
                self.rows[k] = row_of(k, combine(inside), DEFINITION)
            else:
                self.rows.pop(k, None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_rows_kept_batch_after_batch_equal_the_rows_over_all_facts(
    stream: list[list[dict[str, Any]]],
) -> None:
    events: dict[str, list[LifecycleEvent]] = {}
    facts: dict[str, CaseFacts] = {}
    table = MemberTable()
    for batch in stream:
        for body in batch:
            events.setdefault(body["case_id"], []).append(decoded(body))
        after = {cid: fold(events[cid], Policy()) for cid in {b["case_id"] for b in batch}}
        changed = {cid: f for cid, f in after.items() if facts.get(cid) != f}
        table.apply({cid: facts[cid] for cid in changed if cid in facts}, changed)
        facts |= changed
        assert table.rows == aggregate_all(facts.values(), DEFINITION)


def test_a_department_only_charged_with_an_act_counts_the_act_not_the_case() -> None:
    c = facts_by_name()["C"]  # returned by shengtai, answered for by chengguan
    shengtai, chengguan = member(c, "department", "shengtai"), member(c, "department", "chengguan")
    assert (shengtai.registered, shengtai.dispatched, shengtai.returned, shengtai.closed) == (0, 1, 1, 0)
    assert (chengguan.registered, chengguan.dispatched, chengguan.returned, chengguan.closed) == (1, 1, 0, 1)
    assert shengtai.incomplete == chengguan.incomplete == 0 and shengtai.rule_version == "7"


def test_combined_members_give_the_hand_figures() -> None:
    k = MetricKey("all", "*", "month", date(2026, 3, 1))
    row = row_of(k, combine([member(f, "all", "*") for f in facts_by_name().values()]), DEFINITION)
    assert {c: getattr(row, c) for c in script.CITY_MONTH} == script.CITY_MONTH
