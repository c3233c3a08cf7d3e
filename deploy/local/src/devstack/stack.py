"""The whole local system: Kafka, PostgreSQL, topics and the services, as background processes.

State lives in `.run/`: pid files, logs, data, and `endpoints.json` for tools and people. Every step
is idempotent: `up` twice changes nothing; `down` leaves no process behind.

Cluster mode (`make up BROKERS=3 INSTANCES=2`, i.e. ONEGRID_BROKERS / ONEGRID_INSTANCES): a KRaft
cluster of that many nodes under `.run/kafka-cluster/` (topics at replication 3, min ISR 2), and that
many instances of every consumer service, instance i on its service's port + 100·i with instance id
i (one consumer group per loop, shared by the instances). The layout chosen at `up` is kept in
`.run/layout.json`, so `down` and `status` need no variables. `endpoints.json` lists every broker
(node id, address, pid) and every instance (service, url, pid).

Access: every service verifies tokens with one HS256 secret, ONEGRID_AUTH_HS256_SECRET if set, else
`.run/auth-secret` (generated once); `endpoints.json` carries an admin token (`admin_token`) for the
local tools (simulators, curl), and `up` prints the console's address with it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from devstack import preflight
from devstack.java import find_java
from devstack.kafka import KafkaBroker, KafkaCluster, stop_process_group
from devstack.paths import private_file
from devstack.postgres import LocalPostgres
from onegrid.paths import project_root, run_dir
from onegrid.topics import TopicSpec


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    port_env: str
    default_port: int

    # The console reads the others; every other service consumes Kafka and runs as N instances.
    scales: bool = True

    @property
    def port(self) -> int:
        return int(os.environ.get(self.port_env, self.default_port))

    @property
    def instance_env(self) -> str:
        return self.port_env.replace("HTTP_PORT", "INSTANCE_ID")


@dataclass(frozen=True)
class Instance:
    """One process of a service: instance 0 keeps the service's name, port and files (as with one)."""

    spec: ServiceSpec
    index: int

    @property
    def name(self) -> str:
        return self.spec.name if self.index == 0 else f"{self.spec.name}-{self.index}"

    @property
    def port(self) -> int:
        return self.spec.port + 100 * self.index

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# The simulated city for `make run`: the legacy networks and the departments (deploy/simulators).
WEBHOOK_DEPARTMENT = "shichang"  # this department is reached by signed webhook, the others over Kafka
SIM_WEBHOOK_PORT = int(os.environ.get("ONEGRID_SIM_WEBHOOK_PORT", 8010))
# The simulated emergency platform's alert hub, polled by the bridges' CAP poller.
SIM_ALERT_HUB_PORT = int(os.environ.get("ONEGRID_SIM_ALERT_HUB_PORT", 8011))


def hj212_port() -> int:
    """The bridges' HJ 212 TCP listener (its own setting, read by the bridges from the same variable)."""
    return int(os.environ.get("ONEGRID_BRIDGES_HJ212_PORT", 8212))


def _silent_departments() -> str:
    extra = os.environ.get("ONEGRID_SIM_SILENT", "")
    return ",".join(dict.fromkeys(["chengguan", *(d.strip() for d in extra.split(",") if d.strip())]))


def simulators(rate: str) -> tuple[tuple[str, list[str]], ...]:
    return (
        ("sim-networks", ["networks", "--rate", rate, "--alert-hub-port", str(SIM_ALERT_HUB_PORT)]),
        # ONEGRID_SIM_SILENT: departments left to a real system under test (chengguan is always silent).
        (
            "sim-departments",
            ["departments", "--webhook-port", str(SIM_WEBHOOK_PORT), "--silent", _silent_departments()],
        ),
    )


SERVICES = (
    ServiceSpec("grid-registry", "grid_registry", "ONEGRID_GRID_REGISTRY_HTTP_PORT", 8001),
    ServiceSpec("intake", "intake", "ONEGRID_INTAKE_HTTP_PORT", 8002),
    ServiceSpec("dispatch", "dispatch", "ONEGRID_DISPATCH_HTTP_PORT", 8003),
    ServiceSpec("audit", "audit", "ONEGRID_AUDIT_HTTP_PORT", 8004),
    ServiceSpec("evaluation", "evaluation", "ONEGRID_EVALUATION_HTTP_PORT", 8005),
    # Residents' requests (GeoReport v2 at /open311/v2/); the console forwards that path to it.
    ServiceSpec("open311", "open311", "ONEGRID_OPEN311_HTTP_PORT", 8006),
    # The bridges listen on fixed gateway ports (HJ 212 over TCP): one process.
    ServiceSpec("bridges", "bridges", "ONEGRID_BRIDGES_HTTP_PORT", 8007, scales=False),
    ServiceSpec("console", "console", "ONEGRID_CONSOLE_HTTP_PORT", 8000, scales=False),
)


