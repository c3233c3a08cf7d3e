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
  each, 25 ms with this fix. The wrapper retries that answer after the same short backoff.
- That backoff itself (`CONCURRENT_TRANSACTIONS_BACKOFF_S`, aiokafka's `BACKOFF_OVERRIDE`): 20 ms
  is far longer than the markers take, and every transactional producer here runs its
  transactions back to back (an exactly-once stage per input partition, the outbox relay), so a
  transaction begun right after the last one's commit waited those 20 ms often (40% of an outbox
  relay's one-row passes on one broker). One exactly-once passthrough stage, record in to record
  out, with 2 ms instead: p50 52 -> 7 ms, p99 118 -> 79 ms at 100 records/s; p50 53 -> 26 ms,
  p99 160 -> 139 ms at 800/s. A retry is one small request to the coordinator.
- A topic created after a producer started (the producer's metadata): aiokafka refreshes the
  metadata of the topics it tracks, and a topic it found in the metadata it fetched at start
  (every topic) is not tracked. The first send to a topic created later tracks that topic alone,
  and the refresh that follows holds it alone: every other topic's partitions have no leader in
  the producer's view, and their records in flight wait for one until the request timeout (40 s),
  then fail with NotLeaderForPartitionError (a transaction's always: they wait to be added to it).
  Seen: the outbox relay sending a pass's records with its entry on a just-created
  outbox.passes.v1; dispatch creates a department's orders topic on the hot path. The wrapper
  tracks each topic at a producer's first send to it (one metadata request then).
"""

from __future__ import annotations

import functools
from typing import Any

import aiokafka.producer.sender
from aiokafka import AIOKafkaProducer, errors
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.producer.sender import AddOffsetsToTxnHandler

_APPLIED = "_onegrid_fix_applied"
CONCURRENT_TRANSACTIONS_BACKOFF_S = 0.002


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
            return min(backoff, CONCURRENT_TRANSACTIONS_BACKOFF_S)
        return backoff

    setattr(handle_response, _APPLIED, True)
    AddOffsetsToTxnHandler.handle_response = handle_response


def retry_concurrent_partition_adds_sooner() -> None:
    # AddPartitionsToTxnHandler reads the module's constant at each retry
    aiokafka.producer.sender.BACKOFF_OVERRIDE = CONCURRENT_TRANSACTIONS_BACKOFF_S


def track_every_topic_sent_to() -> None:
    original = AIOKafkaProducer.send
    if getattr(original, _APPLIED, False):
        return

    @functools.wraps(original)
    async def send(self: Any, topic: str, *args: Any, **kwargs: Any) -> Any:
        tracked = self.__dict__.setdefault("_onegrid_tracked_topics", set())
        if topic not in tracked:
            tracked.add(topic)
            self.client.add_topic(topic)  # a metadata refresh when the client did not track it
        return await original(self, topic, *args, **kwargs)

    setattr(send, _APPLIED, True)
    AIOKafkaProducer.send = send


def apply() -> None:
    refresh_metadata_on_stale_offset_lookups()
    retry_concurrent_offset_adds_soon()
    retry_concurrent_partition_adds_sooner()
    track_every_topic_sent_to()
