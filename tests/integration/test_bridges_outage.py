"""A broker outage under the HJ 212 bridge and the HTTP pushes, on a broker of this test's own
(stopped and started again on the same data): while Kafka is away no logger gets an answer and no
push gets a 202; when it returns, the loggers' resends are stored and answered, and every packet
sent is in the topic."""

from __future__ import annotations

import asyncio
from pathlib import Path

from support.records import safety_event

from devstack.kafka import KafkaBroker
from devstack.paths import free_port
from intake.domain.feeds.hj212.packet import parse_packet
from onegrid.kafka.admin import ensure_topics
from onegrid.settings import KafkaSettings
from onegrid.topics import TopicSpec

from .conftest import read_all
from .test_bridges import SAFETY, Logger, packet, replied_to, running_bridges


class OwnTopics:
    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka

    async def __call__(self, base: str, partitions: int = 1) -> str:
        await ensure_topics(self.kafka, [TopicSpec(f"t.{base}", partitions=partitions)])
        return f"t.{base}"


async def test_no_answer_while_kafka_is_away_and_nothing_lost_when_it_returns(
    database_url, tmp_path: Path
) -> None:
    broker = KafkaBroker(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    broker.start()
    try:
        await broker.wait_ready()
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap)
        async with running_bridges(
            database_url, kafka, OwnTopics(kafka), hj212_ack_timeout_s=5.0, push_ack_timeout_s=5.0
        ) as run:
            before = packet("MN-OUT-01", 0)
            logger = await Logger.connect(run.port)
            await logger.send(before)
            assert replied_to(await logger.reply(), before)

            await asyncio.to_thread(broker.stop)
            during = [packet("MN-OUT-01", n) for n in (1, 2)]
            await logger.send(*during)
            # Not acknowledged: no answer at all, the bridge closes so the logger will resend.
            assert await logger.reply() == b""
            await logger.close()
            push = await run.http.post(
                "/v1/push/safety", content=safety_event("PA20261130190500000099"), headers=SAFETY
            )
            assert push.status_code == 503 and push.json()["error"] == "kafka.unavailable"

            broker.start()
            await broker.wait_ready()
            after = packet("MN-OUT-01", 3)
            for _ in range(30):  # the logger reconnects and resends what was not answered
                logger = await Logger.connect(run.port)
                await logger.send(*during, after)
                answers = [await logger.reply() for _ in range(3)]
                await logger.close()
                if all(answers):
                    break
            assert [parse_packet(a).qn for a in answers] == [parse_packet(p).qn for p in (*during, after)]
            pushed = await run.http.post(
                "/v1/push/safety", content=safety_event("PA20261130190500000099"), headers=SAFETY
            )
            assert pushed.status_code == 202

            values = [
                r.value for r in await read_all(kafka, run.settings.hj212_topic, expect=4, timeout_s=60)
            ]
            for p in (before, *during, after):
                assert p in values  # nothing lost (a packet stored late and resent may be there twice)
            assert values.count(before) == 1 and values.count(after) == 1
    finally:
        broker.stop()
