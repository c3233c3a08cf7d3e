"""A small, exact lint of our Containerfile (hadolint is not available from a package registry here).

    .venv/bin/python deploy/container/lint.py [deploy/container/Containerfile]

Rules (each a function below, each with a test in tests/deploy/test_container.py):
  pinned-base      every FROM names an explicit tag or digest, never `latest` (an ARG default counts)
  multi-stage      at least two stages: build tools stay out of the runtime image
  non-root         the last stage switches to a numeric, non-zero USER
  healthcheck      the last stage has a HEALTHCHECK
  exec-form        CMD and ENTRYPOINT are JSON arrays (signals reach the process)
  frozen-lock      every `uv sync` is `--frozen` (the image holds exactly uv.lock)
  no-remote-add    no ADD of a URL (COPY from the context, or a package manager)
  apt-hygiene      apt-get install with --no-install-recommends, and the lists removed in the same RUN
  no-secret-env    no ENV or ARG that bakes a secret-looking name with a value into the image
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT = Path(__file__).resolve().parent / "Containerfile"


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str


@dataclass(frozen=True)
class Finding:
    rule: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.rule}: {self.message}"


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and blank lines dropped."""
    out: list[Instruction] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, args = buffer.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
        buffer = ""
    return out


def stages(ins: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for i in ins:
        if i.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(i)
    return result


Rule = Callable[[list[Instruction]], Iterator[Finding]]


def pinned_base(ins: list[Instruction]) -> Iterator[Finding]:
    defaults = {}
    for i in ins:
        if i.keyword == "ARG" and "=" in i.args:
            name, _, value = i.args.partition("=")
            defaults[name.strip()] = value.strip()
    aliases = set()
    for i in ins:
        if i.keyword != "FROM":
            continue
        parts = i.args.split()
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), parts[0])
        if len(parts) >= 3 and parts[1].upper() == "AS":
            aliases.add(parts[2])
        if image in aliases:
            continue
        name, _, tag = image.rpartition(":")
        if "@sha256:" not in image and (not name or not tag or tag == "latest" or "/" in tag):
            yield Finding("pinned-base", i.line, f"{parts[0]} has no pinned tag")


def multi_stage(ins: list[Instruction]) -> Iterator[Finding]:
    if len(stages(ins)) < 2:
        yield Finding("multi-stage", 1, "one stage only: build tools end up in the runtime image")


def non_root(ins: list[Instruction]) -> Iterator[Finding]:
    last = stages(ins)[-1] if stages(ins) else []
    users = [i for i in last if i.keyword == "USER"]
    if not users:
        yield Finding("non-root", last[0].line if last else 1, "the runtime stage sets no USER")
        return
    uid = users[-1].args.split(":")[0]
    if not uid.isdigit() or int(uid) == 0:
        yield Finding("non-root", users[-1].line, f"USER {users[-1].args}: use a numeric, non-zero uid")


def healthcheck(ins: list[Instruction]) -> Iterator[Finding]:
    last = stages(ins)[-1] if stages(ins) else []
    checks = [i for i in last if i.keyword == "HEALTHCHECK"]
    if not checks or checks[-1].args.upper().startswith("NONE"):
        yield Finding("healthcheck", last[0].line if last else 1, "the runtime stage has no HEALTHCHECK")


def exec_form(ins: list[Instruction]) -> Iterator[Finding]:
    for i in ins:
        if i.keyword in ("CMD", "ENTRYPOINT"):
            try:
                ok = isinstance(json.loads(i.args), list)
            except json.JSONDecodeError:
                ok = False
            if not ok:
                yield Finding("exec-form", i.line, f"{i.keyword} in shell form: use a JSON array")


def frozen_lock(ins: list[Instruction]) -> Iterator[Finding]:
    for i in ins:
        if i.keyword == "RUN":
            for command in re.findall(r"uv sync[^&;|]*", i.args):
                if "--frozen" not in command and "--locked" not in command:
                    yield Finding("frozen-lock", i.line, f"`{command.strip()}` without --frozen")


def no_remote_add(ins: list[Instruction]) -> Iterator[Finding]:
    for i in ins:
        if i.keyword == "ADD" and re.search(r"\b(https?|git)://", i.args):
            yield Finding("no-remote-add", i.line, "ADD of a URL: unpinned and unchecked")


def apt_hygiene(ins: list[Instruction]) -> Iterator[Finding]:
    for i in ins:
        if i.keyword == "RUN" and "apt-get install" in i.args:
            if "--no-install-recommends" not in i.args:
                yield Finding("apt-hygiene", i.line, "apt-get install without --no-install-recommends")
            if "rm -rf /var/lib/apt/lists" not in i.args:
                yield Finding("apt-hygiene", i.line, "apt lists not removed in the same RUN")


_SECRET = re.compile(r"(?i)(secret|password|passwd|token|private_?key|signing_?key)")


def no_secret_env(ins: list[Instruction]) -> Iterator[Finding]:
    for i in ins:
        if i.keyword in ("ENV", "ARG"):
            for name, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)", i.args):
                if _SECRET.search(name) and value:
                    yield Finding("no-secret-env", i.line, f"{name} baked into the image")


RULES: tuple[Rule, ...] = (
    pinned_base,
    multi_stage,
    non_root,
    healthcheck,
    exec_form,
    frozen_lock,
    no_remote_add,
    apt_hygiene,
    no_secret_env,
)


def lint(text: str) -> list[Finding]:
    ins = parse(text)
    return [f for rule in RULES for f in rule(ins)]


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT
    findings = lint(path.read_text(encoding="utf-8"))
    for f in findings:
        print(f"{path}: {f}", file=sys.stderr)
    print(f"{path}: {len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
