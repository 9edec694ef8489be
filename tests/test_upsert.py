"""create_or_update end to end: results, what goes over the wire, client construction."""

from __future__ import annotations

import pickle
import threading
import time

import pytest

import hubspot_upsert
from hubspot_upsert import HubSpot, UpsertResult
from hubspot_upsert.testing import FakeHubSpot

from .conftest import sent_properties


def test_create_then_update_flips_is_new(hs: HubSpot, fake: FakeHubSpot) -> None:
    first = hs.create_or_update("ada@example.com", {"firstname": "Ada", "is_customer": True})
    assert first.is_new is True
    assert isinstance(first.vid, int)
    assert first.email == "ada@example.com"
    second = hs.create_or_update("ADA@example.com", {"lastname": "Lovelace"})
    assert second.is_new is False
    assert second.vid == first.vid
    assert second.email == "ADA@example.com"
    stored = fake.contact("ada@example.com")
    assert stored is not None
    assert stored.properties["firstname"] == "Ada"
    assert stored.properties["lastname"] == "Lovelace"
    assert stored.properties["is_customer"] == "true"


def test_wire_request_matches_the_documented_shape(hs: HubSpot, fake: FakeHubSpot) -> None:
    hs.create_or_update("ada@example.com", {"firstname": "Ada", "is_customer": False})
    (req,) = fake.requests
    assert req.method == "POST"
    assert req.path == "/crm/objects/2026-09/contacts/batch/upsert"
    assert req.json() == {
        "inputs": [
            {
                "id": "ada@example.com",
                "idProperty": "email",
                "objectWriteTraceId": "0",
                "properties": {"firstname": "Ada", "is_customer": "false"},
            }
        ]
    }
    legacy = HubSpot(fake.token, base_url=fake.url, api_version="legacy")
    legacy.create_or_update("ada@example.com", {"firstname": "Ada", "is_customer": False})
    v1 = fake.requests[1]
    assert v1.path == "/contacts/v1/contact/createOrUpdate/email/ada%40example.com"
    assert v1.body == (
        b'{"properties":[{"property":"firstname","value":"Ada"},'
        b'{"property":"is_customer","value":"false"}]}'
    )
    assert req.headers["authorization"] == f"Bearer {fake.token}"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"] == f"hubspot-upsert/{hubspot_upsert.__version__}"
    assert "hapikey" not in req.path


def test_no_properties_sends_an_empty_list(hs: HubSpot, fake: FakeHubSpot) -> None:
    assert hs.create_or_update("ada@example.com").is_new
    assert hs.create_or_update("ada@example.com", {}).is_new is False
    sent = [r.json()["inputs"] for r in fake.requests]
    assert [[i["properties"] for i in inputs] for inputs in sent] == [[{}], [{}]]


def test_v1_properties_keep_the_mapping_order(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url, api_version="legacy")
    hs.create_or_update("ada@example.com", {"lastname": "L", "firstname": "F", "city": "C"})
    assert list(sent_properties(fake)) == ["lastname", "firstname", "city"]


def test_any_mapping_is_accepted(hs: HubSpot, fake: FakeHubSpot) -> None:
    from types import MappingProxyType

    hs.create_or_update("ada@example.com", MappingProxyType({"firstname": "Ada"}))
    assert sent_properties(fake) == {"firstname": "Ada"}


def test_upsert_result_is_an_immutable_value() -> None:
    r = UpsertResult(3234574, False, "ada@example.com")
    assert repr(r) == "UpsertResult(vid=3234574, is_new=False, email='ada@example.com')"
    assert r == UpsertResult(3234574, False, "ada@example.com")
    assert r != UpsertResult(3234574, True, "ada@example.com")
    assert hash(r) == hash(UpsertResult(3234574, False, "ada@example.com"))
    assert pickle.loads(pickle.dumps(r)) == r
    with pytest.raises(AttributeError):
        r.vid = 1  # type: ignore[misc]


def test_one_client_reuses_one_connection(hs: HubSpot, fake: FakeHubSpot) -> None:
    for i in range(20):
        hs.create_or_update(f"p{i}@example.com", {"firstname": str(i)})
    assert fake.request_count == 20
    # A connection goes back to the pool a moment after its answer is read: now and then
    # the next request opens a second one rather than wait.
    assert fake.connections_opened <= 3


