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
