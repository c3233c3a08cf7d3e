"""Where code lives: the shared library `onegrid` holds mechanisms (loop, envelope, settings, database,
telemetry), never a business rule of the city and no development tooling. The registry's rules
(routing, SLA matching, the working-day calendar) live in the registry-client package the services
depend on; the local stack (`devstack`: brokers and databases for `make run`, the tests and the bench)
lives in deploy/local, its own workspace package. Checked on the syntax tree, so a lazy import inside a
function counts."""

from __future__ import annotations

from pathlib import Path

from support.imports import imported_modules

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "libs/onegrid/src/onegrid"
# What a business rule of the registry needs; the library importing one of them holds a rule.
RULE_MODULES = ("registry_client", "chinese_calendar")
# What ships (the library, the services, their clients and contracts): none of it starts a local stack.
SHIPPED = sorted(
    p
    for pattern in ("libs/*/src", "contracts/src", "services/*/src", "clients/*/src")
    for p in ROOT.glob(pattern)
)


def test_the_library_imports_no_business_rule() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(bad)
        for path in sorted(LIBRARY.rglob("*.py"))
        if (bad := {m for m in imported_modules(path) if m.split(".")[0] in RULE_MODULES})
    }
    assert not offenders, f"the shared library imports business rules: {offenders}"


def test_the_registry_rules_live_in_the_registry_client_only() -> None:
    rule_modules = ("registry_view.py", "workcal.py")
    in_library = sorted(str(p.relative_to(ROOT)) for name in rule_modules for p in LIBRARY.rglob(name))
    assert not in_library, f"registry rules in the shared library: {in_library}"
    import registry_client

    assert callable(registry_client.match_route) and callable(registry_client.due_at)


def test_the_library_holds_no_local_stack() -> None:
    stacks = sorted(str(p.relative_to(ROOT)) for p in LIBRARY.rglob("devstack"))
    assert not stacks, f"the local stack is back in the shared library: {stacks}"
    import devstack

    local = ROOT / "deploy/local/src/devstack"
    assert Path(devstack.__file__).resolve().parent == local, devstack.__file__


def test_no_shipped_package_imports_the_local_stack() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(bad)
        for src in SHIPPED
        for path in sorted(src.rglob("*.py"))
        if (bad := {m for m in imported_modules(path) if m.split(".")[0] == "devstack"})
    }
    assert not offenders, f"shipped code imports the local stack: {offenders}"
