"""A private PostgreSQL server for the benchmark, from the machine's own binaries
(/usr/lib/postgresql/*/bin, Debian's `postgresql` package), started the same way as the
test suite's `pg_server` fixture; or the server named by TMINUS_BENCH_POSTGRES_URL."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextmanager
def server(url_from: str = "TMINUS_BENCH_POSTGRES_URL") -> Iterator[str]:
    """Yields a base URL (without database name) of a running server: the one named
    by the environment variable `url_from`, or a private one started here. (The test
    suite's `pg_server` fixture uses this too, with TMINUS_TEST_POSTGRES_URL.)"""
    url = os.environ.get(url_from)
    if url:
        yield url.rsplit("/", 1)[0]
        return
    bins = bindir()
    if bins is None:
        raise RuntimeError("PostgreSQL server binaries not found: `apt-get install postgresql` "
                           f"(.ci/run does), or set {url_from}")
    # not under a private temp dir: as root the server runs as the postgres user
    data = Path(tempfile.mkdtemp(prefix="tminus-bench-pg-")) / "data"
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        as_postgres = ["runuser", "-u", "postgres", "--"]
        shutil.chown(data.parent, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_postgres, str(bins / "initdb"), "-D", str(data), "-U", "tminus",
                    "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
    # fsync off: the benchmark measures tminus, not this disk (the same as the tests)
    subprocess.run([*as_postgres, str(bins / "pg_ctl"), "-D", str(data), "-w", "-l",
                    str(data.parent / "log"), "-o",
                    f"-p {port} -k {data.parent} -c listen_addresses=127.0.0.1 "
                    "-c fsync=off -c max_connections=200", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://tminus@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_postgres, str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(data.parent, ignore_errors=True)


def version(base: str) -> str:
    import psycopg
    with psycopg.connect(_admin(base)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


def create_database(base: str) -> str:
    """A fresh empty database on the server; returns its URL."""
    import psycopg
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin(base), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    import psycopg
    base, name = url.rsplit("/", 1)
    with psycopg.connect(_admin(base), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _admin(base: str) -> str:
    return base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
