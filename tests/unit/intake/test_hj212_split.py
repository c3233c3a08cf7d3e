from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.domain.errors import Rejected
from intake.domain.feeds.hj212.packet import Hj212Packet, build_packet, parse_packet
from intake.domain.feeds.hj212.split import SplitPacketAssembler

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
TIMEOUT = timedelta(minutes=5)
CODES = ["a34004", "a34002", "a21026", "a21004", "a21005", "a05024", "a01001"]


def part(pno: int, pnum: int, items: str, *, qn: str = "20240501160000000", mn: str = "AIR01") -> Hj212Packet:
    segment = (
        f"QN={qn};ST=22;CN=2061;PW=1;MN={mn};Flag=6;PNUM={pnum};PNO={pno};"
        f"CP=&&DataTime=20240501150000;{items}&&"
    )
    return parse_packet(build_packet(segment))


def item(code: str, value: int) -> str:
    return f"{code}-Avg={value},{code}-Flag=N"


@given(st.permutations(range(len(CODES))), st.integers(1, len(CODES)))
def test_parts_in_any_order_merge_into_the_unsplit_packet(order: list[int], pnum: int) -> None:
    chunks = [CODES[i::pnum] for i in range(pnum)]  # pnum parts, each with at least one item
    parts = [
        part(i + 1, pnum, ";".join(item(c, n) for n, c in enumerate(chunk))) for i, chunk in enumerate(chunks)
    ]
    assembler = SplitPacketAssembler(timeout=TIMEOUT)
    results = [assembler.add(parts[i], now=T0) for i in order if i < pnum]
    assert results[:-1] == [None] * (pnum - 1)
    merged = results[-1]
    assert merged is not None and not merged.is_split and (merged.pnum, merged.pno) == (None, None)
    assert merged.flag == 4 and merged.qn == "20240501160000000" and merged.mn == "AIR01"
    expected = {c: {"Avg": str(n), "Flag": "N"} for chunk in chunks for n, c in enumerate(chunk)}
    assert merged.cp_items == expected
    assert merged.data_time_text == "20240501150000" and assembler.open_sets == 0


def test_unsplit_packet_passes_through() -> None:
    packet = parse_packet(build_packet("QN=1;ST=22;CN=2061;PW=1;MN=AIR01;Flag=4;CP=&&a34004-Avg=1&&"))
    assert SplitPacketAssembler(timeout=TIMEOUT).add(packet, now=T0) is packet


def test_repeated_part_is_idempotent_also_after_completion() -> None:
    assembler = SplitPacketAssembler(timeout=TIMEOUT)
    first, second = part(1, 2, item("a34004", 1)), part(2, 2, item("a34002", 2))
    assert assembler.add(first, now=T0) is None
    assert assembler.add(first, now=T0) is None
    assert assembler.add(second, now=T0) is not None
    assert assembler.add(second, now=T0 + timedelta(minutes=1)) is None  # late resend, already merged
    assert assembler.open_sets == 0
    assert assembler.expire(T0 + timedelta(minutes=2)) == []


def test_incomplete_set_expires_once_after_timeout() -> None:
    assembler = SplitPacketAssembler(timeout=TIMEOUT)
    assembler.add(part(1, 3, item("a34004", 1)), now=T0)
    assembler.add(part(3, 3, item("a34002", 1)), now=T0 + timedelta(minutes=4))
    assert assembler.expire(T0 + TIMEOUT) == []  # exactly the timeout is not yet older
    [abandoned] = assembler.expire(T0 + TIMEOUT + timedelta(seconds=1))
    assert abandoned.reason == "hj212.split_incomplete"
    assert (abandoned.mn, abandoned.qn, abandoned.pnum) == ("AIR01", "20240501160000000", 3)
    assert [p.pno for p in abandoned.parts] == [1, 3] and "[1, 3] of 3" in abandoned.detail
    assert abandoned.first_seen == T0
    assert assembler.expire(T0 + timedelta(hours=1)) == [] and assembler.open_sets == 0


