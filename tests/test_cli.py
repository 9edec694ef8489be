"""The hubspot-upsert command, run as a real console script against the fake."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot

from .conftest import batch_requests, sent_inputs

EXE = shutil.which("hubspot-upsert", path=os.path.dirname(sys.executable)) or "hubspot-upsert"


def run(
    fake: FakeHubSpot | None,
    *args: str,
    stdin: str | None = None,
    token: bool = True,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    given = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBSPOT_")}
    env.update(given)
    argv = [EXE, *args]
    if fake is not None:
        argv += ["--base-url", fake.url]
        if token:
            env["HUBSPOT_ACCESS_TOKEN"] = fake.token
    return subprocess.run(
        argv, input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )


@pytest.fixture
def fake() -> FakeHubSpot:
    with FakeHubSpot(extra_properties={"is_customer": "bool", "score": "number"}) as server:
        yield server  # type: ignore[misc]


def test_csv_with_bom_semicolons_and_rename(fake: FakeHubSpot, tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(
        "\ufeffemail;First Name;city;is_customer\n"
        "ada@example.com;Ada;London;true\n"
        "grace@example.com;Grace;;false\n".encode()
    )
    out = run(fake, str(path), "--rename", "First Name=firstname")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("created 2, updated 0, failed 0 of 2 records in ")
    assert "records/s" in out.stdout
    ada, grace = fake.contact("ada@example.com"), fake.contact("grace@example.com")
    assert ada is not None and ada.properties["firstname"] == "Ada"
    assert grace is not None and "city" not in grace.properties  # empty cell left out
    (req,) = batch_requests(fake)
    assert sent_inputs(req)["grace@example.com"] == {"firstname": "Grace", "is_customer": "false"}


def test_empty_cells_clear_when_asked(fake: FakeHubSpot, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("email,city\nada@example.com,\n")
    assert run(fake, str(path), "--empty", "clears").returncode == 0
    assert sent_inputs(fake.requests[-1]) == {"ada@example.com": {"city": ""}}


def test_missing_clear_is_the_option_of_the_client(fake: FakeHubSpot, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("email,city,firstname\nada@example.com,,Ada\n")
    assert run(fake, str(path), "--missing", "clear").returncode == 0
    assert sent_inputs(fake.requests[-1]) == {"ada@example.com": {"city": "", "firstname": "Ada"}}
    assert run(fake, str(path), "--missing", "skip").returncode == 0
    assert sent_inputs(fake.requests[-1]) == {"ada@example.com": {"firstname": "Ada"}}


def test_jsonl_with_email_column_only_and_skip(fake: FakeHubSpot, tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    rows = [
        {"E-mail": "ada@example.com", "firstname": "Ada", "city": "London", "secret": "x"},
        {"E-mail": "bob@example.com", "firstname": "Bob", "city": None, "secret": "y"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = run(fake, str(path), "--email-column", "E-mail", "--skip", "secret")
    assert out.returncode == 0, out.stderr
    assert sent_inputs(fake.requests[-1]) == {
        "ada@example.com": {"firstname": "Ada", "city": "London"},
        "bob@example.com": {"firstname": "Bob"},
    }
    fake.reset()
    out = run(fake, str(path), "--email-column", "E-mail", "--only", "city")
    assert out.returncode == 0, out.stderr
    assert sent_inputs(fake.requests[-1])["ada@example.com"] == {"city": "London"}


def test_stdin_jsonl(fake: FakeHubSpot) -> None:
    rows = "".join(json.dumps({"email": f"s{i}@example.com"}) + "\n" for i in range(150))
    out = run(fake, "-", "--format", "jsonl", stdin=rows)
    assert out.returncode == 0, out.stderr
    assert "created 150" in out.stdout
    assert len(fake.contacts) == 150


def test_json_array_input(fake: FakeHubSpot, tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"email": "a@example.com", "score": 1.5}]))
    assert run(fake, str(path)).returncode == 0
    assert sent_inputs(fake.requests[-1]) == {"a@example.com": {"score": "1.5"}}


def test_dry_run_sends_nothing(fake: FakeHubSpot, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("email,firstname,score\nada@example.com,Ada,1.50\nbad-address,X,2\n")
    out = run(fake, str(path), "--dry-run", token=False)
    assert fake.request_count == 0
    assert out.returncode == 1
    lines = out.stdout.strip().splitlines()
    assert json.loads(lines[0]) == {
        "id": "ada@example.com",
        "idProperty": "email",
        "properties": {"firstname": "Ada", "score": "1.50"},
    }
    assert lines[-1].startswith("dry run: 1 records would be sent, 1 refused")


def test_dry_run_with_a_token_checks_the_portals_definitions(
    fake: FakeHubSpot, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    rows = ["email,firstname,shoe_size,lifecyclestage,hs_object_id"]
    rows += [f"p{i}@example.com,P{i},44,{'bogus' if i % 4 == 0 else 'lead'},{i}" for i in range(8)]
    rows += ["q@example.com,Q,,lead,"]
    path.write_text("\n".join(rows) + "\n")
    out = run(fake, str(path), "--dry-run")
    assert out.returncode == 1, out.stderr
    # One read of the definitions, one of the contacts, and nothing written.
    assert [r.path.rsplit("/", 1)[-1] for r in fake.requests] == ["contacts", "read"]
    assert not fake.contacts
    assert "PROPERTY_DOESNT_EXIST shoe_size: 8 records (records 0, 1, 2, 3, 4, ...)" in out.stdout
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("dry run: 1 records would be created, 0 updated, 8 refused"), last


def test_a_dry_run_names_every_unknown_column_at_once(fake: FakeHubSpot, tmp_path: Path) -> None:
    """A Mailchimp audience export: four columns the portal lacks, one of them a property's
    label. HubSpot would name one per answer; the definitions show them all, each counted."""
    path = tmp_path / "audience.csv"
    path.write_text(
        "Email Address,First Name,MEMBER_RATING,OPTIN_TIME,LEID\n"
        "ada@example.com,Ada,2,2024-01-01 10:00:00,123\n"
        "bob@example.com,Bob,3,2024-01-02 10:00:00,124\n"
        "cy@example.com,,1,2024-01-03 10:00:00,125\n"
    )
    for dry in (True, False):
        fake.reset()
        out = run(fake, str(path), "--email-column", "Email Address", *["--dry-run"] * dry)
        assert out.returncode == 1, out.stderr
        assert not fake.contacts and not batch_requests(fake)
        lines = out.stdout.splitlines()
        first = "PROPERTY_DOESNT_EXIST First Name: 2 records (records 0, 1); the first: "
        (label,) = [line for line in lines if line.startswith(first)]
        assert "'First Name' is the label of 'firstname'" in label and "--labels" in label
        for column in ("MEMBER_RATING", "OPTIN_TIME", "LEID"):
            assert f"PROPERTY_DOESNT_EXIST {column}: 3 records (records 0, 1, 2)" in lines
        # Every record was refused before sending: none was read at HubSpot, nor said to be.
        assert "records were read" not in out.stdout


def test_every_refused_value_of_a_record_is_in_its_error(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url)
    result = hs.create_or_update_many(
        [{"email": "ada@example.com", "shoe_size": "44", "score": "lots", "hat": "x"}]
    )
    (failure,) = result.failures
    errors = [(e.name, e.code) for e in failure.error.errors]  # type: ignore[attr-defined]
    assert errors == [
        ("shoe_size", "PROPERTY_DOESNT_EXIST"),
        ("score", "INVALID_INTEGER"),
        ("hat", "PROPERTY_DOESNT_EXIST"),
    ]
    assert failure.code == "PROPERTY_DOESNT_EXIST"
    for word in ("shoe_size", "'lots'", "hat"):
        assert word in failure.message
    assert not batch_requests(fake)


def test_bad_rows_exit_1_and_the_failures_file_runs_again(
    fake: FakeHubSpot, tmp_path: Path
) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "email,firstname,score\n"
        "ada@example.com,Ada,1\n"
        "bob@example.com,Bob,lots\n"
        "not-an-email,Nobody,3\n"
        "carl@example.com,Carl,4\n"
    )
    failures, report = tmp_path / "failed.jsonl", tmp_path / "report.json"
    out = run(fake, str(path), "--failures", str(failures), "--report", str(report))
    assert out.returncode == 1, out.stderr
    assert "created 2, updated 0, failed 2 of 4" in out.stdout
    rows = [json.loads(x) for x in failures.read_text().splitlines()]
    assert [(r["email"], r["__error_code"]) for r in rows] == [
        ("bob@example.com", "INVALID_INTEGER"),
        ("not-an-email", None),
    ]
    assert "invalid email" in rows[1]["__error_message"]
    summary = json.loads(report.read_text())
    assert (summary["created"], summary["failed"], summary["total"]) == (2, 2, 4)
    assert [f["index"] for f in summary["failures"]] == [1, 2]

    # As it is, the failures file fails the same way (the error fields are not sent) ...
    again = run(fake, str(failures))
    assert again.returncode == 1
    assert "failed 2 of 2" in again.stdout
    # ... and once fixed, it lands.
    rows[0]["score"] = "7"
    rows[1]["email"] = "nobody@example.com"
    failures.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fixed = run(fake, str(failures))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    bob = fake.contact("bob@example.com")
    assert bob is not None and bob.properties["score"] == "7"


def test_failures_from_stdin(fake: FakeHubSpot, tmp_path: Path) -> None:
    failures = tmp_path / "failed.jsonl"
    rows = '{"email": "a@example.com"}\n{"email": "b@example.com", "shoe": 1}\nnot json\n'
    out = run(fake, "-", "--failures", str(failures), stdin=rows)
    assert out.returncode == 1
    written = [json.loads(x) for x in failures.read_text().splitlines()]
    assert written[0]["email"] == "b@example.com" and written[0]["shoe"] == 1
    assert written[0]["__error_code"] == "PROPERTY_DOESNT_EXIST"
    assert "line 3 cannot be read as JSON" in written[1]["__error_message"]
    assert written[1]["__line"] == "not json"  # the original text, to fix and run again


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv"], "cannot read missing.csv"),
        ([], "name an input file"),
        (["c.csv", "--email-column", "mail"], "no column 'mail' for the email"),
        (["c.csv", "--rename", "nope=x"], "no column 'nope'"),
        (["c.csv", "--rename", "firstname"], "--rename takes OLD=NEW"),
        (["c.csv", "--format", "xml"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    fake: FakeHubSpot, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "c.csv").write_text("email,firstname\nada@example.com,Ada\n")
    out = run(fake, *args, cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert fake.request_count == 0


def test_missing_token_exit_2(fake: FakeHubSpot, tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("email\nada@example.com\n")
    out = run(fake, "c.csv", token=False, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "hubspot-upsert: no access token: set HUBSPOT_ACCESS_TOKEN to a HubSpot access token "
        "(a service key or private app token) (or name another variable with --token-env); "
        "an OAuth app sets HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET and HUBSPOT_REFRESH_TOKEN"
    )
    env_named = run(fake, "c.csv", "--token-env", "MY_TOKEN", token=False, cwd=tmp_path)
    assert env_named.returncode == 2 and "set MY_TOKEN" in env_named.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--token", "pat-na1-0b7c3c1e-secret"],
        ["--token=pat-na1-0b7c3c1e-secret"],
        ["--access-token", "pat-na1-0b7c3c1e-secret"],
        ["--tok", "pat-na1-0b7c3c1e-secret"],  # no abbreviation of --token-env
        ["--tokn", "pat-na1-0b7c3c1e-secret"],
    ],
)
def test_a_token_on_the_command_line_is_refused_and_never_repeated(
    fake: FakeHubSpot, tmp_path: Path, argv: list[str]
) -> None:
    (tmp_path / "c.csv").write_text("email\nada@example.com\n")
    out = run(fake, "c.csv", *argv, cwd=tmp_path)
    assert out.returncode == 2
    assert "0b7c3c1e" not in out.stderr + out.stdout
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    if argv[0] in ("--token", "--token=pat-na1-0b7c3c1e-secret", "--access-token"):
        assert "HUBSPOT_ACCESS_TOKEN" in out.stderr
    assert fake.request_count == 0


def test_refused_token_exit_2(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("email\nada@example.com\n")
    with FakeHubSpot(token="the-right-one") as fake:
        env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": "pat-na1-wrong-secret"}
        out = subprocess.run(
            [EXE, "c.csv", "--base-url", fake.url],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
    assert out.returncode == 2
    assert "HubSpot refused the token" in out.stderr
    assert "wrong-secret" not in out.stderr + out.stdout
    assert len(out.stderr.strip().splitlines()) == 1


def test_demo_and_fake_rehearsal(tmp_path: Path) -> None:
    out = run(None, "--demo")
    assert out.returncode == 0, out.stderr
    assert "created 11, updated 1, failed 0 of 12 records" in out.stdout
    path = tmp_path / "c.csv"
    path.write_text("email,my_custom_field\nada@example.com,x\n")
    rehearsal = run(None, str(path), "--fake")
    assert rehearsal.returncode == 0, rehearsal.stderr
    assert "created 1" in rehearsal.stdout


def test_help_and_version() -> None:
    out = run(None, "--help")
    assert out.returncode == 0
    for word in ("--dry-run", "--failures", "--report", "--token-env", "--demo", "exit status"):
        assert word in out.stdout
    version = run(None, "--version")
    assert version.returncode == 0
    assert version.stdout.startswith("hubspot-upsert ")


def test_ctrl_c_prints_what_landed_and_exits_130(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text(
        "".join(json.dumps({"email": f"x{i}@example.com"}) + "\n" for i in range(20000))
    )
    with FakeHubSpot(latency=0.1) as fake:
        env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": fake.token}
        proc = subprocess.Popen(
            [EXE, str(path), "--base-url", fake.url, "--max-in-flight", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 20
        while fake.request_count < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert out.startswith("created ")
    assert "interrupted" in err
    assert "Traceback" not in err


def test_python_dash_m_runs_the_command(fake: FakeHubSpot, tmp_path: Path) -> None:
    version = subprocess.run(
        [sys.executable, "-m", "hubspot_upsert", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("hubspot-upsert ")
    path = tmp_path / "one.csv"
    path.write_text("email,firstname\nada@example.com,Ada\n", encoding="utf-8")
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": fake.token}
    run = subprocess.run(
        [sys.executable, "-m", "hubspot_upsert", str(path), "--base-url", fake.url, "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    stored = fake.contact("ada@example.com")
    assert stored is not None and stored.properties["firstname"] == "Ada"


def test_api_version_option(fake: FakeHubSpot, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("email\nada@example.com\n")
    assert run(fake, str(path), "--api-version", "legacy").returncode == 0
    assert batch_requests(fake)[0].path == "/crm/v3/objects/contacts/batch/upsert"
    out = run(fake, str(path), "--api-version", "2019-01")
    assert out.returncode == 2 and "older than HubSpot's first date version" in out.stderr


def test_a_real_run_names_its_causes_without_a_failures_file(
    fake: FakeHubSpot, tmp_path: Path
) -> None:
    path = tmp_path / "c.csv"
    rows = "".join(f"p{i}@example.com,{i}\n" for i in range(50))
    path.write_text("email,shoe_size\n" + rows + "not-an-email,1\n")
    out = run(fake, str(path))
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("created 0, updated 0, failed 51 of 51 records")
    assert "PROPERTY_DOESNT_EXIST shoe_size: 50 records (records 0, 1, 2, 3, 4, ...)" in lines
    assert any(x.startswith("ValueError: 1 record (record 50); the first: ") for x in lines), lines
    assert "not-an-email" in out.stdout


def test_sync_modes_and_id_columns_from_the_command_line(
    tmp_path: Path,
) -> None:
    with FakeHubSpot(unique_properties=["crm_id"]) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        hs.create_or_update_many(
            [{"crm_id": f"c{i}", "phone": "111" if i == 0 else ""} for i in range(3)],
            id_property="crm_id",
        ).raise_for_errors()
        path = tmp_path / "sync.csv"
        rows = ["Key,phone,lastname"] + [f"c{i},999,L{i}" for i in range(5)]
        path.write_text("\n".join(rows) + "\n")
        common = ["--id-property", "crm_id", "--id-column", "Key"]
        dry = run(fake, str(path), *common, "--mode", "update", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        last = dry.stdout.strip().splitlines()[-1]
        assert last.startswith("dry run: 0 records would be created, 3 updated, skipped 2"), last
        assert '"idProperty": "crm_id"' in dry.stdout and '"id": "c0"' in dry.stdout
        report = tmp_path / "report.json"
        out = run(
            fake,
            str(path),
            *common,
            "--mode",
            "update",
            "--fill-empty",
            "phone",
            "--report",
            str(report),
        )
        assert out.returncode == 0, out.stderr
        assert "created 0, updated 3, skipped 2, failed 0 of 5" in out.stdout
        summary = json.loads(report.read_text())
        assert summary["skipped"] == 2
        assert [(s["id"], s["code"]) for s in summary["skips"]] == [
            ("c3", "NOT_FOUND"),
            ("c4", "NOT_FOUND"),
        ]
        assert fake.contact("c0", by="crm_id").properties["phone"] == "111"  # type: ignore[union-attr]
        assert fake.contact("c1", by="crm_id").properties["phone"] == "999"  # type: ignore[union-attr]
        assert fake.contact("c4", by="crm_id") is None
        eaten = run(fake, "--fill-empty", str(path))
        assert eaten.returncode == 2 and "--fill-empty=COLUMNS" in eaten.stderr
        missing = run(fake, str(path), "--id-property", "crm_id")
        assert missing.returncode == 2
        assert "no column 'crm_id' for the crm_id id" in missing.stderr
        assert "--id-column" in missing.stderr


def test_an_oauth_app_from_the_environment(tmp_path: Path) -> None:
    secret, refresh = "app-secret-19af3c", "refresh-8e2d7b41"
    with FakeHubSpot(oauth_clients={"app-1": secret}, refresh_tokens=[refresh]) as fake:
        (tmp_path / "c.csv").write_text("email\nada@example.com\n")
        env = {
            "HUBSPOT_CLIENT_ID": "app-1",
            "HUBSPOT_CLIENT_SECRET": secret,
            "HUBSPOT_REFRESH_TOKEN": refresh,
        }
        out = run(fake, "c.csv", token=False, cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr
        assert fake.contact("ada@example.com") is not None and fake.token_grants == 1
        fake.revoke(refresh)
        refused = run(fake, "c.csv", token=False, cwd=tmp_path, env=env)
        assert refused.returncode == 2 and "invalid_grant" in refused.stderr
        assert secret not in refused.stderr + refused.stdout
        half = run(fake, "c.csv", token=False, cwd=tmp_path, env={"HUBSPOT_CLIENT_ID": "x"})
        assert half.returncode == 2 and "HUBSPOT_CLIENT_SECRET" in half.stderr


def test_decimal_commas(fake: FakeHubSpot, tmp_path: Path) -> None:
    path = tmp_path / "de.csv"
    path.write_text(
        "email;score;firstname;phone\n"
        "a@example.com;177289,33;Anna, B;0171 234\n"
        "b@example.com;1.234,5;3,5 Zimmer;+49 30 1234\n"
        "c@example.com;-0,25;Carl;1.234\n",
        encoding="utf-8",
    )
    out = run(fake, str(path), "--decimal", ",")
    assert out.returncode == 0, out.stderr
    got = {
        e: fake.contact(e).properties for e in ("a@example.com", "b@example.com", "c@example.com")
    }  # type: ignore[union-attr]
    assert [got[e]["score"] for e in sorted(got)] == ["177289.33", "1234.5", "-0.25"]
    assert got["a@example.com"]["firstname"] == "Anna, B"
    assert got["b@example.com"]["phone"] == "+49 30 1234"
    # Without the option the comma is not a decimal mark: HubSpot's number check refuses it.
    plain = run(fake, str(path))
    assert plain.returncode == 1 and "INVALID_INTEGER score" in plain.stdout
    bad = run(fake, str(path), "--decimal", ";")
    assert bad.returncode == 2 and "--decimal takes" in bad.stderr


def test_parquet_and_arrow_files(fake: FakeHubSpot, tmp_path: Path) -> None:
    import datetime

    import pyarrow as pa
    import pyarrow.ipc
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "email": ["p1@example.com", "p2@example.com", "not-an-address", None],
            "firstname": ["Pia", None, "X", "Y"],
            "score": [1.5, 2.0, None, 4.0],
            "is_customer": [True, False, None, True],
            "closedate": [datetime.date(2024, 1, 2), None, None, None],
        }
    )
    path = tmp_path / "contacts.parquet"
    pq.write_table(table, path, row_group_size=2)
    failures, report = tmp_path / "failed.jsonl", tmp_path / "report.json"
    out = run(
        fake, str(path), "--failures", str(failures), "--report", str(report), "--skip", "closedate"
    )
    assert out.returncode == 1, out.stderr
    p1 = fake.contact("p1@example.com").properties  # type: ignore[union-attr]
    assert (p1["firstname"], p1["score"], p1["is_customer"]) == ("Pia", "1.5", "true")
    assert "firstname" not in fake.contact("p2@example.com").properties  # type: ignore[union-attr]
    rows = [json.loads(line) for line in failures.read_text().splitlines()]
    assert [r.get("email") for r in rows] == ["not-an-address", None]
    assert "invalid email 'not-an-address'" in rows[0]["__error_message"]
    assert rows[1]["__error_message"] == "the record's 'email' is empty"
    assert json.loads(report.read_text())["total"] == 4
    # An Arrow IPC file (Feather v2) of the same rows, named by its extension.
    arrow = tmp_path / "contacts.feather"
    with pa.OSFile(str(arrow), "wb") as sink, pyarrow.ipc.new_file(sink, table.schema) as w:
        w.write_table(table.slice(0, 2))
    assert run(fake, str(arrow), "--skip", "closedate").returncode == 0
    # A file that is not what its name says is named as such, never as an encoding problem.
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + bytes(range(256)) * 4)
    bad = run(fake, str(broken))
    assert bad.returncode == 2 and "cannot read" in bad.stderr and "Parquet" in bad.stderr
    assert "encoding" not in bad.stderr
    piped = run(fake, "-", "--format", "parquet", stdin="")
    assert piped.returncode == 2 and "not from standard input" in piped.stderr
    missing = run(fake, str(path), "--email-column", "mail")
    assert missing.returncode == 2 and "no column 'mail'" in missing.stderr


def test_hubspots_own_export_loads_back_with_labels(tmp_path: Path) -> None:
    export = tmp_path / "hubspot-crm-exports-all-contacts-2026-12-02.csv"
    export.write_text(
        "Record ID,First Name,Last Name,Email,Lifecycle Stage,Create Date,Contact owner\n"
        "101,Ada,Lovelace,ada@example.com,Marketing Qualified Lead,2026-01-02 10:00,101\n"
        "102,Grace,Hopper,grace@example.com,Customer,2026-01-03 11:00,\n",
        encoding="utf-8",
    )
    with FakeHubSpot() as fake:
        plain = run(fake, str(export))
        assert plain.returncode == 2 and "no column 'email'" in plain.stderr
        assert "a HubSpot export names columns by their labels ('Email'): --labels" in plain.stderr
        out = run(fake, str(export), "--labels")
        assert out.returncode == 0, out.stdout + out.stderr
        ada = fake.contact("ada@example.com").properties  # type: ignore[union-attr]
        assert (ada["firstname"], ada["lastname"]) == ("Ada", "Lovelace")
        assert ada["lifecyclestage"] == "marketingqualifiedlead"
        assert ada["hubspot_owner_id"] == "101"
        assert fake.contact("grace@example.com").properties["lifecyclestage"] == "customer"  # type: ignore[union-attr]
        assert "left out the read-only fields of an export" in out.stderr
        assert "Create Date (createdate)" in out.stderr and "Record ID (hs_object_id)" in out.stderr
        dry = run(fake, str(export), "--labels", "--dry-run")
        assert dry.returncode == 0 and "0 refused" in dry.stdout, dry.stdout


def test_a_terminal_gets_a_bar_with_a_total(fake: FakeHubSpot, tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    path = tmp_path / "c.csv"
    path.write_text("email\n" + "".join(f"t{i}@example.com\n" for i in range(250)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBSPOT_")}
    env["HUBSPOT_ACCESS_TOKEN"] = fake.token
    main, terminal = pty.openpty()
    # A terminal 100 columns wide (a new pty has none, and a bar then fits nothing).
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        done = subprocess.run(
            [EXE, str(path), "--base-url", fake.url],
            stderr=terminal,
            stdout=subprocess.PIPE,
            env=env,
            timeout=60,
        )
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main)
    assert done.returncode == 0
    text = shown.decode(errors="replace")
    assert "250/250" in text and "100%" in text, text[-500:]


def test_excel_workbooks(fake: FakeHubSpot, tmp_path: Path) -> None:
    import datetime

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["email", "firstname", "score", "closedate", None])
    sheet.append(["x1@example.com", "Xena", 3, datetime.datetime(2024, 5, 6), None])
    sheet.append([None, None, None, None, None])
    sheet.append(["x2@example.com", "Xavier", 2.5, None, "stray"])
    path = tmp_path / "contacts.xlsx"
    book.save(path)
    failures = tmp_path / "failed.jsonl"
    out = run(fake, str(path), "--failures", str(failures))
    assert out.returncode == 1, out.stderr
    x1 = fake.contact("x1@example.com").properties  # type: ignore[union-attr]
    assert (x1["firstname"], x1["score"]) == ("Xena", "3")
    # A date cell (a datetime at midnight) is a date: epoch milliseconds at midnight UTC.
    assert x1["closedate"] == str(
        int(datetime.datetime(2024, 5, 6, tzinfo=datetime.timezone.utc).timestamp() * 1000)
    )
    (row,) = [json.loads(line) for line in failures.read_text().splitlines()]
    assert "a value in a column without a name" in row["__error_message"]
    not_a_book = tmp_path / "fake.xlsx"
    not_a_book.write_text("email\na@example.com\n")
    bad = run(fake, str(not_a_book))
    assert bad.returncode == 2 and "as an Excel workbook" in bad.stderr
