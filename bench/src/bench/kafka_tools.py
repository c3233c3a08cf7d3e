"""Kafka's own performance tools, run from the broker's jars: the broker's ceiling on this machine.

`ProducerPerformance` and `ConsumerPerformance` (org.apache.kafka.tools, in kafka-tools) are what
Kafka's own documentation measures with; their summary lines are parsed here.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from devstack.kafka import java_executable, libs_dir
from onegrid.paths import project_root

_PRODUCER = re.compile(
    r"(?P<n>\d+) records sent, (?P<rps>[\d.]+) records/sec \((?P<mbps>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, "
    r"(?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99.9th"
)


def _java(main: str, *args: str) -> list[str]:
    return [
        java_executable(),
        "-Xmx512m",
        f"-Dlog4j2.configurationFile={project_root() / 'deploy/local/kafka/log4j2.yaml'}",
        "-cp",
        str(libs_dir() / "*"),
        main,
        *args,
    ]


async def _run(cmd: list[str], timeout_s: float) -> str:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[-1]} failed ({proc.returncode}): {text[-2000:]}")
    return text


async def producer_performance(
    bootstrap: str, topic: str, *, records: int, record_size: int, timeout_s: float = 300.0
) -> dict[str, Any]:
    """As fast as it can (throughput -1), acks=all and idempotent like our producers."""
    text = await _run(
        _java(
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            str(record_size),
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={bootstrap}",
            "acks=all",
            "enable.idempotence=true",
            "linger.ms=5",
        ),
        timeout_s,
    )
    # The last match is the final summary (earlier lines are progress windows).
    matches = list(_PRODUCER.finditer(text))
    if not matches:
        raise RuntimeError(f"ProducerPerformance printed no summary: {text[-1000:]}")
    m = matches[-1]
    return {
        "records": int(m["n"]),
        "record_bytes": record_size,
        "per_s": float(m["rps"]),
        "mb_per_s": float(m["mbps"]),
        "latency_avg_ms": float(m["avg"]),
        "latency_p99_ms": float(m["p99"]),
    }


async def consumer_performance(
    bootstrap: str, topic: str, *, records: int, group: str, timeout_s: float = 300.0
) -> dict[str, Any]:
    """Reads `records` from the topic's beginning; the rate is over the fetch time (rebalance excluded)."""
    text = await _run(
        _java(
            "org.apache.kafka.tools.ConsumerPerformance",
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--messages",
            str(records),
            "--group",
            group,
            "--timeout",
            str(int(timeout_s * 1000)),
        ),
        timeout_s + 30,
    )
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header_at = next((i for i, ln in enumerate(lines) if ln.startswith("start.time")), None)
    if header_at is None or header_at + 1 >= len(lines):
        raise RuntimeError(f"ConsumerPerformance printed no summary: {text[-1000:]}")
    header = [h.strip() for h in lines[header_at].split(",")]
    values = dict(zip(header, (v.strip() for v in lines[header_at + 1].split(",")), strict=False))
    return {
        "records": int(values["data.consumed.in.nMsg"]),
        "per_s": float(values["fetch.nMsg.sec"]),
        "mb_per_s": float(values["fetch.MB.sec"]),
        "per_s_with_rebalance": float(values["nMsg.sec"]),
        "rebalance_ms": float(values["rebalance.time.ms"]),
    }
