"""IncrementalAlterConfigs (KIP-339), which aiokafka's admin client does not offer.

`AlterConfigs` replaces a topic's whole dynamic config: every key not in the request falls back to the
broker default, so an operator's own setting (say a larger `max.message.bytes`) is silently lost.
`IncrementalAlterConfigs` sets only the keys it names.
"""

from __future__ import annotations

from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int8, Int16, Int32, Schema, String

TOPIC_RESOURCE = 2
OP_SET = 0


class IncrementalAlterConfigsResponse_v0(Response):  # type: ignore[misc]
    API_KEY = 44
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "responses",
            Array(
                ("error_code", Int16),
                ("error_message", String("utf-8")),
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
            ),
        ),
    )


class IncrementalAlterConfigsRequest_v0(RequestStruct):  # type: ignore[misc]
    API_KEY = 44
    API_VERSION = 0
    RESPONSE_TYPE = IncrementalAlterConfigsResponse_v0
    SCHEMA = Schema(
        (
            "resources",
            Array(
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
                (
                    "configs",
                    Array(("name", String("utf-8")), ("config_operation", Int8), ("value", String("utf-8"))),
                ),
            ),
        ),
        ("validate_only", Boolean),
    )


class IncrementalAlterConfigsRequest(Request[IncrementalAlterConfigsRequest_v0]):  # type: ignore[misc]
    API_KEY = 44

    def __init__(self, resources: list[Any]) -> None:
        self._resources = resources

    def build(
        self, request_struct_class: type[IncrementalAlterConfigsRequest_v0]
    ) -> IncrementalAlterConfigsRequest_v0:
        return request_struct_class(self._resources, False)


async def set_topic_configs(admin: AIOKafkaAdminClient, changes: dict[str, dict[str, str]]) -> None:
    """Set the given keys of each topic's config, leaving every other key as it is."""
    if not changes:
        return
    resources = [
        (TOPIC_RESOURCE, topic, [(k, OP_SET, v) for k, v in sorted(cfg.items())])
        for topic, cfg in sorted(changes.items())
    ]
    response = await admin._send_request(IncrementalAlterConfigsRequest(resources))
    for error_code, message, _type, name in response.responses:
        if error_code:
            raise for_code(error_code)(f"altering config of {name}: {message}")
