"""Samples the cluster every few seconds: end offsets of the watched topics (throughput) and the
committed offsets of the watched consumer groups (lag).

One admin client and one group-less consumer live as long as the console; nothing is committed and
no group is joined. A failed sample is logged and skipped (the page shows the sample's age), never
fatal: the console must keep answering while the cluster is in trouble.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from console.domain.flow import Lag, Partition, Throughput, lag_rows
from onegrid.settings import KafkaSettings

log = logging.getLogger(__name__)


class KafkaWatch:
    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        topic_pattern: str,
        group_pattern: str,
        interval_s: float,
        window_s: float,
    ) -> None:
        self._kafka = kafka
        self._topics = re.compile(topic_pattern)
        self._groups = re.compile(group_pattern)
        self.interval_s = interval_s
        self.throughput = Throughput(window_s)
        self.lag: list[Lag] = []
        self.sampled_at: float | None = None  # wall clock of the last good sample
        self.samples = 0
        self.error: str | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._probe: AIOKafkaConsumer | None = None

    async def run(self) -> None:
        """Sample until cancelled."""
        try:
            while True:
                try:
                    await self.sample()
                    self.error = None
                except Exception as exc:  # the console keeps serving with the last good sample
                    self.error = f"{type(exc).__name__}: {exc}"
                    log.warning("sampling Kafka failed: %s", self.error)
                    await self._close()
                await asyncio.sleep(self.interval_s)
        finally:
            await self._close()

    async def sample(self) -> None:
        admin, probe = await self._clients()
        topics = sorted(t for t in await admin.list_topics() if self._topics.fullmatch(t))
        described = await admin.describe_topics(topics) if topics else []
        tps = [
            TopicPartition(d["topic"], p["partition"])
            for d in described
            if not d.get("error_code")
            for p in d.get("partitions", [])
        ]
        groups = sorted(g[0] for g in await admin.list_consumer_groups() if self._groups.fullmatch(g[0]))
        committed: dict[str, dict[Partition, int | None]] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            committed[group] = {
                (tp.topic, tp.partition): (m.offset if m is not None and m.offset >= 0 else None)
                for tp, m in offsets.items()
            }
        wanted = set(tps) | {TopicPartition(t, p) for c in committed.values() for t, p in c}
        ends = await probe.end_offsets(sorted(wanted)) if wanted else {}
        at = time.monotonic()
        end_map: dict[Partition, int] = {(tp.topic, tp.partition): off for tp, off in ends.items()}
        self.throughput.observe(
            at, {(tp.topic, tp.partition): end_map[(tp.topic, tp.partition)] for tp in tps}
        )
        self.lag = lag_rows(committed, end_map)
        self.sampled_at = time.time()
        self.samples += 1

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._probe is None:
            admin = AIOKafkaAdminClient(client_id="console-watch", **self._kafka.client_kwargs())
            probe = AIOKafkaConsumer(
                client_id="console-watch", enable_auto_commit=False, **self._kafka.client_kwargs()
            )
            await admin.start()
            try:
                await probe.start()
            except Exception:
                await admin.close()
                raise
            self._admin, self._probe = admin, probe
        return self._admin, self._probe

    async def _close(self) -> None:
        admin, probe = self._admin, self._probe
        self._admin = self._probe = None
        for close in (probe.stop if probe else None, admin.close if admin else None):
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.debug("closing a watch client failed", exc_info=True)
