"""The sync state (SQLite): unchanged records cost nothing, changed ones land, a killed run is
resumed by running it again, and a store that is not a state is refused before anything is
sent. Everything goes through the public API or the command, against FakeHubSpot."""

from __future__ import annotations

import csv
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from hubspot_upsert import HubSpot, SyncState, SyncStateError, UpsertResult
from hubspot_upsert.testing import FakeHubSpot

BATCH_PATH = "/batch/upsert"


def writes(fake: FakeHubSpot) -> int:
    return sum(1 for r in fake.requests if r.path.endswith(BATCH_PATH))


def people(n: int, name: str = "P") -> list[dict[str, object]]:
    return [{"email": f"p{i}@example.com", "firstname": f"{name}{i}"} for i in range(n)]


def test_unchanged_records_are_not_sent_and_changed_ones_land(tmp_path: Path) -> None:
    state = tmp_path / "sync.db"
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        first = hs.create_or_update_many(people(1_000), state=state)
        assert (first.created, first.unchanged) == (1_000, 0)
        assert writes(fake) == 10

        before = fake.request_count
        again = hs.create_or_update_many(people(1_000), state=state)
        assert (again.created, again.updated, again.unchanged, again.failed) == (0, 0, 1_000, 0)
        # Nothing written: the client knows the portal and the definitions by now.
        assert fake.request_count == before
        assert "unchanged=1000" in repr(again)
        # Kept as results: the contact they are on, marked unchanged.
        vid = fake.contact("p7@example.com").vid  # type: ignore[union-attr]
        assert again[7] == UpsertResult(vid, False, "p7@example.com", unchanged=True)
        assert again[7].unchanged and not first[7].unchanged

        changed = people(1_000)
        for i in (3, 250, 999):
            changed[i]["firstname"] = f"Changed{i}"
        third = hs.create_or_update_many(changed, state=state)
        assert (third.updated, third.unchanged) == (3, 997)
        assert writes(fake) == 11
        assert fake.contact("p250@example.com").properties["firstname"] == "Changed250"  # type: ignore[union-attr]

        # full=True sends everything, and the state stays true to what was sent.
        full = hs.create_or_update_many(changed, state=state, full=True)
        assert (full.updated, full.unchanged) == (1_000, 0)
        assert writes(fake) == 21
        assert hs.create_or_update_many(changed, state=state).unchanged == 1_000


def test_a_new_client_reads_the_portal_once_per_run(tmp_path: Path) -> None:
    """Requests of a nightly run with 1% changed: its batches, the portal's id, the definitions."""
    state = tmp_path / "sync.db"
    with FakeHubSpot() as fake:
        HubSpot(fake.token, base_url=fake.url).create_or_update_many(people(10_000), state=state)
        changed = people(10_000)
        for i in range(0, 10_000, 100):
            changed[i]["firstname"] = "Changed"
        before = fake.request_count
        result = HubSpot(fake.token, base_url=fake.url).create_or_update_many(
            changed, state=state, keep="failures"
        )
        assert (result.updated, result.unchanged) == (100, 9_900)
        assert fake.request_count - before == 1 + 2
        assert [r.path for r in fake.requests[before:]][:2] == [
            "/account-info/2026-03/details",
            "/crm/properties/2026-09/contacts",
        ]


def test_the_journal_keeps_the_latest_runs(tmp_path: Path) -> None:
    from hubspot_upsert._state import KEEP_JOURNALS

    state = tmp_path / "sync.db"
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        for round in range(KEEP_JOURNALS + 5):
            hs.create_or_update_many(people(150, f"R{round}-"), state=state)
    with closing(sqlite3.connect(state)) as db, db:
        runs = db.execute("SELECT COUNT(DISTINCT run) FROM hubspot_upsert_batches").fetchone()[0]
        held = db.execute("SELECT COUNT(*) FROM hubspot_upsert_records").fetchone()[0]
    assert runs == KEEP_JOURNALS and held == 150


def test_refused_records_are_not_stored_and_go_again(tmp_path: Path) -> None:
    state = tmp_path / "sync.db"
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        records = people(300)
        records[5]["lifecyclestage"] = "bogus"
        first = hs.create_or_update_many(records, state=state)
        assert (first.created, first.failed) == (299, 1)
        again = hs.create_or_update_many(records, state=state)
        assert (again.unchanged, again.failed) == (299, 1)
        assert again.failures[0].index == 5


