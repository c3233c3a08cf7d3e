"""contracts/asyncapi.yaml names every topic, and everything it points to exists and holds.

Every channel has messages; every `$ref` (inside the document, or to a schema file and a fragment in it)
resolves; every JSON Schema it points to validates its own examples; and the channels are exactly the
topics of `onegrid.topics`, with the same partitions and cleanup policy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from onegrid import topics

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
DOC: dict[str, Any] = yaml.safe_load((CONTRACTS / "asyncapi.yaml").read_text(encoding="utf-8"))
CHANNELS: dict[str, Any] = DOC["channels"]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _pointer(document: Any, fragment: str) -> Any:
    node = document
    for token in filter(None, fragment.split("/")):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def _message(ref: str) -> dict[str, Any]:
    assert ref.startswith("#/")
    message: dict[str, Any] = _pointer(DOC, ref[1:])
    return message


def _schema_files() -> list[Path]:
    files = {(CONTRACTS / ref.split("#")[0]).resolve() for ref in _refs(DOC) if not ref.startswith("#")}
    return sorted(files)


def test_it_is_an_asyncapi_3_document() -> None:
    assert DOC["asyncapi"].startswith("3.")
    assert set(DOC) >= {"info", "channels", "operations", "components"}


@pytest.mark.parametrize("ref", sorted(set(_refs(DOC))))
def test_every_ref_resolves(ref: str) -> None:
    path, _, fragment = ref.partition("#")
    if not path:
        assert _pointer(DOC, fragment) is not None
        return
    target = CONTRACTS / path
    assert target.is_file(), f"{ref}: no such file"
    assert _pointer(json.loads(target.read_text(encoding="utf-8")), fragment) is not None


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_every_channel_has_a_message_with_a_payload_and_headers(channel: str) -> None:
    messages = CHANNELS[channel]["messages"]
    assert messages, channel
    for entry in messages.values():
        message = _message(entry["$ref"])
        assert "payload" in message and "headers" in message, channel
        assert "key" in message["bindings"]["kafka"], f"{channel}: name the Kafka key"
        payload = message["payload"]
        if "schema" in payload:  # a JSON Schema 2020-12 file
            assert payload["schemaFormat"] == "application/schema+json;version=draft-2020-12"
            assert (CONTRACTS / payload["schema"]["$ref"].split("#")[0]).is_file()
        else:  # the raw bytes of a legacy feed or of the original record
            assert payload["format"] == "binary", channel


@pytest.mark.parametrize("schema_file", _schema_files(), ids=lambda p: p.name)
def test_every_example_in_every_referenced_schema_validates(schema_file: Path) -> None:
    every = [json.loads(p.read_text(encoding="utf-8")) for p in (CONTRACTS / "schemas").glob("*.json")]
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in [*every, schema])
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, registry=registry)
    examples = schema.get("examples", [])
    if schema_file.parent.name == "schemas":  # ours; legacy/ keeps its samples beside the schema
        assert examples, f"{schema_file.name} has no examples"
    for example in examples:
        assert [e.message for e in validator.iter_errors(example)] == []


def test_channels_are_exactly_the_topic_catalogue() -> None:
    addresses = {c["address"] for c in CHANNELS.values()}
    fixed = {spec.name for spec in topics.CATALOGUE}
    assert addresses - {"dispatch.orders.{department}.v1"} == fixed
    assert topics.dispatch_orders_topic("hj-urban-mgmt") == "dispatch.orders.hj-urban-mgmt.v1"


@pytest.mark.parametrize("spec", topics.catalogue(["hj-urban-mgmt"]), ids=lambda s: s.name)
def test_partitions_and_cleanup_policy_match_the_code(spec: topics.TopicSpec) -> None:
    address = "dispatch.orders.{department}.v1" if spec.name.startswith("dispatch.orders.") else spec.name
    channel = next(c for c in CHANNELS.values() if c["address"] == address)
    binding = channel["bindings"]["kafka"]
    config = spec.config()
    assert binding["partitions"] == spec.partitions
    assert binding["topicConfiguration"]["cleanup.policy"] == [config["cleanup.policy"]]
    assert binding["topicConfiguration"]["retention.ms"] == int(config["retention.ms"])
    if "topic" in binding:
        assert binding["topic"] == spec.name


def _channel_of(spec: topics.TopicSpec) -> dict[str, Any]:
    address = topics.ORDERS_TOPIC_TEMPLATE if spec is topics.ORDERS else spec.name
    return next(c for c in CHANNELS.values() if c["address"] == address)


def _marks_personal_data(node: Any) -> bool:
    if isinstance(node, dict):
        return node.get("x-personal-data") is True or any(_marks_personal_data(v) for v in node.values())
    return isinstance(node, list) and any(_marks_personal_data(v) for v in node)


@pytest.mark.parametrize("spec", [*topics.CATALOGUE, topics.ORDERS], ids=lambda s: s.name)
def test_owner_readers_key_and_personal_data_match_the_catalogue(spec: topics.TopicSpec) -> None:
    channel = _channel_of(spec)
    assert channel["x-onegrid"] == {
        "owner": spec.owner,
        **({"alsoWrittenBy": list(spec.also_written_by)} if spec.also_written_by else {}),
        "readers": list(spec.readers),
        "audited": spec.audited,
        "personalData": spec.personal_data,
    }
    for entry in channel["messages"].values():
        message = _message(entry["$ref"])
        assert message["bindings"]["kafka"]["key"]["description"] == spec.key
        payload = message["payload"]
        if "schema" in payload:  # a schema that marks a field as personal data: the topic carries it
            path, _, fragment = payload["schema"]["$ref"].partition("#")
            schema = _pointer(json.loads((CONTRACTS / path).read_text(encoding="utf-8")), fragment)
            assert not _marks_personal_data(schema) or spec.personal_data


def _relative_links() -> Iterator[str]:
    readme = (CONTRACTS / "README.md").read_text(encoding="utf-8")
    yield from re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme)
    yield from (url for url in _external_docs(DOC) if not url.startswith(("http:", "https:")))


def _external_docs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("externalDocs"), dict):
            yield node["externalDocs"]["url"]
        for value in node.values():
            yield from _external_docs(value)


@pytest.mark.parametrize("link", sorted(set(_relative_links())))
def test_every_relative_link_in_the_catalogue_exists(link: str) -> None:
    assert (CONTRACTS / link).is_file(), link
