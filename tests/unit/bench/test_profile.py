"""bench.profile (`make bench ARGS=--profile`): the intake's pipeline on a feed's records, no Kafka."""

from __future__ import annotations

import asyncio

from bench import profile


def test_the_profile_runs_the_pipeline_on_a_view_it_filled_itself() -> None:
    # The view is filled by hand, not by the registry's table (which never catches up here): the
    # pipeline must not wait for that table, or every batch is refused as "behind".
    got = asyncio.run(profile._feed("party", profile.BATCH, settle=False))
    assert got["records"] == profile.BATCH
    assert got["cpu_us_per_record"] > 0
    assert got["stages_us"]["parse (decode, validate, feed rules)"] > 0
    assert got["stages_us"]["placement (grid index, GridChain)"] > 0
