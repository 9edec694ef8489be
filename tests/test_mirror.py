"""Mirror runs: what a sync state wrote and the complete source no longer has is archived at
HubSpot, nothing else, and nothing at all when the run did not read its whole source. Through
the public API and the command, against FakeHubSpot."""

from __future__ import annotations

import csv
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hubspot_upsert as hu
from hubspot_upsert import HubSpot, MirrorRefusedError
from hubspot_upsert.testing import FakeHubSpot, ScriptedResponse

ARCHIVE = "/crm/objects/2026-09/contacts/batch/archive"


def people(n: int, skip: tuple[int, ...] = ()) -> list[dict[str, object]]:
    return [{"email": f"m{i}@example.com", "firstname": f"M{i}"} for i in range(n) if i not in skip]


def archives(fake: FakeHubSpot) -> list[list[str]]:
    return [[i["id"] for i in r.json()["inputs"]] for r in fake.requests if r.path == ARCHIVE]


def vid(fake: FakeHubSpot, email: str) -> int:
    found = fake.contact(email)
    assert found is not None, email
    return found.vid


def test_a_mirror_run_archives_exactly_what_left_the_source(tmp_path: Path) -> None:
    state = tmp_path / "sync.db"
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        # A contact this state never wrote: never archived, though no source has it.
        other = hs.create_or_update("someone.else@example.com").vid
        first = hs.create_or_update_many(people(20), state=state, mirror=True)
        assert (first.created, first.archived) == (20, [])
        assert archives(fake) == []

        gone = {i: vid(fake, f"m{i}@example.com") for i in (4, 11)}
        second = hs.create_or_update_many(people(20, skip=(4, 11)), state=state, mirror=True)
        assert second.unchanged == 18
        assert sorted(second.archived) == sorted((f"m{i}@example.com", v) for i, v in gone.items())
        assert "archived=2" in repr(second)
        assert [sorted(ids) for ids in archives(fake)] == [sorted(str(v) for v in gone.values())]
        assert fake.contact("m4@example.com") is None and fake.contact("m11@example.com") is None
        assert set(fake.archived()) == set(gone.values())
        assert fake.contact("someone.else@example.com").vid == other  # type: ignore[union-attr]
        assert len(fake.contacts) == 19

        # Archived records are forgotten: a third run archives nothing and sends nothing.
        before = fake.request_count
        third = hs.create_or_update_many(people(20, skip=(4, 11)), state=state, mirror=True)
        assert (third.unchanged, third.archived) == (18, [])
        assert fake.request_count == before
        # One that comes back is created again (HubSpot's archive keeps it 90 days apart).
        back = hs.create_or_update_many(people(20, skip=(11,)), state=state, mirror=True)
        assert (back.created, back.unchanged) == (1, 18)


def test_a_stopped_run_archives_nothing(tmp_path: Path) -> None:
    state = tmp_path / "sync.db"
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        hs.create_or_update_many(people(300), state=state, mirror=True)

        def source() -> Iterator[dict[str, object]]:
            # Record 0 left the source; the run stops before its end.
            yield from people(200, skip=(0,))
            raise OSError("the export was cut off")

        with pytest.raises(OSError, match="cut off"):
            hs.create_or_update_many(source(), state=state, mirror=True, max_archive=1.0)
        assert archives(fake) == []
        assert len(fake.contacts) == 300
        # The complete source, next time, archives what left it.
        done = hs.create_or_update_many(people(300, skip=(0,)), state=state, mirror=True)
        assert [k for k, _ in done.archived] == ["m0@example.com"]


def test_a_run_that_would_archive_too_much_is_refused_naming_the_count(tmp_path: Path) -> None:
    state = tmp_path / "sync.db"
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        hs.create_or_update_many(people(20), state=state)
        with pytest.raises(MirrorRefusedError) as refused:
            hs.create_or_update_many(people(20, skip=(1, 2, 3)), state=state, mirror=True)
        message = str(refused.value)
        assert "3 of the 20" in message and "max_archive=0.1" in message
        assert len(refused.value.would_archive) == 3
        assert refused.value.bulk_result.unchanged == 17
        assert archives(fake) == [] and len(fake.contacts) == 20
        # A tenth exactly is allowed; the ceiling is the caller's to raise.
        done = hs.create_or_update_many(
            people(20, skip=(1, 2, 3)), state=state, mirror=True, max_archive=0.15
        )
        assert len(done.archived) == 3


def test_records_that_fail_still_count_as_in_the_source(tmp_path: Path) -> None:
    state = tmp_path / "sync.db"
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        hs.create_or_update_many(people(10), state=state)
        rows: list[dict[str, Any]] = people(10)
        rows[3]["firstname"] = object()  # cannot be sent: fails before sending
        rows[5]["email"] = " M5@Example.com "  # the same contact, as a file may write it
        result = hs.create_or_update_many(rows, state=state, mirror=True)
        assert result.failed == 1 and result.archived == []
        assert archives(fake) == []

        # A record whose id cannot be read: nothing is archived, and the error says why.
        rows = people(10, skip=(9,))
        rows[0] = {"firstname": "no address"}
        with pytest.raises(MirrorRefusedError, match="no id that could be read"):
            hs.create_or_update_many(rows, state=state, mirror=True, max_archive=1.0)
        assert archives(fake) == [] and len(fake.contacts) == 10


