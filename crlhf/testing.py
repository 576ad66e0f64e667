"""Helpers for tests of code that uses crlhf, the kit's own tests included.

:class:`TemporaryPostgres` starts a throwaway PostgreSQL cluster (Debian's ``postgresql``
package, or ``initdb``/``pg_ctl`` on ``PATH``) for the test session, so that code using a
:class:`crlhf.store.LabelStore` on PostgreSQL can be tested on one machine::

    import pytest
    from crlhf.store import LabelStore
    from crlhf.testing import TemporaryPostgres, find_postgres_bindir

    @pytest.fixture(scope="session")
    def postgres_url():
        if find_postgres_bindir() is None:
            pytest.skip("no PostgreSQL binaries: apt-get install postgresql")
        with TemporaryPostgres(durable=False) as url:
            yield url

    def test_my_app(postgres_url):
        store = LabelStore(postgres_url, schema="my_test")
        ...

The kit's own ``postgres_url`` fixture (``tests/conftest.py``) is built on it.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["TemporaryPostgres", "find_postgres_bindir"]


def find_postgres_bindir() -> Path | None:
    """The folder of PostgreSQL's ``initdb`` and ``pg_ctl`` (newest Debian version, else PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda s: [int(x) if x.isdigit() else 0 for x in Path(s).parts[-3].split(".")])
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class TemporaryPostgres:
    """A throwaway PostgreSQL cluster in a temporary folder (``initdb`` + ``pg_ctl``), for tests,
    benchmarks and trying the PostgreSQL path on one machine; removed by :meth:`stop` (or at
    exit). It listens on a Unix socket in that folder only, with trust authentication.
    As root the server runs as the ``postgres`` user. ``durable=False`` turns off fsync
    (faster; fine for tests, never for real data).
    """

    def __init__(self, bindir: str | os.PathLike | None = None, *, durable: bool = True, port: int = 5432):
        found = Path(bindir) if bindir else find_postgres_bindir()
        if found is None or not (found / "initdb").exists() or not (found / "pg_ctl").exists():
            raise FileNotFoundError("PostgreSQL binaries (initdb, pg_ctl) not found; on Debian: "
                                    "apt-get install postgresql")
        self.bindir: Path = found
        self.durable, self.port = bool(durable), int(port)
        self.dir: Path | None = None
        self.url: str | None = None

    def _run(self, *args: str | os.PathLike) -> None:
        cmd = [str(a) for a in args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            log = ""
            if self.dir is not None and (self.dir / "log").exists():
                log = (self.dir / "log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}{res.stderr}{log}")

    def start(self) -> str:
        """Create and start the cluster; returns its SQLAlchemy URL (``postgresql+psycopg://``)."""
        if self.url is not None:
            return self.url
        self.dir = Path(tempfile.mkdtemp(prefix="crlhf-pg-"))
        if os.geteuid() == 0:
            import pwd
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root needs a 'postgres' user (Debian's postgresql "
                                   "package creates it)") from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        atexit.register(self.stop)
        data = self.dir / "data"
        self._run(self.bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        opts = [f"-c listen_addresses='' -c unix_socket_directories='{self.dir}' -p {self.port}",
                "-c max_connections=200"]
        if not self.durable:
            opts.append("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run(self.bindir / "pg_ctl", "-D", data, "-l", self.dir / "log", "-w", "-t", "60",
                  "-o", " ".join(opts), "start")
        self.url = f"postgresql+psycopg://postgres@/postgres?host={self.dir}&port={self.port}"
        return self.url

    def stop(self) -> None:
        """Stop the server and delete its folder (safe to call twice)."""
        if self.dir is None:
            return
        try:
            if (self.dir / "data" / "postmaster.pid").exists():
                self._run(self.bindir / "pg_ctl", "-D", self.dir / "data", "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir, self.url = None, None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
