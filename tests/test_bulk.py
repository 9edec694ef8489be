"""create_or_update_many against the fake's v3 batch endpoint."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

import hubspot_upsert as hu
from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot, ScriptedResponse

from .conftest import batch_requests, sent_inputs

BATCH_PATH = "/crm/objects/2026-09/contacts/batch/upsert"


def people(n: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [{"email": f"p{i}@example.com", "firstname": f"P{i}", **extra} for i in range(start, n)]


def test_250_records_are_created_then_updated(hs: HubSpot, fake: FakeHubSpot) -> None:
    first = hs.create_or_update_many(people(250))
    assert (first.total, first.created, first.updated, first.failed) == (250, 250, 0, 0)
    # The property definitions are read once per client, then three batches.
    assert [r.method for r in fake.requests] == ["GET", "POST", "POST", "POST"]
    assert fake.requests[0].path == "/crm/properties/2026-09/contacts"
    assert all(r.path == BATCH_PATH for r in batch_requests(fake))
    assert sorted(len(r.json()["inputs"]) for r in batch_requests(fake)) == [50, 100, 100]
    second = hs.create_or_update_many(people(250, lastname="L"))
    assert (second.created, second.updated, second.failed) == (0, 250, 0)
    assert fake.request_count == 7
    assert len(fake.contacts) == 250
    stored = fake.contact("p249@example.com")
    assert stored is not None and stored.properties["lastname"] == "L"
    assert repr(second) == "BulkResult(total=250, created=0, updated=250, failed=0)"


def test_wire_body_is_the_documented_shape(hs: HubSpot, fake: FakeHubSpot) -> None:
    hs.create_or_update_many([{"email": "ada@example.com", "firstname": "Ada", "score": 1.5}])
    (req,) = batch_requests(fake)
    assert req.method == "POST"
    # Each input has a trace id: results are matched by it, since HubSpot promises no echo of
    # the id. The email is the id only: as a property it could become the primary address of
    # a contact it matched as an additional one.
    assert req.json() == {
        "inputs": [
            {
                "id": "ada@example.com",
                "idProperty": "email",
                "objectWriteTraceId": "0",
                "properties": {"firstname": "Ada", "score": "1.5"},
            }
        ]
    }
    assert req.headers["authorization"] == f"Bearer {fake.token}"


def test_outcomes_come_back_in_input_order(hs: HubSpot, fake: FakeHubSpot) -> None:
    records = people(120)
    result = hs.create_or_update_many(records)
    assert [o.email for o in result] == [r["email"] for r in records]
    assert len(result) == 120
    assert result[-1].email == "p119@example.com"
    vids = [o.vid for o in result]
    for o in result:
        stored = fake.contact(o.email)
        assert stored is not None and stored.vid == o.vid
    assert len(set(vids)) == 120
    with pytest.raises(IndexError):
        result[120]


def test_bad_records_are_isolated_and_the_rest_land(hs: HubSpot, fake: FakeHubSpot) -> None:
    records = people(100)
    records[17]["shoe_size"] = 44
    records[63]["email"] = "p63@not-a-domain"
    result = hs.create_or_update_many(records)
    assert (result.created, result.failed) == (98, 2)
    assert len(fake.contacts) == 98
    failures = result.failures
    assert [(f.index, f.email, f.code) for f in failures] == [
        (17, "p17@example.com", "PROPERTY_DOESNT_EXIST"),
        (63, "p63@not-a-domain", "INVALID_EMAIL"),
    ]
    assert all(isinstance(f.error, hu.ValidationError) for f in failures)
    assert isinstance(result[17], hu.RecordError) and isinstance(result[18], hu.UpsertResult)
    # The definitions refuse shoe_size before sending; HubSpot's answer names the address,
    # and the other 98 go again: the definitions, one rejected batch, one that lands.
    assert fake.request_count == 3
    with pytest.raises(hu.BulkUpsertError) as info:
        result.raise_for_errors()
    assert info.value.result is result
    assert "2 of 100 records failed" in str(info.value)
    assert "record 17 (p17@example.com)" in str(info.value)


def test_records_that_cannot_be_sent_fail_alone(hs: HubSpot, fake: FakeHubSpot) -> None:
    records: list[Any] = [
        {"email": "a@example.com"},
        {"firstname": "no email"},
        {"email": None},
        {"email": "not an email"},
        {"email": 42},
        {"email": "b@example.com", "score": float("inf")},
        {"email": "c@example.com", "note": b"bytes"},
        ["not", "a", "mapping"],
        {"email": "d@example.com"},
    ]
    result = hs.create_or_update_many(records)
    assert (result.total, result.created, result.failed) == (9, 2, 7)
    kinds = [(f.index, type(f.error).__name__) for f in result.failures]
    assert kinds == [
        (1, "ValueError"),
        (2, "ValueError"),
        (3, "ValueError"),
        (4, "TypeError"),
        (5, "ValueError"),
        (6, "TypeError"),
        (7, "TypeError"),
    ]
    assert "no 'email' field" in str(result[1].error)
    assert "property 'score'" in str(result[5].error)
    assert result[5].email == "b@example.com"
    assert sorted(fake.contacts) == ["a@example.com", "d@example.com"]


def test_duplicate_emails_later_record_wins(hs: HubSpot, fake: FakeHubSpot) -> None:
    records = [
        {"email": "ada@example.com", "firstname": "Ada", "city": "London"},
        {"email": "bob@example.com", "firstname": "Bob"},
        {"email": "ADA@example.com", "firstname": "Augusta"},
    ]
    result = hs.create_or_update_many(records)
    assert (result.total, result.created, result.updated) == (3, 2, 1)
    assert [o.is_new for o in result] == [True, True, False]
    assert result[0].vid == result[2].vid
    stored = fake.contact("ada@example.com")
    assert stored is not None
    assert stored.properties["firstname"] == "Augusta"
    assert stored.properties["city"] == "London"
    for req in batch_requests(fake):
        ids = [i["id"].lower() for i in req.json()["inputs"]]
        assert len(ids) == len(set(ids))


def test_duplicates_in_batches_in_flight_are_applied_in_order() -> None:
    with FakeHubSpot(latency=0.05) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        records = [
            *people(100, firstname="first"),
            {"email": "p5@example.com", "firstname": "second"},
            *people(400, start=100),
        ]
        result = hs.create_or_update_many(records, max_in_flight=4)
        assert result.failed == 0
        stored = fake.contact("p5@example.com")
        assert stored is not None and stored.properties["firstname"] == "second"


def test_generator_is_consumed_lazily(hs: HubSpot, fake: FakeHubSpot) -> None:
    pulled = 0

    def generate() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for i in range(2000):
            pulled += 1
            yield {"email": f"g{i}@example.com", "firstname": "G"}

    seen: list[tuple[int, int | None, int]] = []
    result = hs.create_or_update_many(
        generate(), progress=lambda done, total: seen.append((done, total, pulled))
    )
    assert result.created == 2000
    _first_done, first_total, pulled_then = seen[0]
    assert first_total is None
    assert pulled_then < 1000, "records were read far ahead of what was sent"
    dones = [d for d, _, _ in seen]
    assert dones == sorted(dones) and dones[-1] == 2000


def test_progress_callback_gets_done_and_total(hs: HubSpot) -> None:
    calls: list[tuple[int, int | None]] = []
    hs.create_or_update_many(people(250), progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (250, 250)
    assert all(t == 250 for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_progress_line_without_tqdm(
    hs: HubSpot, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    hs.create_or_update_many(people(120), progress=True)
    err = capsys.readouterr().err
    assert "hubspot-upsert: 120/120 records" in err


def test_keep_failures_only(hs: HubSpot, fake: FakeHubSpot) -> None:
    records = people(300)
    records[5]["shoe_size"] = 1
    result = hs.create_or_update_many(records, keep="failures")
    assert (result.total, result.created, result.failed) == (300, 299, 1)
    assert result.keep == "failures"
    assert len(result) == 1
    assert result[0].index == 5


def test_faults_mid_run_lose_and_duplicate_nothing(hs: HubSpot, fake: FakeHubSpot) -> None:
    injected = False

    def inject(done: int, total: int | None) -> None:
        nonlocal injected
        if not injected:
            injected = True
            fake.script(
                ScriptedResponse(503, {"status": "error"}),
                ScriptedResponse(
                    429,
                    {
                        "status": "error",
                        "errorType": "RATE_LIMIT",
                        "policyName": "TEN_SECONDLY_ROLLING",
                    },
                    headers={"Retry-After": "0.05"},
                ),
                ScriptedResponse(502, "<html>bad gateway</html>", content_type="text/html"),
                ScriptedResponse(200, disconnect=True),
            )

    hs_fast = HubSpot(fake.token, base_url=fake.url, backoff=0.01)
    result = hs_fast.create_or_update_many(people(1000), progress=inject)
    assert (result.created, result.failed) == (1000, 0)
    assert len(fake.contacts) == 1000
    counts = fake.status_counts
    # The definitions, ten batches, one of whose answers was cut off and re-sent.
    assert counts[200] == 1 + 10 + 1, (
        counts,
        fake.request_count,
        [(r.method, r.status) for r in fake.requests],
    )
    assert counts[503] == counts[429] == counts[502] == 1
    vids = [c.vid for c in fake.contacts.values()]
    assert len(set(vids)) == 1000


def test_whole_run_failure_is_raised_with_the_partial_result(fake: FakeHubSpot) -> None:
    hs = HubSpot("pat-na1-wrong", base_url=fake.url)
    with pytest.raises(hu.AuthenticationError) as info:
        hs.create_or_update_many(people(2000))
    partial = info.value.bulk_result  # type: ignore[attr-defined]
    assert isinstance(partial, hu.BulkResult)
    assert partial.created == 0
    assert partial.failed == partial.total > 0
    assert partial.total < 2000
    assert "not sent" in str(partial.failures[-1].error)
    assert fake.request_count <= 4


def test_dataframe_with_missing_cells(hs: HubSpot, fake: FakeHubSpot) -> None:
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    df = pd.DataFrame(
        {
            "email": ["a@example.com", "b@example.com", "c@example.com"],
            "firstname": ["A", None, "C"],
            "score": [1.5, np.nan, 3.0],
            "last_seen": pd.to_datetime(["2024-08-15T17:09:13.648Z", None, None], utc=True),
            "is_customer": [True, False, True],
        }
    )
    result = hs.create_or_update_many(df)
    assert (result.created, result.failed) == (3, 0)
    (req,) = batch_requests(fake)
    assert b"null" not in req.body
    inputs = sent_inputs(req)
    assert inputs["a@example.com"] == {
        "firstname": "A",
        "score": "1.5",
        "last_seen": "1723741753648",
        "is_customer": "true",
    }
    assert inputs["b@example.com"] == {"is_customer": "false"}
    assert inputs["c@example.com"] == {"firstname": "C", "score": "3", "is_customer": "true"}


def test_polars_dataframe(hs: HubSpot, fake: FakeHubSpot) -> None:
    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"email": ["a@example.com", "b@example.com"], "score": [1, None]})
    result = hs.create_or_update_many(df)
    assert (result.created, result.failed) == (2, 0)
    inputs = sent_inputs(batch_requests(fake)[0])
    assert inputs == {"a@example.com": {"score": "1"}, "b@example.com": {}}


def test_bulk_without_pandas_or_polars(fake: FakeHubSpot) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        for name in ("pandas", "polars", "numpy"):
            sys.modules[name] = None
        from hubspot_upsert import HubSpot
        hs = HubSpot({fake.token!r}, base_url={fake.url!r})
        rows = ({{"email": f"x{{i}}@example.com", "score": i / 2}} for i in range(150))
        r = hs.create_or_update_many(rows, email_field="email")
        print(r.created, r.failed)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["150", "0"]


def test_email_field_and_input_checks(hs: HubSpot, fake: FakeHubSpot) -> None:
    result = hs.create_or_update_many([{"E-mail": "a@example.com", "city": "X"}], "E-mail")
    assert result.created == 1
    assert sent_inputs(fake.requests[-1]) == {"a@example.com": {"city": "X"}}
    with pytest.raises(TypeError, match="got a single dict"):
        hs.create_or_update_many({"email": "a@example.com"})
    with pytest.raises(TypeError, match="got a single str"):
        hs.create_or_update_many("a@example.com")
    with pytest.raises(ValueError, match="keep must be"):
        hs.create_or_update_many([], keep="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_in_flight must be at least 1"):
        hs.create_or_update_many([], max_in_flight=0)
    empty = hs.create_or_update_many([])
    assert (empty.total, len(empty)) == (0, 0)


def test_input_records_are_not_modified(hs: HubSpot) -> None:
    records = people(3)
    before = json.dumps(records)
    hs.create_or_update_many(records)
    assert json.dumps(records) == before


INTERRUPT = textwrap.dedent(
    """
    import os, signal, threading
    from hubspot_upsert import HubSpot
    from hubspot_upsert.testing import FakeHubSpot
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with FakeHubSpot(latency=0.2) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        rows = ({"email": f"x{i}@example.com"} for i in range(100_000))
        try:
            hs.create_or_update_many(rows, max_in_flight=2)
        except KeyboardInterrupt as e:
            r = e.bulk_result
            print(r.total, r.created, r.failed, len(fake.contacts))
    """
)


def test_ctrl_c_stops_promptly_with_the_partial_result() -> None:
    out = subprocess.run(
        [sys.executable, "-c", INTERRUPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    total, created, failed, stored = map(int, out.stdout.split())
    assert 0 < total < 100_000
    assert created + failed == total
    # What the result says landed did land (a batch cut off in flight may have landed too).
    assert created <= stored


def test_progress_bar_with_tqdm(hs: HubSpot, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    hs.create_or_update_many(people(250), progress=True)
    err = capsys.readouterr().err
    assert "hubspot-upsert" in err and "250/250" in err


def test_prepare_shows_a_record_as_it_would_be_sent(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url)
    when = datetime.date(1815, 12, 10)
    record = {"Mail": " ada@example.com ", "annualrevenue": 1.5, "closedate": when}
    email, properties = hs.prepare(record, "Mail")
    assert email == "ada@example.com"
    assert properties == {"annualrevenue": "1.5", "closedate": "-4861728000000"}
    # The same text the bulk run sends for that record.
    hs.create_or_update_many([record], "Mail")
    assert sent_inputs(batch_requests(fake)[-1]) == {email: properties}
    assert hs.prepare({"email": "a@example.com", "city": None}) == ("a@example.com", {})
    clearing = HubSpot(fake.token, base_url=fake.url, missing="clear")
    assert clearing.prepare({"email": "a@example.com", "city": None})[1] == {"city": ""}
    with pytest.raises(ValueError, match="score"):
        hs.prepare({"email": "a@example.com", "score": float("inf")}, "email")
    with pytest.raises(ValueError, match="no 'email' field"):
        hs.prepare({"mail": "a@example.com"})
    with pytest.raises(ValueError, match="email_field"):
        hs.prepare({"email": "a@example.com"}, "")
    # Nothing was sent but the one bulk run's requests.
    assert fake.request_count == 2


def test_results_as_dataframes_and_in_a_notebook() -> None:
    import pandas
    import polars

    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        hs.create_or_update("old@example.com")
        rows = [
            {"email": "old@example.com", "firstname": "O"},
            {"email": "new@example.com"},
            {"email": "bad@example"},
            {"email": "<b>@example.com", "lifecyclestage": "bogus"},
        ]
        result = hs.create_or_update_many(rows)
        frame = result.to_pandas()
        assert list(frame.columns) == ["index", "id", "email", "outcome", "vid", "code", "message"]
        assert list(frame["outcome"]) == ["updated", "created", "failed", "failed"]
        assert list(frame["index"]) == [0, 1, 2, 3]
        assert frame["vid"].isna().tolist() == [False, False, True, True]
        assert frame.loc[2, "code"] == "INVALID_EMAIL"
        page = result._repr_html_()
        assert "<th>failed</th>" in page and "&lt;b&gt;@example.com" in page
        assert "<b>@" not in page
        skipped = hs.create_or_update_many([{"email": "nobody@example.com"}], mode="update")
        assert skipped.to_pandas().loc[0, "outcome"] == "skipped"
        only = hs.create_or_update_many(rows, keep="failures").to_pandas()
        assert list(only["index"]) == [2, 3]
        assert isinstance(only, pandas.DataFrame)
        table = result.to_polars()
        assert isinstance(table, polars.DataFrame) and table["outcome"].to_list()[1] == "created"
        assert table["vid"].dtype == polars.Int64


def test_a_progress_bar_in_a_notebook_without_ipywidgets_warns_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import types
    import warnings

    from hubspot_upsert import _bulk

    class ZMQInteractiveShell:
        pass

    # What a Jupyter kernel has loaded: tqdm.auto then picks its notebook bar.
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = ZMQInteractiveShell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("zmqshell"))
    for name in [n for n in os.environ if n == "QT_API" or n.startswith("SPYDER")]:
        monkeypatch.delenv(name)
    for name in ("tqdm.auto", "tqdm.autonotebook", "tqdm.notebook"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # type: ignore[arg-type]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        report, finish = _bulk.progress_reporter(True, 3)
        assert report is not None
        report(2)
        finish()
    assert [str(w.message) for w in seen] == []


def test_a_converter_needs_no_token_and_converts_as_a_client_does() -> None:
    from hubspot_upsert._native import BulkOptions, Converter

    record = {"email": " Ada@Example.com ", "n": 1.5, "when": datetime.date(2024, 1, 2), "x": None}
    converter = Converter(missing="clear")
    hs = HubSpot("t", base_url="http://127.0.0.1:9", missing="clear")
    assert converter.prepare(record, email_field="email") == hs.prepare(record)
    assert hs.prepare(record) == (
        "Ada@Example.com",
        {"n": "1.5", "when": "1704153600000", "x": ""},
    )
    checked = Converter().check_many(
        [record, {"email": "nope"}, {"email": "b@example.com", "n": float("inf")}],
        BulkOptions(),
    )
    assert (checked.total, checked.failed) == (3, 2)
    assert [f.index for f in checked.failures] == [1, 2]
    # The benchmark's own method is not in the wheel.
    assert not hasattr(Converter(), "convert_many")
    with pytest.raises(ValueError, match="missing must be"):
        Converter(missing="drop")
