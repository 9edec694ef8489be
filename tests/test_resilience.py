"""Retries, rate pacing, timeouts, logging, threads and proxies, against the fake."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

import hubspot_upsert as hu
from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot, ScriptedResponse

OK = ScriptedResponse(200, {"vid": 7, "isNew": True})


def client(fake: FakeHubSpot, **kw: object) -> HubSpot:
    kw.setdefault("backoff", 0.01)
    return HubSpot(fake.token, base_url=fake.url, **kw)  # type: ignore[arg-type]


# -- what is retried, and what is not -----------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 521, 522, 523, 524])
def test_server_errors_are_retried(status: int, fake: FakeHubSpot) -> None:
    fake.script(ScriptedResponse(status, {"status": "error", "message": "boom"}))
    assert client(fake).create_or_update("ada@example.com").is_new
    assert [r.status for r in fake.requests] == [status, 200]


def test_html_502_page_is_retried(fake: FakeHubSpot) -> None:
    page = "<html><body>502 Bad Gateway</body></html>"
    fake.script(*[ScriptedResponse(502, page, content_type="text/html")] * 2)
    assert client(fake).create_or_update("ada@example.com").is_new
    assert fake.request_count == 3


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"status": "error", "message": "Property values were not valid"}),
        (401, {"status": "error", "category": "INVALID_AUTHENTICATION"}),
        (403, {"status": "error", "category": "MISSING_SCOPES"}),
        (404, {"status": "error", "message": "resource not found"}),
        (409, {"status": "error", "message": "Contact already exists. Existing ID: 5"}),
    ],
)
def test_client_errors_are_never_retried(status: int, body: object, fake: FakeHubSpot) -> None:
    fake.script(ScriptedResponse(status, body), OK, OK)
    with pytest.raises(hu.HubSpotError) as info:
        client(fake).create_or_update("ada@example.com")
    assert info.value.status == status
    assert info.value.attempts == 1
    assert fake.request_count == 1


def test_gives_up_after_max_retries_with_attempts_and_last_correlation_id(
    fake: FakeHubSpot,
) -> None:
    fake.script(
        *[
            ScriptedResponse(503, {"status": "error", "correlationId": f"corr-{i}"})
            for i in range(5)
        ]
    )
    with pytest.raises(hu.ServerError) as info:
        client(fake, max_retries=2).create_or_update("ada@example.com")
    e = info.value
    assert fake.request_count == 3
    assert e.attempts == 3
    assert e.correlation_id == "corr-2"
    assert "gave up after 3 attempts" in str(e) and "corr-2" in str(e)


def test_retry_after_is_honoured(fake: FakeHubSpot) -> None:
    fake.script(
        ScriptedResponse(
            429,
            {"status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"},
            headers={"Retry-After": "0.4"},
        )
    )
    assert client(fake).create_or_update("ada@example.com").is_new
    first, second = fake.requests
    assert second.received_at - first.received_at >= 0.4


def test_retry_after_past_the_deadline_fails_fast(fake: FakeHubSpot) -> None:
    fake.script(ScriptedResponse(503, {"status": "error"}, headers={"Retry-After": "3600"}), OK)
    start = time.monotonic()
    with pytest.raises(hu.ServerError) as info:
        client(fake, deadline=30).create_or_update("ada@example.com")
    assert time.monotonic() - start < 5
    assert fake.request_count == 1
    assert "past the deadline" in str(info.value)


def test_477_waits_for_retry_after_within_the_budget(fake: FakeHubSpot) -> None:
    fake.script(ScriptedResponse(477, {"status": "error"}, headers={"Retry-After": "0.2"}))
    assert client(fake).create_or_update("ada@example.com").is_new
    assert [r.status for r in fake.requests] == [477, 200]
    fake.reset()
    fake.script(ScriptedResponse(477, {"status": "error"}, headers={"Retry-After": "7200"}))
    with pytest.raises(hu.ServerError):
        client(fake).create_or_update("ada@example.com")
    assert fake.request_count == 1


def test_423_waits_at_least_two_seconds(fake: FakeHubSpot) -> None:
    fake.script(ScriptedResponse(423, {"status": "error", "message": "Locked"}))
    assert client(fake).create_or_update("ada@example.com").is_new
    first, second = fake.requests
    assert second.received_at - first.received_at >= 2.0


def test_daily_limit_is_not_retried() -> None:
    with FakeHubSpot(daily_limit=1) as fake:
        hs = client(fake)
        hs.create_or_update("ada@example.com")
        with pytest.raises(hu.RateLimitError) as info:
            hs.create_or_update("ada@example.com")
    assert info.value.policy == "DAILY"
    assert info.value.attempts == 1
    assert fake.request_count == 2


def test_connection_dropped_mid_response_is_retried(fake: FakeHubSpot) -> None:
    fake.script(ScriptedResponse(200, disconnect=True))
    r = client(fake).create_or_update("ada@example.com", {"firstname": "Ada"})
    assert r.is_new
    assert fake.request_count == 2
    assert len(fake.contacts) == 1


def test_timeout_is_retried(fake: FakeHubSpot) -> None:
    fake.script(ScriptedResponse(200, {"vid": 1, "isNew": True}, delay=1.0))
    assert client(fake, timeout=0.3).create_or_update("ada@example.com").vid == 1001
    assert fake.request_count == 2


def test_idle_keepalive_connections_closed_by_the_server() -> None:
    with FakeHubSpot(keepalive_timeout=0.1) as fake:
        hs = client(fake)
        for i in range(4):
            hs.create_or_update(f"p{i}@example.com")
            time.sleep(0.25)
        assert fake.request_count == len(fake.contacts) == 4


def test_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hs = HubSpot("t", base_url=f"http://127.0.0.1:{port}", max_retries=2, backoff=0.01)
    with pytest.raises(hu.TransportError) as info:
        hs.create_or_update("ada@example.com")
    assert info.value.attempts == 3
    assert "gave up after 3 attempts" in str(info.value)


# -- pacing ---------------------------------------------------------------------------------------


def test_pacing_from_headers_avoids_429s() -> None:
    """A burst of three windows' allowance completes with (almost) no 429."""
    with FakeHubSpot(rate_limit=10, rate_window=0.5) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        for i in range(30):
            hs.create_or_update(f"p{i}@example.com")
        assert len(fake.contacts) == 30
        assert fake.status_counts.get(429, 0) <= 1
        assert hs.rate_limit == (10, 0.5)
        times = [r.received_at for r in fake.requests if r.status == 200]
        for i in range(10, len(times)):
            assert times[i] - times[i - 10] >= 0.5


