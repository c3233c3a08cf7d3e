"""`make up`'s code path: topics, migrations and every service against the session's broker and
database; each answers health and readiness (consumer groups joined), then `down` leaves nothing."""

from __future__ import annotations

import json
import urllib.request

import pytest

from devstack.paths import free_port

from .conftest import Ground


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_every_service_starts_joins_its_groups_and_stops(
    system_ground: Ground, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devstack import stack as stack_mod

    kafka_bootstrap, database_url = system_ground.kafka_bootstrap, system_ground.database_url

    monkeypatch.setenv("ONEGRID_RUN", str(tmp_path))
    monkeypatch.setenv("ONEGRID_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for svc in stack_mod.SERVICES:
        monkeypatch.setenv(svc.port_env, str(free_port()))
    monkeypatch.setenv("ONEGRID_BRIDGES_HJ212_PORT", str(free_port()))
    stack = stack_mod.Stack()
    try:
        stack.up()
        endpoints = json.loads((tmp_path / "endpoints.json").read_text())
        assert endpoints["kafka_bootstrap"] == kafka_bootstrap
        for svc in stack_mod.SERVICES:
            base = endpoints["services"][svc.name]
            assert get(f"{base}/healthz") == (200, {"status": "ok", "service": svc.name})
            status, ready = get(f"{base}/readyz")
            assert status == 200 and ready["ready"] is True, ready
            assert ready["checks"]["kafka"]
            if svc.name == "intake":  # its state lives in Kafka: no database at all
                assert "database" not in ready["checks"], ready
            elif svc.name != "console":  # the console owns no tables
                assert ready["checks"]["database"]
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as r:
                assert r.status == 200
        # The stack's admin token opens the APIs; without it they answer 401.
        registry = endpoints["services"]["grid-registry"]
        assert get(f"{registry}/v1/records/division?limit=1")[0] == 401
        authorized = urllib.request.Request(
            f"{registry}/v1/records/division?limit=1",
            headers={"Authorization": f"Bearer {endpoints['admin_token']}"},
        )
        with urllib.request.urlopen(authorized, timeout=5) as r:
            assert r.status == 200
        # Residents' apps keep /open311/v2/ on the public address: the console forwards it to the
        # Open311 service, which records the request and answers it.
        console, admin = (
            endpoints["services"]["console"],
            {"Authorization": f"Bearer {endpoints['admin_token']}"},
        )
        assert get(f"{console}/open311/v2/services.json")[0] == 200
        posted = urllib.request.Request(
            f"{console}/open311/v2/requests.json",
            data=b"service_code=001&address_id=A-1&description=test",
            headers={"content-type": "application/x-www-form-urlencoded", **admin},
        )
        with urllib.request.urlopen(posted, timeout=15) as r:
            assert r.status == 201
            request_id = json.loads(r.read())[0]["service_request_id"]
        direct = f"{endpoints['services']['open311']}/open311/v2/requests/{request_id}.json"
        assert get(direct)[1][0]["status"] == "open"
        stack.up()  # idempotent: nothing restarted
        pids = {s.name: (tmp_path / f"{s.name}.pid").read_text() for s in stack_mod.SERVICES}
        stack.up()
        assert pids == {s.name: (tmp_path / f"{s.name}.pid").read_text() for s in stack_mod.SERVICES}
    finally:
        stack.down()
    for svc in stack_mod.SERVICES:
        assert not (tmp_path / f"{svc.name}.pid").exists()
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{svc.port}/healthz", timeout=2)
