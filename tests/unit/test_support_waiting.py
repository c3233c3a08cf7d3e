"""The shared wait of the tests (support.waiting.wait_until): it returns the check's first truthy
value, plain or async, lets the check's own failure through, and fails naming what it awaited."""

from __future__ import annotations

import pytest
from support.waiting import wait_until


async def test_returns_the_first_truthy_value_of_a_plain_or_async_check() -> None:
    seen = iter([0, None, "found"])
    assert await wait_until(lambda: next(seen), interval_s=0) == "found"

    async def ready() -> list[int]:
        return [1]

    assert await wait_until(ready) == [1]


async def test_a_failing_check_fails_at_once() -> None:
    def dead() -> bool:
        raise AssertionError("the watched process exited")

    with pytest.raises(AssertionError, match="the watched process exited"):
        await wait_until(dead, timeout_s=60)


async def test_a_check_never_true_fails_naming_what_was_awaited() -> None:
    with pytest.raises(AssertionError, match="timed out waiting for the ledger to balance"):
        await wait_until(lambda: False, timeout_s=0, what="the ledger to balance")
