"""`make images`: one image per service from deploy/container/Containerfile, with docker or podman.

    make images                                  # onegrid/<service>:<version> for every service
    make images ARGS="--registry reg.example.cn/city --push"

The services, their modules and ports come from devstack.stack.SERVICES; the tag from the
platform's version in pyproject.toml (what overlays/production's `images:` name). Where no engine
answers (no docker or podman, or a docker client without a daemon), it says so and exits 2.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from devstack.stack import SERVICES

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = Path(__file__).resolve().parent / "Containerfile"


def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def engine(preferred: str | None = None) -> tuple[str | None, str]:
    """The first engine that answers, and what was found on the way (for the explanation)."""
    notes = []
    for name in [preferred] if preferred else ["docker", "podman"]:
        if not shutil.which(name):
            notes.append(f"{name}: not installed")
            continue
        probe = subprocess.run([name, "info"], capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            return name, ""
        reason = (probe.stderr.strip().splitlines() or ["no answer"])[-1]
        notes.append(f"{name}: installed, but its engine does not answer ({reason})")
    return None, "; ".join(notes)


def image_name(service: str, registry: str, tag: str) -> str:
    return f"{registry.rstrip('/')}/{service}:{tag}"


def build_args(service: str) -> list[str]:
    spec = next(s for s in SERVICES if s.name == service)
    args = {"SERVICE": spec.name, "MODULE": spec.module, "PORT": str(spec.default_port)}
    return [a for k, v in args.items() for a in ("--build-arg", f"{k}={v}")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", choices=["docker", "podman"])
    parser.add_argument("--registry", default="onegrid", help="image name prefix (default: onegrid)")
    parser.add_argument("--tag", default=version())
    parser.add_argument("--push", action="store_true")
    parser.add_argument("--service", action="append", choices=[s.name for s in SERVICES])
    args = parser.parse_args(argv)
    name, why = engine(args.engine)
    if name is None:
        print(
            f"make images: no container engine to build with ({why}).\n"
            "Install docker (with a running daemon) or podman, or build elsewhere from the same "
            "file:\n  docker build -f deploy/container/Containerfile --build-arg SERVICE=intake "
            "--build-arg MODULE=intake --build-arg PORT=8002 -t onegrid/intake:" + args.tag + " .",
            file=sys.stderr,
        )
        return 2
    for service in args.service or [s.name for s in SERVICES]:
        image = image_name(service, args.registry, args.tag)
        cmd = [name, "build", "-f", str(CONTAINERFILE), *build_args(service), "-t", image, str(ROOT)]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        if args.push:
            subprocess.run([name, "push", image], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
