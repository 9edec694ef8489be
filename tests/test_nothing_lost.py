"""Nothing lost, nothing invented: from a user's file to HubSpot, whatever the file is and
however the run ends. The command runs as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import hubspot_upsert as hu
from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot

EXE = shutil.which("hubspot-upsert", path=os.path.dirname(sys.executable)) or "hubspot-upsert"
PROPERTIES = {"score": "number", "note": "string"}


def command(
    fake: FakeHubSpot, *args: str, stdin: str | bytes | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": fake.token}
    data = stdin.decode("latin-1") if isinstance(stdin, bytes) else stdin
    return subprocess.run(
        [EXE, *args, "--base-url", fake.url],
        input=data,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def contacts_csv(n: int, delimiter: str = ",") -> str:
    """Rows long enough that 5,000 of them pass 64 KiB, with quoted delimiters in them."""
    d = delimiter
    lines = [d.join(["email", "firstname", "lastname", "company", "note"])]
    for i in range(n):
        company = f'"Smith{d} Jones & Partners {i}"'
        lines.append(d.join([f"victim{i}@example.com", f"First{i}", f"Last{i}", company, "x" * 7]))
    return "\n".join(lines) + "\n"


@pytest.fixture
def fake() -> Any:
    with FakeHubSpot(extra_properties=PROPERTIES) as server:
        yield server


@pytest.mark.parametrize("how", ["sniffed", "--delimiter", "stdin"])
def test_a_big_csv_gives_one_record_per_row(fake: FakeHubSpot, tmp_path: Path, how: str) -> None:
    text = contacts_csv(5_000, ";")
    assert len(text.encode()) > 64 * 1024
    path = tmp_path / "contacts.csv"
    path.write_text(text, encoding="utf-8")
    if how == "stdin":
        out = command(fake, "-", "--format", "csv", stdin=text)
    elif how == "--delimiter":
        out = command(fake, str(path), "--delimiter", ";")
    else:
        out = command(fake, str(path))
    assert out.returncode == 0, out.stderr
    assert "created 5000, updated 0, failed 0 of 5000 records" in out.stdout
    stored = fake.contacts
    assert len(stored) == 5_000
    assert set(stored) == {f"victim{i}@example.com" for i in range(5_000)}
    for i in (0, 1234, 2999, 4999):
        p = stored[f"victim{i}@example.com"].properties
        assert (p["lastname"], p["company"]) == (f"Last{i}", f"Smith; Jones & Partners {i}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_run_leaves_a_failures_file_that_completes_the_set(
    tmp_path: Path, signum: int
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(contacts_csv(5_000), encoding="utf-8")
    failures = tmp_path / "failed.jsonl"
    report = tmp_path / "report.json"
    with FakeHubSpot(extra_properties=PROPERTIES, latency=0.25) as fake:
        env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": fake.token}
        argv = [EXE, str(path), "--base-url", fake.url, "--max-in-flight", "2"]
        proc = subprocess.Popen(
            [*argv, "--failures", str(failures), "--report", str(report)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 30
        while len(fake.contacts) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signum, err
        assert "the summary above is what landed" in err
        landed = len(fake.contacts)
        assert 0 < landed < 5_000
        summary = json.loads(report.read_text())
        assert summary["stopped"]
        assert summary["created"] <= landed  # a batch cut off in flight may have landed too
        written = [json.loads(line) for line in failures.read_text().splitlines()]
        emails = {row["email"] for row in written}
        # Every row that did not surely land is in the failures file, unread rows included.
        assert emails | {c for c in fake.contacts} == {
            f"victim{i}@example.com" for i in range(5_000)
        }
        assert any(row["__error_code"] == "NOT_SENT" for row in written)
        again = subprocess.run(
            [EXE, str(failures), "--base-url", fake.url],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert again.returncode == 0, again.stderr
        assert len(fake.contacts) == 5_000
        stored = fake.contact("victim4999@example.com")
        assert stored is not None and stored.properties["lastname"] == "Last4999"


def test_latin1_utf16_and_a_huge_field(fake: FakeHubSpot, tmp_path: Path) -> None:
    rows = [f"p{i}@example.com,P{i}" for i in range(3_000)]
    rows[2_999] = "p2999@example.com,Ren\xe9e"
    text = "email,firstname\n" + "\n".join(rows) + "\n"
    latin1 = tmp_path / "excel.csv"
    latin1.write_bytes(text.encode("latin-1"))
    out = command(fake, str(latin1))
    assert out.returncode == 2
    assert "line 3001, column 22" in out.stderr and "--encoding" in out.stderr
    assert "Traceback" not in out.stderr
    assert fake.request_count == 0  # refused before anything was sent
    out = command(fake, str(latin1), "--encoding", "latin-1")
    assert out.returncode == 0, out.stderr
    stored = fake.contact("p2999@example.com")
    assert stored is not None and stored.properties["firstname"] == "Ren\xe9e"

    fake.reset()
    utf16 = tmp_path / "unicode.csv"
    utf16.write_bytes(("email,firstname\nada@example.com,Åda\n").encode("utf-16"))
    out = command(fake, str(utf16))
    assert out.returncode == 0, out.stderr
    stored = fake.contact("ada@example.com")
    assert stored is not None and stored.properties["firstname"] == "Åda"

    fake.reset()
    big = tmp_path / "big.csv"
    big.write_text(
        "email,note\nbig@example.com," + "y" * 300_000 + "\nsmall@example.com,z\n",
        encoding="utf-8",
    )
    failures = tmp_path / "failed.jsonl"
    out = command(fake, str(big), "--failures", str(failures))
    assert out.returncode == 1, out.stderr
    assert fake.contact("small@example.com") is not None
    (row,) = [json.loads(line) for line in failures.read_text().splitlines()]
    assert row["email"] == "big@example.com"
    assert "300000 characters" in row["__error_message"]
    assert "note" in row["__error_message"]


def test_duplicate_and_short_columns(fake: FakeHubSpot, tmp_path: Path) -> None:
    dup = tmp_path / "dup.csv"
    dup.write_text("email,firstname, firstname \nada@example.com,Ada,\n", encoding="utf-8")
    out = command(fake, str(dup))
    assert out.returncode == 2
    assert "'firstname' in columns 2, 3" in out.stderr
    assert fake.request_count == 0
    twice = tmp_path / "twice.csv"
    twice.write_text("email,firstname,email\nada@example.com,Ada,other@example.com\n")
    out = command(fake, str(twice))
    assert out.returncode == 2 and "'email' in columns 1, 3" in out.stderr
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("email, firstname\nada@example.com,Ada\n")
    assert command(fake, str(spaced)).returncode == 0
    stored = fake.contact("ada@example.com")
    assert stored is not None and stored.properties["firstname"] == "Ada"

    shifted = tmp_path / "shifted.csv"
    shifted.write_text(
        "email,firstname,company\n"
        "a@example.com,A,Acme\n"
        "b@example.com,B,Smith, Jones\n"
        "c@example.com,C\n",
        encoding="utf-8",
    )
    failures = tmp_path / "failed.jsonl"
    out = command(fake, str(shifted), "--failures", str(failures))
    assert out.returncode == 1
    written = [json.loads(line) for line in failures.read_text().splitlines()]
    assert [w["__line"] for w in written] == ["b@example.com,B,Smith, Jones", "c@example.com,C"]
    assert "line 3: 4 cells where the header has 3" in written[0]["__error_message"]
    assert fake.contact("b@example.com") is None


def test_a_dataframe_with_duplicate_columns_is_refused(fake: FakeHubSpot) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([["a@example.com", "A", ""]], columns=["email", "firstname", "firstname"])
    hs = HubSpot(fake.token, base_url=fake.url)
    with pytest.raises(ValueError, match="duplicate column names \\('firstname'\\)"):
        hs.create_or_update_many(frame)
    assert fake.request_count == 0


def test_a_progress_callback_that_raises_keeps_the_partial_result(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url)

    def progress(done: int, total: int | None) -> None:
        if done >= 300:
            raise RuntimeError("the notebook cell was stopped")

    with pytest.raises(RuntimeError) as info:
        hs.create_or_update_many(
            [{"email": f"p{i}@example.com"} for i in range(2_000)], progress=progress
        )
    partial = info.value.bulk_result  # type: ignore[attr-defined]
    assert partial.created >= 300
    assert partial.created + partial.failed == partial.total
    assert partial.created <= len(fake.contacts)


@pytest.mark.parametrize("fail_at", [50, 150, 1_234])
def test_records_read_before_the_input_fails_each_have_an_outcome(
    fake: FakeHubSpot, fail_at: int
) -> None:
    """The input raising mid-chunk (a bad file, a signal handler in the reading code) leaves
    no record read without an outcome: each one landed, or failed as not sent."""
    hs = HubSpot(fake.token, base_url=fake.url)

    def rows() -> Any:
        for i in range(fail_at):
            yield {"email": f"r{i}@example.com"}
        raise OSError("the disk went away")

    with pytest.raises(OSError, match="the disk went away") as info:
        hs.create_or_update_many(rows())
    partial = info.value.bulk_result  # type: ignore[attr-defined]
    assert partial.total == fail_at
    assert len(partial) == fail_at
    assert [o.index for o in partial.failures] == sorted(o.index for o in partial.failures)
    landed = {o.email for o in partial if not isinstance(o, hu.RecordError)}
    assert landed <= set(fake.contacts)
    for failure in partial.failures:
        assert "not sent" in failure.message
        assert failure.email not in fake.contacts


SHARED = textwrap.dedent(
    """
    import sys
    from hubspot_upsert import HubSpot
    hs = HubSpot(sys.argv[1], base_url=sys.argv[2])
    n = int(sys.argv[3])
    rows = ({"email": f"w{sys.argv[4]}-{i}@example.com"} for i in range(n))
    result = hs.create_or_update_many(rows, keep="failures")
    print(result.created, result.failed)
    """
)


def test_four_processes_share_one_limit() -> None:
    with FakeHubSpot(rate_limit=20, rate_window=1.0, retry_after=1, record_requests=False) as fake:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", SHARED, fake.token, fake.url, "2000", str(w)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for w in range(4)
        ]
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err
            assert out.split() == ["2000", "0"]
        assert len(fake.contacts) == 8_000
        limited = fake.status_counts.get(429, 0)
        # Uncoordinated, they still keep out of each other's way: HubSpot's headers show the
        # others' requests, a 429 halves a client's share, and bursts stay small. (Quiet: 3-4
        # of ~88 requests are 429s; on a loaded machine the starts spread out and up to ~20%;
        # unpaced, 40% and a job that gave up.)
        assert limited <= 0.25 * fake.request_count, fake.status_counts


def test_exit_status_3_when_the_run_fails(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("email\n" + "".join(f"p{i}@example.com\n" for i in range(250)))
    failures = tmp_path / "failed.jsonl"
    # The day's budget is spent after the definitions and one batch: HubSpot's DAILY 429.
    with FakeHubSpot(daily_limit=2) as fake:
        out = command(fake, str(path), "--failures", str(failures))
        assert out.returncode == 3, out.stderr
        assert "DAILY" in out.stderr and "Traceback" not in out.stderr
        assert len(fake.contacts) == 100
        written = [json.loads(line) for line in failures.read_text().splitlines()]
        assert len(written) == 150  # the 150 that did not land, each with its reason


def test_smaller_things(fake: FakeHubSpot) -> None:
    with pytest.raises(ValueError) as info:
        HubSpot(fake.token, base_url=f"ftp://example.com/?hapikey=secret-{fake.token[-4:]}")
    assert "hapikey" not in str(info.value) and "secret" not in str(info.value)

    hs = HubSpot(fake.token, base_url=fake.url)
    with pytest.raises(ValueError, match="property 'score'"):
        hs.create_or_update("a@example.com", {"score": 10**5000})
    np = pytest.importorskip("numpy")
    hs.create_or_update("a@example.com", {"score": np.float32(0.1)})
    stored = fake.contact("a@example.com")
    assert stored is not None and stored.properties["score"] == "0.1"


def test_tls_to_a_plain_http_port_fails_at_once(fake: FakeHubSpot) -> None:
    port = fake.url.rsplit(":", 1)[1]
    hs = HubSpot(fake.token, base_url=f"https://localhost:{port}", backoff=0.2)
    start = time.monotonic()
    with pytest.raises(hu.TransportError) as info:
        hs.create_or_update("a@example.com")
    assert info.value.attempts == 1
    assert time.monotonic() - start < 2


def test_a_record_that_changes_its_address_is_reported_landed(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url)
    hs.create_or_update("old@example.com", {"firstname": "Ada"})
    result = hs.create_or_update_many(
        [{"id": "old@example.com", "email": "new@example.com"}], email_field="id"
    )
    assert (result.updated, result.failed) == (1, 0)
    assert fake.contact("new@example.com") is not None
    assert fake.contact("old@example.com") is None


def test_a_stop_by_the_callers_code_waits_for_the_answers_in_flight() -> None:
    """A progress callback that raises stops the run, but the batches already sent are
    answered first: the partial result says exactly what is at HubSpot, and every other
    record fails NOT_SENT (safe to send again)."""
    with FakeHubSpot(latency=0.3) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)

        def progress(done: int, total: int | None) -> None:
            if done >= 300:
                raise RuntimeError("the notebook cell was stopped")

        rows = [{"email": f"s{i}@example.com"} for i in range(5_000)]
        with pytest.raises(RuntimeError, match="the notebook cell was stopped") as info:
            hs.create_or_update_many(rows, progress=progress, max_in_flight=8)
        partial = info.value.bulk_result  # type: ignore[attr-defined]
        landed = {o.email for o in partial if not isinstance(o, hu.RecordError)}
        assert landed == set(fake.contacts)
        assert len(landed) > 300  # batches in flight when it raised were answered too
        assert partial.created + partial.failed == partial.total == len(partial)
        assert {f.code for f in partial.failures} == {"NOT_SENT"}
        for failure in partial.failures:
            assert failure.email not in fake.contacts


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (b"email,firstname\rada@example.com,Ada\rgrace@example.com,Grace\r", "classic Mac"),
        (
            b"sep=;\r\nemail;firstname\r\nada@example.com;Ada\r\ngrace@example.com;Grace\r\n",
            "Excel",
        ),
    ],
)
def test_everyday_export_quirks(fake: FakeHubSpot, tmp_path: Path, raw: bytes, what: str) -> None:
    """A classic Mac OS file (CR line ends) and Excel's "sep=;" first line load as they are."""
    path = tmp_path / "export.csv"
    path.write_bytes(raw)
    out = command(fake, str(path))
    assert out.returncode == 0, (what, out.stderr)
    assert out.stdout.startswith("created 2, updated 0, failed 0 of 2 records"), what
    assert fake.contact("grace@example.com").properties["firstname"] == "Grace"  # type: ignore[union-attr]


