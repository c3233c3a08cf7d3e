"""deploy/k8s, offline: the generated manifests are those the code implies, both overlays render and
every object passes the vendored Kubernetes, Strimzi, CloudNativePG and KEDA schemas, and the
production overlay states the cluster mode's guarantees with nothing left to fill in."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest
from support.deploy import REPO, load_script

from devstack.stack import SERVICES
from onegrid.topic_access import SERVICE_TOPICS, access_of

validate = load_script("deploy/k8s/validate.py")
generate = load_script("deploy/k8s/generate.py")

Manifest = dict[str, Any]
SERVICE_NAMES = [s.name for s in SERVICES]
# Secrets the operator creates (deploy/README.md, "Secrets"); Strimzi and CloudNativePG write the rest.
DOCUMENTED_SECRETS = {
    "onegrid-auth",
    "onegrid-api-keys",
    "onegrid-audit-signing-key",
    "onegrid-dispatch-webhooks",
    *(f"onegrid-db-{s}" for s in SERVICE_NAMES if s not in ("console", "intake")),
}
STRIMZI_SECRETS = {"onegrid-cluster-ca-cert", "keda-lag-reader", *SERVICE_NAMES}


@cache
def rendered(overlay: str) -> tuple[Manifest, ...]:
    return tuple(validate.render(overlay))


def of_kind(overlay: str, kind: str) -> list[Manifest]:
    return [o for o in rendered(overlay) if o["kind"] == kind]


def named(overlay: str, kind: str, name: str) -> Manifest:
    return next(o for o in of_kind(overlay, kind) if o["metadata"]["name"] == name)


def workloads(overlay: str) -> dict[str, Manifest]:
    return {
        o["metadata"]["name"]: o
        for o in rendered(overlay)
        if o["kind"] in ("Deployment", "StatefulSet")
        and o["metadata"]["labels"].get("app.kubernetes.io/component") == "service"
    }


def test_the_generated_manifests_are_up_to_date() -> None:
    assert generate.main(["--check"]) == 0, "run .venv/bin/python deploy/k8s/generate.py"


@pytest.mark.parametrize("overlay", validate.OVERLAYS)
def test_the_overlay_renders_and_every_object_passes_its_schema(overlay: str) -> None:
    objects = list(rendered(overlay))
    assert len(objects) > 50
    assert [str(p) for p in validate.problems(overlay, objects)] == []


def test_the_validation_catches_a_misspelt_field_and_a_wrong_type() -> None:
    deployment = {**named("production", "Deployment", "dispatch")}
    spec = deployment["spec"]
    pod = {
        **spec["template"]["spec"],
        "containers": [{**spec["template"]["spec"]["containers"][0], "imagePullPolcy": "x"}],
    }
    broken = {**deployment, "spec": {**spec, "template": {**spec["template"], "spec": pod}}}
    topic = named("production", "KafkaTopic", "cases.v1")
    bad_topic = {**topic, "spec": {**topic["spec"], "partitions": "six"}}
    found = [str(p) for p in validate.problems("t", [broken, bad_topic])]
    assert any("imagePullPolcy" in p for p in found) and any("'six'" in p for p in found), found


@pytest.mark.parametrize("overlay", validate.OVERLAYS)
def test_there_is_a_kafka_topic_for_every_catalogue_topic_and_department(overlay: str) -> None:
    expected = {s.name: s for s in generate.topic_specs()}
    topics = {t["spec"]["topicName"]: t for t in of_kind(overlay, "KafkaTopic")}
    assert set(topics) == set(expected)
    assert {f"dispatch.orders.{code}.v1" for code in generate.department_codes()} <= set(topics)
    for name, spec in expected.items():
        rendered_spec = topics[name]["spec"]
        assert rendered_spec["partitions"] == spec.partitions, name
        config = {k: v for k, v in rendered_spec["config"].items() if k != "min.insync.replicas"}
        assert config == {k: v for k, v in spec.config().items() if k != "min.insync.replicas"}, name
        assert re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", topics[name]["metadata"]["name"]), name


def test_production_replicates_three_times_with_min_isr_two() -> None:
    kafka = named("production", "Kafka", "onegrid")["spec"]["kafka"]["config"]
    assert kafka["default.replication.factor"] == 3 and kafka["min.insync.replicas"] == 2
    assert kafka["offsets.topic.replication.factor"] == 3
    assert (
        kafka["transaction.state.log.replication.factor"] == 3 and kafka["transaction.state.log.min.isr"] == 2
    )
    for topic in of_kind("production", "KafkaTopic"):
        assert topic["spec"]["replicas"] == 3, topic["metadata"]["name"]
        assert topic["spec"]["config"]["min.insync.replicas"] == "2", topic["metadata"]["name"]
    pools = {p["metadata"]["name"]: p["spec"] for p in of_kind("production", "KafkaNodePool")}
    assert {n: (p["replicas"], p["roles"]) for n, p in pools.items()} == {
        "controllers": (3, ["controller"]),
        "brokers": (3, ["broker"]),
    }
    assert named("production", "Cluster", "onegrid-pg")["spec"]["instances"] == 3


def test_dev_is_one_broker_and_one_instance_each() -> None:
    pools = of_kind("dev", "KafkaNodePool")
    assert [(p["spec"]["replicas"], sorted(p["spec"]["roles"])) for p in pools] == [
        (1, ["broker", "controller"])
    ]
    assert all(t["spec"]["replicas"] == 1 for t in of_kind("dev", "KafkaTopic"))
    assert of_kind("dev", "ScaledObject") == []
    assert all(w["spec"].get("replicas", 1) == 1 for w in workloads("dev").values())


def test_production_runs_at_least_two_instances_of_every_service_but_the_single_audit_writer() -> None:
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s["spec"] for s in of_kind("production", "ScaledObject")}
    assert set(scaled) == {"intake", "dispatch", "evaluation"}
    for name, w in workloads("production").items():
        if name == "audit":
            assert w["kind"] == "StatefulSet" and w["spec"]["replicas"] == 1 and name not in scaled
            continue
        count = scaled[name]["minReplicaCount"] if name in scaled else w["spec"]["replicas"]
        assert count >= 2, name
        if name in scaled:
            assert scaled[name]["minReplicaCount"] <= scaled[name]["maxReplicaCount"], name
    assert set(workloads("production")) == set(SERVICE_NAMES)


def test_keda_never_scales_a_service_beyond_the_partitions_of_its_groups() -> None:
    partitions = {s.name: s.partitions for s in generate.topic_specs()}
    for so in of_kind("production", "ScaledObject"):
        access = access_of(so["metadata"]["name"])
        groups = {access.group_id(g): g for g in access.groups}
        triggers = {t["metadata"]["consumerGroup"] for t in so["spec"]["triggers"]}
        assert triggers == {
            f"{so['metadata']['name']}.{loop}" for loop in generate.LAG_TRIGGERS[so["metadata"]["name"]]
        }
        assert triggers <= set(groups)
        work = [groups[t] for t in triggers]
        ceiling = min(sum(partitions[t] for t in g.topics) for g in work)
        assert so["spec"]["maxReplicaCount"] <= ceiling, so["metadata"]["name"]
        assert all(t["metadata"]["allowIdleConsumers"] == "false" for t in so["spec"]["triggers"])
        # KEDA runs in its own namespace: the bootstrap address must name ours.
        namespace = of_kind("production", "Namespace")[0]["metadata"]["name"]
        assert so["metadata"]["namespace"] == namespace
        for t in so["spec"]["triggers"]:
            assert t["metadata"]["bootstrapServers"] == f"onegrid-kafka-bootstrap.{namespace}.svc:9094"


def test_production_has_budgets_spreading_and_sized_containers() -> None:
    budgets = {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in of_kind("production", "PodDisruptionBudget")
    }
    assert budgets == set(SERVICE_NAMES)
    for name, w in workloads("production").items():
        pod = w["spec"]["template"]["spec"]
        assert pod["affinity"]["podAntiAffinity"], name
        for c in pod["containers"]:
            assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], name
            assert c["resources"]["limits"]["memory"], name
    assert {n["metadata"]["name"] for n in of_kind("production", "NetworkPolicy")} >= {
        "onegrid-services",
        "onegrid-postgres",
    }


def test_the_network_policies_admit_every_port_a_service_listens_on() -> None:
    """A service added later must not be silently cut off: each container port is in some ingress rule
    of a policy that selects the pod."""
    policies = of_kind("production", "NetworkPolicy")
    for name, w in workloads("production").items():
        pod_labels = w["spec"]["template"]["metadata"]["labels"]
        c = w["spec"]["template"]["spec"]["containers"][0]
        selecting = [
            p
            for p in policies
            if p["spec"]["podSelector"].get("matchLabels", {}).items() <= pod_labels.items()
            and "Ingress" in p["spec"].get("policyTypes", [])
        ]
        admitted = {
            port["port"]
            for p in selecting
            for rule in p["spec"].get("ingress", [])
            for port in rule.get("ports", [])
        }
        for port in c["ports"]:
            assert port["containerPort"] in admitted, f"{name}: port {port['containerPort']}"


def test_every_service_is_probed_configured_and_named_per_pod() -> None:
    for name, w in workloads("production").items():
        c = w["spec"]["template"]["spec"]["containers"][0]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"configMapRef": {"name": "onegrid-config"}} in c["envFrom"]
        instance = next(e for e in c["env"] if e["name"].endswith("_INSTANCE_ID"))
        assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", name
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # Exactly-once loops need an instance id that survives a pod's replacement.
    assert workloads("production")["intake"]["kind"] == "StatefulSet"


def test_every_container_of_our_images_names_the_program_the_image_runs() -> None:
    """Kubernetes' `args` replace the image's CMD; without an ENTRYPOINT the program must be given."""
    containerfile = (REPO / "deploy/container/Containerfile").read_text(encoding="utf-8")
    assert not re.search(r"^ENTRYPOINT", containerfile, re.MULTILINE)
    for obj in rendered("production"):
        for c in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            if c["image"].startswith("onegrid/"):
                assert c["command"] == ["python"] and c["args"][0] == "-m", obj["metadata"]["name"]


def test_a_migration_job_per_service_with_a_schema_and_a_database_role_for_each() -> None:
    jobs = {j["metadata"]["name"]: j for j in of_kind("production", "Job")}
    roles = {r["spec"]["name"] for r in of_kind("production", "DatabaseRole")}
    schemas = {s["name"]: s["owner"] for s in of_kind("production", "Database")[0]["spec"]["schemas"]}
    for svc in SERVICES:
        if svc.name in ("console", "intake"):  # no tables: the console's views, intake's Kafka state
            assert f"{svc.name}-migrate" not in jobs and svc.name not in roles
            continue
        args = jobs[f"{svc.name}-migrate"]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args == ["-m", "onegrid.migrate", svc.module]
        assert svc.name.replace("-", "_") in roles
    assert set(schemas.values()) == roles


def _acl_topics(user: Manifest, operation: str) -> list[tuple[str, str]]:
    return [
        (a["resource"]["name"], a["resource"]["patternType"])
        for a in user["spec"]["authorization"]["acls"]
        if a["resource"]["type"] == "topic" and operation in a["operations"]
    ]


def test_no_service_may_write_a_topic_it_does_not_own() -> None:
    users = {u["metadata"]["name"]: u for u in of_kind("production", "KafkaUser")}
    topics = [s.name for s in generate.topic_specs()]
    for access in SERVICE_TOPICS:
        user = users[access.service]
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        grants = _acl_topics(user, "Write")

        def may_write(topic: str, grants: list[tuple[str, str]] = grants) -> bool:
            return any(topic == n if p == "literal" else topic.startswith(n) for n, p in grants)

        assert [t for t in topics if may_write(t)] == [t for t in topics if access.may_write(t)], (
            access.service
        )
        assert not any(n == "*" for n, _ in grants)
    assert _acl_topics(users["evaluation"], "Write") == [("evaluation.dlq.v1", "literal")]


def test_an_outbox_relays_transactional_id_group_and_passes_topic_are_granted_to_its_service() -> None:
    """A relay commits its pass as its group's offset on the passes topic inside its transaction:
    TxnOffsetCommit needs the transactional id's Write, the group's Read and the topic's Read."""
    from onegrid.topics import OUTBOX_PASSES

    users = {u["metadata"]["name"]: u for u in of_kind("production", "KafkaUser")}
    relaying = [a for a in SERVICE_TOPICS if a.outbox]
    assert {a.service for a in relaying} == {"dispatch", "grid-registry"}
    for access in relaying:
        acls = users[access.service]["spec"]["authorization"]["acls"]

        def granted(kind: str, name: str, op: str, acls: list[Manifest] = acls) -> bool:
            return any(
                a["resource"]["type"] == kind
                and op in a["operations"]
                and (
                    name.startswith(a["resource"]["name"])
                    if a["resource"]["patternType"] == "prefix"
                    else name == a["resource"]["name"]
                )
                for a in acls
            )

        relay_id = f"{access.outbox_prefix}{access.service}.outbox"
        assert granted("transactionalId", relay_id, "Write"), access.service
        assert granted("group", relay_id, "Read"), access.service
        assert granted("topic", OUTBOX_PASSES, "Read") and granted("topic", OUTBOX_PASSES, "Write")
    assert not any(a.outbox for a in SERVICE_TOPICS if a.service not in ("dispatch", "grid-registry"))


