"""Writes deploy/k8s/base/generated/: the manifests that follow from the code, so they cannot drift.

    .venv/bin/python deploy/k8s/generate.py          # rewrite the files
    .venv/bin/python deploy/k8s/generate.py --check  # exit 1 and name the files that differ

Sources of truth:
- topics: `onegrid.topics.catalogue()` with one orders topic per seeded department
  (`grid_registry.domain.seed_catalog.DEPARTMENTS`);
- Kafka users and ACLs: `onegrid.topic_access` (who reads and writes which topic, consumer groups);
- services: `devstack.stack.SERVICES` (name, module, port) and each service's settings
  (environment prefix, database schema);
- KEDA's ceiling: the partition counts of the topics a service's consumer groups read.

Replication and min ISR are not written here: they are the cluster's, set per overlay.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devstack.stack import SERVICES, ServiceSpec
from onegrid.topic_access import (
    LEGACY_GATEWAY,
    SERVICE_TOPICS,
    TopicAccess,
    TopicName,
    access_of,
    department_access,
)
from onegrid.topics import TopicSpec, catalogue

Manifest = dict[str, Any]

OUT = Path(__file__).resolve().parent / "base" / "generated"
KAFKA_CLUSTER = "onegrid"  # the Strimzi Kafka resource (base/kafka.yaml)
PG_CLUSTER = "onegrid-pg"  # the CloudNativePG Cluster (base/postgres.yaml)
DATABASE = "onegrid"
NAMESPACE = "onegrid"  # overlays/production's; the overlays set it on every object
PART_OF = {"app.kubernetes.io/part-of": "onegrid"}
# Services with exactly-once loops run as StatefulSets: the pod name (`intake-0`) is the instance id
# in their transactional ids, so a replaced pod fences its predecessor, and a StatefulSet never runs
# two pods of one name. Audit too: its Merkle log has exactly one writer (one replica, never two
# during a rollout).
SINGLE_WRITER = {"audit"}
# Services KEDA scales on consumer lag, and the consumer groups whose lag is their work (optional
# groups such as evaluation's lake sink are not triggers: without consumers their lag is the topic).
LAG_TRIGGERS = {"intake": ("legacy",), "dispatch": ("inbox",), "evaluation": ("projector",)}
LAG_THRESHOLD = 1000  # records behind per instance before KEDA adds one
KEDA_AUTH = "onegrid-kafka-lag"  # TriggerAuthentication (base/keda.yaml)
KEDA_USER = "keda-lag-reader"


def k8s_name(text: str) -> str:
    """A DNS-1123 name for `text`; when characters had to change, a short hash keeps names apart
    (`jiedao_zhifa` and `jiedao-zhifa` are two departments)."""
    name = re.sub(r"[^a-z0-9.-]", "-", text.lower()).strip("-.")
    if name != text:
        name = f"{name[:50]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return name


def department_codes() -> list[str]:
    from grid_registry.domain.seed_catalog import DEPARTMENTS

    return [d.code for d in DEPARTMENTS]


def topic_specs() -> list[TopicSpec]:
    return catalogue(department_codes())


# -- Kafka: topics and users ---------------------------------------------------------------------


def kafka_topic(spec: TopicSpec) -> Manifest:
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {
            "name": k8s_name(spec.name),
            "labels": {"strimzi.io/cluster": KAFKA_CLUSTER, **PART_OF},
        },
        "spec": {"topicName": spec.name, "partitions": spec.partitions, "config": dict(spec.config())},
    }


def _acl(kind: str, name: str, pattern: str, operations: list[str]) -> Manifest:
    return {"resource": {"type": kind, "name": name, "patternType": pattern}, "operations": operations}


def _topic_acls(reads: Iterable[TopicName], writes: Iterable[TopicName]) -> list[Manifest]:
    """One entry per topic (or prefix): Read and/or Write, with Describe."""
    ops: dict[TopicName, list[str]] = {}
    for t in reads:
        ops.setdefault(t, []).append("Read")
    for t in writes:
        ops.setdefault(t, []).append("Write")
    return [
        _acl("topic", t.name, "prefix" if t.is_prefix else "literal", [*ops[t], "Describe"])
        for t in sorted(ops, key=lambda t: (t.name, t.is_prefix))
    ]


def acls_of(access: TopicAccess) -> list[Manifest]:
    """Read and describe what it reads, write and describe what it writes; its own groups and
    transactional ids by the prefix `<service>.` (an outbox relay's by `<service>.outbox.`); nothing
    else."""
    acls = _topic_acls(access.reads, access.writes)
    if access.groups:
        acls.append(_acl("group", f"{access.service}.", "prefix", ["Read", "Describe"]))
    if access.transactional:
        acls.append(_acl("transactionalId", f"{access.service}.", "prefix", ["Write", "Describe"]))
    elif access.outbox:  # the outbox relay's transactional id, and its group (the committed pass)
        acls.append(_acl("transactionalId", access.outbox_prefix, "prefix", ["Write", "Describe"]))
    if access.outbox and not access.groups:
        acls.append(_acl("group", access.outbox_prefix, "prefix", ["Read", "Describe"]))
    if access.describes_all:
        acls.append(_acl("topic", "*", "literal", ["Describe", "DescribeConfigs"]))
        acls.append(_acl("group", "*", "literal", ["Describe"]))
    return acls


def kafka_user(name: str, acls: list[Manifest], *, auth: str = "scram-sha-512") -> Manifest:
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaUser",
        "metadata": {"name": name, "labels": {"strimzi.io/cluster": KAFKA_CLUSTER, **PART_OF}},
        "spec": {
            "authentication": {"type": auth},
            "authorization": {"type": "simple", "acls": acls},
        },
    }


def lag_reader_acls() -> list[Manifest]:
    """KEDA reads the committed offsets of the scaled services' groups and their topics' ends."""
    acls: list[Manifest] = []
    for svc in LAG_TRIGGERS:
        access = access_of(svc)
        topics = sorted({t for g in access.groups if g.loop in LAG_TRIGGERS[svc] for t in g.topics})
        acls += [_acl("topic", t, "literal", ["Describe"]) for t in topics]
        acls.append(_acl("group", f"{svc}.", "prefix", ["Describe"]))
    return acls


def kafka_users() -> list[Manifest]:
    users = [kafka_user(a.service, acls_of(a)) for a in SERVICE_TOPICS]
    users.append(kafka_user(LEGACY_GATEWAY.service, acls_of(LEGACY_GATEWAY)))
    for code in department_codes():
        dept = department_access(code)
        users.append(kafka_user(k8s_name(dept.service), acls_of(dept)))
    users.append(kafka_user(KEDA_USER, lag_reader_acls(), auth="tls"))
    return users


# -- PostgreSQL: a role and a schema per service ----------------------------------------------------


@dataclass(frozen=True)
class Service:
    spec: ServiceSpec
    env_prefix: str  # e.g. ONEGRID_INTAKE_
    schema: str | None  # None: owns no tables (the console)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def db_secret(self) -> str:
        return f"onegrid-db-{self.name}"


def services() -> list[Service]:
    out = []
    for spec in SERVICES:
        settings = importlib.import_module(f"{spec.module}.settings").Settings
        migrations = Path(importlib.import_module(spec.module).__file__ or "").parent / "migrations"
        out.append(
            Service(
                spec,
                env_prefix=str(settings.model_config["env_prefix"]),
                schema=settings.model_fields["db_schema"].default if migrations.is_dir() else None,
            )
        )
    return out


def database_role(svc: Service) -> Manifest:
    spec: Manifest = {
        "cluster": {"name": PG_CLUSTER},
        "name": svc.name.replace("-", "_"),
        "ensure": "present",
        "login": True,
        "passwordSecret": {"name": svc.db_secret},
        "comment": f"OneGrid {svc.name}: owns schema {svc.schema}",
    }
    if svc.name == "audit":
        # Its migration creates the NOLOGIN role audit_writer (append-only grants) and grants it to itself.
        spec["createrole"] = True
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "DatabaseRole",
        "metadata": {"name": f"{PG_CLUSTER}-{svc.name}", "labels": PART_OF},
        "spec": spec,
    }


def database(svcs: list[Service]) -> Manifest:
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Database",
        "metadata": {"name": f"{PG_CLUSTER}-{DATABASE}", "labels": PART_OF},
        "spec": {
            "cluster": {"name": PG_CLUSTER},
            "name": DATABASE,
            "owner": DATABASE,
            "ensure": "present",
            "schemas": [
                {"name": s.schema, "owner": s.name.replace("-", "_"), "ensure": "present"} for s in svcs
            ],
        },
    }


# -- the services ----------------------------------------------------------------------------------


def labels(svc: Service, component: str = "service") -> dict[str, str]:
    return {"app.kubernetes.io/name": svc.name, "app.kubernetes.io/component": component, **PART_OF}


def _secret_env(name: str, secret: str, key: str, *, optional: bool = False) -> Manifest:
    ref: Manifest = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def database_env(svc: Service) -> list[Manifest]:
    """DATABASE_URL from the role's secret (CloudNativePG basic-auth: username, password)."""
    return [
        _secret_env("DB_USER", svc.db_secret, "username"),
        _secret_env("DB_PASSWORD", svc.db_secret, "password"),
        {
            "name": "DATABASE_URL",
            "value": f"postgresql://$(DB_USER):$(DB_PASSWORD)@{PG_CLUSTER}-rw:5432/{DATABASE}",
        },
    ]


def container_env(svc: Service) -> list[Manifest]:
    p = svc.env_prefix
    env: list[Manifest] = [
        # The pod's name: unique, and stable across restarts for StatefulSets (intake-0, audit-0).
        {"name": f"{p}INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        # One variable for every service; production accepts only the identity provider's tokens.
        {"name": "ONEGRID_ENVIRONMENT", "value": "production"},
        {"name": f"{p}HTTP_HOST", "value": "0.0.0.0"},
        {"name": f"{p}HTTP_PORT", "value": str(svc.spec.default_port)},
        {"name": "ONEGRID_KAFKA_SASL_USERNAME", "value": svc.name},
        # Strimzi's User Operator writes the password into a secret named after the KafkaUser.
        _secret_env("ONEGRID_KAFKA_SASL_PASSWORD", svc.name, "password"),
        _secret_env("ONEGRID_AUTH_PUBLIC_KEYS", "onegrid-auth", "public-keys.json"),
    ]
    if svc.schema is not None:
        env += database_env(svc)
    if svc.name == "audit":
        env.append({"name": "ONEGRID_AUDIT_SIGNING_KEY_FILE", "value": "/etc/onegrid/audit/signing-key.pem"})
    if svc.name == "bridges":
        # HJ 212 data loggers connect over TCP from outside (deploy/README.md, "Bridges").
        env.append({"name": f"{p}HJ212_HOST", "value": "0.0.0.0"})
        env.append({"name": f"{p}HJ212_PORT", "value": str(hj212_port())})
    if svc.name == "dispatch":
        # Departments reached by signed webhooks: {"code": {"url": ..., "secret": ...}}; none if absent.
        env.append(
            _secret_env(
                "ONEGRID_DISPATCH_WEBHOOKS", "onegrid-dispatch-webhooks", "webhooks.json", optional=True
            )
        )
    return env


def volumes(svc: Service) -> tuple[list[Manifest], list[Manifest]]:
    vols: list[Manifest] = [
        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        {
            "name": "kafka-ca",
            "secret": {
                "secretName": f"{KAFKA_CLUSTER}-cluster-ca-cert",
                "items": [{"key": "ca.crt", "path": "ca.crt"}],
            },
        },
        {"name": "api-keys", "secret": {"secretName": "onegrid-api-keys"}},
    ]
    mounts: list[Manifest] = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "kafka-ca", "mountPath": "/etc/onegrid/kafka-ca", "readOnly": True},
        {"name": "api-keys", "mountPath": "/etc/onegrid/api-keys", "readOnly": True},
    ]
    if svc.name == "audit":
        vols.append(
            {
                "name": "signing-key",
                "secret": {
                    "secretName": "onegrid-audit-signing-key",
                    "items": [{"key": "signing-key.pem", "path": "signing-key.pem"}],
                    "defaultMode": 0o400,
                },
            }
        )
        mounts.append({"name": "signing-key", "mountPath": "/etc/onegrid/audit", "readOnly": True})
    return vols, mounts


