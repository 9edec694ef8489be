"""Hostile answers: cut bodies, huge answers, absurd headers, error pages that list the
request's headers, refusals that name nothing. No crash, no hang, no token repeated, no budget
burned. The answers come from a FakeHubSpot behind a proxy that spoils them (tests/hostile.py)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

import hubspot_upsert as hu
from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot

from .conftest import EXTRA_PROPERTIES
from .hostile import Answer, HostileProxy
from .test_cli import run

TOKEN = "pat-na1-0b7c3c1e-5d2f-4c71-9a34-1e2f3a4b5c6d"


@pytest.fixture
def fake() -> FakeHubSpot:
    with FakeHubSpot(token=TOKEN, extra_properties=EXTRA_PROPERTIES) as server:
        yield server  # type: ignore[misc]


def client(url: str, **kw: object) -> HubSpot:
    kw.setdefault("backoff", 0.01)
    return HubSpot(TOKEN, base_url=url, **kw)  # type: ignore[arg-type]


def batches(fake: FakeHubSpot) -> int:
    return sum(r.path.endswith("/batch/upsert") for r in fake.requests)


# -- answers cut short are retried: the upsert is idempotent ------------------------------------


@pytest.mark.parametrize("how", ["short", "unfinished", "reset"])
def test_a_cut_answer_to_a_single_upsert_is_retried(fake: FakeHubSpot, how: str) -> None:
    def spoil(n: int, answer: Answer) -> None:
        if n == 0:
            answer.how = how

    with HostileProxy(fake.url, spoil) as proxy:
        r = client(proxy.url).create_or_update("ada@example.com", {"firstname": "Ada"})
    assert r.vid == fake.contact("ada@example.com").vid  # type: ignore[union-attr]
    assert fake.request_count == 2


def test_cut_answers_in_a_bulk_run_are_retried_and_every_record_lands(fake: FakeHubSpot) -> None:
    ways = ["short", "unfinished", "reset"]

    def spoil(n: int, answer: Answer) -> None:
        # One answer in five, after the definitions, cut in turn in each way.
        if n % 5 == 3 and answer.status == 200:
            answer.how = ways[(n // 5) % 3]

    rows = [{"email": f"c{i}@example.com", "firstname": f"C{i}"} for i in range(3_000)]
    with HostileProxy(fake.url, spoil) as proxy:
        result = client(proxy.url).create_or_update_many(rows)
    # A retried batch had landed before its answer was cut: HubSpot then says "updated".
    assert (result.created + result.updated, result.failed) == (3_000, 0)
    assert result.updated > 0
    assert len(fake.contacts) == 3_000
    # 30 batches, and once more each one whose answer was cut.
    assert 30 < batches(fake) <= 30 + 8


# -- long answers -------------------------------------------------------------------------------


def test_answers_over_a_megabyte_are_read(fake: FakeHubSpot) -> None:
    """100 records of 12,000 characters: HubSpot's answer echoes them, 1.2 MB."""
    rows = [{"email": f"l{i}@example.com", "note": "é" * 6_000 + "x" * 6_000} for i in range(100)]
    result = client(fake.url).create_or_update_many(rows)
    assert (result.created, result.failed) == (100, 0)
    assert batches(fake) == 1
    assert len(fake.contacts["l7@example.com"].properties["note"]) == 12_000


# -- the deadline bounds every wait ------------------------------------------------------------


def test_a_pacing_wait_past_the_deadline_fails_at_once() -> None:
    with FakeHubSpot(token=TOKEN, rate_limit=3, rate_window=10.0) as fake:
        hs = client(fake.url, deadline=2)
        for i in range(3):
            hs.create_or_update(f"p{i}@example.com")
        started = time.monotonic()
        with pytest.raises(hu.RateLimitError) as info:
            hs.create_or_update("p3@example.com")
        # The window has no room for about 10 s: the call fails at once, sending nothing.
        assert time.monotonic() - started < 1.5
        assert "nothing was sent" in str(info.value)
        assert fake.request_count == 3


def test_an_absurd_announced_window_is_clamped(fake: FakeHubSpot) -> None:
    def spoil(n: int, answer: Answer) -> None:
        answer.headers["X-HubSpot-RateLimit-Max"] = "1"
        answer.headers["X-HubSpot-RateLimit-Remaining"] = "0"
        answer.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = "4294967295"

    with HostileProxy(fake.url, spoil) as proxy:
        hs = client(proxy.url, deadline=5)
        hs.create_or_update("first@example.com")
        started = time.monotonic()
        with pytest.raises(hu.RateLimitError):
            hs.create_or_update("second@example.com")
        with pytest.raises(hu.RateLimitError) as info:
            hs.create_or_update_many([{"email": f"b{i}@example.com"} for i in range(10)])
        assert time.monotonic() - started < 4
    partial = info.value.bulk_result  # type: ignore[attr-defined]
    assert partial.failed == 10
    assert {f.code for f in partial.failures} == {"NOT_SENT"}
    assert "first@example.com" in fake.contacts and len(fake.contacts) == 1