def test_more_than_a_hundred_go_a_hundred_a_request(tmp_path: Path) -> None:
    state = tmp_path / "sync.db"
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        hs.create_or_update_many(people(300), state=state)
        kept = people(300, skip=tuple(range(150)))
        done = hs.create_or_update_many(kept, state=state, mirror=True, max_archive=0.5)
        assert len(done.archived) == 150
        assert [len(ids) for ids in archives(fake)] == [100, 50]
        assert len(fake.contacts) == 150


def test_a_dry_run_lists_what_would_be_archived_and_writes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "sync.db"
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        hs.create_or_update_many(people(10), state=state)
        before = fake.request_count
        check = hs.check_many(people(10, skip=(2,)), state=state, mirror=True)
        assert check.archived == [("m2@example.com", vid(fake, "m2@example.com"))]
        assert check.unchanged == 9
        with caplog.at_level(logging.WARNING, logger="hubspot_upsert"):
            hs.check_many(people(10, skip=(2, 3)), state=state, mirror=True)
        assert "would archive 2 of the 10" in caplog.text
        assert archives(fake) == [] and len(fake.contacts) == 10
        assert fake.request_count - before <= 1  # the definitions, at most


def test_an_archive_hubspot_refuses_is_raised_and_tried_again_next_time(tmp_path: Path) -> None:
    state = tmp_path / "sync.db"
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        hs.create_or_update_many(people(10), state=state)
        fake.script(
            ScriptedResponse(
                403,
                {
                    "status": "error",
                    "message": "This app hasn't been granted all required scopes",
                    "category": "MISSING_SCOPES",
                },
            )
        )
        with pytest.raises(hu.PermissionDeniedError) as refused:
            hs.create_or_update_many(people(10, skip=(0,)), state=state, mirror=True)
        assert "were not archived" in "".join(refused.value.__notes__)
        assert refused.value.bulk_result.unchanged == 9  # type: ignore[attr-defined]
        assert len(fake.contacts) == 10
        again = hs.create_or_update_many(people(10, skip=(0,)), state=state, mirror=True)
        assert [k for k, _ in again.archived] == ["m0@example.com"]
        assert len(fake.contacts) == 9


def test_mirror_needs_a_state_and_a_share(tmp_path: Path) -> None:
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        with pytest.raises(ValueError, match="needs a sync state"):
            hs.create_or_update_many(people(3), mirror=True)
        with pytest.raises(ValueError, match="between 0 and 1"):
            hs.create_or_update_many(people(3), state=tmp_path / "s.db", mirror=True, max_archive=2)
        assert fake.request_count == 0


def test_other_objects_mirror_too(tmp_path: Path) -> None:
    state = tmp_path / "sync.db"
    with FakeHubSpot(objects={"companies": {"unique": ["crm_id"]}}) as fake:
        companies = HubSpot(fake.token, base_url=fake.url).objects("companies")
        rows = [{"crm_id": f"C{i}", "name": f"Co {i}"} for i in range(10)]
        companies.create_or_update_many(rows, id_property="crm_id", state=state)
        done = companies.create_or_update_many(
            rows[1:], id_property="crm_id", state=state, mirror=True
        )
        assert [k for k, _ in done.archived] == ["C0"]
        assert fake.record("companies", "C0", by="crm_id") is None
        paths = [r.path for r in fake.requests if r.path.endswith("/batch/archive")]
        assert paths == ["/crm/objects/2026-09/companies/batch/archive"]


def test_the_command_mirrors_and_its_dry_run_lists(tmp_path: Path) -> None:
    state = tmp_path / "sync.db"
    data = tmp_path / "people.csv"

    def write(rows: list[dict[str, object]]) -> None:
        with data.open("w", newline="") as f:
            w = csv.DictWriter(f, ["email", "firstname"])
            w.writeheader()
            w.writerows(rows)

    with FakeHubSpot() as fake:
        env = {"HUBSPOT_ACCESS_TOKEN": fake.token, "PATH": ""}
        base = [sys.executable, "-m", "hubspot_upsert", str(data), "--base-url", fake.url]
        base += ["--state", str(state), "--mirror"]

        def run(*extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*base, *extra], env=env, capture_output=True, text=True, timeout=60
            )

        write(people(10))
        assert run().returncode == 0
        write(people(10, skip=(6,)))
        dry = run("--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "would archive 1" in dry.stdout and "m6@example.com" in dry.stdout
        assert archives(fake) == []
        done = run()
        assert done.returncode == 0, done.stderr
        assert "archived 1" in done.stdout
        assert fake.contact("m6@example.com") is None
        write(people(10, skip=(0, 1, 6)))
        refused = run()
        assert refused.returncode != 0
        assert "2 of the 9" in refused.stderr and "--max-archive" in refused.stderr
        assert run("--max-archive", "0.25").returncode == 0
        assert len(fake.contacts) == 7


def test_mirror_refused_error_is_public() -> None:
    assert hu.MirrorRefusedError.__module__ == "hubspot_upsert"
