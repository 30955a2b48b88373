"""A throwaway Postgres server from the OS packages, for tests and benchmarks.

`TemporaryPostgres` runs `initdb` and `pg_ctl` from `/usr/lib/postgresql/*/bin` (Debian's
`postgresql` package) in a temporary folder, listening on loopback at a free port, and
removes everything on `stop()`. Postgres refuses to run as root, so under root the server
runs as the `postgres` system user the package creates. Durability is switched off
(`fsync=off`): the data is thrown away anyway, and the tests kill *our* processes, not
the database's. `database()` makes a fresh, empty database per test.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """The Postgres server binaries are not installed (the message says how to get them)."""


def find_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise PostgresUnavailable(
            "no Postgres server binaries in /usr/lib/postgresql/*/bin; install them with "
            "`apt-get install postgresql` (scripts/test.sh does)"
        )
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TemporaryPostgres:
    def __init__(self, *, max_connections: int = 300) -> None:
        self.bin = find_bin()
        self.port = _free_port()
        self.user = "thinkrag"
        self.max_connections = max_connections
        self._dir = Path(tempfile.mkdtemp(prefix="thinkrag-pg-"))
        self.data = self._dir / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:  # postgres will not run as root
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self._dir, "postgres")

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [*self._as, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")

    def start(self) -> TemporaryPostgres:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            f" -c synchronous_commit=off -c full_page_writes=off"
            f" -c max_connections={self.max_connections}"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self._dir / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(
                [*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                 "-w", "stop"],
                capture_output=True, timeout=60, check=False,
            )  # fmt: skip
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> TemporaryPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