def hj212_port() -> int:
    """The bridges' HJ 212 TCP listener, as their settings default it."""
    settings = importlib.import_module("bridges.settings").Settings
    return int(settings.model_fields["hj212_port"].default)


def extra_ports(svc: Service) -> list[Manifest]:
    return [{"name": "hj212", "containerPort": hj212_port()}] if svc.name == "bridges" else []


def _probe(path: str, port: int, **kw: int) -> Manifest:
    return {"httpGet": {"path": path, "port": "http"}, "timeoutSeconds": 3, **kw}


SECURITY = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def pod_template(svc: Service) -> Manifest:
    vols, mounts = volumes(svc)
    port = svc.spec.default_port
    container = {
        "name": svc.name,
        "image": f"onegrid-{svc.name}",
        # The image has no ENTRYPOINT (its CMD runs the service through sh): name the program.
        "command": ["python"],
        "args": ["-m", svc.spec.module],
        "ports": [{"name": "http", "containerPort": port}, *extra_ports(svc)],
        "envFrom": [{"configMapRef": {"name": "onegrid-config"}}],
        "env": container_env(svc),
        # Start-up catches up on the registry (and intake's case book) before it is ready.
        "startupProbe": _probe("/healthz", port, periodSeconds=5, failureThreshold=60),
        "livenessProbe": _probe("/healthz", port, periodSeconds=10, failureThreshold=3),
        "readinessProbe": _probe("/readyz", port, periodSeconds=5, failureThreshold=3),
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        "securityContext": SECURITY,
        "volumeMounts": mounts,
    }
    return {
        "metadata": {
            "labels": labels(svc),
            # For a Prometheus that discovers pods by annotation; every service answers /metrics.
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(port),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {
            "automountServiceAccountToken": False,
            # uvicorn's graceful shutdown is 30 s: every loop finishes its batch, commits, leaves its group.
            "terminationGracePeriodSeconds": 45,
            "securityContext": {
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            # Instances of one service on different nodes where the cluster allows it.
            "affinity": {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 100,
                            "podAffinityTerm": {
                                "topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": svc.name}},
                            },
                        }
                    ]
                }
            },
            "containers": [container],
            "volumes": vols,
        },
    }


