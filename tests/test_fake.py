"""FakeHubSpot against the documented wire shapes, spoken to with a plain HTTP client.

These keep the fake honest on its own: the client tests only show that the two agree.
"""

from __future__ import annotations

import http.client
import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from hubspot_upsert.testing import FakeHubSpot, ScriptedResponse

PATH = "/contacts/v1/contact/createOrUpdate/email/"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def call(
    fake: FakeHubSpot,
    path: str,
    body: Any = None,
    *,
    token: str | None = "",
    method: str = "POST",
) -> tuple[int, dict[str, str], Any]:
    parts = urlsplit(fake.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token or fake.token}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request(method, path, body=raw if body is not None else None, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    hdrs = {k.lower(): v for k, v in resp.getheaders()}
    conn.close()
    if not data:
        return resp.status, hdrs, None
    if hdrs["content-type"].startswith("application/json"):
        return resp.status, hdrs, json.loads(data)
    return resp.status, hdrs, data.decode()


def props(**kw: str) -> dict[str, Any]:
    return {"properties": [{"property": k, "value": v} for k, v in kw.items()]}


def test_success_body_and_headers() -> None:
    with FakeHubSpot() as fake:
        status, headers, body = call(fake, PATH + "ada%40example.com", props(firstname="Ada"))
        assert status == 200
        assert body == {"vid": 1001, "isNew": True}
        assert type(body["vid"]) is int and type(body["isNew"]) is bool
        assert headers["content-type"] == "application/json;charset=utf-8"
        assert UUID.match(headers["x-hubspot-correlation-id"])
        # No rate limit configured: no rate-limit headers.
        assert not any(k.startswith("x-hubspot-ratelimit") for k in headers)
        status, _, body = call(fake, PATH + "ADA%40example.com/", props(lastname="L"))
        assert (status, body) == (200, {"vid": 1001, "isNew": False})
        assert call(fake, PATH + "bob%40example.com", {"properties": []})[2]["vid"] == 1002


def test_path_must_be_one_segment() -> None:
    with FakeHubSpot() as fake:
        status, _, body = call(fake, PATH + "a/b%40example.com", props())
        assert status == 404
        assert body["status"] == "error" and UUID.match(body["correlationId"])
        assert call(fake, PATH, props())[0] == 404
        assert call(fake, PATH + "ada%40example.com", method="GET")[0] == 405
        # A query does not change the address.
        assert call(fake, PATH + "ada%40example.com?hapikey=1", props())[0] == 200
        assert fake.contact("ada@example.com") is not None
        assert fake.requests[-1].path == PATH + "ada%40example.com?hapikey=1"


def test_validation_body_shape() -> None:
    with FakeHubSpot() as fake:
        status, _, body = call(fake, PATH + "bad%40nowhere", props(shoe="44"))
        assert status == 400
        assert body["status"] == "error"
        assert body["message"] == "Property values were not valid"
        assert UUID.match(body["correlationId"])
        assert "category" not in body
        results = body["validationResults"]
        assert [(r["isValid"], r["error"], r["name"]) for r in results] == [
            (False, "INVALID_EMAIL", "email"),
            (False, "PROPERTY_DOESNT_EXIST", "shoe"),
        ]
        assert all(isinstance(r["message"], str) for r in results)


def test_malformed_json() -> None:
    with FakeHubSpot() as fake:
        status, _, body = call(fake, PATH + "a%40example.com", b'{"properties": [}')
        assert status == 400
        assert body["message"].startswith("Invalid input JSON on line 1, column 17")
        assert "category" not in body
        assert call(fake, PATH + "a%40example.com", {"properties": [{"property": "x"}]})[0] == 400


def test_auth_failures() -> None:
    with FakeHubSpot(expired_tokens=["old"], readonly_tokens=["ro"]) as fake:
        status, headers, body = call(fake, PATH + "a%40example.com", props(), token=None)
        assert status == 401
        assert body["category"] == "INVALID_AUTHENTICATION"
        assert headers["x-hubspot-auth-failure"] == "401 Unauthorized"
        assert call(fake, PATH + "a%40example.com", props(), token="nope")[0] == 401
        _, _, body = call(fake, PATH + "a%40example.com", props(), token="old")
        assert body["category"] == "EXPIRED_AUTHENTICATION"
        status, _, body = call(fake, PATH + "a%40example.com", props(), token="ro")
        assert status == 403
        assert body["category"] == "MISSING_SCOPES"
        assert body["errors"][0]["context"]["requiredGranularScopes"] == [
            "crm.objects.contacts.write"
        ]
        assert fake.contacts == {}


def test_conflict_body_shapes() -> None:
    for style in ("old", "new"):
        with FakeHubSpot(conflict_style=style) as fake:
            call(fake, PATH + "x%40example.net", props())
            call(fake, PATH + "y%40example.net", props())
            status, _, body = call(fake, PATH + "y%40example.net", props(email="x@example.net"))
            assert status == 409
            assert body["status"] == "error" and body["error"] == "CONTACT_EXISTS"
            profile = body["identityProfile"]
            assert profile["vid"] == 1001 and profile["isContact"] is True
            assert profile["identity"][0] == {
                "value": "x@example.net",
                "type": "EMAIL",
                "timestamp": profile["identity"][0]["timestamp"],
                "isPrimary": True,
            }
            if style == "new":
                assert body["category"] == "OBJECT_ALREADY_EXISTS"
                assert body["message"] == "Contact already exists. Existing ID: 1001"
                assert body["errors"][0]["in"] == "email"
            else:
                assert body["message"] == "Contact already exists"
                assert "category" not in body


def test_rate_limit_headers_and_429_body() -> None:
    with FakeHubSpot(rate_limit=2, rate_window=0.5, daily_limit=100) as fake:
        _, h1, _ = call(fake, PATH + "a%40example.com", props())
        assert h1["x-hubspot-ratelimit-max"] == "2"
        assert h1["x-hubspot-ratelimit-remaining"] == "1"
        assert h1["x-hubspot-ratelimit-interval-milliseconds"] == "500"
        assert h1["x-hubspot-ratelimit-daily"] == "100"
        assert h1["x-hubspot-ratelimit-daily-remaining"] == "99"
        _, h2, _ = call(fake, PATH + "a%40example.com", props())
        assert h2["x-hubspot-ratelimit-remaining"] == "0"
        status, _, body = call(fake, PATH + "a%40example.com", props())
        assert status == 429
        assert body["errorType"] == "RATE_LIMIT"
        assert body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        assert "category" not in body
        time.sleep(0.6)  # the window rolls
        assert call(fake, PATH + "a%40example.com", props())[0] == 200
        assert fake.status_counts == {200: 3, 429: 1}


@pytest.mark.parametrize(
    ("kind", "good", "bad", "code"),
    [
        ("number", "-12.5", "1e5", "INVALID_INTEGER"),
        ("bool", "true", "yes", "INVALID_OPTION"),
        ("date", "1723680000000", "1723680000001", "INVALID_DATE"),
        ("datetime", "2020-02-29T03:30:17.000Z", "yesterday", "INVALID_DATE"),
        (("a", "b"), ";a;b", "c", "INVALID_OPTION"),
    ],
)
def test_typed_properties(kind: Any, good: str, bad: str, code: str) -> None:
    with FakeHubSpot(extra_properties={"p": kind}) as fake:
        assert call(fake, PATH + "a%40example.com", props(p=good))[0] == 200
        status, _, body = call(fake, PATH + "a%40example.com", props(p=bad))
        assert status == 400
        assert body["validationResults"][0]["error"] == code
        assert call(fake, PATH + "a%40example.com", props(p=""))[0] == 200


def test_checkbox_leading_semicolon_appends() -> None:
    with FakeHubSpot(extra_properties={"tags": ("a", "b", "c")}) as fake:
        call(fake, PATH + "a%40example.com", props(tags="a"))
        call(fake, PATH + "a%40example.com", props(tags=";b;c"))
        stored = fake.contact("a@example.com")
        assert stored is not None and stored.properties["tags"] == "a;b;c"


def test_scripted_responses_then_normal_again() -> None:
    with FakeHubSpot() as fake:
        fake.script(
            ScriptedResponse(503, {"status": "error"}),
            ScriptedResponse(502, "<html>", content_type="text/html"),
        )
        assert call(fake, PATH + "a%40example.com", props())[0] == 503
        assert call(fake, "/anything", props())[::2] == (502, "<html>")
        assert call(fake, PATH + "a%40example.com", props())[0] == 200
        assert [r.status for r in fake.requests] == [503, 502, 200]
        # An outage of unknown length: answers scripted ahead, dropped when it ends.
        fake.script(*[ScriptedResponse(503, {"status": "error"})] * 10)
        assert call(fake, PATH + "a%40example.com", props())[0] == 503
        assert fake.unscript() == 9
        assert call(fake, PATH + "a%40example.com", props())[0] == 200


def test_reset_and_lifecycle() -> None:
    fake = FakeHubSpot(token="fixed")
    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.url
    with fake:
        assert fake.token == "fixed"
        call(fake, PATH + "a%40example.com", props())
        fake.reset()
        assert fake.contacts == {} and fake.requests == [] and fake.request_count == 0
        assert call(fake, PATH + "a%40example.com", props())[2] == {"vid": 1001, "isNew": True}


def test_unknown_property_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown type 'text'"):
        FakeHubSpot(extra_properties={"p": "text"})


def test_standalone_server_prints_url_and_token_and_serves() -> None:
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "hubspot_upsert.testing", "--token", "tok-standalone"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" at ")[1].strip()
        assert proc.stdout.readline().strip() == "token: tok-standalone"
        from hubspot_upsert import HubSpot

        assert HubSpot("tok-standalone", base_url=url).create_or_update("a@example.com").is_new
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "stopped after 1 requests, 1 contacts" in err
