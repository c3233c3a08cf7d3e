"""The Containerfile: our lint passes on it and each rule catches what it is for; the install step it
runs resolves for every service from uv.lock; `make images` explains itself without an engine; the
production overlay names the images it builds."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from support.deploy import REPO, load_script

from devstack.stack import SERVICES

lint = load_script("deploy/container/lint.py")
build = load_script("deploy/container/build.py")
validate = load_script("deploy/k8s/validate.py")

CONTAINERFILE = (REPO / "deploy/container/Containerfile").read_text(encoding="utf-8")
GOOD = """
ARG BASE=python:3.11.11-slim-bookworm
FROM ${BASE} AS build
RUN uv sync --frozen --no-dev
FROM ${BASE}
COPY --from=build /app /app
USER 10001:10001
HEALTHCHECK CMD ["python", "-c", "print(1)"]
CMD ["python", "-m", "intake"]
"""


def test_our_containerfile_passes_the_lint() -> None:
    assert [str(f) for f in lint.lint(CONTAINERFILE)] == []


def test_the_reference_sample_passes() -> None:
    assert lint.lint(GOOD) == []


@pytest.mark.parametrize(
    ("rule", "old", "new"),
    [
        ("pinned-base", "python:3.11.11-slim-bookworm", "python:latest"),
        ("pinned-base", "ARG BASE=python:3.11.11-slim-bookworm", "ARG BASE=python"),
        ("multi-stage", "FROM ${BASE} AS build\nRUN uv sync --frozen --no-dev\n", ""),
        ("non-root", "USER 10001:10001", "USER root"),
        ("non-root", "USER 10001:10001\n", ""),
        ("healthcheck", 'HEALTHCHECK CMD ["python", "-c", "print(1)"]', "HEALTHCHECK NONE"),
        ("exec-form", 'CMD ["python", "-m", "intake"]', "CMD python -m intake"),
        ("frozen-lock", "uv sync --frozen --no-dev", "uv sync --no-dev"),
        ("no-remote-add", "COPY --from=build /app /app", "ADD https://example.org/x.tgz /app"),
        ("apt-hygiene", "RUN uv sync --frozen --no-dev", "RUN apt-get install -y curl"),
        ("no-secret-env", "USER 10001:10001", "ENV ONEGRID_AUTH_HS256_SECRET=abc\nUSER 10001:10001"),
    ],
)
def test_each_rule_catches_its_fault(rule: str, old: str, new: str) -> None:
    assert old in GOOD
    assert rule in {f.rule for f in lint.lint(GOOD.replace(old, new))}


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
def test_the_images_install_step_resolves_from_the_lock(service: str, tmp_path) -> None:
    """The build stage's `uv sync` for this service, dry-run against uv.lock (no download)."""
    command = re.search(r"^RUN (uv sync [^&\n\\]*)", CONTAINERFILE, re.MULTILINE)
    assert command is not None
    args = command.group(1).replace('"onegrid-${SERVICE}"', f"onegrid-{service}").split()
    uv = REPO / ".cache/bootstrap/bin/uv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv")}
    out = subprocess.run(
        [str(uv), *args[1:], "--dry-run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert f"onegrid-{service}" in out.stderr + out.stdout
    for path in re.findall(r"^COPY (?!--from)(\S+)", CONTAINERFILE, re.MULTILINE):
        assert (REPO / path).exists(), path


def test_every_workspace_member_reaches_the_build_context() -> None:
    """`uv sync --frozen` reads every member's pyproject.toml, installed or not."""
    import tomllib

    members = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    copied = [Path(p) for p in re.findall(r"^COPY (?!--from)(\S+)", CONTAINERFILE, re.MULTILINE)]
    for pattern in members:
        for member in REPO.glob(pattern):
            wanted = (member / "pyproject.toml").relative_to(REPO)
            assert any(c == wanted or c in wanted.parents for c in copied), f"{wanted} is not copied"


def test_make_images_explains_itself_without_an_engine(monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert build.main([]) == 2
    err = capsys.readouterr().err
    assert "no container engine" in err and "docker: not installed" in err and "podman: not installed" in err


def test_the_production_overlay_names_the_images_make_images_builds() -> None:
    images = {
        c["image"]
        for o in validate.render("production")
        for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        if c["name"] != "otel-collector"
    }
    expected = {build.image_name(s.name, "onegrid", build.version()) for s in SERVICES}
    assert images == expected