def test_portals_and_id_properties_are_kept_apart(tmp_path: Path) -> None:
    state = tmp_path / "sync.db"
    with FakeHubSpot(portal_id=111, unique_properties=["crm_id"]) as one:
        with FakeHubSpot(portal_id=222, unique_properties=["crm_id"]) as two:
            records = [{**r, "crm_id": f"c{i}"} for i, r in enumerate(people(200))]
            for fake in (one, two):
                hs = HubSpot(fake.token, base_url=fake.url)
                # Another portal's state says nothing about this one: everything lands.
                assert hs.create_or_update_many(records, state=state).created == 200
                assert hs.create_or_update_many(records, state=state).unchanged == 200
                # Matching on another property is another set of records.
                by_crm = hs.create_or_update_many(records, state=state, id_property="crm_id")
                assert (by_crm.updated, by_crm.unchanged) == (200, 0)
                assert (
                    hs.create_or_update_many(records, state=state, id_property="crm_id").unchanged
                    == 200
                )
    with closing(sqlite3.connect(state)) as db, db:
        scopes = db.execute(
            "SELECT portal, id_property, COUNT(*) FROM hubspot_upsert_records "
            "GROUP BY portal, id_property ORDER BY 1, 2"
        ).fetchall()
    assert scopes == [
        (111, "crm_id", 200),
        (111, "email", 200),
        (222, "crm_id", 200),
        (222, "email", 200),
    ]


@pytest.mark.parametrize("kind", ["garbage", "foreign", "directory", "newer"])
def test_a_store_that_is_not_a_state_is_refused_before_anything_is_sent(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "sync.db"
    if kind == "garbage":
        path.write_bytes(b"\x00\x01 not a database " * 300)
    elif kind == "foreign":
        with closing(sqlite3.connect(path)) as db, db:
            db.execute("CREATE TABLE invoices (id INTEGER)")
    elif kind == "directory":
        path.mkdir()
    else:
        SyncState(path).close()
        with closing(sqlite3.connect(path)) as db, db:
            db.execute("UPDATE hubspot_upsert_meta SET value = '9' WHERE name = 'version'")
    before = path.read_bytes() if path.is_file() else None
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        with pytest.raises(SyncStateError, match=r"sync\.db") as caught:
            hs.create_or_update_many(people(10), state=path)
        assert fake.request_count == 0
    expected = {
        "garbage": "not a database",
        "foreign": "invoices",
        "directory": "directory",
        "newer": "layout '9'",
    }
    assert expected[kind] in str(caught.value)
    # Never reset: the file is as it was.
    if before is not None:
        assert path.read_bytes() == before


def test_a_dry_run_counts_new_changed_and_unchanged_with_no_request(tmp_path: Path) -> None:
    state = tmp_path / "sync.db"
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        hs.create_or_update_many(people(500), state=state)
        records = people(520)
        records[10]["firstname"] = "Changed"
        before = fake.request_count
        plan = hs.check_many(records, state=state, definitions=False)
        assert fake.request_count == before
        assert (plan.created, plan.updated, plan.unchanged, plan.failed) == (20, 1, 499, 0)
        with pytest.raises(ValueError, match="not both"):
            hs.check_many(records, state=state, read=True)


def test_the_state_keeps_up_with_the_async_client(tmp_path: Path) -> None:
    import asyncio

    from hubspot_upsert import AsyncHubSpot

    async def go(fake: FakeHubSpot) -> tuple[int, int]:
        async with AsyncHubSpot(fake.token, base_url=fake.url) as hs:
            first = await hs.create_or_update_many(people(300), state=tmp_path / "a.db")
            again = await hs.create_or_update_many(people(300), state=tmp_path / "a.db")
            return first.created, again.unchanged

    with FakeHubSpot() as fake:
        assert asyncio.run(go(fake)) == (300, 300)


# -- the command: kill -9 at random points, then run again --------------------------------


def write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=["email", "firstname"])
        out.writeheader()
        out.writerows(rows)


