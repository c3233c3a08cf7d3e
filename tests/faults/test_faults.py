"""The fault suite: each scenario injects its fault while seeded traffic of all five feeds flows, lets
the system drain, and compares ids end to end (tests/faults/harness.py). Scenarios run in this order on
one cluster; the table of scenarios with their counts is printed at the end of the session."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable

import pytest
from support.waiting import wait_until

from .conftest import RESULTS
from .harness import CONSUMER_SERVICES, Result, System, table

pytestmark = [pytest.mark.timeout(900), pytest.mark.asyncio(loop_scope="session")]

Fault = Callable[[], Awaitable[None]]


async def run(system: System, name: str, fault: Fault, *, traffic_s: float, lead_s: float = 5) -> None:
    started = time.monotonic()
    result = Result(name)
    RESULTS.append(result)
    traffic = system.traffic(traffic_s)
    try:
        await asyncio.sleep(lead_s)  # records are flowing when the fault lands
        await fault()
    finally:
        await asyncio.to_thread(traffic.wait, traffic_s + 120)
        result.phases["fault"] = time.monotonic() - started
    try:
        await system.check(result)
    except Exception as exc:
        result.problems.append(f"{type(exc).__name__}: {exc}")
    result.seconds = time.monotonic() - started
    # Written at once: an interrupted session still leaves the table of what ran.
    (system.stack.run / "faults-table.txt").write_text(table(RESULTS) + "\n")
    assert result.ok, "\n".join(result.problems)


async def test_0_baseline_no_fault(system: System) -> None:
    async def nothing() -> None:
        return None

    await run(system, "baseline (no fault)", nothing, traffic_s=15)


async def test_1_sigkill_leader_heavy_broker_then_restart(system: System) -> None:
    async def fault() -> None:
        node = await system.leader_heavy_broker()
        broker = system.broker(node)
        assert broker.process is not None
        broker.process.send_signal(signal.SIGKILL)
        await asyncio.sleep(15)  # traffic goes on with 2 of 3 brokers (min ISR 2)
        await system.restart_broker(node)

    await run(system, "SIGKILL leader-heavy broker, restart", fault, traffic_s=30)


async def test_2_rolling_restart_of_all_brokers(system: System) -> None:
    async def fault() -> None:
        assert system.stack.cluster is not None
        for broker in system.stack.cluster.brokers:
            broker.stop()
            await system.restart_broker(broker.node_id)

    await run(system, "rolling restart of 3 brokers", fault, traffic_s=60)


async def test_3_sigkill_one_instance_of_every_service(system: System) -> None:
    async def kill_and_restart(service: str, after_s: float) -> None:
        await asyncio.sleep(after_s)
        inst = system.instance(service, 1)
        system.signal_instance(inst, signal.SIGKILL)
        await asyncio.sleep(2)
        await asyncio.to_thread(system.restart_instance, inst)

    async def fault() -> None:
        # One kill at a time, 3 s apart; the restarts (each until ready) overlap.
        await asyncio.gather(*(kill_and_restart(s, 3 * i) for i, s in enumerate(CONSUMER_SERVICES)))

    await run(system, "SIGKILL 1 instance of each service, restart", fault, traffic_s=30)


async def test_4_sigstop_intake_until_evicted_then_sigcont(system: System) -> None:
    async def fault() -> None:
        inst = system.instance("intake", 1)
        me = "onegrid-intake-1-legacy"
        system.signal_instance(inst, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 180
            while me in await system.group_members("intake.legacy"):
                assert time.monotonic() < deadline, "the stopped instance was never evicted"
                await asyncio.sleep(1)
            await asyncio.sleep(3)  # the survivor owns and processes its partitions
        finally:
            system.signal_instance(inst, signal.SIGCONT)  # the zombie wakes up with a batch in hand
        await asyncio.sleep(5)

    await run(system, "SIGSTOP intake until evicted, SIGCONT", fault, traffic_s=30)


async def test_5_postgres_stopped_20s(system: System) -> None:
    async def fault() -> None:
        stops = system.stack.pg.log_file.read_text().count("received fast shutdown request")
        system.stack.pg.stop()
        # a clean stop, as the scenario says (the crash is the next one)
        assert system.stack.pg.log_file.read_text().count("received fast shutdown request") == stops + 1
        await asyncio.sleep(20)
        system.stack.pg.start()

    await run(system, "PostgreSQL stopped 20 s", fault, traffic_s=30)


async def test_5b_postgres_killed_then_restarted(system: System) -> None:
    """A crash of the server: what it acknowledged before is kept (services went on from it: offsets
    committed, outputs published), what was in flight is retried by its writer."""

    async def fault() -> None:
        pid = int((system.stack.pg.data_dir / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)
        await wait_until(lambda: not system.stack.pg.running(), interval_s=0.1, what="the server gone")
        await asyncio.sleep(10)
        system.stack.pg.start()

    await run(system, "PostgreSQL SIGKILL, restart after 10 s", fault, traffic_s=30)


async def test_6_rebalance_intake_1_2_1(system: System) -> None:
    inst = system.instance("intake", 1)

    async def members(n: int) -> None:
        deadline = time.monotonic() + 120
        while len(await system.group_members("intake.legacy")) != n:
            assert time.monotonic() < deadline, f"intake.legacy never had {n} members"
            await asyncio.sleep(1)

    async def fault() -> None:
        await asyncio.to_thread(system.stop_instance, inst)  # 2 -> 1
        await members(1)
        await asyncio.sleep(5)
        await asyncio.to_thread(system.restart_instance, inst)  # 1 -> 2
        await members(2)
        await asyncio.sleep(5)
        await asyncio.to_thread(system.stop_instance, inst)  # 2 -> 1
        await members(1)
        await asyncio.sleep(5)

    try:
        await run(system, "rebalance intake 2->1->2->1 (open HJ 212 episodes)", fault, traffic_s=40)
    finally:
        if not system.alive(inst):
            await asyncio.to_thread(system.restart_instance, inst)


async def test_7_sigstop_the_relaying_dispatch_instance_then_sigcont(system: System) -> None:
    """An instance stopped without dying kept its database session open, and with it the lock of its
    outbox table: no order or lifecycle event of any dispatch instance was published for as long as
    it stayed stopped. The server ends the idle session after the lease (outbox_lease_s, 20 s) and
    the other instance relays; the stopped one, woken, stands by, and nothing is published twice."""

    async def fault() -> None:
        deadline = time.monotonic() + 60
        while len(relaying := await asyncio.to_thread(system.relaying, "dispatch")) != 1:
            assert time.monotonic() < deadline, f"not one dispatch instance relaying: {relaying}"
            await asyncio.sleep(1)
        inst = relaying[0]
        system.signal_instance(inst, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 120
            while not await asyncio.to_thread(system.relaying, "dispatch", besides=inst):
                assert time.monotonic() < deadline, "no other dispatch instance took the outbox up"
                await asyncio.sleep(1)
            await asyncio.sleep(5)  # the other instance publishes while this one is stopped
        finally:
            system.signal_instance(inst, signal.SIGCONT)
        await asyncio.sleep(5)

    await run(system, "SIGSTOP the relaying dispatch instance, SIGCONT", fault, traffic_s=40)
