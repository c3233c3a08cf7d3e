"""Corrections to aiokafka's behaviour that every client of ours needs, applied once on import of
`onegrid.kafka` (aiokafka is pinned in uv.lock; each fix names the method it wraps).

- Offset reset after a leader change (KAFKA-9535 in the Java client): a consumer that must look a
  partition's offset up (nothing committed yet, `seek_to_beginning`, out of range) sends ListOffsets
  to the leader its metadata names; when that broker is no longer the leader (a broker restarted,
  leadership moved), aiokafka's fetcher logs "Failed fetch offsets ... NotLeaderForPartitionError"
  and retries the same broker without refreshing metadata, until the periodic refresh
  (`metadata_max_age_ms`, 5 minutes): that partition is not read meanwhile. Seen in the fault suite
  after a rolling restart of the brokers. The wrapper asks for new metadata on any error that says
  the metadata is stale, so the retry goes to the new leader.
- A transaction right after the previous one (KAFKA-5477): while the coordinator still writes the
  previous commit's markers it answers CONCURRENT_TRANSACTIONS. aiokafka retries AddPartitionsToTxn
  after 20 ms then, as the Java client does, but AddOffsetsToTxn after the whole `retry_backoff_ms`
  (100 ms). An exactly-once batch with no output records (intake records that end without a case,
  a state change or a dead letter) starts its transaction with AddOffsetsToTxn, so it paid 100 ms
  per batch and per partition: on one broker, back-to-back offsets-only transactions took 106 ms
  each, 25 ms with this fix. The wrapper retries that answer after the same 20 ms.
"""

from __future__ import annotations

import functools
from typing import Any

from aiokafka import errors
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.producer.sender import BACKOFF_OVERRIDE, AddOffsetsToTxnHandler

_APPLIED = "_onegrid_fix_applied"


def refresh_metadata_on_stale_offset_lookups() -> None:
    original = Fetcher._proc_offset_request
    if getattr(original, _APPLIED, False):
        return

    @functools.wraps(original)
    async def _proc_offset_request(self: Any, node_id: int, topic_data: Any) -> Any:
        try:
            return await original(self, node_id, topic_data)
        except errors.KafkaError as exc:
            if exc.invalid_metadata:
                self._client.force_metadata_update()
            raise

    setattr(_proc_offset_request, _APPLIED, True)
    Fetcher._proc_offset_request = _proc_offset_request


def retry_concurrent_offset_adds_soon() -> None:
    original = AddOffsetsToTxnHandler.handle_response
    if getattr(original, _APPLIED, False):
        return

    @functools.wraps(original)
    def handle_response(self: Any, resp: Any) -> Any:
        backoff = original(self, resp)
        if backoff is not None and errors.for_code(resp.error_code) is errors.ConcurrentTransactions:
            return min(backoff, BACKOFF_OVERRIDE)
        return backoff

    setattr(handle_response, _APPLIED, True)
    AddOffsetsToTxnHandler.handle_response = handle_response


def apply() -> None:
    refresh_metadata_on_stale_offset_lookups()
    retry_concurrent_offset_adds_soon()