def workload(svc: Service) -> Manifest:
    stateful = access_of(svc.name).transactional or svc.name in SINGLE_WRITER
    spec: Manifest = {
        "selector": {"matchLabels": {"app.kubernetes.io/name": svc.name, **PART_OF}},
        "template": pod_template(svc),
    }
    if not lag_scaled(svc.name):
        spec["replicas"] = 1  # overlays set the count; KEDA owns it for the lag-scaled ones
    if stateful:
        spec["serviceName"] = svc.name
        spec["podManagementPolicy"] = "Parallel"
        kind = "StatefulSet"
    else:
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
        kind = "Deployment"
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {
            "name": svc.name,
            "labels": {**labels(svc), "onegrid.io/instances": instances(svc.name)},
        },
        "spec": spec,
    }


def service(svc: Service) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": svc.name, "labels": labels(svc)},
        "spec": {
            "selector": {"app.kubernetes.io/name": svc.name, **PART_OF},
            "ports": [
                {"name": "http", "port": svc.spec.default_port, "targetPort": "http"},
                *(
                    {"name": p["name"], "port": p["containerPort"], "targetPort": p["name"]}
                    for p in extra_ports(svc)
                ),
            ],
        },
    }


def migration_job(svc: Service) -> Manifest:
    pod = pod_template(svc)
    container = pod["spec"]["containers"][0]
    container.update(
        name="migrate",
        args=["-m", "onegrid.migrate", svc.spec.module],
        env=database_env(svc),
        envFrom=[],
        volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}],
    )
    for probe in ("startupProbe", "livenessProbe", "readinessProbe", "ports"):
        container.pop(probe)
    pod["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    pod["spec"].pop("affinity")
    pod["spec"]["restartPolicy"] = "OnFailure"
    pod["metadata"] = {"labels": labels(svc, "migration")}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{svc.name}-migrate",
            "labels": labels(svc, "migration"),
            # Run before the services in GitOps tools; with kubectl, deploy/README.md gives the order.
            "annotations": {"argocd.argoproj.io/sync-wave": "-1"},
        },
        # Retried while the database comes up (operator, instances, roles): minutes, not seconds.
        "spec": {"backoffLimit": 12, "template": pod},
    }