def _layout_number(env: str, saved: dict[str, int], key: str) -> int:
    raw = os.environ.get(env, "").strip()
    value = int(raw) if raw else saved.get(key, 1)
    if not 1 <= value <= 9:
        raise SystemExit(f"{env}={value}: between 1 and 9")
    return value


def started_at() -> float:
    """When the command began: the Makefile's ONEGRID_STARTED_AT (so `make run` counts its install
    steps too), else this process's start."""
    try:
        return float(os.environ["ONEGRID_STARTED_AT"])
    except (KeyError, ValueError):
        return _PROCESS_START


_PROCESS_START = time.time()


def _say(text: str) -> None:
    """print, unless stdout is gone (then the message is dropped, the work goes on)."""
    try:
        print(text, flush=True)
    except (BrokenPipeError, OSError):
        pass


def _alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:  # a zombie is not alive
            if f.read().split(") ", 1)[1].startswith("Z"):
                return None
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, IndexError):
        return None


class Stack:
    def __init__(self, *, simulate: bool = False) -> None:
        self.simulate = simulate
        self.run = run_dir()
        self.logs = self.run / "logs"
        self.logs.mkdir(exist_ok=True)
        self.external_kafka = os.environ.get("ONEGRID_KAFKA_BOOTSTRAP_SERVERS")
        self.external_db = os.environ.get("DATABASE_URL")
        saved = self._saved_layout()
        self.brokers = _layout_number("ONEGRID_BROKERS", saved, "brokers")
        self.instances = _layout_number("ONEGRID_INSTANCES", saved, "instances")
        port = int(os.environ.get("ONEGRID_KAFKA_PORT", 9092))
        self.kafka = KafkaBroker(
            self.run / "kafka",
            port=port,
            controller_port=int(os.environ.get("ONEGRID_KAFKA_CONTROLLER_PORT", 9093)),
        )
        self.cluster = (
            KafkaCluster(self.run / "kafka-cluster", size=self.brokers, base_port=port)
            if self.brokers > 1
            else None
        )
        # The database goes with its Kafka: services' outboxes and positions refer to one cluster's
        # topics, so a cluster has a database of its own beside its nodes.
        pg_dir = self.run / "pg" if self.cluster is None else self.run / "kafka-cluster" / "pg"
        self.pg = LocalPostgres(pg_dir / "data", port=int(os.environ.get("ONEGRID_PG_PORT", 55432)))

    @property
    def bootstrap(self) -> str:
        if self.external_kafka:
            return self.external_kafka
        return self.cluster.bootstrap if self.cluster else self.kafka.bootstrap

    @property
    def nodes(self) -> list[KafkaBroker]:
        """The local Kafka processes (none with an external cluster)."""
        if self.external_kafka:
            return []
        return self.cluster.brokers if self.cluster else [self.kafka]

    def all_instances(self) -> list[Instance]:
        return [Instance(s, i) for s in SERVICES for i in range(self.instances if s.scales else 1)]

    def _saved_layout(self) -> dict[str, int]:
        try:
            data = json.loads((self.run / "layout.json").read_text())
            return {k: int(v) for k, v in data.items()}
        except (FileNotFoundError, ValueError, AttributeError):
            return {}

    def _save_layout(self) -> None:
        (self.run / "layout.json").write_text(
            json.dumps({"brokers": self.brokers, "instances": self.instances}) + "\n"
        )

    @property
    def database_url(self) -> str:
        return self.external_db or self.pg.url

    def instance_env(self, inst: Instance, *, human_logs: bool) -> dict[str, str]:
        env = self.service_env(inst.spec, human_logs=human_logs)
        env[inst.spec.port_env] = str(inst.port)
        env[inst.spec.instance_env] = str(inst.index)
        return env

    def service_env(self, svc: ServiceSpec, *, human_logs: bool) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            ONEGRID_AUTH_HS256_SECRET=self.auth_secret,
            ONEGRID_ROOT=str(project_root()),
            ONEGRID_KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            DATABASE_URL=self.database_url,
            ONEGRID_OTEL_LOG_JSON="false" if human_logs else "true",
        )
        # The local stack is a development system (a generated HS256 secret and signing key, admin
        # tokens minted here); services default to production everywhere else.
        env["ONEGRID_ENVIRONMENT"] = "development"
        # Every service finds every other by these (the console reads audit and dispatch).
        for other in SERVICES:
            env[other.port_env] = str(other.port)
            short = other.module.removeprefix("grid_")  # grid_registry -> REGISTRY
            env[f"ONEGRID_CONSOLE_{short.upper()}_URL"] = f"http://127.0.0.1:{other.port}"
        if self.simulate:
            env.setdefault("ONEGRID_DISPATCH_WEBHOOKS", self._webhooks())
            hub = f"http://127.0.0.1:{SIM_ALERT_HUB_PORT}/cap/index.atom"
            env.setdefault(
                "ONEGRID_BRIDGES_CAP_FEEDS", json.dumps([{"name": "sim-hub", "url": hub, "interval_s": 2}])
            )
        # Traces go to the console's OTLP receiver unless a real collector is configured.
        env.setdefault("ONEGRID_OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{self.console_port}")
        return env

    @property
    def auth_secret(self) -> str:
        from onegrid.auth.settings import development_secret

        return os.environ.get("ONEGRID_AUTH_HS256_SECRET") or development_secret()

    def admin_token(self, ttl_s: float = 7 * 24 * 3600) -> str:
        from onegrid.auth import mint
        from onegrid.auth.settings import AuthSettings

        auth = AuthSettings()
        return mint(
            self.auth_secret.encode(),
            role="admin",
            subject="admin:local",
            issuer=auth.issuer,
            audience=auth.audience,
            ttl_s=ttl_s,
        )

    def _webhooks(self) -> str:
        """One department served by the simulator's webhook server, with a secret kept in .run/."""
        secret_file = self.run / "webhook-secret"
        if not secret_file.exists():
            import secrets

            private_file(secret_file, secrets.token_hex(24))
        url = f"http://127.0.0.1:{SIM_WEBHOOK_PORT}/webhooks/{WEBHOOK_DEPARTMENT}"
        return json.dumps({WEBHOOK_DEPARTMENT: {"url": url, "secret": secret_file.read_text().strip()}})

    def _start_simulators(self) -> None:
        rate = os.environ.get("ONEGRID_SIM_RATE", "5")
        env = self.service_env(SERVICES[0], human_logs=True)
        env["ONEGRID_DISPATCH_URL"] = (
            f"http://127.0.0.1:{next(s.port for s in SERVICES if s.name == 'dispatch')}"
        )
        for name, args in simulators(rate):
            pid_file = self.run / f"{name}.pid"
            if _alive(pid_file):
                continue
            log = (self.logs / f"{name}.log").open("ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", "simulators", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=project_root(),
            )
            pid_file.write_text(str(proc.pid))
            print(f"{name}: started ({' '.join(args)})")

    def _stop_simulators(self, say: Callable[[str], None]) -> None:
        for name, _ in simulators("0"):
            pid_file = self.run / f"{name}.pid"
            pid = _alive(pid_file)
            if pid:
                stop_process_group(pid, timeout_s=15)
                say(f"{name}: stopped")
            pid_file.unlink(missing_ok=True)

    @property
    def console_port(self) -> int:
        return next(s.port for s in SERVICES if s.name == "console")

    # -- up --------------------------------------------------------------------------------

    def up(self, *, human_logs: bool = False) -> None:
        self._check_layout()
        self._preflight()
        self._save_layout()
        self._start_kafka()
        self._start_postgres()
        asyncio.run(self._ensure_topics())
        for inst in self.all_instances():
            self._start_service(inst, human_logs=human_logs)
        for inst in self.all_instances():
            self._wait_healthy(inst)
        token = self._write_endpoints()
        print(f"up: endpoints and an admin token in {self.run / 'endpoints.json'}")
        print(f"console: http://127.0.0.1:{self.console_port}/#token={token}")
        print(f"console ready {time.time() - started_at():.1f} s after start")

    def _preflight(self) -> None:
        """Every port this `up` will bind, free or ours already, and room on disk: checked before
        anything starts, so a clash is one sentence instead of a half-started stack."""
        ports: dict[str, tuple[int, str]] = {}
        for b in self.nodes:
            if not _alive(b.pid_file):
                node = f" node {b.node_id}" if self.cluster else ""
                ports[f"Kafka{node}"] = (b.port, "ONEGRID_KAFKA_PORT")
                ports[f"Kafka{node}'s controller"] = (b.controller_port, "ONEGRID_KAFKA_CONTROLLER_PORT")
        if not self.external_db and not self.pg.running():
            ports["PostgreSQL"] = (self.pg.port, "ONEGRID_PG_PORT")
        for inst in self.all_instances():
            if not _alive(self.run / f"{inst.name}.pid"):
                ports[inst.name] = (inst.port, inst.spec.port_env)
        if self.simulate and not _alive(self.run / "sim-departments.pid"):
            ports["the simulated departments' webhooks"] = (SIM_WEBHOOK_PORT, "ONEGRID_SIM_WEBHOOK_PORT")
        preflight.check_ports(ports)
        preflight.check_disk(self.run, need_mib=1024)

    def _check_layout(self) -> None:
        """Refuse to start a second layout beside a running one (their ports and pid files differ)."""
        saved = self._saved_layout()
        if not saved or saved == {"brokers": self.brokers, "instances": self.instances}:
            return
        running = [n for n in self.run.glob("*.pid") if _alive(n)]
        old = (
            KafkaCluster(self.run / "kafka-cluster", size=saved["brokers"]).brokers
            if saved["brokers"] > 1
            else [self.kafka]
        )
        if running or any(_alive(b.pid_file) for b in old):
            raise SystemExit(
                f"the stack runs with BROKERS={saved['brokers']} INSTANCES={saved['instances']}; "
                "`make down` first"
            )

    def _start_kafka(self) -> None:
        if self.external_kafka:
            print(f"kafka: using {self.external_kafka}")
            return
        if self.cluster is not None:
            self._start_cluster(self.cluster)
            return
        if _alive(self.kafka.pid_file):
            print(f"kafka: already running on {self.kafka.bootstrap}")
            return
        print(f"java: {find_java().describe()}")
        self.kafka.start()
        asyncio.run(self.kafka.wait_ready())
        print(f"kafka: started on {self.kafka.bootstrap} (KRaft, log {self.kafka.log_file})")

    def _start_cluster(self, cluster: KafkaCluster) -> None:
        if all(_alive(b.pid_file) for b in cluster.brokers):
            print(f"kafka: {cluster.size} nodes already running on {cluster.bootstrap}")
            return
        cluster.start()
        asyncio.run(cluster.wait_ready())
        print(
            f"kafka: {cluster.size}-node KRaft cluster on {cluster.bootstrap} (logs {cluster.data_dir}/node-*/)"
        )

    def _start_postgres(self) -> None:
        if self.external_db:
            print("postgres: using DATABASE_URL")
            return
        was = self.pg.running()
        self.pg.start()
        print(
            f"postgres: {'already running' if was else 'started'} at {self.pg.url.replace(self.pg.password, '***')} (password in {self.pg.password_file})"
        )

    async def _ensure_topics(self) -> None:
        from onegrid.kafka.admin import ensure_topics
        from onegrid.settings import KafkaSettings
        from onegrid.topics import catalogue

        outcome = await ensure_topics(
            KafkaSettings(bootstrap_servers=self.bootstrap), for_cluster(catalogue(), self.brokers)
        )
        changed = {k: v for k, v in outcome.items() if v != "unchanged"}
        print(f"topics: {len(outcome)} in catalogue, {len(changed)} created or updated")

    def _start_service(self, inst: Instance, *, human_logs: bool) -> None:
        svc = inst.spec
        pid_file = self.run / f"{inst.name}.pid"
        if _alive(pid_file):
            print(f"{inst.name}: already running on :{inst.port}")
            return
        log = (self.logs / f"{inst.name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", svc.module],
            env=self.instance_env(inst, human_logs=human_logs),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=project_root(),
        )
        pid_file.write_text(str(proc.pid))

    def _wait_healthy(self, inst: Instance, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s * (1 if self.instances == 1 else 2)
        log = self.logs / f"{inst.name}.log"
        standby_since: float | None = None
        while time.monotonic() < deadline:
            if not _alive(self.run / f"{inst.name}.pid"):
                raise SystemExit(f"{inst.name} exited during start; see {log}")
            idle = self._readiness(inst)
            if idle is None:
                print(f"{inst.name}: ready on {inst.url}")
                return
            # With more instances than a topic has partitions, some instance holds none of it: it
            # has joined the group and waits as a standby. Counted as up once that lasts 15 s.
            if idle and self.instances > 1:
                standby_since = standby_since or time.monotonic()
                if time.monotonic() - standby_since >= 15:
                    print(f"{inst.name}: up on {inst.url} as a standby of {', '.join(idle)} (no partition)")
                    return
            else:
                standby_since = None
            time.sleep(0.5)
        raise SystemExit(f"{inst.name} not ready after {timeout_s}s; see {log}")

    @staticmethod
    def _readiness(inst: Instance) -> list[str] | None:
        """None: ready; else the groups in which it holds no partition while everything else is
        fine (empty: not ready for another reason)."""
        try:
            with urllib.request.urlopen(f"{inst.url}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return None
        except urllib.error.HTTPError as exc:
            try:
                checks = json.loads(exc.read()).get("checks", {})
            except ValueError:
                return []
            if all(v for k, v in checks.items() if not k.startswith("partitions:")):
                return [
                    k.removeprefix("partitions:")
                    for k, v in checks.items()
                    if k.startswith("partitions:") and not v
                ]
        except Exception:
            pass
        return []

    def _write_endpoints(self) -> str:
        token = self.admin_token()
        endpoints = {
            "kafka_bootstrap": self.bootstrap,
            "database_url": self.database_url,
            "services": {s.name: f"http://127.0.0.1:{s.port}" for s in SERVICES},
            "bridges_hj212": f"127.0.0.1:{hj212_port()}",
            # Every process, so that tools (the fault suite, operators) can find and stop them.
            "brokers": [
                {"node_id": b.node_id, "address": b.bootstrap, "pid": _alive(b.pid_file)} for b in self.nodes
            ],
            "instances": [
                {
                    "service": i.spec.name,
                    "instance": i.index,
                    "url": i.url,
                    "pid": _alive(self.run / f"{i.name}.pid"),
                }
                for i in self.all_instances()
            ],
            # Development only: a week's admin token for local tools (python -m onegrid.auth mint
            # makes others, e.g. --role street_operator --scope 321003009).
            "admin_token": token,
        }
        private_file(self.run / "endpoints.json", json.dumps(endpoints, indent=2) + "\n")
        return token

    # -- down ------------------------------------------------------------------------------

    def down(self, say: Callable[[str], None] = print) -> None:
        self._stop_simulators(say)
        for inst in reversed(self.all_instances()):
            pid_file = self.run / f"{inst.name}.pid"
            pid = _alive(pid_file)
            if pid:
                stop_process_group(pid, timeout_s=35)
                say(f"{inst.name}: stopped")
            pid_file.unlink(missing_ok=True)
        running = [b for b in self.nodes if _alive(b.pid_file)]
        if self.cluster is not None and running:
            # All nodes at once: the last nodes of a quorum stopped one by one each wait for a
            # controller that is already gone (20 s apiece before they are killed).
            self.cluster.stop()
            for b in running:
                say(f"kafka: node {b.node_id} stopped")
        for b in running if self.cluster is None else []:
            b.stop()
            say("kafka: stopped")
        if not self.external_db and self.pg.running():
            self.pg.stop()
            say("postgres: stopped")
        (self.run / "endpoints.json").unlink(missing_ok=True)
        (self.run / "layout.json").unlink(missing_ok=True)

    # -- status, logs, run -----------------------------------------------------------------

    def status(self) -> None:
        if self.external_kafka:
            rows = [("kafka", self.bootstrap, "external")]
        else:
            rows = [
                (
                    f"kafka-{b.node_id}" if self.cluster else "kafka",
                    b.bootstrap,
                    "running" if _alive(b.pid_file) else "stopped",
                )
                for b in self.nodes
            ]
        rows.append(
            (
                "postgres",
                self.database_url,
                "external" if self.external_db else ("running" if self.pg.running() else "stopped"),
            )
        )
        for i in self.all_instances():
            rows.append((i.name, i.url, "running" if _alive(self.run / f"{i.name}.pid") else "stopped"))
        for name, where, state in rows:
            print(f"{name:<16} {state:<9} {where}")
        if any(r[2] in ("running", "external") for r in rows if r[0].startswith("kafka")):
            asyncio.run(self._print_cluster())
            asyncio.run(self._print_lag())

    async def _print_cluster(self) -> None:
        """Leaders and ISR per topic, and who is in every group: the picture during a fault."""
        from onegrid.kafka.cluster import group_states, leader_counts, partition_states
        from onegrid.settings import KafkaSettings

        kafka = KafkaSettings(bootstrap_servers=self.bootstrap)
        try:
            states = await asyncio.wait_for(partition_states(kafka), 15)
            groups = await asyncio.wait_for(group_states(kafka), 15)
        except Exception as exc:
            print(f"cluster: unavailable ({exc!r})")
            return
        print(f"\n{'topic':<34} {'part':>4} {'leader':>6}  {'replicas':<10} {'isr':<10}")
        for p in states:
            flag = "  under-replicated" if p.under_replicated else ""
            flag = "  NO LEADER" if p.leader < 0 else flag
            print(
                f"{p.topic:<34} {p.partition:>4} {p.leader:>6}  {','.join(map(str, p.replicas)):<10}"
                f" {','.join(map(str, p.isr)):<10}{flag}"
            )
        counts = leader_counts(states)
        print("leaders per broker: " + ", ".join(f"{b}: {n}" for b, n in sorted(counts.items())))
        print(f"\n{'group':<28} {'state':<12} member (client id) -> partitions")
        for g in groups:
            if not g.members:
                print(f"{g.group:<28} {g.state:<12} (no members)")
            for m in g.members:
                held = ", ".join(f"{t}[{p}]" for t, p in m.partitions) or "-"
                print(f"{g.group:<28} {g.state:<12} {m.client_id} -> {held}")

    async def _print_lag(self) -> None:
        from onegrid.kafka.admin import consumer_lag
        from onegrid.settings import KafkaSettings

        try:
            lags = await asyncio.wait_for(consumer_lag(KafkaSettings(bootstrap_servers=self.bootstrap)), 15)
        except Exception as exc:
            print(f"consumer lag: unavailable ({exc!r})")
            return
        print(f"\n{'group':<26} {'topic':<28} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8}")
        for r in lags:
            print(
                f"{r.group:<26} {r.topic:<28} {r.partition:>4} {r.committed if r.committed is not None else '-':>10}"
                f" {r.end:>10} {r.lag:>8}"
            )

    def logs_tail(self, lines: int = 40) -> None:
        for f in sorted(self.logs.glob("*.log")):
            print(f"==> {f.name} <==")
            print("".join(f.read_text(errors="replace").splitlines(keepends=True)[-lines:]))

    def run_foreground(self) -> None:
        """`make run`: everything up, service logs streamed here, Ctrl-C stops all of it."""
        stopping = False

        def _stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, _stop)
        try:
            self.up(human_logs=True)
            if self.simulate:
                self._start_simulators()
            print(
                f"\nOneGrid is running. Console: http://127.0.0.1:{self.console_port}/  (Ctrl-C stops everything)\n"
            )
            for i in self.all_instances():
                print(f"  {i.name:<16} {i.url}/docs")
            print()
            self._follow_logs(lambda: stopping)
        except KeyboardInterrupt:
            pass
        finally:
            # Cleanup must finish: a second Ctrl-C, or a closed stdout (`make run | tee` with tee
            # already gone), must not leave Kafka, PostgreSQL or a service behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            _say("\nstopping ...")
            self.down(say=_say)

    def _follow_logs(self, stop: object) -> None:
        names = [i.name for i in self.all_instances()] + (
            [n for n, _ in simulators("0")] if self.simulate else []
        )
        for name in names:
            (self.logs / f"{name}.log").touch()
        files = {name: (self.logs / f"{name}.log").open("r", errors="replace") for name in names}
        for f in files.values():
            f.seek(0, os.SEEK_END)
        while not stop():  # type: ignore[operator]
            idle = True
            for name, f in files.items():
                for line in f.readlines():
                    idle = False
                    print(f"{name:>13} | {line}", end="")
            if idle:
                time.sleep(0.2)


def for_cluster(specs: list[TopicSpec], brokers: int) -> list[TopicSpec]:
    """The catalogue at the replication a cluster of `brokers` nodes gives (3 at most, min ISR 2)."""
    if brokers <= 1:
        return specs
    rf = min(3, brokers)
    isr = str(min(2, rf))
    return [
        replace(s, replication=rf, extra_config={**s.extra_config, "min.insync.replicas": isr}) for s in specs
    ]
