"""Unlucky inputs and unlucky stops: values Python cannot hold, text that is not valid Unicode,
records that change while they are read, a second signal while the files are written. Each
record still ends landed or listed with its reason."""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import hubspot_upsert as hu
from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot

from .test_nothing_lost import EXE, PROPERTIES, command, contacts_csv


@pytest.fixture
def fake() -> Any:
    with FakeHubSpot(extra_properties=PROPERTIES) as server:
        yield server


# -- the command --------------------------------------------------------------------------------


def test_json_lines_python_cannot_hold_fail_their_record_and_the_run_goes_on(
    fake: FakeHubSpot, tmp_path: Path
) -> None:
    lines = [json.dumps({"email": f"g{i}@example.com"}) for i in range(400)]
    lines[10] = '{"email": "big@example.com", "score": ' + "9" * 5_000 + "}"
    lines[200] = '{"email": "deep@example.com", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    failures = tmp_path / "failed.jsonl"
    out = command(fake, str(path), "--failures", str(failures))
    assert out.returncode == 1, out.stderr  # records failed; the run did not
    assert "Traceback" not in out.stderr
    assert out.stdout.startswith("created 398, updated 0, failed 2 of 400 records")
    rows = [json.loads(line) for line in failures.read_text().splitlines()]
    assert len(rows) == 2
    messages = [r["__error_message"] for r in rows]
    assert "line 11 cannot be read as JSON" in messages[0]
    assert "line 201 cannot be read as JSON: it is nested too deeply" in messages[1]
    assert len(fake.contacts) == 398


def test_a_lone_surrogate_is_written_escaped(fake: FakeHubSpot, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"email": "ok@example.com", "firstname": "Ok"}\n'
        '{"email": "bad@example.com", "shoe": "cut \\ud83d emoji"}\n'
    )
    failures, report = tmp_path / "failed.jsonl", tmp_path / "report.json"
    out = command(fake, str(path), "--failures", str(failures), "--report", str(report))
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "written with \\u escapes" in out.stderr
    (row,) = [json.loads(line) for line in failures.read_text().splitlines()]
    assert row["shoe"] == "cut \ud83d emoji"  # reads back as the same text
    # Refused before sending, naming the property and the lone surrogate.
    assert row["__error_code"] is None  # no HubSpot code: the client refused it
    assert "property 'shoe'" in row["__error_message"] and "surrogate" in row["__error_message"]
    assert json.loads(report.read_text())["failed"] == 1


def _start(fake: FakeHubSpot, path: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": fake.token}
    return subprocess.Popen(
        [EXE, str(path), "--base-url", fake.url, "--max-in-flight", "2", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_after_sigterm_every_row_has_a_code_and_the_report_counts_the_input(
    tmp_path: Path,
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(contacts_csv(3_000))
    failures, report = tmp_path / "failed.jsonl", tmp_path / "report.json"
    with FakeHubSpot(extra_properties=PROPERTIES, latency=0.25) as fake:
        proc = _start(fake, path, "--failures", str(failures), "--report", str(report))
        deadline = time.monotonic() + 30
        while len(fake.contacts) < 100 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, err
        landed = set(fake.contacts)
    rows = [json.loads(line) for line in failures.read_text().splitlines()]
    codes = {r["__error_code"] for r in rows}
    assert None not in codes and codes <= {"NOT_SENT", "UNANSWERED"}, codes
    assert {r["email"] for r in rows} | landed == {f"victim{i}@example.com" for i in range(3_000)}
    summary = json.loads(report.read_text())
    assert summary["total"] == 3_000
    assert summary["read"] + summary["not_read"] == 3_000
    assert summary["created"] + summary["updated"] + summary["failed"] == summary["read"]


def test_a_second_signal_keeps_what_the_failures_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(contacts_csv(300_000))
    failures = tmp_path / "failed.jsonl"
    with FakeHubSpot(extra_properties=PROPERTIES, latency=0.3) as fake:
        proc = _start(fake, path, "--failures", str(failures))
        deadline = time.monotonic() + 30
        while not fake.contacts and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        # Once the failures file is being written (300,000 rows take a while), signal again.
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.stat().st_size > 0 for p in tmp_path.glob("failed.jsonl.*.part")):
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT
    lines = failures.read_text().splitlines()
    rows = [json.loads(line) for line in lines]  # every line whole
    assert rows[-1]["__error_code"] == "INCOMPLETE", rows[-1]
    assert "a second SIGINT" in rows[-1]["__error_message"]
    assert len(rows) > 1
    assert not list(tmp_path.glob("*.part"))


# -- records that change while they are read ----------------------------------------------------


class Meddling(dt.tzinfo):
    """A time zone whose offset changes the record it is read from."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        self.record[f"added{len(self.record)}"] = "x"
        return dt.timedelta(hours=1)

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)


def test_a_record_that_changes_while_it_is_read_never_panics(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url)
    record: dict[str, Any] = {"email": "m@example.com", "firstname": "M"}
    record["signup"] = dt.datetime(2024, 1, 1, tzinfo=Meddling(record))
    record["lastname"] = "L"
    email, sent = hs.prepare(record)
    assert email == "m@example.com" and sent["lastname"] == "L"

    class Shifty(enum.Enum):
        A = "a"

        @property
        def value(self) -> str:  # type: ignore[override]
            rows[1]["added"] = "x"
            return "a"

    rows: list[dict[str, Any]] = [{"email": f"e{i}@example.com"} for i in range(300)]
    rows[1]["firstname"] = Shifty.A
    rows[2]["signup"] = dt.datetime(2024, 1, 1, tzinfo=Meddling(rows[2]))
    result = hs.create_or_update_many(rows)
    assert result.created + result.failed == 300
    assert len(result) == 300


def test_a_dict_changed_by_another_thread_fails_as_a_record_at_most(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url)
    shared: dict[str, Any] = {"email": "t@example.com", **{f"p{i}": "v" for i in range(50)}}
    stop = threading.Event()

    def meddle() -> None:
        i = 0
        while not stop.is_set():
            shared[f"x{i % 100}"] = "v"
            shared.pop(f"x{(i + 50) % 100}", None)
            i += 1

    thread = threading.Thread(target=meddle)
    thread.start()
    try:
        for _ in range(20_000):
            try:
                hs.prepare(shared)
            except (TypeError, ValueError):
                pass  # a record that changed under the reader may fail; never a panic
    finally:
        stop.set()
        thread.join()


def test_values_whose_own_code_fails_are_type_errors_naming_the_property(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url)

    class Broken(enum.Enum):
        A = 1

        @property
        def value(self) -> Any:  # type: ignore[override]
            raise KeyError("nope")

    class BadZone(dt.tzinfo):
        def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
            raise AttributeError("no offset")

    for value in (Broken.A, dt.datetime(2024, 1, 1, tzinfo=BadZone())):
        with pytest.raises(TypeError, match="property 'field'"):
            hs.prepare({"email": "v@example.com", "field": value})


def test_repr_of_a_client_whose_construction_failed() -> None:
    with pytest.raises(ValueError):
        HubSpot("")
    half = HubSpot.__new__(HubSpot)
    assert repr(half) == "<HubSpot: not constructed>"
    half_async = hu.AsyncHubSpot.__new__(hu.AsyncHubSpot)
    assert repr(half_async) == "<AsyncHubSpot: not constructed>"