def partitions_of(topics: Iterable[str]) -> int:
    specs = {s.name: s for s in topic_specs()}
    return sum(specs[t].partitions for t in topics)


def max_instances(service: str) -> int:
    """KEDA's ceiling: the partitions of the service's work groups (the smallest): an instance beyond
    them would hold no partition of its work (it would stand by, ready but idle)."""
    access = access_of(service)
    work = [g for g in access.groups if g.loop in LAG_TRIGGERS[service]]
    return min(partitions_of(g.topics) for g in work)


def lag_scaled(service: str) -> bool:
    return service in LAG_TRIGGERS and max_instances(service) >= 2


def instances(service: str) -> str:
    """How many instances a service runs, as the label `onegrid.io/instances` the overlays select
    on: `keda` (autoscaled on lag), `many` (a fixed count, 2 or more in production), `one` (the
    single writer). Instances beyond a group's partitions stand by, ready, and take over on a
    rebalance."""
    if lag_scaled(service):
        return "keda"
    return "one" if service in SINGLE_WRITER else "many"


def scaled_object(svc: Service) -> Manifest:
    access = access_of(svc.name)
    kind = "StatefulSet" if access.transactional else "Deployment"
    triggers = [
        {
            "type": "kafka",
            "name": g.loop,
            "metadata": {
                # KEDA resolves names from its own namespace: the full name, whose namespace part the
                # production overlay sets from its Namespace (replacements).
                "bootstrapServers": f"{KAFKA_CLUSTER}-kafka-bootstrap.{NAMESPACE}.svc:9094",
                "consumerGroup": access.group_id(g),
                "lagThreshold": str(LAG_THRESHOLD),
                "offsetResetPolicy": "earliest",
                "allowIdleConsumers": "false",
            },
            "authenticationRef": {"name": KEDA_AUTH},
        }
        for g in access.groups
        if g.loop in LAG_TRIGGERS[svc.name]
    ]
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": svc.name, "labels": labels(svc)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": svc.name},
            "minReplicaCount": 1,
            "maxReplicaCount": max_instances(svc.name),
            "pollingInterval": 30,
            "cooldownPeriod": 300,
            "triggers": triggers,
        },
    }


