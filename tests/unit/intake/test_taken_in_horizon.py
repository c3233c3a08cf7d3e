"""The case book forgets a source key once it was taken in longer ago than the taken-in horizon:
its memory of what was taken in, and the start-up replay of `cases.v1`, stay bounded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from intake.domain.correlation import CaseBook, Decision
from intake.domain.report import Intent
from intake.settings import Settings

T0 = datetime(2026, 11, 1, tzinfo=UTC)
HORIZON = timedelta(days=30)


def case(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def decide(
    book: CaseBook, key: str, *, intent: Intent = Intent.REPORT, refers_to: tuple[str, ...] = ()
) -> Decision:
    network, _, source_id = key.partition(":")
    return book.begin().decide(
        source_key=key,
        intent=intent,
        refers_to=refers_to,
        family="*",
        shape=None,
        at=T0,
        network=network,
        source_id=source_id,
    )


def test_keys_taken_in_before_the_horizon_are_forgotten_on_prune() -> None:
    book = CaseBook(keep_sources=HORIZON)
    book.observe("cap:old", case(1), None, T0)
    book.observe("cap:edge", case(2), None, T0 + timedelta(days=1))
    book.observe("cap:new", case(3), None, T0 + timedelta(days=31))
    book.prune()
    # The clock is the latest taken-in time seen (day 31): day 0 is past the horizon, day 1 is not.
    assert set(book.sources) == {"cap:edge", "cap:new"}
    assert book.size() == 2


def test_a_book_without_a_horizon_keeps_every_key() -> None:
    book = CaseBook()
    book.observe("cap:old", case(1), None, T0)
    book.observe("cap:new", case(3), None, T0 + timedelta(days=400))
    book.prune()
    assert set(book.sources) == {"cap:old", "cap:new"}


def test_a_committed_batch_prunes_what_fell_past_the_horizon() -> None:
    book = CaseBook(keep_sources=HORIZON)
    first = book.begin()
    first.record("cap:a", Decision("case.reported", case(1)), None, T0)
    first.apply()
    later = book.begin()
    later.record("cap:b", Decision("case.reported", case(2)), None, T0 + timedelta(days=40))
    later.apply()
    assert set(book.sources) == {"cap:b"}


def test_a_re_sent_report_within_the_horizon_is_still_recognised() -> None:
    book = CaseBook(keep_sources=HORIZON)
    txn = book.begin()
    txn.record("cap:a", Decision("case.reported", case(1)), None, T0)
    txn.record("cap:b", Decision("case.reported", case(2)), None, T0 + timedelta(days=29))
    txn.apply()
    assert decide(book, "cap:a") == Decision(None, case(1))
    amended = decide(book, "cap:a2", intent=Intent.AMEND, refers_to=("cap:a",))
    assert amended == Decision("case.amended", case(1))


def test_an_amendment_of_a_forgotten_record_is_an_unknown_reference() -> None:
    book = CaseBook(keep_sources=HORIZON)
    book.observe("cap:a", case(1), None, T0)
    book.observe("cap:b", case(2), None, T0 + timedelta(days=31))
    book.prune()
    with pytest.raises(LookupError):
        decide(book, "cap:a2", intent=Intent.AMEND, refers_to=("cap:a",))


def test_a_replay_from_the_horizon_gives_the_book_of_a_run_that_never_stopped() -> None:
    """Live batches and the replay of `cases.v1` key the same time (taken in at), so a book rebuilt
    from the records since (latest - horizon) equals the book that saw everything."""
    facts = [(f"cap:{i}", case(i), T0 + timedelta(days=i)) for i in range(60)]
    live = CaseBook(keep_sources=HORIZON)
    for key, cid, at in facts:
        txn = live.begin()
        txn.record(key, Decision("case.reported", cid), None, at)
        txn.apply()
    since = facts[-1][2] - HORIZON
    rebuilt = CaseBook(keep_sources=HORIZON)
    for key, cid, at in facts:
        if at >= since:
            rebuilt.observe(key, cid, None, at)
    rebuilt.prune()
    assert rebuilt.sources == live.sources
    assert len(live.sources) == 31


def test_the_horizon_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().taken_in_horizon_s >= timedelta(days=14).total_seconds()
    monkeypatch.setenv("ONEGRID_INTAKE_TAKEN_IN_HORIZON_S", "86400")
    assert Settings().taken_in_horizon_s == 86400
