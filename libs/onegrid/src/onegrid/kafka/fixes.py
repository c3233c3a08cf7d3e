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
"""

from __future__ import annotations

import functools
from typing import Any

from aiokafka import errors
from aiokafka.consumer.fetcher import Fetcher

_APPLIED = "_onegrid_refreshes_metadata"


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


def apply() -> None:
    refresh_metadata_on_stale_offset_lookups()