def test_a_google_sheets_export_with_empty_columns_and_rows(
    fake: FakeHubSpot, tmp_path: Path
) -> None:
    path = tmp_path / "sheet.csv"
    path.write_text(
        "email,firstname,,\n"
        "ada@example.com,Ada,,\n"
        ",,,\n"
        "grace@example.com,Grace,,\n"
        "x@example.com,X,,a value in an unnamed column\n"
        ",,,\n"
    )
    failures = tmp_path / "failed.jsonl"
    out = command(fake, str(path), "--failures", str(failures))
    assert out.returncode == 1, out.stderr
    assert out.stdout.startswith("created 2, updated 0, failed 1 of 3 records")
    assert "ignored 2 all-empty rows and 2 unnamed empty columns" in out.stderr
    (row,) = [json.loads(line) for line in failures.read_text().splitlines()]
    assert row["__line"].startswith("x@example.com,X")
    assert "4 cells where the header has 2" in row["__error_message"]


def test_a_salesforce_report_s_footer_is_not_data(fake: FakeHubSpot, tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_text(
        '"Email","First Name"\n'
        '"ada@example.com","Ada"\n'
        '"grace@example.com","Grace"\n'
        "\n"
        '"Grand Totals (2 records)"\n'
        "\n"
        '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."\n'
        '"Confidential Information - Do Not Distribute"\n'
        '"Generated By:  Ada Lovelace  12/2/2026 9:41 AM"\n'
        '"Example Corp"\n'
    )
    out = command(fake, str(path), "--email-column", "Email", "--rename", "First Name=firstname")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("created 2, updated 0, failed 0 of 2 records"), out.stdout
    assert "ignored 5 report footer rows" in out.stderr
    assert fake.contact("grace@example.com").properties["firstname"] == "Grace"  # type: ignore[union-attr]


def test_a_stopped_update_only_run_accounts_for_every_row(tmp_path: Path) -> None:
    """SIGTERM during an update-only run: every row landed, was skipped (in the report, with
    its code) or is in the failures file, and running that file again completes the set."""
    path = tmp_path / "contacts.csv"
    path.write_text(contacts_csv(3_000), encoding="utf-8")
    failures, report = tmp_path / "failed.jsonl", tmp_path / "report.json"
    with FakeHubSpot(extra_properties=PROPERTIES, latency=0.2) as fake:
        existing = [{"email": f"victim{i}@example.com"} for i in range(0, 3_000, 2)]
        HubSpot(fake.token, base_url=fake.url).create_or_update_many(existing).raise_for_errors()
        before = fake.request_count
        env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": fake.token}
        argv = [EXE, str(path), "--base-url", fake.url, "--mode", "update", "--max-in-flight", "2"]
        proc = subprocess.Popen(
            [*argv, "--failures", str(failures), "--report", str(report)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 30
        while fake.request_count < before + 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, err
        summary = json.loads(report.read_text())
        written = [json.loads(line) for line in failures.read_text().splitlines()]
        updated = {
            e
            for e, c in fake.contacts.items()
            if c.properties.get("lastname", "").startswith("Last")
        }
        skipped = {f"victim{s['index']}@example.com" for s in summary["skips"]}
        assert all(s["code"] == "NOT_FOUND" for s in summary["skips"])
        listed = {row["email"] for row in written}
        assert updated | skipped | listed == {f"victim{i}@example.com" for i in range(3_000)}
        assert not skipped & set(fake.contacts), "a skipped row's contact does not exist"
        assert len(fake.contacts) == 1_500, "update only creates nothing, even when stopped"
        again = subprocess.run(
            [EXE, str(failures), "--base-url", fake.url, "--mode", "update"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert again.returncode == 0, again.stderr
        assert len(fake.contacts) == 1_500
        assert all(c.properties.get("lastname") for c in fake.contacts.values())
