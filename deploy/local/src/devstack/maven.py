"""The broker's jars from a lock file, downloaded straight from a Maven repository: no Maven needed.

`deploy/local/kafka/jars.lock` pins every jar of the broker's runtime classpath (coordinates and the
SHA-1 that Maven Central publishes beside each jar). It is the outcome of Maven's own dependency
mediation for `deploy/local/kafka/pom.xml`, written by `python -m devstack lock-kafka` on a
machine that has Maven (the only command here that needs it). Resolving the POM in Python instead
would mean reimplementing Maven's "nearest wins" mediation; a resolver that gets it wrong puts a
kafka-clients of another major version on the classpath, so the lock keeps Maven's answer.

`fetch(lock, dest)` makes `dest` hold exactly the locked jars:
- a jar already present with the locked digest is kept (a second run makes no network request at all:
  a marker records the lock's digest once every jar is verified);
- a missing jar is downloaded to a temporary name, its SHA-1 compared with the lock AND with the `.sha1`
  file the repository publishes, and only then renamed into place;
- any failure is a `SetupError`: one sentence that says what to do.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import SetupError
from devstack.preflight import check_disk

# Maven Central's standard layout; ONEGRID_MAVEN_REPOSITORY points at a mirror instead.
DEFAULT_REPOSITORY = "https://repo1.maven.org/maven2"
TIMEOUT_S = 60.0
PARALLEL_DOWNLOADS = 8
MARKER = ".complete"


@dataclass(frozen=True)
class Jar:
    group: str
    artifact: str
    version: str
    sha1: str
    classifier: str = ""

    @property
    def filename(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.artifact}-{self.version}{suffix}.jar"

    @property
    def path(self) -> str:
        """The jar's path in a Maven repository's layout."""
        return f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.filename}"

    @property
    def coordinates(self) -> str:
        parts = [self.group, self.artifact, self.version] + ([self.classifier] if self.classifier else [])
        return ":".join(parts)


@dataclass(frozen=True)
class Lock:
    properties: dict[str, str]
    jars: tuple[Jar, ...]
    digest: str

    def version(self, name: str) -> str:
        return self.properties[name]


def repository() -> str:
    return os.environ.get("ONEGRID_MAVEN_REPOSITORY", DEFAULT_REPOSITORY).rstrip("/")


# ---------------------------------------------------------------------------------------------- the lock
def parse_lock(text: str) -> Lock:
    """Lines `group:artifact:version[:classifier] sha1`; `# name = value` lines are properties."""
    props: dict[str, str] = {}
    jars: list[Jar] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            m = re.match(r"#\s*([\w.-]+)\s*=\s*(\S+)\s*$", line)
            if m:
                props[m.group(1)] = m.group(2)
            continue
        fields = line.split()
        coords = fields[0].split(":") if len(fields) == 2 else []
        if len(coords) not in (3, 4) or not re.fullmatch(r"[0-9a-f]{40}", fields[-1]):
            raise SetupError(f"jars.lock line {n} is not `group:artifact:version[:classifier] sha1`: {raw!r}")
        group, artifact, version = coords[:3]
        classifier = coords[3] if len(coords) == 4 else ""
        jars.append(Jar(group, artifact, version, sha1=fields[1], classifier=classifier))
    return Lock(props, tuple(jars), hashlib.sha256(text.encode()).hexdigest())


def read_lock(path: Path) -> Lock:
    try:
        return parse_lock(path.read_text())
    except FileNotFoundError:
        raise SetupError(f"{path} is missing: restore it from git (`git checkout -- {path.name}`)") from None


def render_lock(properties: dict[str, str], jars: Iterable[Jar]) -> str:
    head = [
        "# The Kafka broker's runtime classpath as Maven resolves deploy/local/kafka/pom.xml, with the SHA-1",
        "# Maven Central publishes for each jar. Regenerate after changing the POM (needs Maven, once):",
        "#   .venv/bin/python -m devstack lock-kafka",
        *(f"# {k} = {v}" for k, v in sorted(properties.items())),
    ]
    body = sorted(f"{j.coordinates} {j.sha1}" for j in jars)
    return "\n".join([*head, *body]) + "\n"


# ------------------------------------------------------------------------------------------ downloading
def fetch(lock: Lock, dest: Path) -> Path:
    """Make `dest` hold exactly the locked jars, verified; idempotent and offline once complete."""
    marker = dest / MARKER
    if marker.exists() and marker.read_text().strip() == lock.digest:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    check_disk(dest, need_mib=300)
    wanted = {j.filename for j in lock.jars}
    for stale in dest.glob("*.jar"):
        if stale.name not in wanted:  # the lock moved on (e.g. a new broker version): drop the old jar
            stale.unlink()
    missing = [j for j in lock.jars if not _verified(dest / j.filename, j.sha1)]
    if missing:
        with ThreadPoolExecutor(PARALLEL_DOWNLOADS) as pool:
            for _ in pool.map(lambda j: _download(j, dest), missing):
                pass
    marker.write_text(lock.digest + "\n")
    return dest


def _verified(path: Path, sha1: str) -> bool:
    return path.exists() and _sha1(path.read_bytes()) == sha1


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            data: bytes = resp.read()
            return data
    except urllib.error.HTTPError as exc:
        raise SetupError(
            f"the Maven repository answered {exc.code} for {url}: check ONEGRID_MAVEN_REPOSITORY "
            "(unset, it is Maven Central) or the network's proxy"
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SetupError(
            f"the Maven repository at {repository()} is not reachable ({reason}): check the network "
            "connection or proxy, or set ONEGRID_MAVEN_REPOSITORY to a reachable mirror"
        ) from None


def _download(jar: Jar, dest: Path) -> None:
    url = f"{repository()}/{jar.path}"
    data = _get(url)
    published = _get(url + ".sha1").decode("ascii", "replace").split()
    actual = _sha1(data)
    if not published or published[0].lower() != jar.sha1 or actual != jar.sha1:
        raise SetupError(
            f"{jar.filename} does not match its checksum (locked {jar.sha1}, published "
            f"{published[0] if published else 'none'}, downloaded {actual}): the download was altered "
            "on its way; retry, or check the proxy or mirror in between"
        )
    tmp = dest / f".{jar.filename}.part"
    tmp.write_bytes(data)
    tmp.replace(dest / jar.filename)


# ------------------------------------------------------------------------------ writing the lock (Maven)
def resolve_with_maven(pom: Path) -> list[Jar]:
    """Maven's resolution of `pom`'s runtime classpath, with the published SHA-1 of every jar checked."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SetupError("writing jars.lock needs Maven (mvn) on PATH; using the lock does not")
    out = pom.parent / ".deps.txt"
    try:
        subprocess.run(
            [mvn, "-q", "-B", "-f", str(pom), "dependency:list", "-DincludeScope=runtime",
             f"-DoutputFile={out}", "-DoutputAbsoluteArtifactFilename=true"],
            check=True,
        )  # fmt: skip
        lines = out.read_text().splitlines()
    finally:
        out.unlink(missing_ok=True)
    jars = []
    for line in lines:
        # group:artifact:type[:classifier]:version:scope:/absolute/path.jar
        parts = line.strip().split(":")
        if len(parts) < 6 or parts[2] != "jar":
            continue
        path = Path(parts[-1].split(" ")[0])
        group, artifact, version = parts[0], parts[1], parts[-3]
        classifier = parts[3] if len(parts) == 7 else ""
        jar = Jar(group, artifact, version, _sha1(path.read_bytes()), classifier)
        published = _get(f"{repository()}/{jar.path}.sha1").decode().split()[0].lower()
        if published != jar.sha1:
            raise SetupError(f"{path} differs from the published {jar.filename} ({published})")
        jars.append(jar)
    if not jars:
        raise SetupError(f"Maven resolved no jar for {pom}")
    return jars
