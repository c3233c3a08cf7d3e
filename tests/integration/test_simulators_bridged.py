"""The simulated networks through the real bridges (what `make run` does): stations' loggers over
TCP are answered, the alert hub is polled, the safety and party systems' POSTs are taken in; every
record lands on its topic with the headers naming the bridge, none written to Kafka directly."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import uvicorn

from bridges.bootstrap import bootstrap
from bridges.settings import CapFeed, Settings
from devstack.paths import free_port
from onegrid.envelope import header_dict
from simulators.endpoints import Endpoints
from simulators.gateway import run_networks

from .conftest import read_all


async def test_the_simulated_networks_send_through_the_bridges(database_url, kafka_settings, topics) -> None:
    uid = uuid.uuid4().hex[:8]
    hub_port, http_port = free_port(), free_port()
    settings = Settings(
        **{"DATABASE_URL": database_url},  # type: ignore[arg-type]
        db_schema=f"bridges_sim_{uid}",
        service_name=f"bridges-sim-{uid}",
        kafka=kafka_settings,
        hj212_topic=await topics("sim-hj212", partitions=3),
        cap_topic=await topics("sim-cap"),
        safety_topic=await topics("sim-safety"),
        party_topic=await topics("sim-party"),
        hj212_port=0,
        http_port=http_port,
        cap_feeds=[
            CapFeed(name="sim-hub", url=f"http://127.0.0.1:{hub_port}/cap/index.atom", interval_s=0.2)
        ],
    )
    service = bootstrap(settings)
    app, bridges = service.app, service.bridges
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=http_port, log_config=None))
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(600):
            if server.started or serving.done():
                break
            await asyncio.sleep(0.1)
        assert server.started
        endpoints = Endpoints(
            kafka=kafka_settings,
            urls={"open311": "http://127.0.0.1:9", "bridges": f"http://127.0.0.1:{http_port}"},
            hj212_address=f"127.0.0.1:{bridges.hj212.port}",
        )
        tally = await run_networks(
            endpoints, rate=20, duration_s=6, seed=7, alert_hub_port=hub_port, handle_signals=False
        )
        status = bridges.status()
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 60)

    # Every packet the loggers sent was stored and, when it asked, answered; nothing was resent.
    assert tally["hj212"] > 0 and tally["hj212 answered"] + tally["hj212 sent"] == tally["hj212"], tally
    assert tally["hj212 resent"] == 0
    packets = await read_all(kafka_settings, settings.hj212_topic, expect=tally["hj212"])
    assert len(packets) == tally["hj212"]
    for feed, topic in (("safety", settings.safety_topic), ("party", settings.party_topic)):
        records = await read_all(kafka_settings, topic, expect=tally[feed])
        # The broken ones are answered 422 and kept for intake's dead letters.
        assert tally[f"{feed} 202"] + tally[f"{feed} 422"] == tally[feed] == len(records), (feed, tally)
        assert {header_dict(r.headers)["ce_source"] for r in records} == {
            f"/onegrid/bridges/{feed}-push/legacy:simulated-{feed}"
        }
    alerts = await read_all(kafka_settings, settings.cap_topic, expect=max(1, tally["cap"] - 1))
    assert tally["cap"] > 0 and 0 < len(alerts) <= tally["cap"]  # the last may leave before a poll
    bridged = Counter(header_dict(r.headers)["ce_bridge"] for rs in (packets, alerts) for r in rs)
    assert bridged == {"hj212": len(packets), "cap-poll": len(alerts)}
    assert status["cap_feeds"]["sim-hub"]["alerts"] == len(alerts)
