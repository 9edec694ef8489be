"""The recipes in their real frameworks: Django, FastAPI, Airflow 3, Jupyter, and Dask with a
PostgreSQL sync state, installed in their own environment (make test-integrations), each
against a FakeHubSpot on loopback."""

from __future__ import annotations

import getpass
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "examples" / "recipes"
sys.path.insert(0, str(RECIPES))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- PostgreSQL: a throwaway server for the shared sync state --------------------------------


def _postgres_bin() -> Path:
    """Where the installed server's programs are: pg_config's bindir, else Debian's newest."""
    found = shutil.which("pg_config")
    if found:
        bindir = subprocess.run([found, "--bindir"], capture_output=True, text=True).stdout
        if (Path(bindir.strip()) / "initdb").exists():
            return Path(bindir.strip())
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not versions:
        pytest.fail("PostgreSQL's server is not installed (Debian: apt-get install postgresql)")
    return Path(versions[-1]).parent


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of its own on a free port, for the session: initdb into a temporary
    folder and pg_ctl start (as the postgres user when run as root, which the server refuses
    to run as); HUBSPOT_UPSERT_TEST_POSTGRES names a running one instead."""
    given = os.environ.get("HUBSPOT_UPSERT_TEST_POSTGRES")
    if given:
        yield given
        return
    bindir = _postgres_bin()
    as_user: list[str] = []
    root = tempfile.mkdtemp(prefix="hubspot-upsert-pg-")
    if os.geteuid() == 0:
        user = "postgres"
        shutil.chown(root, user)
        as_user = ["runuser", "-u", user, "--"]
    else:
        user = getpass.getuser()
    data, port = os.path.join(root, "data"), free_port()

    def run(*command: str) -> None:
        done = subprocess.run([*as_user, *command], capture_output=True, text=True)
        if done.returncode:
            pytest.fail(f"{command[0]} failed: {done.stdout}{done.stderr}")

    run(str(bindir / "initdb"), "-D", data, "-U", user, "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bindir / "pg_ctl"), "-D", data, "-o", options, "-l", f"{root}/log", "-w", "start")
    try:
        yield f"postgresql://{user}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
            capture_output=True,
        )
        time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)
