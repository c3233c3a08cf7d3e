"""The aiokafka corrections of onegrid.kafka.fixes, on aiokafka's own fetcher code with a stand-in
for its network client."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import errors
from aiokafka.consumer.fetcher import Fetcher

import onegrid.kafka  # noqa: F401  (applies the fixes)
from onegrid.kafka import fixes


class StaleLeaderClient:
    """Answers every ListOffsets with NOT_LEADER_OR_FOLLOWER, as a broker that lost the leadership."""

    def __init__(self) -> None:
        self.metadata_refreshes = 0

    async def send(self, node_id: int, request: Any) -> Any:
        topics = [
            (topic, [(p, errors.NotLeaderForPartitionError.errno, -1, -1) for p, _ in parts])
            for topic, parts in request._topics
        ]
        return SimpleNamespace(API_VERSION=1, topics=topics)

    def force_metadata_update(self) -> asyncio.Future[bool]:
        self.metadata_refreshes += 1
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        fut.set_result(True)
        return fut


async def test_a_list_offsets_answered_by_a_former_leader_asks_for_new_metadata() -> None:
    client = StaleLeaderClient()
    fetcher = SimpleNamespace(_client=client, _isolation_level=1)
    with pytest.raises(errors.NotLeaderForPartitionError):
        await Fetcher._proc_offset_request(fetcher, 1, {"legacy.emergency.cap.v1": [(1, -2)]})
    assert client.metadata_refreshes == 1  # the retry goes to the leader the new metadata names


def _add_offsets_handler(retry_backoff_s: float) -> Any:
    from aiokafka.producer.sender import AddOffsetsToTxnHandler

    txn = SimpleNamespace(transactional_id="dispatch.cases.v1.0", consumer_group_added=lambda group: None)
    sender = SimpleNamespace(_retry_backoff=retry_backoff_s, _txn_manager=txn)
    return AddOffsetsToTxnHandler(sender, "dispatch")


def test_a_transaction_with_offsets_only_retries_concurrent_transactions_soon() -> None:
    """The coordinator answers CONCURRENT_TRANSACTIONS while it still writes the previous commit's
    markers (KAFKA-5477). aiokafka retried AddPartitionsToTxn after 20 ms then, but AddOffsetsToTxn
    after the whole retry backoff (100 ms): an exactly-once batch with no output paid 100 ms per
    transaction. Both now retry after CONCURRENT_TRANSACTIONS_BACKOFF_S (2 ms: 20 ms cost a
    back-to-back stage's transactions p50 52 ms instead of 7)."""
    import aiokafka.producer.sender as sender

    handler = _add_offsets_handler(retry_backoff_s=0.1)
    backoff = handler.handle_response(SimpleNamespace(error_code=errors.ConcurrentTransactions.errno))
    assert backoff == sender.BACKOFF_OVERRIDE == fixes.CONCURRENT_TRANSACTIONS_BACKOFF_S < 0.02
    # AddPartitionsToTxn's handler answers that error with the module's constant, read at each retry
    source = inspect.getsource(sender.AddPartitionsToTxnHandler.handle_response)
    assert "ConcurrentTransactions" in source and "return BACKOFF_OVERRIDE" in source


def test_the_other_retriable_add_offsets_answers_keep_the_retry_backoff() -> None:
    handler = _add_offsets_handler(retry_backoff_s=0.1)
    load = handler.handle_response(SimpleNamespace(error_code=errors.CoordinatorLoadInProgressError.errno))
    assert load == 0.1
    assert handler.handle_response(SimpleNamespace(error_code=errors.NoError.errno)) is None
