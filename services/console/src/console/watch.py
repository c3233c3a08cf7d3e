"""Samples the cluster every few seconds: end offsets of the watched topics (throughput) and the
committed offsets of the watched consumer groups (lag).

One admin client and one group-less consumer live as long as the console; nothing is committed and
no group is joined. A failed sample is logged and skipped (the page shows the sample's age), never
fatal: the console must keep answering while the cluster is in trouble.
"""

from __future__ import annotations

import logging
import re
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from console.domain.flow import Lag, Partition, Throughput, lag_rows, via
from onegrid.envelope import header_dict
from onegrid.periodic import Periodic, any_error
from onegrid.settings import KafkaSettings
from onegrid.topics import legacy_feeds_pattern

log = logging.getLogger(__name__)
# Topics whose latest record is read to show which way it came in (the bridge per feed): the
# catalogue's legacy feeds, the topics the console may read for that.
VIA_TOPICS = re.compile(legacy_feeds_pattern())


class KafkaWatch:
    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        topic_pattern: str,
        group_pattern: str,
        interval_s: float,
        window_s: float,
        via_pattern: re.Pattern[str] = VIA_TOPICS,
    ) -> None:
        self._kafka = kafka
        self._topics = re.compile(topic_pattern)
        self._groups = re.compile(group_pattern)
        self.interval_s = interval_s
        self.throughput = Throughput(window_s)
        self._via_topics = via_pattern
        self.via: dict[str, str] = {}  # legacy topic -> the bridge (or source) of its newest record
        self._looked: dict[Partition, int] = {}
        self.lag: list[Lag] = []
        self.sampled_at: float | None = None  # wall clock of the last good sample
        self.samples = 0
        self.error: str | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._probe: AIOKafkaConsumer | None = None

    async def run(self) -> None:
        """Sample until cancelled."""
        try:
            # the console keeps serving with the last good sample whatever fails
            await Periodic(
                "Kafka sampling", self.interval_s, retry=any_error, max_backoff_s=self.interval_s
            ).run(self._sample_or_reset)
        finally:
            await self._close()

    async def _sample_or_reset(self) -> None:
        try:
            await self.sample()
            self.error = None
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            await self._close()  # clients made anew for the next sample
            raise

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
        try:
            await self._look_via(
                probe, {tp: end for tp, end in end_map.items() if self._via_topics.fullmatch(tp[0])}
            )
        except Exception as exc:  # a nicety: never let it fail the sample
            log.debug("reading the newest legacy records failed: %r", exc)
        self.sampled_at = time.time()
        self.samples += 1

    async def _look_via(self, probe: AIOKafkaConsumer, ends: dict[Partition, int]) -> None:
        """The newest record of each legacy partition that grew since the last look: its headers
        name the bridge it came through."""
        grown = [tp for tp, end in ends.items() if end > 0 and self._looked.get(tp) != end]
        if not grown:
            return
        tps = [TopicPartition(t, p) for t, p in grown]
        probe.assign(tps)
        for tp in tps:
            probe.seek(tp, ends[(tp.topic, tp.partition)] - 1)
        batch = await probe.getmany(*tps, timeout_ms=1000)
        for tp, records in batch.items():
            if records:
                seen = via(header_dict(records[-1].headers))
                if seen:
                    self.via[tp.topic] = seen
                self._looked[(tp.topic, tp.partition)] = records[-1].offset + 1

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
