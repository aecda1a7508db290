"""A throwaway PostgreSQL server for tests: initdb into a temporary folder, pg_ctl start on a free
local port, stopped and deleted afterwards. PostgreSQL refuses to run as root, so as root the
server runs as the `postgres` user (Debian's package creates it) or `nobody`."""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USER, DATABASE = "dagster", "postgres"  # initdb's superuser and default database


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    database: str

    def environment(self) -> dict[str, str]:
        """The DAGSTER_PG_* variables deploy/k8s/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": "unused-trust-auth",
            "DAGSTER_PG_DB": self.database,
        }


def postgres_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else Debian's newest versioned folder."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[4]) if Path(path).parts[4].isdigit() else 0,
    )
    return Path(debian[-1]).parent if debian else None


def _run_as() -> tuple[list[str], pwd.struct_passwd | None]:
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"], account
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def throwaway_postgres(bin_dir: Path) -> Iterator[PostgresServer]:
    """A running server with superuser `dagster` and trust authentication on 127.0.0.1."""
    prefix, account = _run_as()
    folder = Path(tempfile.mkdtemp(prefix="cmrbias-pg-"))
    if account is not None:
        os.chown(folder, account.pw_uid, account.pw_gid)
    data, port = folder / "data", _free_port()
    pg_ctl = [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-w"]
    try:
        subprocess.run(
            [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust"],
            check=True,
            capture_output=True,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder}"
        )
        subprocess.run(
            [*pg_ctl, "-o", options, "-l", str(folder / "server.log"), "start"],
            check=True,
            capture_output=True,
        )
        yield PostgresServer("127.0.0.1", port, USER, DATABASE)
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
