"""A throw-away PostgreSQL server for the tests.

``KEFU_TEST_POSTGRES_URL`` points at an existing server (a database the tests may fill and
empty); without it the tests start their own cluster in a temporary directory with the
installed ``initdb``/``pg_ctl`` (as the ``postgres`` user when running as root, since
PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


class TempPostgres:
    """initdb + pg_ctl start in a temporary directory; ``url`` is ready after ``start()``."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="kefu-pg-"))
        self.port = _free_port()
        self.url = f"postgresql+psycopg://kefu@127.0.0.1:{self.port}/kefu"
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> TempPostgres:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("PostgreSQL is not installed (initdb/pg_ctl not found)")
        data = self.dir / "data"
        if self._as_root:
            shutil.chown(self.dir, "postgres")
        self._run(
            initdb, "-D", str(data), "-U", "kefu", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"
        )
        self._run(
            pg_ctl,
            "-D",
            str(data),
            "-l",
            str(self.dir / "log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
        admin = sa.create_engine(
            f"postgresql+psycopg://kefu@127.0.0.1:{self.port}/postgres",
            isolation_level="AUTOCOMMIT",
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with admin.connect() as conn:
                    conn.execute(sa.text("CREATE DATABASE kefu"))
                break
            except sa.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        admin.dispose()
        return self

    def stop(self) -> None:
        pg_ctl = _pg_bin("pg_ctl")
        if pg_ctl:
            with contextlib.suppress(subprocess.SubprocessError):
                self._run(pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """A fresh, empty database on ``server_url``'s server; returns its URL."""
    url = sa.engine.make_url(server_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)
