"""The producer's partitioner picks exactly the partition of Kafka's default partitioner (aiokafka's
pure-Python murmur2 port of the Java client), for any key and partition count."""

from __future__ import annotations

import random
import uuid

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference_murmur2

from onegrid.kafka.partitioner import murmur2, partition_of


def _keys() -> list[bytes]:
    rng = random.Random(16)
    keys = [bytes(rng.getrandbits(8) for _ in range(n)) for n in range(0, 80) for _ in range(40)]
    keys += [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(2000)]
    keys += [f"env:{rng.randrange(10**14):014d}".encode() for _ in range(500)]
    keys += [b"city", b"intake.hj212.v1:3", "北京市朝阳区".encode(), b"\xff" * 7, b"\x00" * 9]
    return keys


def test_murmur2_equals_the_reference_on_every_key() -> None:
    for key in _keys():
        assert murmur2(key) == reference_murmur2(key), key


def test_partition_equals_the_default_partitioner_for_every_partition_count() -> None:
    default = DefaultPartitioner()
    for key in _keys():
        for n in (1, 2, 3, 6, 12, 31, 64):
            parts = list(range(n))
            assert partition_of(key, parts, parts) == default(key, parts, parts), (key, n)


def test_a_repeated_key_keeps_its_partition() -> None:
    parts = list(range(12))
    key = b"c0ffee00-0000-4000-8000-000000000016"
    first = partition_of(key, parts, parts)
    assert all(partition_of(key, parts, parts) == first for _ in range(3))
    assert partition_of(bytearray(key), parts, parts) == first


def test_a_record_without_key_goes_to_an_available_partition() -> None:
    assert all(partition_of(None, [0, 1, 2, 3], [2]) == 2 for _ in range(20))
    assert {partition_of(None, [0, 1], []) for _ in range(200)} == {0, 1}