def test_production_holds_no_placeholder_and_names_only_documented_secrets() -> None:
    images = set()
    secrets: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "secretKeyRef" in node:
                secrets.add(node["secretKeyRef"]["name"])
            if "secretName" in node:
                secrets.add(node["secretName"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            assert not re.search(r"(?i)changeme|placeholder|example\.(com|org)|\bTODO\b|REPLACE_ME", node), (
                node
            )

    for obj in rendered("production"):
        walk(obj)
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        images |= {c["image"] for c in spec.get("containers", [])}
    for ref in of_kind("production", "TriggerAuthentication")[0]["spec"]["secretTargetRef"]:
        secrets.add(ref["name"])
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest", image
        assert not name.startswith("onegrid-"), f"{image}: not set by the overlay's images:"
    readme = (REPO / "deploy/README.md").read_text(encoding="utf-8")
    undocumented = {s for s in secrets - STRIMZI_SECRETS - {"onegrid-keda-tls"} if f"`{s}`" not in readme}
    assert secrets - STRIMZI_SECRETS - {"onegrid-keda-tls"} <= DOCUMENTED_SECRETS
    assert undocumented == set(), "name these secrets in deploy/README.md"


def test_production_pods_pass_the_services_own_start_up_check() -> None:
    """What a pod is given must be what its settings accept: production (ONEGRID_ENVIRONMENT, the one
    variable every service reads) with the identity provider's public keys, and no shared HS256 secret
    (a service holding it could mint admin tokens, so production refuses to start with one)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from onegrid.auth.settings import AuthSettings

    pem = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    for name, w in workloads("production").items():
        env = {e["name"]: e for e in w["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env.get("ONEGRID_ENVIRONMENT", {}).get("value") == "production", name
        assert "ONEGRID_AUTH_HS256_SECRET" not in env, name
        keys = env["ONEGRID_AUTH_PUBLIC_KEYS"]["valueFrom"]["secretKeyRef"]
        assert keys["name"] in DOCUMENTED_SECRETS, name
        # the check a pod runs at start, with only what the pod is given (not this process's test secret)
        AuthSettings(public_keys={"idp": pem}, hs256_secret=None).check("production")
