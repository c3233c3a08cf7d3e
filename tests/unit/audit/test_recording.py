"""The order one batch enters the log in: by Kafka timestamp across partitions, by offset within one,
the same whatever order the batch came in; and strictly increasing recording times."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from audit.domain.recording import Stamp, _merged, recording_order, recording_times, stamp

T = 1_772_323_200_000


def ordered(stamps: list[Stamp]) -> list[Stamp]:
    return [stamps[i] for i in recording_order(stamps)]


def test_time_order_across_topics_not_the_names_order() -> None:
    packet = stamp(T, "legacy.env.hj212.v1", 0, 7)
    reported = stamp(T + 5, "cases.v1", 0, 0)
    closed = stamp(T + 9, "case.lifecycle.v1", 2, 0)
    assert ordered([closed, reported, packet]) == [packet, reported, closed]


def test_a_partition_whose_clock_goes_back_keeps_its_offset_order() -> None:
    late, early = stamp(T + 8, "legacy.party.v1", 1, 3), stamp(T + 2, "legacy.party.v1", 1, 4)
    other = stamp(T + 5, "cases.v1", 0, 0)
    assert ordered([early, other, late]) == [other, late, early]


def test_equal_timestamps_fall_back_to_position_and_missing_ones_count_as_zero() -> None:
    a, b, c = stamp(T, "b", 0, 1), stamp(T, "a", 1, 0), stamp(T, "a", 0, 9)
    assert ordered([a, b, c]) == [c, b, a]
    assert stamp(-1, "a", 0, 0) == stamp(None, "a", 0, 0) == (0, "a", 0, 0)


positions = st.lists(
    st.tuples(st.integers(0, 20), st.sampled_from(["cases.v1", "legacy.party.v1"]), st.integers(0, 2)),
    max_size=40,
)


@settings(deadline=None)  # no timed assertions: a loaded machine is not a failure
@given(positions, st.randoms())
def test_any_batch_keeps_offsets_and_is_independent_of_arrival_order(
    drawn: list[tuple[int, str, int]], rnd: random.Random
) -> None:
    stamps = [stamp(T + dt, topic, p, offset) for offset, (dt, topic, p) in enumerate(drawn)]
    first = ordered(stamps)
    assert sorted(first) == sorted(stamps)
    for topic, p in {s[1:3] for s in stamps}:
        offsets = [s[3] for s in first if s[1:3] == (topic, p)]
        assert offsets == sorted(offsets)
    shuffled = list(stamps)
    rnd.shuffle(shuffled)
    assert ordered(shuffled) == first


def test_recording_times_strictly_increase_after_the_last() -> None:
    now = datetime(2026, 3, 1, 8, tzinfo=UTC)
    us = timedelta(microseconds=1)
    assert recording_times(None, now, 3) == [now, now + us, now + 2 * us]
    # The clock went back (another instance, a step): still after the newest entry.
    assert recording_times(now + 5 * us, now, 2) == [now + 6 * us, now + 7 * us]
    assert recording_times(now, now, 0) == []


@settings(deadline=None)
@given(positions, st.randoms())
def test_the_sorted_shortcut_and_the_merge_agree(
    drawn: list[tuple[int, str, int]], rnd: random.Random
) -> None:
    # Timestamps rising with offsets in every partition (the shortcut applies) or not (the merge runs):
    # either way the same order as the merge itself.
    stamps = [stamp(T + dt, topic, p, offset) for offset, (dt, topic, p) in enumerate(drawn)]
    rising = [stamp(T + offset // 3, topic, p, offset) for offset, (_, topic, p) in enumerate(drawn)]
    for batch in (stamps, rising):
        rnd.shuffle(batch)
        assert recording_order(batch) == _merged(batch)