def test_429_with_retry_after_zero_backs_off(
    fake: FakeHubSpot, caplog: pytest.LogCaptureFixture
) -> None:
    def spoil(n: int, answer: Answer) -> None:
        answer.status = 429
        answer.headers["Retry-After"] = "0"
        answer.body = json.dumps(
            {"status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}
        ).encode()

    caplog.set_level(logging.DEBUG, logger="hubspot_upsert")
    with HostileProxy(fake.url, spoil) as proxy:
        with pytest.raises(hu.RateLimitError):
            client(proxy.url, deadline=4, backoff=0.5).create_or_update("ada@example.com")
        # Growing waits with jitter: a handful of requests in 4 s, not thousands.
        assert proxy.answers <= 10, proxy.answers
    waits = [r.getMessage() for r in caplog.records if "waiting" in r.getMessage()]
    assert waits and all("until the deadline" in w for w in waits)


def test_retry_after_as_an_http_date(fake: FakeHubSpot) -> None:
    def spoil(n: int, answer: Answer) -> None:
        if n == 0:
            answer.status = 503
            answer.headers["Retry-After"] = "Thu, 01 Jan 2015 00:00:00 GMT"  # past: no wait

    with HostileProxy(fake.url, spoil) as proxy:
        assert client(proxy.url).create_or_update("ada@example.com").vid == 1001
        assert proxy.answers == 2


# -- the token is never repeated ---------------------------------------------------------------


def _echo_headers(answer: Answer) -> None:
    """A proxy's error page that lists the request's headers, the token among them."""
    listed = "\n".join(f"{k}: {v}" for k, v in answer.request_headers.items())
    answer.status = 400
    answer.headers["Content-Type"] = "text/html"
    answer.body = f"<html><body><h1>Bad request</h1><pre>{listed}</pre></body></html>".encode()


def test_an_error_page_listing_the_token_is_scrubbed(
    fake: FakeHubSpot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hubspot_upsert")
    with HostileProxy(fake.url, lambda n, a: _echo_headers(a)) as proxy:
        with pytest.raises(hu.HubSpotError) as single:
            client(proxy.url).create_or_update("ada@example.com")
        bulk = client(proxy.url).create_or_update_many(
            [{"email": f"p{i}@example.com"} for i in range(5)]
        )
    assert bulk.failed == 5
    texts = [str(single.value), repr(single.value), str(single.value.body)]
    texts += [str(f) + repr(f.error) + str(f.error.body) for f in bulk.failures]
    texts += [r.getMessage() for r in caplog.records]
    assert any("authorization: bearer [redacted]" in t.lower() for t in texts)
    for text in texts:
        assert TOKEN not in text and "0b7c3c1e" not in text
    # Nothing above DEBUG quotes an answer's body (it may hold addresses).
    for record in caplog.records:
        if record.levelno > logging.DEBUG:
            assert "p1@example.com" not in record.getMessage()


def test_the_command_writes_no_token_to_stderr_or_its_files(
    fake: FakeHubSpot, tmp_path: Path
) -> None:
    path = tmp_path / "c.csv"
    path.write_text("email\n" + "".join(f"p{i}@example.com\n" for i in range(20)))
    with HostileProxy(fake.url, lambda n, a: _echo_headers(a)) as proxy:

        class Behind:  # the command's `run` takes what answers at `url` and holds `token`
            url = proxy.url
            token = TOKEN

        out = run(
            Behind,  # type: ignore[arg-type]
            str(path),
            "--failures",
            str(tmp_path / "failed.jsonl"),
            "--report",
            str(tmp_path / "report.json"),
        )
    assert out.returncode in (1, 3), out.stderr
    files = (tmp_path / "failed.jsonl").read_text() + (tmp_path / "report.json").read_text()
    assert "[redacted]" in files
    for text in (out.stdout, out.stderr, files):
        assert TOKEN not in text


# -- refusals that name nothing -----------------------------------------------------------------


def test_a_refusal_that_names_nothing_costs_a_few_requests_per_batch(fake: FakeHubSpot) -> None:
    def spoil(n: int, answer: Answer) -> None:
        if answer.status == 200 and b"results" in answer.body:
            answer.status = 400
            answer.body = json.dumps(
                {"status": "error", "message": "Something went wrong"}
            ).encode()

    rows = [{"email": f"r{i}@example.com"} for i in range(1_000)]
    with HostileProxy(fake.url, spoil) as proxy:
        result = client(proxy.url).create_or_update_many(rows)
        spent = proxy.answers
    assert result.failed == 1_000
    # The first batch is halved down to a few records alone; then each batch fails whole.
    assert spent <= 1 + 2 * 7 + 2 + 9 + 3, spent
    assert any("not split further" in f.message for f in result.failures)
