"""A private, throw-away PostgreSQL server for tests that stop and start the database.

The shared server on 127.0.0.1:5432 serves every test run on the machine and must never
be stopped. A test that needs a database outage starts its own cluster instead:

    with private_cluster() as pg:           # initdb + pg_ctl start on a free port
        url = pg.create_database("facelens")
        ...
        pg.stop()                           # pg_ctl stop -m fast: the outage
        pg.start()                          # same port, same data

`initdb` and `pg_ctl` come from /usr/lib/postgresql/<version>/bin (the newest version
there), else from PATH. PostgreSQL refuses to run as root: when the tests run as root,
both run as the `postgres` system user through `runuser`, in a temporary directory
owned by that user (outside pytest's tmp_path, which only root may enter). The cluster
listens on 127.0.0.1 only, trusts local connections, and is stopped (immediate mode)
and deleted in `finally`, whatever happens to the test.

`cluster_unavailable()` says why no cluster can be made here (None when one can), so a
test can skip, or fail under CI.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tests.support.servers import free_port

PG_ROOT = Path("/usr/lib/postgresql")
SERVICE_USER = "postgres"
START_TIMEOUT_S = 60


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: the newest /usr/lib/postgresql/N/bin,
    else the directory of `initdb` on PATH."""
    if PG_ROOT.is_dir():
        versions = sorted(
            (p for p in PG_ROOT.iterdir() if p.name.split(".")[0].isdigit()),
            key=lambda p: float(p.name) if p.name.replace(".", "", 1).isdigit() else 0.0,
            reverse=True,
        )
        for version in versions:
            bindir = version / "bin"
            if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
                return bindir
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    return None


def _run_as() -> str | None:
    """The user to run the server as: None (ourselves) unless we are root."""
    return SERVICE_USER if os.geteuid() == 0 else None


def cluster_unavailable() -> str | None:
    """Why a private cluster cannot be started here, or None when it can."""
    if find_bindir() is None:
        return f"PostgreSQL server binaries (initdb, pg_ctl) not found under {PG_ROOT} or PATH"
    user = _run_as()
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"running as root and there is no {user!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is missing"
    return None


@dataclass
class PgCluster:
    bindir: Path
    root: Path
    """Temporary directory: data/ (the cluster), the socket, server.log."""
    port: int
    user: str | None
    """System user the server runs as (None: the current user)."""

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _cmd(self, tool: str, *args: str, timeout: float = START_TIMEOUT_S + 30) -> str:
        argv = [str(self.bindir / tool), *args]
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        done = subprocess.run(
            argv, capture_output=True, timeout=timeout, check=False, cwd=self.root
        )
        output = (done.stdout + done.stderr).decode(errors="replace")
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}):\n{output}")
        return output

    def initdb(self) -> None:
        self._cmd(
            "initdb",
            "-D", str(self.data),
            "-A", "trust",
            "-U", "postgres",
            "--no-sync",
            "--no-instructions",
        )  # fmt: skip

    def start(self) -> None:
        """pg_ctl start on the same port and data; returns once it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=100"
        )
        self._cmd(
            "pg_ctl",
            "-D", str(self.data),
            "-l", str(self.log),
            "-o", options,
            "-t", str(START_TIMEOUT_S),
            "-w",
            "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop: `fast` disconnects every client and shuts down cleanly,
        `immediate` kills the server (crash recovery on the next start)."""
        self._cmd("pg_ctl", "-D", str(self.data), "-m", mode, "-t", "60", "-w", "stop")

    def running(self) -> bool:
        try:
            self._cmd("pg_ctl", "-D", str(self.data), "status", timeout=30)
        except RuntimeError:
            return False
        return True

    async def execute(self, sql: str, database: str = "postgres") -> None:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database=database, timeout=10
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def create_database(self, name: str) -> str:
        """CREATE DATABASE name; returns its SQLAlchemy URL."""
        import asyncio

        asyncio.run(self.execute(f'CREATE DATABASE "{name}"'))
        return self.url(name)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def private_cluster() -> Iterator[PgCluster]:
    """initdb a fresh cluster in a temporary directory and start it on a free port;
    always stopped and deleted on exit. Raises RuntimeError when it cannot be made
    (check `cluster_unavailable()` first to skip cleanly)."""
    reason = cluster_unavailable()
    if reason is not None:
        raise RuntimeError(reason)
    bindir = find_bindir()
    assert bindir is not None
    user = _run_as()
    root = Path(tempfile.mkdtemp(prefix="facelens-pg-"))
    cluster = PgCluster(bindir=bindir, root=root, port=free_port(), user=user)
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        cluster.initdb()
        cluster.start()
        yield cluster
    finally:
        try:
            if cluster.data.exists() and cluster.running():
                cluster.stop("immediate")
        finally:
            # The postmaster is gone; give a straggling backend a moment, then delete.
            deadline = time.monotonic() + 10
            while True:
                try:
                    shutil.rmtree(root)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        shutil.rmtree(root, ignore_errors=True)
                        break
                    time.sleep(0.1)