def test_pacing_is_shared_by_threads() -> None:
    with FakeHubSpot(rate_limit=10, rate_window=0.5) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        hs.create_or_update("first@example.com")  # learn the limit

        def work(t: int) -> None:
            for i in range(8):
                hs.create_or_update(f"t{t}-{i}@example.com")

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(fake.contacts) == 33
        assert fake.status_counts.get(429, 0) <= 1


def test_explicit_rate_limit_without_headers(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url, rate_limit=5, rate_window=0.3)
    assert hs.rate_limit == (5, 0.3)
    for i in range(15):
        hs.create_or_update(f"p{i}@example.com")
    times = [r.received_at for r in fake.requests]
    assert times[10] - times[0] >= 0.6


def test_429_without_retry_after_waits_for_the_window(fake: FakeHubSpot) -> None:
    fake.script(
        ScriptedResponse(
            429,
            {"status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"},
            headers={
                "X-HubSpot-RateLimit-Max": "1",
                "X-HubSpot-RateLimit-Remaining": "0",
                "X-HubSpot-RateLimit-Interval-Milliseconds": "300",
            },
        )
    )
    assert client(fake).create_or_update("ada@example.com").is_new
    first, second = fake.requests
    assert second.received_at - first.received_at >= 0.25


# -- logging --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_version", "path"),
    [(None, "/crm/objects/2026-09/contacts/batch/upsert"), ("legacy", "/contacts/v1/")],
)
def test_requests_and_waits_are_logged_without_secrets(
    fake: FakeHubSpot, caplog: pytest.LogCaptureFixture, api_version: str | None, path: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="hubspot_upsert")
    fake.script(
        ScriptedResponse(
            429,
            {"status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"},
            headers={"Retry-After": "0.05"},
        ),
        ScriptedResponse(503, {"status": "error"}),
    )
    hs = client(fake, api_version=api_version)
    hs.create_or_update("secret.person@example.com", {"firstname": "Ada"})
    records = [r for r in caplog.records if r.name == "hubspot_upsert"]
    debug = [r.getMessage() for r in records if r.levelno == logging.DEBUG]
    assert any(m.startswith(f"POST {path}") and "-> 429" in m for m in debug)
    assert any("-> 200" in m and "(attempt 3)" in m for m in debug)
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "rate limit" in warnings[0]
    # Retry-After 0.05 s, plus up to 50 ms of jitter.
    waited = float(warnings[0].split("waiting ")[1].split(" s")[0])
    assert 0.05 <= waited <= 0.1, warnings[0]
    assert "before attempt 2" in warnings[0]
    infos = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert len(infos) == 1 and "503" in infos[0]
    for r in records:
        assert fake.token not in r.getMessage()
        if r.levelno > logging.DEBUG:
            assert "secret.person" not in r.getMessage()


def test_nothing_is_logged_above_the_logger_level(
    fake: FakeHubSpot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="hubspot_upsert")
    fake.script(ScriptedResponse(503, {"status": "error"}))
    client(fake).create_or_update("ada@example.com")
    assert [r for r in caplog.records if r.name == "hubspot_upsert"] == []


# -- threads --------------------------------------------------------------------------------------


@pytest.fixture
def busy_fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(record_requests=False) as fake:
        yield fake


def test_32_threads_share_one_client(busy_fake: FakeHubSpot) -> None:
    hs = HubSpot(busy_fake.token, base_url=busy_fake.url)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(500):
                hs.create_or_update(f"t{t}-{i}@example.com", {"firstname": str(i)})
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert busy_fake.request_count == 16_000
    assert len(busy_fake.contacts) == 16_000
    assert busy_fake.status_counts == {200: 16_000}
    assert busy_fake.peak_in_flight > 1


# -- proxies --------------------------------------------------------------------------------------


class RecordingProxy:
    """Accepts connections, records the first request line, refuses with 403."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.raw: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.raw.append(data)
                self.lines.append(data.split(b"\r\n", 1)[0].decode())
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    def close(self) -> None:
        self.sock.close()


def test_https_proxy_is_used_for_hubspot(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = RecordingProxy()
    try:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        hs = HubSpot("pat-na1-proxy-secret", max_retries=0)  # the real base URL
        with pytest.raises(hu.TransportError) as info:
            hs.create_or_update("ada@example.com")
        assert proxy.lines == ["CONNECT api.hubapi.com:443 HTTP/1.1"]
        assert b"proxy-secret" not in proxy.raw[0]
        assert "proxy-secret" not in str(info.value)
    finally:
        proxy.close()
