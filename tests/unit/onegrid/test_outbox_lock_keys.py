"""The dispatch and registry outbox relays take distinct advisory locks (issue 13.11): both tables are
named `outbox` (in their own schemas of one database), and with one lock key per table name either
relay would skip its pass while the other publishes."""

from __future__ import annotations

from dispatch.bootstrap import bootstrap as bootstrap_dispatch
from dispatch.settings import Settings as DispatchSettings
from grid_registry.bootstrap import bootstrap as bootstrap_registry
from grid_registry.settings import Settings as RegistrySettings


def test_dispatch_and_registry_relays_lock_different_keys() -> None:
    dispatch = bootstrap_dispatch(DispatchSettings(environment="test"))
    registry = bootstrap_registry(RegistrySettings(environment="test"))
    assert dispatch.relay._lock_key != registry.relay._lock_key


def test_each_relays_transactional_id_is_its_own_and_under_its_services_outbox_prefix() -> None:
    """The relay's transactional id is also the consumer group that commits its passes: two services'
    relays sharing it would fence each other's producer at every pass; the service's ACLs grant it
    by the prefix `<service>.outbox.` (tests/deploy/test_k8s.py)."""
    from onegrid.topic_access import access_of

    relays = {
        "dispatch": bootstrap_dispatch(DispatchSettings(environment="test")).relay,
        "grid-registry": bootstrap_registry(RegistrySettings(environment="test")).relay,
    }
    assert len({r.transactional_id for r in relays.values()}) == 2
    for service, relay in relays.items():
        assert relay.transactional_id.startswith(access_of(service).outbox_prefix)
