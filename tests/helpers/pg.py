"""A private, throwaway PostgreSQL server for the tests that run the store on PostgreSQL.

``server()`` returns the admin URL of either

* an existing server named by ``JARVIS_TEST_POSTGRES_URL`` (its user needs CREATEDB), or
* a cluster of our own: ``initdb`` in a temp dir, started with ``pg_ctl`` on a Unix socket in
  that dir (no TCP port, so no clash with anything else), trust auth, no fsync (a test
  database is thrown away). ``initdb`` refuses to run as root, so as root the server binaries
  run as the ``postgres`` OS user (created by Debian's ``postgresql`` package).

Each test starts on an empty database (see :class:`Databases`). The binaries come from
``PG_BIN`` (a ``bin`` directory), ``pg_config --bindir``, Debian's
``/usr/lib/postgresql/<major>/bin``, or the ``PATH``. ``scripts/setup.sh`` installs
Debian's ``postgresql`` package when none is found.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

URL_ENV = "JARVIS_TEST_POSTGRES_URL"
SKIP_ENV = "JARVIS_TEST_NO_POSTGRES"

MISSING = (
    "no PostgreSQL server for the tests: install PostgreSQL's server binaries "
    f"(scripts/setup.sh does: apt-get install postgresql), or point {URL_ENV} at a server "
    f"whose user may CREATE DATABASE, or set {SKIP_ENV}=1 to skip the PostgreSQL variants"
)


class NoPostgres(RuntimeError):
    pass


def find_bindir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    candidates: list[str] = []
    if os.environ.get("PG_BIN"):
        candidates.append(os.environ["PG_BIN"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(debian, key=lambda p: int(Path(p).parent.name), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for path in candidates:
        bindir = Path(path)
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


class Cluster:
    """A PostgreSQL cluster in a temp dir, for this test session only."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_user: list[str] = []
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise NoPostgres(
                    "running as root, and initdb refuses to: no 'postgres' OS user to run "
                    "PostgreSQL as (useradd --system postgres)"
                ) from exc
            runuser = shutil.which("runuser")
            self.as_user = [runuser, "-u", "postgres", "--"] if runuser else []
            if not runuser:
                raise NoPostgres("running as root, and runuser (util-linux) is missing")
        # Not under pytest's tmp dirs: those are private to root, and the server must read it.
        self.dir = Path(tempfile.mkdtemp(prefix="jarvis-pg-"))
        if owner is not None:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.started = False

    def _run(self, *args: str) -> None:
        cmd = [*self.as_user, *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise NoPostgres(
                f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}\n{log}"
            )

    def start(self) -> str:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = " ".join(
            [
                "-c listen_addresses=''",  # Unix socket only
                f"-c unix_socket_directories={self.dir}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
                "-c shared_buffers=32MB",
            ]
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
            "-t", "60", "-o", options, "start",
        )  # fmt: skip
        self.started = True
        return f"postgresql+psycopg://postgres@/postgres?host={self.dir}"

    def stop(self) -> None:
        if self.started:
            subprocess.run(
                [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m",
                 "immediate", "-w", "stop"],
                capture_output=True, timeout=60,
            )  # fmt: skip
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def server() -> Iterator[str]:
    """The admin URL of a PostgreSQL server for this session (raises NoPostgres if none)."""
    url = os.environ.get(URL_ENV)
    if url:
        yield url
        return
    bindir = find_bindir()
    if bindir is None:
        raise NoPostgres(MISSING)
    cluster = Cluster(bindir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


class Databases:
    """Databases for tests on one server.

    ``shared()``: the session's database, emptied before each test (``TRUNCATE``: ~15 ms;
    a ``CREATE DATABASE`` per test costs ~0.1-0.3 s). ``fresh()``: a new, empty database,
    dropped afterwards, for tests that need one (migrations, processes racing to create
    the schema).
    """

    def __init__(self, admin_url: str) -> None:
        self.admin_url = sa.make_url(admin_url)
        self.engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        self.prefix = f"jarvis_test_{os.getpid()}_"
        self.counter = itertools.count(1)
        self.shared_name: str | None = None

    def _url(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def _create(self) -> str:
        name = f"{self.prefix}{next(self.counter)}"
        with self.engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        return name

    def _drop(self, name: str) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    @contextmanager
    def fresh(self) -> Iterator[str]:
        name = self._create()
        try:
            yield self._url(name)
        finally:
            self._drop(name)

    def shared(self) -> str:
        """The session's database, with every table emptied (the schema stays migrated)."""
        if self.shared_name is None:
            self.shared_name = self._create()
            return self._url(self.shared_name)
        with self.engine.connect() as conn:
            # Connections a test left open (an undisposed engine) must not hold a lock that
            # blocks TRUNCATE, nor pile up over the session.
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.shared_name},
            )
        url = self._url(self.shared_name)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                tables = conn.execute(
                    sa.text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                        "AND tablename <> 'schema_migrations'"
                    )
                ).scalars()
                names = ", ".join(f'"{t}"' for t in tables)
                if names:
                    conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        finally:
            engine.dispose()
        return url

    def close(self) -> None:
        if self.shared_name is not None:
            self._drop(self.shared_name)
        self.engine.dispose()
