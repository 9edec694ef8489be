"""The sync state in a real PostgreSQL server: what the SQLite state does, shared by processes
writing at once, resumed after kill -9, and the Dask recipe's partitions through it."""

from __future__ import annotations

import csv
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hubspot_upsert import HubSpot, SyncState, SyncStateError
from hubspot_upsert.testing import FakeHubSpot


@pytest.fixture
def state(postgres_url: str) -> Iterator[str]:
    """A database of its own for each test, on the session's server."""
    name = f"state_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    yield url
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def people(start: int, stop: int, name: str = "P") -> list[dict[str, str]]:
    return [{"email": f"p{i}@example.com", "firstname": f"{name}{i}"} for i in range(start, stop)]


def writes(fake: FakeHubSpot) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/batch/upsert"))


def test_unchanged_records_are_not_sent(state: str) -> None:
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        assert hs.create_or_update_many(people(0, 1_000), state=state).created == 1_000
        records = people(0, 1_000)
        records[42]["firstname"] = "Changed"
        again = hs.create_or_update_many(records, state=state)
        assert (again.updated, again.unchanged) == (1, 999)
        assert writes(fake) == 11
        with SyncState(state) as store:
            status = store.status()
            # The name shown carries no password, whatever the URL held.
            assert "@127.0.0.1" in repr(store)
        assert "1,000 records held" in status and "finished" in status, status


def sync_part(url: str, base_url: str, token: str, start: int, stop: int, name: str) -> tuple:
    hs = HubSpot(token, base_url=base_url)
    result = hs.create_or_update_many(people(start, stop, name), state=url, keep="failures")
    return result.created, result.updated, result.unchanged, result.failed


def test_four_processes_share_one_state(state: str) -> None:
    """Four workers, each a partition of 10,000 records, write the state at once; the next
    night's run of the same partitions with 1% changed sends only those."""
    parts = [(k * 10_000, (k + 1) * 10_000) for k in range(4)]
    with FakeHubSpot(record_requests=False) as fake:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(4) as pool:
            first = pool.starmap(
                sync_part, [(state, fake.url, fake.token, a, b, "P") for a, b in parts]
            )
        assert first == [(10_000, 0, 0, 0)] * 4
        with psycopg.connect(state) as db:
            held = db.execute("SELECT COUNT(*) FROM hubspot_upsert_records").fetchone()
            runs = db.execute("SELECT COUNT(*) FROM hubspot_upsert_runs").fetchone()
        assert held == (40_000,) and runs == (4,)

        before = fake.request_count
        # Every hundredth record changed: 400 records, 100 per partition.
        changed = "P"
        with ctx.Pool(4) as pool:
            second = pool.starmap(
                sync_one_in_a_hundred,
                [(state, fake.url, fake.token, a, b, changed) for a, b in parts],
            )
        assert second == [(0, 100, 9_900, 0)] * 4
        # Per worker: its one batch of changes, the portal's id and the definitions.
        assert fake.request_count - before == 4 * (1 + 2)
        contacts = fake.contacts
        assert contacts["p300@example.com"].properties["firstname"] == "Changed300"


def sync_one_in_a_hundred(
    url: str, base_url: str, token: str, start: int, stop: int, name: str
) -> tuple:
    records = people(start, stop, name)
    for record in records:
        i = int(record["email"][1:].split("@")[0])
        if i % 100 == 0:
            record["firstname"] = f"Changed{i}"
    hs = HubSpot(token, base_url=base_url)
    result = hs.create_or_update_many(records, state=url, keep="failures")
    return result.created, result.updated, result.unchanged, result.failed


def test_kill_9_then_run_again(state: str, tmp_path: Path) -> None:
    data = tmp_path / "contacts.csv"
    with data.open("w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=["email", "firstname"])
        out.writeheader()
        out.writerows(people(0, 20_000))
    with FakeHubSpot(record_requests=False) as fake:
        env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": fake.token, "HUBSPOT_BASE_URL": fake.url}
        command = [sys.executable, "-m", "hubspot_upsert", "--quiet", str(data), "--state", state]
        for target in (30, 90, 150):
            run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            while fake.request_count < target and run.poll() is None:
                time.sleep(0.001)
            run.send_signal(signal.SIGKILL)
            run.communicate(timeout=30)
        with psycopg.connect(state) as db:
            (in_flight,) = db.execute(
                "SELECT COUNT(*) FROM hubspot_upsert_batches WHERE answered IS NULL"
            ).fetchone()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        contacts = fake.contacts
        assert all(
            contacts[f"p{i}@example.com"].properties["firstname"] == f"P{i}" for i in range(20_000)
        )
        # 200 batches, the ones the kills left unanswered, and each run's reads and short batch.
        assert fake.request_count <= 200 + in_flight + 4 * 3, (fake.request_count, in_flight)


def test_another_programs_meta_table_is_refused(state: str) -> None:
    with psycopg.connect(state, autocommit=True) as db:
        db.execute("CREATE TABLE hubspot_upsert_meta (name TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO hubspot_upsert_meta VALUES ('format', 'something else')")
    with pytest.raises(SyncStateError, match="another's"):
        SyncState(state)
    with pytest.raises(SyncStateError, match="cannot connect"):
        SyncState(state.rsplit(":", 1)[0] + ":1/postgres")


def test_the_dask_recipe_syncs_partitions_through_one_state(
    state: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dask_partitions

    for k in range(4):
        with (tmp_path / f"contacts-{k}.csv").open("w", newline="") as f:
            out = csv.DictWriter(f, fieldnames=["email", "firstname"])
            out.writeheader()
            out.writerows(people(k * 2_500, (k + 1) * 2_500))
    with FakeHubSpot() as fake:
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", fake.token)
        monkeypatch.setenv("HUBSPOT_BASE_URL", fake.url)
        paths = str(tmp_path / "contacts-*.csv")
        first = dask_partitions.sync(paths, state)
        assert first == {
            "total": 10_000,
            "created": 10_000,
            "updated": 0,
            "unchanged": 0,
            "failed": 0,
        }
        before = writes(fake)
        again = dask_partitions.sync(paths, state)
        assert again["unchanged"] == 10_000 and writes(fake) == before
        with psycopg.connect(state) as db:
            (runs,) = db.execute("SELECT COUNT(DISTINCT pid) FROM hubspot_upsert_runs").fetchone()
        # The partitions ran in worker processes, each with its own client.
        assert runs > 1
