"""A throw-away PostgreSQL server for the tests, or the one at AZML_TEST_DATABASE_URL.

Without that variable: Debian's `postgresql` (installed by test.sh when missing) runs a new
cluster in a temporary folder on a free 127.0.0.1 port, as the `postgres` user when the tests
run as root (the server refuses root), with durability off (a test cluster needs none), and
is stopped and removed at the end. Each test gets a database of its own.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.conftest import free_port


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed: test.sh installs it, or set AZML_TEST_DATABASE_URL")
    return Path(initdb).parent


class PostgresServer:
    """One cluster: start() it, admin_url() to reach it, stop() it (its folder goes with it)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="aml-pg-"))
        self.port = free_port()
        self.bindir = _bindir()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, cwd=self.folder)

    def start(self) -> None:
        data = self.folder / "data"
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c max_connections=300 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.folder / "log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def server() -> Iterator[str]:
    """The admin URL of a server for this test session: AZML_TEST_DATABASE_URL's, or a throw-away one."""
    given = os.environ.get("AZML_TEST_DATABASE_URL")
    if given:
        yield given
        return
    cluster = PostgresServer()
    cluster.start()
    try:
        yield cluster.admin_url()
    finally:
        cluster.stop()


@contextmanager
def database(admin_url: str) -> Iterator[str]:
    """A new, empty database on that server, dropped afterwards; its URL."""
    name = f"aml_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