def command(fake: FakeHubSpot, *args: str, quiet: bool = True) -> subprocess.Popen[str]:
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": fake.token, "HUBSPOT_BASE_URL": fake.url}
    return subprocess.Popen(
        [sys.executable, "-m", "hubspot_upsert", *(["--quiet"] if quiet else []), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def unanswered(state: Path) -> int:
    """Batches the journal has as sent and never answered, over every run."""
    with closing(sqlite3.connect(state)) as db, db:
        return int(
            db.execute(
                "SELECT COUNT(*) FROM hubspot_upsert_batches WHERE answered IS NULL"
            ).fetchone()[0]
        )


def command_status(state: Path) -> str:
    """What ``hubspot-upsert --state STATE --status`` prints."""
    return subprocess.run(
        [sys.executable, "-m", "hubspot_upsert", "--state", str(state), "--status"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def stop_after(fake: FakeHubSpot, data: Path, state: Path, requests: int, signum: int) -> int:
    """Runs the command on ``data`` and sends it ``signum`` once the fake has had
    ``requests`` requests; returns its exit status."""
    run = command(fake, str(data), "--state", str(state))
    while fake.request_count < requests:
        time.sleep(0.01)
    run.send_signal(signum)
    run.communicate(timeout=30)
    return run.returncode


@pytest.mark.long
@pytest.mark.timeout(600)
def test_kill_9_at_random_points_then_run_again(tmp_path: Path) -> None:
    """50,000 records; 20 rounds, each changing a random 5% of them, killed with SIGKILL at
    a random point, then run again: HubSpot then holds the input record by record, and the
    two runs together sent no more than the changed records' batches, the batches the kill
    left unanswered, and each run's short last batch and two reads (portal, definitions)."""
    n = 50_000
    rng = random.Random(20261202)
    state, data = tmp_path / "sync.db", tmp_path / "contacts.csv"
    rows = people(n, "R0-")
    with FakeHubSpot(record_requests=False) as fake:
        write_csv(data, rows)
        first = command(fake, str(data), "--state", str(state))
        assert first.communicate(timeout=120) and first.returncode == 0
        for round in range(1, 21):
            changed = rng.sample(range(n), n // 20)
            for i in changed:
                rows[i]["firstname"] = f"R{round}-{i}"
            write_csv(data, rows)
            lost = unanswered(state)
            before = fake.request_count
            target = before + rng.randint(0, len(changed) // 100 + 2)
            killed = command(fake, str(data), "--state", str(state))
            deadline = time.monotonic() + 60
            while fake.request_count < target and killed.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.001)
            killed.send_signal(signal.SIGKILL)
            killed.communicate(timeout=30)
            in_flight = unanswered(state) - lost
            again = command(fake, str(data), "--state", str(state))
            _, err = again.communicate(timeout=120)
            assert again.returncode == 0, err
            spent = fake.request_count - before
            bound = -(-len(changed) // 100) + in_flight + 2 * (2 + 1)
            assert spent <= bound, (round, spent, bound, in_flight)
            # Record by record: HubSpot holds the input.
            contacts = fake.contacts
            assert len(contacts) == n
            wrong = [
                i
                for i in range(n)
                if contacts[f"p{i}@example.com"].properties["firstname"] != rows[i]["firstname"]
            ]
            assert not wrong, (round, wrong[:10])
    status = command_status(state)
    assert "50,000 records held" in status and "ended" in status


def test_the_status_of_a_killed_run_says_where_it_stopped(tmp_path: Path) -> None:
    state, data = tmp_path / "sync.db", tmp_path / "contacts.csv"
    write_csv(data, people(5_000))
    with FakeHubSpot(latency=0.2) as fake:
        stop_after(fake, data, state, 8, signal.SIGKILL)
    status = command_status(state)
    assert "did not finish" in status, status
    assert "never answered" in status and "the next run sends them again" in status, status


def test_a_stopped_run_records_why(tmp_path: Path) -> None:
    state, data = tmp_path / "sync.db", tmp_path / "contacts.csv"
    write_csv(data, people(3_000))
    with FakeHubSpot(latency=0.2) as fake:
        assert stop_after(fake, data, state, 5, signal.SIGTERM) == 128 + signal.SIGTERM
        with SyncState(state) as store:
            status = store.status()
        assert "stopped: Stopped: SIGTERM" in status, status
        # The stopped run's requests in flight (each answered after 0.2 s) are still in the
        # fake: counted, and applied, once they finish; the state knows only those answered.
        time.sleep(1)
        landed = len(fake.contacts)
        before = writes(fake)
        # Run again: only what the state does not know landed goes, in full batches, and
        # nothing it calls unchanged is missing at HubSpot.
        again = command(fake, str(data), "--state", str(state), quiet=False)
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        said = re.search(r"unchanged ([\d,]+)", out)
        unchanged = int(said.group(1).replace(",", "")) if said else 0
        assert 0 < unchanged <= landed, out
        assert writes(fake) - before <= -(-(3_000 - unchanged) // 100) + 1


def test_the_command_refuses_state_options_that_cannot_work(tmp_path: Path) -> None:
    def fails(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "hubspot_upsert", *args], capture_output=True, text=True
        )
        assert done.returncode == 2, done
        assert done.stderr.count("\n") == 1, done.stderr
        return done.stderr

    assert "--full needs --state" in fails("x.csv", "--full")
    assert "--status needs --state" in fails("--status")
    (tmp_path / "bad.db").write_bytes(b"garbage" * 1000)
    assert "not a usable sync state" in fails("--state", str(tmp_path / "bad.db"), "--status")
    assert "--demo" in fails("--demo", "--state", str(tmp_path / "s.db"))


def test_importing_the_package_loads_no_state_and_no_asyncio() -> None:
    """Cold start: SQLite, the journal's modules and asyncio load on first use only."""
    code = (
        "import sys, hubspot_upsert as h; h.HubSpot('x'); "
        "print(sorted(m for m in ('sqlite3', 'asyncio', 'hubspot_upsert._state') "
        "if m in sys.modules))"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[]"