def test_token_from_the_environment(fake: FakeHubSpot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", fake.token)
    assert HubSpot(base_url=fake.url).create_or_update("ada@example.com").is_new
    assert fake.requests[-1].headers["authorization"] == f"Bearer {fake.token}"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_token_is_a_clear_value_error(
    value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    if value is not None:
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", value)
    with pytest.raises(ValueError, match="HUBSPOT_ACCESS_TOKEN"):
        HubSpot()
    with pytest.raises(ValueError, match="no HubSpot access token"):
        HubSpot("")


def test_token_with_a_line_break_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as info:
        HubSpot("pat-na1-secret\r\nX-Evil: 1", base_url="http://127.0.0.1:9")
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.hubapi.com",
        "https://api.hubapi.com/",
        "https://proxy.example.com/hubspot",
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://localhost:1234/",
        "http://[::1]:8080",
    ],
)
def test_base_url_accepted(url: str) -> None:
    assert HubSpot("t", base_url=url).base_url == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://api.hubapi.com", "only to a loopback host"),
        ("http://10.0.0.5:8080", "only to a loopback host"),
        ("ftp://127.0.0.1", "not http"),
        ("api.hubapi.com", "invalid base_url"),
        ("https://api.hubapi.com/?hapikey=x", "query"),
        ("https://api.hubapi.com/#x", "fragment"),
        ("https://user:pw@api.hubapi.com", "credentials"),
        ("http://localhost.evil.com", "only to a loopback host"),
    ],
)
def test_base_url_refused(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        HubSpot("t", base_url=url)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        HubSpot("t", timeout=0)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        HubSpot("t", timeout=float("nan"))
    with pytest.raises(TypeError, match="timeout must be a number"):
        HubSpot("t", timeout="30")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="missing must be 'skip'"):
        HubSpot("t", missing="drop")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="token must be a str"):
        HubSpot(b"t")  # type: ignore[arg-type]


def test_client_repr_and_pickling_never_show_the_token() -> None:
    hs = HubSpot("pat-na1-very-secret", base_url="http://127.0.0.1:9")
    assert "secret" not in repr(hs)
    assert repr(hs) == "HubSpot(base_url='http://127.0.0.1:9')"
    with pytest.raises(TypeError, match="create it inside the worker") as info:
        pickle.dumps(hs)
    assert "secret" not in str(info.value)


def test_threads_share_one_client_concurrently() -> None:
    """The GIL is released during the request: the fake sees the requests overlap."""
    threads_n, per_thread = 8, 5
    with FakeHubSpot(latency=0.05) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        errors: list[BaseException] = []
        barrier = threading.Barrier(threads_n)

        def work(t: int) -> None:
            try:
                barrier.wait()
                for i in range(per_thread):
                    hs.create_or_update(f"t{t}-{i}@example.com", {"firstname": f"T{t}"})
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert fake.request_count == threads_n * per_thread
        assert len(fake.contacts) == threads_n * per_thread
        # Held GIL would serialise them (peak 1), and would in fact deadlock this in-process fake.
        assert fake.peak_in_flight >= threads_n // 2


def test_loopback_never_goes_through_a_proxy(
    fake: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    hs = HubSpot(fake.token, base_url=fake.url, timeout=5)
    assert hs.create_or_update("ada@example.com").is_new


def test_the_base_url_comes_from_the_environment(
    fake: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBSPOT_BASE_URL", fake.url)
    hs = HubSpot(fake.token)
    assert hs.base_url == fake.url
    assert hs.create_or_update("ada@example.com").is_new
    monkeypatch.delenv("HUBSPOT_BASE_URL")
    assert HubSpot(fake.token).base_url == "https://api.hubapi.com"


def test_close_and_the_context_manager(fake: FakeHubSpot) -> None:
    with HubSpot(fake.token, base_url=fake.url) as hs:
        hs.create_or_update("a@example.com")
        # A connection goes back to the pool a moment after its answer is read: a call made
        # at once may open another (on a loaded machine), one made a little later reuses it.
        time.sleep(0.3)
        hs.create_or_update("b@example.com")
        assert fake.connections_opened == 1  # one pooled connection
    # Closed on leaving the block; still usable: the next call opens a connection again.
    assert hs.create_or_update("c@example.com").is_new
    assert fake.connections_opened == 2
    hs.close()
    hs.close()  # twice is fine
    assert len(fake.contacts) == 3