def test_sets_are_keyed_by_mn_and_qn() -> None:
    assembler = SplitPacketAssembler(timeout=TIMEOUT)
    assert assembler.add(part(1, 2, item("a34004", 1), mn="A"), now=T0) is None
    assert assembler.add(part(2, 2, item("a34002", 1), mn="B"), now=T0) is None
    assert assembler.add(part(2, 2, item("a34002", 1), qn="20240501160000001", mn="A"), now=T0) is None
    assert assembler.open_sets == 3


@pytest.mark.parametrize(
    "conflicting",
    [
        part(2, 3, item("a34002", 1)),  # PNUM differs
        part(1, 2, item("a34004", 9)),  # same PNO, other body
        part(2, 2, item("a34004", 9)),  # same field, other value
    ],
)
def test_contradicting_part_is_rejected_and_not_kept(conflicting: Hj212Packet) -> None:
    assembler = SplitPacketAssembler(timeout=TIMEOUT)
    assembler.add(part(1, 2, item("a34004", 1)), now=T0)
    with pytest.raises(Rejected) as info:
        assembler.add(conflicting, now=T0)
    assert info.value.reason == "hj212.split_conflict"
    merged = assembler.add(part(2, 2, item("a34002", 1)), now=T0)
    assert merged is not None and merged.cp_items["a34004"]["Avg"] == "1"


def test_parts_with_different_data_time_conflict() -> None:
    assembler = SplitPacketAssembler(timeout=TIMEOUT)
    assembler.add(part(1, 2, item("a34004", 1)), now=T0)
    other = parse_packet(
        build_packet(
            "QN=20240501160000000;ST=22;CN=2061;PW=1;MN=AIR01;Flag=6;PNUM=2;PNO=2;"
            "CP=&&DataTime=20240501140000;a34002-Avg=1&&"
        )
    )
    with pytest.raises(Rejected, match="data_time_text"):
        assembler.add(other, now=T0)


def test_capacity_evicts_the_oldest_set_and_reports_it() -> None:
    assembler = SplitPacketAssembler(timeout=TIMEOUT, max_open_sets=2)
    for n, mn in enumerate(["A", "B", "C"]):
        assembler.add(part(1, 2, item("a34004", 1), mn=mn), now=T0 + timedelta(seconds=n))
    assert assembler.open_sets == 2
    [evicted] = assembler.expire(T0 + timedelta(seconds=3))
    assert evicted.mn == "A" and evicted.reason == "hj212.split_incomplete" and "evicted" in evicted.detail


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        SplitPacketAssembler(timeout=timedelta(0))
    with pytest.raises(ValueError):
        SplitPacketAssembler(timeout=TIMEOUT, max_open_sets=0)


def test_a_set_whose_parts_come_in_different_batches_is_merged_by_the_batch_of_its_last_part() -> None:
    """A batch works on a copy of the station state's assembler and adopts it once committed: the
    copy of an assembler holding parts must be possible (the packets' read-only mappings cannot be
    deep-copied, and need not be: a packet never changes)."""
    from intake.domain.feeds.hj212.feed import EnvState

    state = EnvState()
    first = state.begin()
    assert first.assemble(part(1, 3, item("a34004", 1)), T0) is None
    first.apply()
    second = state.begin()
    assert second.assemble(part(2, 3, item("a34002", 2)), T0) is None
    # not committed (the batch failed): the state's assembler still holds the first part only
    retried = state.begin()
    assert retried.assemble(part(2, 3, item("a34002", 2)), T0) is None
    merged = retried.assemble(part(3, 3, item("a21026", 3)), T0)
    assert merged is not None and not merged.is_split
    assert {c: dict(f) for c, f in merged.cp_items.items()} == {
        "a34004": {"Avg": "1", "Flag": "N"},
        "a34002": {"Avg": "2", "Flag": "N"},
        "a21026": {"Avg": "3", "Flag": "N"},
    }
    assert state.assembler.open_sets == 1  # until the batch that merged them commits
    retried.apply()
    assert state.assembler.open_sets == 0
    assert state.begin().assemble(part(3, 3, item("a21026", 3)), T0) is None  # a late repeat: done
