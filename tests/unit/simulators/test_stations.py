"""Stations: PM2.5 follows the daily cycle, and every burst or fault the simulator starts is exactly
one episode (one case) in intake; every episode closes again."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from statistics import mean

import numpy as np

from intake.check import check
from simulators.domain.formats import BEIJING, hj212_packet
from simulators.domain.stations import StationModel, StationTuning, daily_cycle

DAY = datetime(2026, 11, 30, 0, 0, tzinfo=BEIJING)


def test_daily_cycle_peaks_in_the_morning_and_evening() -> None:
    at = {h: daily_cycle(DAY + timedelta(hours=h)) for h in range(24)}
    assert at[8] > at[3] and at[8] > at[14]
    assert at[19] > at[3] and at[19] > at[14]


def test_air_readings_follow_the_cycle_and_stay_below_the_limit_outside_bursts(city) -> None:
    air = next(s for s in city.stations if s.air)
    model = StationModel(air, StationTuning(burst_chance=0, fault_chance=0, silence_chance=0))
    rng = np.random.default_rng(1)
    by_hour: dict[int, list[float]] = {}
    for minute in range(0, 7 * 24 * 60, 5):
        t = DAY + timedelta(minutes=minute)
        r = model.reading(t, rng)
        assert r is not None and r.kind == "normal" and r.values["a34004"] < 75
        by_hour.setdefault(t.hour, []).append(r.values["a34004"])
    morning, evening = mean(by_hour[8]), mean(by_hour[19] + by_hour[20])
    night, afternoon = mean(by_hour[3]), mean(by_hour[14])
    assert morning > 1.2 * night and evening > 1.2 * afternoon


def test_bursts_and_faults_are_episodes_that_open_and_close(city, make_intake) -> None:
    tuning = StationTuning(burst_chance=0.03, fault_chance=0.01, silence_chance=0)
    models = [StationModel(s, tuning) for s in city.stations]
    rng = np.random.default_rng(2)
    intake = make_intake()
    statuses: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for minute in range(0, 24 * 60, 10):  # one day of 10-minute packets from every station
        t = (DAY + timedelta(minutes=minute)).astimezone(UTC)
        batch = []
        for m in models:
            r = m.reading(t, rng)
            assert r is not None
            kinds[r.kind] += 1
            batch.append(
                (m.station.mn, hj212_packet(m.station.mn, t, r.values, st=m.station.st, flags=r.flags))
            )
        for line in check("hj212", batch, intake=intake):
            assert line["status"] == "ok", line
            for ev in line["events"]:
                statuses[ev["attributes"]["episode_status"]] += 1
    started = sum(m.episodes for m in models)
    assert kinds["exceedance"] > 0 and kinds["fault"] > 0
    assert statuses["opened"] == started > 10
    # every episode but those still running at midnight has closed
    running = sum(1 for m in models if m.burst_left or m.fault_left or m.calm_left > 2)
    assert statuses["closed"] >= started - running


def test_a_silent_station_sends_nothing_for_its_silence(city) -> None:
    model = StationModel(city.stations[0], StationTuning(silence_chance=1.0, silence=timedelta(hours=2)))
    rng = np.random.default_rng(3)
    assert model.reading(DAY, rng) is None
    assert model.reading(DAY + timedelta(minutes=119), rng) is None
    model.tuning = StationTuning(silence_chance=0, burst_chance=0, fault_chance=0)
    assert model.reading(DAY + timedelta(hours=2, minutes=1), rng) is not None
