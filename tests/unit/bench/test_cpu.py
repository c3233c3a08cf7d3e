"""bench.cpu: processes sorted by role, and CPU per record from two snapshots."""

from __future__ import annotations

import os

from bench import cpu


def test_each_part_of_the_system_is_known_by_its_command_line() -> None:
    assert cpu.role_of(["/usr/lib/jvm/bin/java", "@/tmp/x/kafka/server.args"], 1) == "kafka broker"
    assert cpu.role_of(["/opt/pg/bin/postgres", "-D", "/tmp/pg"], 1) == "postgresql"
    assert cpu.role_of(["postgres: onegrid onegrid_bench 127.0.0.1(5432) idle"], 1) == "postgresql"
    assert cpu.role_of([".venv/bin/python", "-m", "bench.worker", "127.0.0.1:9092"], 1) == "intake (worker)"
    assert cpu.role_of([".venv/bin/python", "-m", "dispatch"], 1) == "dispatch"
    assert cpu.role_of(["/usr/bin/python3", "-m", "pytest"], os.getpid()) == cpu.BENCH
    assert cpu.role_of(["/usr/bin/python3", "-m", "pytest"], 1) is None
    assert cpu.role_of([], 1) is None


def test_per_record_splits_the_machine_busy_time_by_role() -> None:
    before = cpu.Snapshot({"kafka broker": 10.0, "dispatch": 1.0}, busy_s=100.0, cores=2)
    after = cpu.Snapshot({"kafka broker": 12.0, "dispatch": 1.5, "postgresql": 0.5}, busy_s=104.0, cores=2)
    got = cpu.per_record(before, after, records=1000, wall_s=4.0)
    ms = got["ms_per_record"]
    assert isinstance(ms, dict)
    assert ms["kafka broker"] == 2.0 and ms["dispatch"] == 0.5 and ms["postgresql"] == 0.5
    assert ms[cpu.OTHER] == 1.0  # 4 s busy over 1,000 records, 3 ms of it by the known roles
    assert got["total_ms_per_record"] == 4.0
    assert got["cores_busy"] == 1.0
    assert got["ceiling_per_s"] == 500  # two cores over 4 ms a record


def test_a_live_snapshot_sees_this_process() -> None:
    snap = cpu.snapshot()
    assert snap.by_role[cpu.BENCH] > 0 and snap.busy_s > 0 and snap.cores >= 1


def test_the_brokers_jit_compiler_is_a_part_of_the_brokers_cpu_not_added_again() -> None:
    before = cpu.Snapshot({"kafka broker": 10.0}, busy_s=100.0, cores=2, jit_s=3.0)
    after = cpu.Snapshot({"kafka broker": 12.0}, busy_s=104.0, cores=2, jit_s=3.5)
    got = cpu.per_record(before, after, records=1000, wall_s=4.0)
    assert got["broker_jit_ms_per_record"] == 0.5
    assert got["ms_per_record"]["kafka broker"] == 2.0  # type: ignore[index]
    assert got["total_ms_per_record"] == 4.0


def test_the_compiler_threads_of_a_real_jvm_are_found_and_no_other_thread_is() -> None:
    import shutil
    import subprocess
    import time

    import psutil
    import pytest

    java = shutil.which("java")
    if java is None:
        pytest.skip("no JVM on this machine")
    # A JVM compiling for a while: -Xcomp compiles every method it runs before running it.
    jvm = subprocess.Popen([java, "-Xcomp", "-version"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process = psutil.Process(jvm.pid)
        seen = 0.0
        deadline = time.monotonic() + 20
        while jvm.poll() is None and time.monotonic() < deadline:
            seen = max(seen, cpu.compiler_seconds(process))
            whole = process.cpu_times()
            assert seen <= whole.user + whole.system + 0.05
            time.sleep(0.05)
    except psutil.NoSuchProcess:
        pass
    finally:
        jvm.kill()
        jvm.wait()
    assert seen > 0
    assert cpu.compiler_seconds(psutil.Process()) == 0.0  # this Python process has no compiler threads
