"""A real PostgreSQL server for the tests of the PostgreSQL history store.

`postgres_url` (session) is the URL of a server: CLEANCLAIM_TEST_PG_URL when set (.ci/run
starts one and sets it), else a server this session starts itself with the `initdb` and
`pg_ctl` of an installed PostgreSQL (Debian's `postgresql` package: /usr/lib/postgresql/
<version>/bin), in a temporary folder, on a free port, as an unprivileged user when the
tests run as root, and stops at the end. No PostgreSQL: the tests that need it are
skipped with the reason - or fail under CI=true, where it must be there.
`new_database(url)` makes an empty database on that server and returns its URL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleanclaim.engine.history import HistoryStore, open_store
from cleanclaim.engine.history.postgres import KEY_FILE_ENV

URL_ENV = "CLEANCLAIM_TEST_PG_URL"


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl)."""

    def __init__(self, binaries: Path) -> None:
        self.bin = binaries
        self.folder = Path(tempfile.mkdtemp(prefix="cleanclaim-pg-"))
        self.port = _free_port()
        self.user: int | None = None
        self.group: int | None = None
        if os.geteuid() == 0:  # initdb refuses root: run the server as a plain user
            import pwd

            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                account = pwd.getpwnam("nobody")
            self.user, self.group = account.pw_uid, account.pw_gid
            os.chown(self.folder, self.user, self.group)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            user=self.user,
            group=self.group,
            timeout=120,
        )

    def start(self) -> None:
        data = self.folder / "data"
        self._run(
            "initdb",
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=60"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(
        f"no PostgreSQL server for the PostgreSQL history store: {reason} "
        f"(install the `postgresql` package, or set {URL_ENV})"
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a running PostgreSQL server (see the module's docstring)."""
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[test]')")
    given = os.environ.get(URL_ENV)
    if given:
        yield given
        return
    binaries = _binaries()
    if binaries is None:
        _unavailable("no initdb found on PATH or in /usr/lib/postgresql/*/bin")
        return
    server = Server(binaries)
    try:
        server.start()
    except (subprocess.SubprocessError, OSError) as exc:
        server.stop()
        _unavailable(f"the server did not start ({exc})")
    try:
        with psycopg.connect(server.url, connect_timeout=10):
            pass
        yield server.url
    finally:
        server.stop()


def new_database(url: str) -> str:
    """A new empty database on the server at `url`; returns its URL."""
    import psycopg

    name = f"cleanclaim_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, _db = url.rpartition("/")
    query = ""
    if "?" in _db:
        query = "?" + _db.split("?", 1)[1]
    return f"{base}/{name}{query}"


BACKENDS = ["sqlite", "postgresql"]


class Backends:
    """History stores of either backend for tests parametrized over `BACKENDS`. The
    PostgreSQL server is started (`postgres_url`) only when a test asks for it, so the
    SQLite half runs without one."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self._database: str | None = None

    def server(self) -> str:
        url: str = self._request.getfixturevalue("postgres_url")
        return url

    def url(self) -> str:
        """One database of this session's server, shared by the tests that use `store`."""
        if self._database is None:
            self._database = new_database(self.server())
        return self._database

    def store(self, backend: str) -> HistoryStore:
        """An empty store: SQLite in memory, or the PostgreSQL database emptied."""
        if backend == "sqlite":
            return HistoryStore.memory()
        store = open_store(self.url())
        store.clear_all()
        return store

    def state(self, backend: str, folder: Path) -> str:
        """A new store's `--state`: a SQLite file in `folder`, or a new database's URL."""
        return str(folder / "state.sqlite") if backend == "sqlite" else new_database(self.server())


@pytest.fixture(scope="session")
def backends(request: pytest.FixtureRequest) -> Iterator[Backends]:
    # Stores of PostgreSQL find their key here (never in ~/.config).
    folder = tempfile.mkdtemp(prefix="cleanclaim-pg-key-")
    previous = os.environ.get(KEY_FILE_ENV)
    os.environ[KEY_FILE_ENV] = str(Path(folder) / "history.key")
    try:
        yield Backends(request)
    finally:
        if previous is None:
            os.environ.pop(KEY_FILE_ENV, None)
        else:
            os.environ[KEY_FILE_ENV] = previous
        shutil.rmtree(folder, ignore_errors=True)
