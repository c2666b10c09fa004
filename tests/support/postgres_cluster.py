"""A throwaway PostgreSQL server of one test's own: ``initdb`` in a temporary directory, started
on a free loopback port, and stopped, crashed and started again at will.

Fault tests restart "the database" under running services; they must never do that to the
machine's shared server. PostgreSQL refuses to run as root, so when the tests run as root the
server runs as the ``postgres`` system user (``runuser``) in a directory handed over to it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tests.support.smtp import free_port

ShutdownMode = Literal["smart", "fast", "immediate"]


class ClusterUnavailable(Exception):
    """This machine cannot run a private PostgreSQL server (the reason says why)."""


def find_bin_dir() -> Path:
    """The newest installed server binaries (Debian keeps them out of ``PATH``)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    found = shutil.which("initdb")
    if candidates:
        return candidates[-1].parent
    if found:
        return Path(found).parent
    raise ClusterUnavailable("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")


def _run_as() -> tuple[list[str], int | None, int | None]:
    """The command prefix that runs the server as a non-root user, and that user's ids."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ClusterUnavailable("running as root and there is no 'postgres' system user") from exc
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ClusterUnavailable("running as root and runuser is not installed")
    return [runuser, "-u", "postgres", "--"], user.pw_uid, user.pw_gid


def unavailable_reason() -> str | None:
    """Why this machine cannot run a private server, or ``None`` when it can."""
    try:
        find_bin_dir()
        _run_as()
    except ClusterUnavailable as exc:
        return str(exc)
    return None


@dataclass
class PostgresCluster:
    bin_dir: Path
    base_dir: Path
    port: int
    run_as: list[str]
    durable: bool = False
    """``False`` for fault tests (fast commits); ``True`` where timings matter (benchmarks)."""

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str, timeout: float = 60.0) -> None:
        command = [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"pg_ctl {' '.join(args)} failed: {result.stdout}{result.stderr}\n{self.log_tail()}"
            )

    def initdb(self) -> None:
        command = [
            *self.run_as,
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ]
        subprocess.run(command, capture_output=True, check=True, timeout=120)

    def start(self) -> None:
        settings = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-k {self.base_dir}",
            "-c max_connections=200",
        ]
        if not self.durable:
            # The tests crash the server, never the machine: what a committed transaction wrote
            # is in the WAL (in the OS cache) and survives a restart without fsync.
            settings += ["-c fsync=off", "-c full_page_writes=off"]
        options = " ".join(settings)
        self._pg_ctl("-l", str(self.log_path), "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: ShutdownMode = "fast") -> None:
        """``fast`` ends every session (an orderly restart); ``immediate`` is a crash: the
        server stops without a checkpoint and replays its WAL on the next start."""
        self._pg_ctl("-m", mode, "-w", "-t", "60", "stop")

    def is_running(self) -> bool:
        command = [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"]
        return subprocess.run(command, capture_output=True, check=False, timeout=30).returncode == 0

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def postgres_cluster(*, durable: bool = False) -> Iterator[PostgresCluster]:
    """A started private server; stopped and deleted afterwards."""
    bin_dir = find_bin_dir()
    run_as, uid, gid = _run_as()
    base_dir = Path(tempfile.mkdtemp(prefix="parcelpro-pg-"))
    try:
        if uid is not None and gid is not None:
            os.chown(base_dir, uid, gid)
        cluster = PostgresCluster(bin_dir, base_dir, free_port(), run_as, durable)
        cluster.initdb()
        cluster.start()
        try:
            yield cluster
        finally:
            if cluster.is_running():
                cluster.stop("immediate")
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
