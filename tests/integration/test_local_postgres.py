"""The local PostgreSQL gives local users nothing for free: started in a private folder (as a clone
under `mktemp -d` is), it asks for a password (scram-sha-256, no `trust`), keeps the password in a
file only its owner reads and off every command line, keeps its data 0700, and opens the folders
above for traversal only. A data directory made with `trust` before is switched at its next start."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import asyncpg
import pytest

from devstack.paths import free_port
from devstack.postgres import LocalPostgres

from .conftest import pg_home

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def private_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:  # 0700, as mktemp -d makes it
        yield Path(d)


def started(pg: LocalPostgres) -> list[list[str]]:
    """Start `pg`; the command lines it ran (what every local user could read in `ps`)."""
    commands: list[list[str]] = []
    real = subprocess.run

    def run(args, *a, **kw):  # type: ignore[no-untyped-def]
        commands.append([str(x) for x in args])
        return real(args, *a, **kw)

    with mock.patch.object(subprocess, "run", run):
        pg.start()
    return commands


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


async def refuses_without_password(pg: LocalPostgres) -> bool:
    try:
        conn = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="postgres", database="postgres")
    except asyncpg.InvalidPasswordError:
        return True
    except asyncpg.PostgresError as e:
        return "password" in str(e)
    await conn.close()
    return False


async def test_a_password_is_asked_kept_private_and_never_on_a_command_line(private_folder: Path) -> None:
    pg = LocalPostgres(private_folder / "pg" / "data", port=free_port(), database="onegrid_perm")
    try:
        commands = started(pg)
        assert any("initdb" in c[0] for c in commands)
        assert [c for c in commands if any(pg.password in arg or "trust" in arg for arg in c)] == []
        assert await refuses_without_password(pg)
        conn = await asyncpg.connect(pg.url)
        assert await conn.fetchval("SELECT current_database()") == "onegrid_perm"
        await conn.close()
        assert mode(pg.data_dir) == 0o700
        assert mode(pg.password_file) == 0o600
        # the private folder lets the server's user through, and no one list it
        assert mode(private_folder) & 0o007 in (0o000, 0o001)
        assert not list(pg.data_dir.parent.glob(".pwfile-*"))
    finally:
        pg.stop()


async def test_a_trust_data_directory_asks_for_the_password_at_its_next_start(private_folder: Path) -> None:
    pg = LocalPostgres(private_folder / "pg" / "data", port=free_port(), database="onegrid_perm")
    try:
        pg.start()
        pg.stop()
        hba = pg.data_dir / "pg_hba.conf"
        hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))  # as initdb --auth=trust left it
        pg.start()
        assert await refuses_without_password(pg)
        conn = await asyncpg.connect(pg.url)
        await conn.close()
    finally:
        pg.stop()


async def test_a_database_started_while_another_session_tightens_pytests_temp_root(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Every pytest session started on the machine (by anyone running as this user) chmods the
    # shared temp root /tmp/pytest-of-<user> to 0700, taking the traversal the server's user needs.
    root = tmp_path_factory.getbasetemp().parent
    before = mode(root)
    home = pg_home()
    try:
        root.chmod(before & ~0o077)
        pg = LocalPostgres(home / "data", port=free_port(), database="onegrid_perm")
        pg.start()
        pg.stop()
    finally:
        root.chmod(before)
        shutil.rmtree(home, ignore_errors=True)


async def test_a_stop_while_another_session_tightens_pytests_temp_root_is_a_clean_shutdown(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The fault suite stops PostgreSQL under load. With its data below pytest's temp root and that
    root tightened meanwhile, `pg_ctl stop` (run as the server's user) could not reach the data and
    the server was killed instead: a crash, not the clean stop the scenario means."""
    root = tmp_path_factory.getbasetemp().parent
    before = mode(root)
    folder = tmp_path_factory.mktemp("pg-stop")
    pg = LocalPostgres(folder / "pg" / "data", port=free_port(), database="onegrid_perm")
    try:
        pg.start()
        root.chmod(before & ~0o077)
        pg.stop()
    finally:
        root.chmod(before)
        pg.stop()
    log = pg.log_file.read_text()
    assert "received fast shutdown request" in log
    assert "unexpected postmaster exit" not in log


async def test_a_commit_acknowledged_survives_a_crash_of_the_server(private_folder: Path) -> None:
    """A service commits its offsets to Kafka once PostgreSQL acknowledged its transaction: a server
    crash that forgets acknowledged commits loses those records for good (the fault suite found the
    audit trail two records short after one). The local server may skip fsync (the machine does not
    crash in a test) but never the write of a commit's WAL."""
    pg = LocalPostgres(private_folder / "pg" / "data", port=free_port(), database="onegrid_perm")
    try:
        pg.start()
        conn = await asyncpg.connect(pg.url)
        await conn.execute("CREATE TABLE acknowledged (n int PRIMARY KEY)")
        for n in range(300):
            await conn.execute("INSERT INTO acknowledged VALUES ($1)", n)
        pid = int((pg.data_dir / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)
        await conn.close()
        for _ in range(100):
            if not pg.running():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the children notice their postmaster is gone
        pg.start()
        conn = await asyncpg.connect(pg.url)
        assert await conn.fetchval("SELECT count(*) FROM acknowledged") == 300
        await conn.close()
    finally:
        pg.stop()
