"""Kafka topic ids (KIP-516), which aiokafka's clients do not ask for (their Metadata stops at v5).

A topic's id is a UUID the cluster gives it at creation: a topic deleted and created again under the
same name gets a new one, and its offsets start again at 0. Whoever keeps positions per partition (the
audit tap) keys them by id, so a recreated topic's offset 0 is never taken for one already recorded.
Metadata v10 is the first version that returns ids; it is a flexible version (compact strings and
arrays, tagged fields), which aiokafka's protocol types encode.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from io import BytesIO
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    AbstractType,
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from onegrid.settings import KafkaSettings

UNKNOWN_TOPIC_OR_PARTITION = 3


class Uuid(AbstractType[bytes]):  # type: ignore[misc]
    """The protocol's `uuid`: 16 raw bytes."""

    @classmethod
    def encode(cls, value: bytes) -> bytes:
        assert len(value) == 16
        return value

    @classmethod
    def decode(cls, data: BytesIO) -> bytes:
        value = data.read(16)
        if len(value) != 16:
            raise ValueError("Buffer underrun decoding uuid")
        return value


ZERO = bytes(16)


class MetadataResponse_v10(Response):  # type: ignore[misc]
    API_KEY = 3
    API_VERSION = 10
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "brokers",
            CompactArray(
                ("node_id", Int32),
                ("host", CompactString("utf-8")),
                ("port", Int32),
                ("rack", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_id", CompactString("utf-8")),
        ("controller_id", Int32),
        (
            "topics",
            CompactArray(
                ("error_code", Int16),
                ("name", CompactString("utf-8")),
                ("topic_id", Uuid),
                ("is_internal", Boolean),
                (
                    "partitions",
                    CompactArray(
                        ("error_code", Int16),
                        ("partition_index", Int32),
                        ("leader_id", Int32),
                        ("leader_epoch", Int32),
                        ("replica_nodes", CompactArray(Int32)),
                        ("isr_nodes", CompactArray(Int32)),
                        ("offline_replicas", CompactArray(Int32)),
                        ("tags", TaggedFields),
                    ),
                ),
                ("topic_authorized_operations", Int32),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_authorized_operations", Int32),
        ("tags", TaggedFields),
    )


class MetadataRequest_v10(RequestStruct):  # type: ignore[misc]
    API_KEY = 3
    API_VERSION = 10
    FLEXIBLE_VERSION = True
    RESPONSE_TYPE = MetadataResponse_v10
    SCHEMA = Schema(
        (
            "topics",
            CompactArray(("topic_id", Uuid), ("name", CompactString("utf-8")), ("tags", TaggedFields)),
        ),
        ("allow_auto_topic_creation", Boolean),
        ("include_cluster_authorized_operations", Boolean),
        ("include_topic_authorized_operations", Boolean),
        ("tags", TaggedFields),
    )


class TopicIdsRequest(Request[MetadataRequest_v10]):  # type: ignore[misc]
    API_KEY = 3

    def __init__(self, names: list[str]) -> None:
        self._names = names

    def build(self, request_struct_class: type[MetadataRequest_v10]) -> MetadataRequest_v10:
        return request_struct_class([(ZERO, n, {}) for n in self._names], False, False, False, {})


async def topic_ids(admin: AIOKafkaAdminClient, names: Iterable[str]) -> dict[str, uuid.UUID]:
    """The ids of the named topics that exist (a topic the cluster does not know is left out)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    response: Any = await admin._send_request(TopicIdsRequest(wanted))
    out: dict[str, uuid.UUID] = {}
    for error_code, name, raw_id, *_ in response.topics:
        if error_code == UNKNOWN_TOPIC_OR_PARTITION:
            continue
        if error_code:
            raise for_code(error_code)(f"looking up the id of topic {name}")
        if raw_id != ZERO:
            out[name] = uuid.UUID(bytes=raw_id)
    return out


class TopicIds:
    """Topic ids by name, cached: a topic's id changes only when it is deleted and created again,
    which the caller notices (offsets going back) and answers with `fresh=True`."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self._known: dict[str, uuid.UUID] = {}

    async def __call__(self, names: Iterable[str], *, fresh: bool = False) -> dict[str, uuid.UUID]:
        wanted = set(names)
        missing = wanted if fresh else wanted - set(self._known)
        if missing:
            admin = AIOKafkaAdminClient(**self._kafka.client_kwargs())
            await admin.start()
            try:
                self._known.update(await topic_ids(admin, missing))
            finally:
                await admin.close()
        return {n: self._known[n] for n in wanted if n in self._known}
