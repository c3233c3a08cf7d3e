"""The ledger's arithmetic: each legacy record accounted once, lost and twice-processed records found."""

from __future__ import annotations

from intake.domain.ledger import Account, LedgerBook, OffsetSet, accounts_of_entry, entry, hour_of, outcome_of
from intake.domain.process import DUPLICATE, NO_FINDING

T = "legacy.safety.v1"
H = 1_764_824_400_000  # 2025-12-04T05:00:00Z


def book() -> LedgerBook:
    return LedgerBook({T: "safety", "legacy.env.hj212.v1": "hj212"})


def test_outcome_is_the_strongest_event_else_duplicate_else_measurement() -> None:
    assert outcome_of(["case.amended", "case.reported"], None) == "case.reported"
    assert outcome_of(["case.linked"], None) == "case.linked"
    assert outcome_of([], DUPLICATE) == "duplicate"
    assert outcome_of([], NO_FINDING) == "measurement"
    assert outcome_of([], "status Test") == "no_case"


def test_entries_round_trip() -> None:
    value = entry(T, 2, "safety", [(5, "case.reported", ["c1"]), (6, "duplicate", [])])
    assert accounts_of_entry(value) == [
        Account(T, 2, 5, "case.reported", ("c1",)),
        Account(T, 2, 6, "duplicate"),
    ]


def test_offset_set_merges_and_refuses_repeats() -> None:
    s = OffsetSet()
    for o in (0, 1, 2, 5, 4, 3):
        assert s.add(o)
    assert s.intervals == 1 and 3 in s and 6 not in s
    assert not s.add(4)
    s.add(10)
    assert s.intervals == 2 and 9 not in s


def test_balanced_when_every_record_has_one_account_in_any_order() -> None:
    b = book()
    b.accounted(Account(T, 0, 1, "duplicate"))  # the account can be read before its record
    for o in range(3):
        b.received(T, 0, o, H + o)
    b.accounted(Account(T, 0, 0, "case.reported", ("c",)))
    b.accounted(Account(T, 0, 2, "dead_letter"))
    b.judge({(T, 0): 3})
    j = b.judge({(T, 0): 3})
    assert j["balanced"] and j["unaccounted"] == 0 and j["duplicated"] == 0 and j["pending"] == 0
    (row,) = j["rows"]
    assert (row["feed"], row["hour"], row["received"]) == ("safety", hour_of(H), 3)
    assert (row["case.reported"], row["duplicate"], row["dead_letter"]) == (1, 1, 1)


def test_a_committed_record_without_account_is_unaccounted_an_uncommitted_one_pending() -> None:
    b = book()
    for o in range(4):
        b.received(T, 1, o, H)
    b.accounted(Account(T, 1, 0, "case.reported"))
    first = b.judge({(T, 1): 2})  # offsets 0 and 1 committed; 1 has no account yet
    assert first["unaccounted"] == 0 and first["pending"] == 3  # its commit marker may still be on the way
    j = b.judge({(T, 1): 2})  # still none at the next judgement: lost
    assert not j["balanced"]
    assert j["unaccounted"] == 1 and j["unaccounted_records"] == [{"topic": T, "partition": 1, "offset": 1}]
    assert j["pending"] == 2


def test_a_judgement_that_could_not_read_everything_written_calls_nothing_unaccounted() -> None:
    """After an instance is killed mid-batch, its open transaction holds the ledger's reader back
    until its partition's next owner fences it (seconds: a session timeout, then the fence), and the
    accounts committed meanwhile by the others lie beyond it. Judged as usual, every record they
    account for was reported lost for that long: the alarm rang after every kill."""
    b = book()
    for o in range(3):
        b.received(T, 1, o, H)
    b.accounted(Account(T, 1, 0, "case.reported"))
    assert b.judge({(T, 1): 3})["unaccounted"] == 0  # 1 and 2 suspect
    held_back = b.judge({(T, 1): 3}, conclusive=False)
    assert held_back["unaccounted"] == 0 and held_back["pending"] == 2 and held_back["balanced"]
    b.accounted(Account(T, 1, 1, "case.reported"))  # read once the transaction ended
    j = b.judge({(T, 1): 3})
    assert j["unaccounted"] == 1 and j["unaccounted_records"] == [{"topic": T, "partition": 1, "offset": 2}]


def test_a_record_accounted_twice_is_duplicated() -> None:
    b = book()
    b.received(T, 0, 7, H)
    b.accounted(Account(T, 0, 7, "case.reported"))
    b.accounted(Account(T, 0, 7, "case.reported"))
    j = b.judge({(T, 0): 8})
    assert j["duplicated"] == 1 and not j["balanced"]
    assert j["duplicated_records"][0]["offset"] == 7


def test_reading_a_record_again_counts_it_once() -> None:
    b = book()
    b.received(T, 0, 0, H)
    b.accounted(Account(T, 0, 0, "measurement"))
    b.received(T, 0, 0, H)
    assert b.judge({(T, 0): 1})["totals"]["received"] == 1


def test_an_account_that_arrives_after_one_judgement_is_no_alarm() -> None:
    b = book()
    b.received(T, 0, 0, H)
    assert b.judge({(T, 0): 1})["unaccounted"] == 0
    b.accounted(Account(T, 0, 0, "measurement"))
    j = b.judge({(T, 0): 1})
    assert j["balanced"] and j["unaccounted"] == 0 and j["totals"]["measurement"] == 1


def test_a_forwarded_record_is_judged_against_the_correlation_stage() -> None:
    """Forwarded to the correlation stage, a record's legacy offset is committed at once: it stays
    pending while the stage has not read it or holds it for its turn, and is unaccounted once the
    stage has read it and passed its turn without an account."""
    b = book()
    corr = ("intake.correlate.v1", 0)
    b.received(T, 0, 0, H)
    b.forwarded((T, 0, 0), corr, 7, [H, "safety", 0, 0])
    legacy = {(T, 0): 1}
    for correlated, horizon in (({corr: 7}, None), ({corr: 8}, None), ({corr: 8}, [H - 1, "cap", 0, 3])):
        if horizon is not None:
            b.progress(corr, horizon)
        for _ in range(2):
            snap = b.judge(legacy, correlated=correlated)
            assert snap["pending"] == 1 and snap["unaccounted"] == 0, (correlated, horizon)
    b.progress(corr, [H, "safety", 0, 0])  # decided: its account must be there
    b.judge(legacy, correlated={corr: 8})
    assert b.judge(legacy, correlated={corr: 8})["unaccounted"] == 1
    b.accounted(Account(T, 0, 0, "case.linked", ("c1",)))
    snap = b.judge(legacy, correlated={corr: 8})
    assert snap["balanced"] and snap["totals"]["case.linked"] == 1
