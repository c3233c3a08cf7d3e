"""Writes the vendored JSON Schemas that deploy/k8s/validate.py checks every rendered object against.

    .venv/bin/python deploy/k8s/schemas/vendor.py \
        --kubernetes-validate kubernetes_validate-1.37.0-py3-none-any.whl --kubernetes v1.34.0 \
        --crd strimzi-kafka-operator/packaging/install/cluster-operator/040-Crd-kafka.yaml ...

- Kubernetes: the `-local-strict` schemas of one Kubernetes version from the kubernetes-validate wheel
  (PyPI; generated from Kubernetes' OpenAPI), only the kinds in KINDS, and of `_definitions.json` only
  the definitions they reach.
- Custom resources: each CRD's served storage version, turned into JSON Schema 2020-12 as the API
  server reads it (`nullable`, `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`),
  strict like the Kubernetes ones: an unknown field is an error (the API server would drop it silently).
  CEL rules (`x-kubernetes-validations`) are not evaluated.
Descriptions are dropped (the files are checked, not read). SOURCES.md records where each came from.
"""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
K8S_BASE = "https://kubernetes.io/api/"
DEFINITIONS_ID = K8S_BASE + "_definitions.json"
OBJECT_META = DEFINITIONS_ID + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# Built-in kinds the manifests use: `<kind>-<group>-<version>.json` in kubernetes-validate's naming.
KINDS = (
    "namespace-v1",
    "configmap-v1",
    "secret-v1",
    "service-v1",
    "deployment-apps-v1",
    "statefulset-apps-v1",
    "job-batch-v1",
    "networkpolicy-networking-v1",
    "poddisruptionbudget-policy-v1",
)

Schema = dict[str, Any]


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and "#/$defs/" in ref:
            found.add(ref.split("#/$defs/")[1])
        for v in node.values():
            found |= _refs(v)
    elif isinstance(node, list):
        for v in node:
            found |= _refs(v)
    return found


def vendor_kubernetes(wheel: Path, version: str, out: Path) -> None:
    folder = f"kubernetes_validate/kubernetes-json-schema/{version}-local-strict/"
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        definitions = json.loads(z.read(folder + "_definitions.json"))
        kinds = {k: json.loads(z.read(f"{folder}{k}.json")) for k in KINDS}
    wanted: set[str] = set()
    todo = set().union(*(_refs(s) for s in kinds.values()))
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        todo |= _refs(definitions["$defs"][name]) - wanted
    pruned = {
        "$schema": definitions["$schema"],
        "$id": DEFINITIONS_ID,
        "$defs": {k: _strip(definitions["$defs"][k]) for k in sorted(wanted)},
    }
    (out / "_definitions.json").write_text(json.dumps(pruned, indent=1, sort_keys=True) + "\n")
    for name, schema in kinds.items():
        schema = _strip(schema)
        # The wheel's refs are rooted at "/api/"; under the file's own $id they resolve to ours.
        text = json.dumps(schema, indent=1, sort_keys=True).replace(
            '"/api/_definitions.json', f'"{DEFINITIONS_ID}'
        )
        (out / f"{name}.json").write_text(text + "\n")


def _crd_node(node: Any) -> Any:
    """One OpenAPI v3 (structural) schema node as JSON Schema 2020-12, strict about unknown fields."""
    if isinstance(node, list):
        return [_crd_node(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for k, v in node.items():
        if k in (
            "description",
            "nullable",
            "x-kubernetes-validations",
            "x-kubernetes-list-type",
            "x-kubernetes-list-map-keys",
            "x-kubernetes-map-type",
            "x-kubernetes-embedded-resource",
        ):
            continue
        if k == "properties":
            out[k] = {name: _crd_node(p) for name, p in v.items()}
        elif k in ("items", "additionalProperties", "not") or k in ("allOf", "anyOf", "oneOf"):
            out[k] = _crd_node(v)
        else:
            out[k] = v
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.pop("x-kubernetes-int-or-string")
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def vendor_crd(path: Path, out: Path) -> str:
    crd = yaml.safe_load(path.read_text())
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    schema = _crd_node(version["schema"]["openAPIV3Schema"])
    schema["properties"]["apiVersion"] = {"enum": [f"{group}/{version['name']}"]}
    schema["properties"]["kind"] = {"enum": [kind]}
    schema["properties"]["metadata"] = {"$ref": OBJECT_META}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    name = f"{kind.lower()}-{group.split('.')[0]}-{version['name']}"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    return name


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubernetes-validate", type=Path, help="the kubernetes-validate wheel")
    parser.add_argument("--kubernetes", default="v1.34.0", help="Kubernetes version of the schemas")
    parser.add_argument("--crd", type=Path, action="append", default=[], help="a CRD YAML file")
    args = parser.parse_args()
    if args.kubernetes_validate:
        vendor_kubernetes(args.kubernetes_validate, args.kubernetes, HERE / "kubernetes")
    for path in args.crd:
        print(vendor_crd(path, HERE / "crds"))


if __name__ == "__main__":
    main()