# -- output ----------------------------------------------------------------------------------------


def documents() -> dict[str, list[Manifest]]:
    svcs = services()
    workloads: list[Manifest] = []
    for svc in svcs:
        workloads += [workload(svc), service(svc)]
    return {
        "topics.yaml": [kafka_topic(s) for s in topic_specs()],
        "users.yaml": kafka_users(),
        "database.yaml": [database_role(s) for s in svcs if s.schema]
        + [database([s for s in svcs if s.schema])],
        "services.yaml": workloads,
        "migrations.yaml": [migration_job(s) for s in svcs if s.schema],
        "scaling.yaml": [scaled_object(s) for s in svcs if lag_scaled(s.name)],
    }


HEADER = "# Generated by deploy/k8s/generate.py from the code; do not edit (make k8s-generate).\n"


def render(docs: list[Manifest]) -> str:
    return HEADER + "".join(
        "---\n" + yaml.safe_dump(d, sort_keys=False, allow_unicode=True, width=120) for d in docs
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, docs in documents().items():
        path = OUT / name
        text = render(docs)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(
            f"out of date: {', '.join(stale)}; run .venv/bin/python deploy/k8s/generate.py", file=sys.stderr
        )
        return 1
    print(f"{'stale' if args.check else 'written'}: {', '.join(stale) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
