"""Renders each overlay and checks every object against the vendored schemas, offline.

    .venv/bin/python deploy/k8s/validate.py            # both overlays; exit 1 on the first problem

Rendering: `kustomize build` (ONEGRID_KUSTOMIZE, else .cache/bin/kustomize as `make kustomize`
installs it, else `kustomize` on PATH), or `kubectl kustomize` where kubectl is installed. With none
of them it stops and says how to get one; it never passes without rendering.
Validation: schemas/kubernetes (built-in kinds, Kubernetes v1.34) and schemas/crds (Strimzi,
CloudNativePG, KEDA at the versions of schemas/SOURCES.md), strict: an unknown field is an error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OVERLAYS = ("dev", "production")
SCHEMAS = HERE / "schemas"

Manifest = dict[str, Any]


def kustomize_command() -> list[str]:
    """The first renderer available; raises RuntimeError naming how to get one."""
    explicit = os.environ.get("ONEGRID_KUSTOMIZE")
    if explicit:
        return [explicit, "build"]
    pinned = ROOT / ".cache" / "bin" / "kustomize"
    if pinned.exists():
        return [str(pinned), "build"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    raise RuntimeError(
        "no kustomize to render deploy/k8s with: `make kustomize` installs the pinned one with Go "
        "(go install sigs.k8s.io/kustomize/kustomize/v5), or install kubectl, or set ONEGRID_KUSTOMIZE"
    )


def render(overlay: str) -> list[Manifest]:
    path = HERE / "overlays" / overlay
    out = subprocess.run([*kustomize_command(), str(path)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"rendering {path} failed: {out.stderr.strip()}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def schema_key(obj: Manifest) -> str:
    """kubernetes-validate's file naming: `<kind>-<first label of the group>-<version>`."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    parts = [str(obj.get("kind", "")).lower()]
    if group:
        parts.append(group.split(".")[0])
    parts.append(version)
    return "-".join(parts)


@cache
def _schemas() -> tuple[dict[str, Manifest], Registry[Any]]:
    schemas: dict[str, Manifest] = {}
    resources = []
    for path in sorted(SCHEMAS.glob("*/*.json")):
        doc = json.loads(path.read_text())
        if path.stem == "_definitions":
            resources.append((doc["$id"], Resource.from_contents(doc)))
        else:
            schemas[path.stem] = doc
    return schemas, Registry().with_resources(resources)


@dataclass(frozen=True)
class Problem:
    overlay: str
    obj: str
    message: str

    def __str__(self) -> str:
        return f"{self.overlay}: {self.obj}: {self.message}"


def problems(overlay: str, objects: list[Manifest]) -> Iterator[Problem]:
    schemas, registry = _schemas()
    for obj in objects:
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        key = schema_key(obj)
        schema = schemas.get(key)
        if schema is None:
            yield Problem(overlay, name, f"no vendored schema {key}.json (deploy/k8s/schemas/vendor.py)")
            continue
        validator = Draft202012Validator(schema, registry=registry)
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in err.absolute_path) or "(root)"
            yield Problem(overlay, name, f"{where}: {err.message[:300]}")


def main() -> int:
    failed = False
    for overlay in OVERLAYS:
        objects = render(overlay)
        found = list(problems(overlay, objects))
        for p in found:
            print(p, file=sys.stderr)
        failed |= bool(found)
        print(f"{overlay}: {len(objects)} objects, {len(found)} problems")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
