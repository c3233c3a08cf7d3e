"""The in-memory broker places a keyed record where Kafka's default partitioner would: the same
partition in every process. Python's `hash()` of bytes is salted per process (PYTHONHASHSEED), so a
test whose figures depend on how keys spread over partitions passed or failed by chance."""

from __future__ import annotations

import subprocess
import sys

from aiokafka.partitioner import murmur2

from onegrid.kafka.memory import MemoryBroker

KEYS = [f"case-{i}".encode() for i in range(40)]


def kafka_partition(key: bytes, partitions: int) -> int:
    """The Java client's and aiokafka's default: positive murmur2 of the key, modulo partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def test_a_keyed_record_goes_to_the_partition_kafka_would_choose() -> None:
    broker = MemoryBroker(partitions=6)
    assert [broker.append("t", b"v", key=k).partition for k in KEYS] == [kafka_partition(k, 6) for k in KEYS]


def test_the_placement_is_the_same_under_every_hash_seed() -> None:
    probe = (
        "from onegrid.kafka.memory import MemoryBroker; b = MemoryBroker(partitions=3);"
        f"print([b.append('t', b'v', key=k).partition for k in {KEYS!r}])"
    )
    seen = {
        subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(seen) == 1, seen


def test_records_without_a_key_or_with_a_partition_stay_where_they_are_put() -> None:
    broker = MemoryBroker(partitions=4)
    assert broker.append("t", b"v").partition == 0
    assert broker.append("t", b"v", key=b"k", partition=3).partition == 3
