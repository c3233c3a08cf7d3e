"""Batched grid lookups: the registry's seed in a RegistryView, its GridIndex, and uniformly random
points in Hanjiang's bounding box (邗江区, 321003)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from shapely.geometry import shape

from bench.feeds import seeded_view

HANJIANG = "321003"


def bench_lookups(points: int, *, seed: int = 321003, intake_batch: int = 500) -> dict[str, Any]:
    view = seeded_view()
    started = time.perf_counter()
    index = view.grid_index()
    build_s = time.perf_counter() - started
    minx, miny, maxx, maxy = shape(view.get("division", HANJIANG)["area"]).bounds
    rng = np.random.default_rng(seed)
    lons, lats = rng.uniform(minx, maxx, points), rng.uniform(miny, maxy, points)
    index.lookup_many(lons[:1000], lats[:1000])  # first-call costs out of the measurement

    started = time.perf_counter()
    found = index.lookup_many(lons, lats)
    chains = found.codes  # every level's code for every point, not only "found or not"
    one_call_s = time.perf_counter() - started

    # As the intake asks: one batch of a consumer loop at a time, each point's GridChain built.
    m = min(points, 100_000)
    started = time.perf_counter()
    for i in range(0, m, intake_batch):
        list(index.lookup_many(lons[i : i + intake_batch], lats[i : i + intake_batch]))
    batched_s = time.perf_counter() - started
    return {
        "points": points,
        "bbox": [round(minx, 4), round(miny, 4), round(maxx, 4), round(maxy, 4)],
        "cells": len(index),
        "index_build_s": round(build_s, 2),
        "found_share": round(float(found.found.mean()), 4),
        "grid_share": round(float((chains["grid"] != "").mean()), 4),
        "per_s": round(points / one_call_s),
        "intake_batches": {"points": m, "batch": intake_batch, "per_s": round(m / batched_s)},
    }
