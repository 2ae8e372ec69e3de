"""A throwaway PostgreSQL server for the portability tests: initdb in a temp dir, pg_ctl start, delete.

Uses Debian's server binaries (`/usr/lib/postgresql/<version>/bin`, package `postgresql`, which
`make test` installs). initdb and postgres refuse to run as root, so as root they run as the
`postgres` system user (created by that package) through `runuser`; otherwise they run directly.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER_USER = "postgres"  # the OS account used when running as root
SUPERUSER = "postgres"  # the database role initdb creates; trust auth, so no password


def find_bindir() -> Path | None:
    """The newest Debian PostgreSQL server bin directory holding initdb, else one on PATH, else None."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if os.access(p, os.X_OK)]
    if found:
        return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], as_user: str | None, cwd: Path, timeout: float = 120) -> None:
    if as_user:
        cmd = ["runuser", "-u", as_user, "--", *cmd]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {done.returncode}:\n{done.stdout}{done.stderr}")


def _wait_accepting(bindir: Path, port: int, proc_log: Path, budget: float = 60) -> None:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        ready = subprocess.run([str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port),
                                "-U", SUPERUSER, "-d", "postgres"], timeout=10)
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    log = proc_log.read_text() if proc_log.exists() else ""
    raise RuntimeError(f"PostgreSQL did not accept connections on port {port} in {budget} s:\n{log[-3000:]}")


@contextmanager
def throwaway_postgres(bindir: Path) -> Iterator[str]:
    """Start a fresh cluster on a free loopback port; yield its SQLAlchemy URL; stop and delete it.

    The cluster is UTF8 with the C locale and trust auth, durability off (fsync, synchronous
    commit) since it is thrown away; its unix socket lives in the same temp dir.
    """
    as_user = None
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise RuntimeError(f"running as root but there is no '{SERVER_USER}' user to run PostgreSQL "
                               "as (Debian's postgresql package creates it)") from None
        as_user = SERVER_USER
    root = Path(tempfile.mkdtemp(prefix="ardesk-pg-"))
    data, log = root / "data", root / "server.log"
    try:
        if as_user:
            os.chown(root, account.pw_uid, account.pw_gid)
        _run([str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
              "--locale=C", "--no-sync"], as_user, cwd=root)
        for attempt in range(3):  # another process can take the free port before the server binds it
            port = _free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off")
            try:
                _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                      "-w", "-t", "60", "start"], as_user, cwd=root)
            except RuntimeError:
                _stop(bindir, data, as_user, root)
                if attempt == 2:
                    raise RuntimeError(f"PostgreSQL did not start:\n{log.read_text()[-3000:]}") from None
                continue
            break
        _wait_accepting(bindir, port, log)
        yield f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/postgres"
    finally:
        try:
            _stop(bindir, data, as_user, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _stop(bindir: Path, data: Path, as_user: str | None, root: Path) -> None:
    """Stop the cluster's server if one is running (its postmaster.pid exists); kill it if that fails."""
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return
    try:
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"],
             as_user, cwd=root)
    except (RuntimeError, subprocess.TimeoutExpired):
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
        raise
