"""OAuth apps: access tokens got and refreshed at the token endpoint during long runs, against
a FakeHubSpot whose tokens live two seconds."""

from __future__ import annotations

import json
import logging
import urllib.parse
import urllib.request
from typing import Any

import pytest

import hubspot_upsert as hu
from hubspot_upsert import HubSpot, OAuth
from hubspot_upsert.testing import FakeHubSpot, ScriptedResponse

SECRET = "app-secret-4d1f2a9c"
REFRESH = "refresh-7b3e5c0d9a"


def oauth_fake(**kw: Any) -> FakeHubSpot:
    return FakeHubSpot(oauth_clients={"app-1": SECRET}, refresh_tokens=[REFRESH], **kw)


def app() -> OAuth:
    return OAuth("app-1", SECRET, REFRESH)


def test_a_run_that_outlives_several_tokens_lands_every_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    given: list[dict[str, Any]] = []
    caplog.set_level(logging.DEBUG, logger="hubspot_upsert")
    with oauth_fake(token_life=2.0, rate_limit=5, rate_window=1.0, latency=0.1) as fake:
        hs = HubSpot(base_url=fake.url, oauth=app(), on_token=given.append)
        assert hs.rate_limit == (110, 10.0), "public apps' limit until the headers say"
        rows = [{"email": f"o{i}@example.com", "firstname": "O"} for i in range(3_500)]
        result = hs.create_or_update_many(rows)
        assert (result.created, result.failed) == (3_500, 0)
        # 35 batches at 5 a second: about 7 s, three tokens' lives and more.
        assert fake.token_grants >= 4
        # Refreshed ahead of expiry: no request spent on a token known to be expired.
        assert fake.status_counts.get(401, 0) <= fake.token_grants
        assert len(given) == fake.token_grants
        assert set(given[0]) == {"access_token", "refresh_token", "expires_in"}
        assert given[0]["refresh_token"] == REFRESH and given[0]["expires_in"] == 2
        assert hs.rate_limit == (5, 1.0)
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "new OAuth access token" in said
    for secret in (SECRET, REFRESH, *(g["access_token"] for g in given)):
        assert secret not in said


def test_a_token_hubspot_expired_is_refreshed_once_and_the_request_sent_again() -> None:
    with oauth_fake() as fake:
        hs = HubSpot(base_url=fake.url, oauth=app())
        assert hs.create_or_update("a@example.com").is_new
        fake.expire_access_tokens()
        assert not hs.create_or_update("a@example.com", {"firstname": "A"}).is_new
        assert fake.status_counts[401] == 1
        assert fake.token_grants == 2
        paths = [r.path for r in fake.requests]
        assert paths.count("/oauth/2026-03/token") == 2 and "/oauth/v1/token" not in paths
        token_request = next(r for r in fake.requests if r.path == "/oauth/2026-03/token")
        assert "authorization" not in token_request.headers
        form = urllib.parse.parse_qs(token_request.body.decode())
        assert form["grant_type"] == ["refresh_token"] and form["client_id"] == ["app-1"]


def test_the_token_endpoints_own_429_is_waited_out_and_the_refresh_sent_again() -> None:
    with oauth_fake() as fake:
        fake.script(
            ScriptedResponse(
                429,
                {"status": "error", "message": "slow down", "errorType": "RATE_LIMIT"},
                headers={"Retry-After": "0.2"},
            )
        )
        hs = HubSpot(base_url=fake.url, oauth=app())
        assert hs.create_or_update("a@example.com").is_new
        tried = [(r.path, r.status) for r in fake.requests]
        assert tried == [
            ("/oauth/2026-03/token", 429),
            ("/oauth/2026-03/token", 200),
            ("/crm/objects/2026-09/contacts/batch/upsert", 200),
        ]
        assert fake.requests[1].received_at - fake.requests[0].received_at >= 0.2
        assert fake.token_grants == 1


def test_a_revoked_refresh_token_is_a_clear_authentication_error() -> None:
    with oauth_fake() as fake:
        fake.revoke(REFRESH)
        hs = HubSpot(base_url=fake.url, oauth=app())
        with pytest.raises(hu.AuthenticationError, match="refresh token") as raised:
            hs.create_or_update("a@example.com")
        text = str(raised.value) + repr(raised.value)
        # RFC 6749's code and description, as the dated token endpoint answers.
        assert "invalid_grant" in text and "missing or unknown refresh token" in text
        assert raised.value.category == "invalid_grant"
        assert SECRET not in text and REFRESH not in text
        with pytest.raises(hu.AuthenticationError) as bulk:
            hs.create_or_update_many([{"email": f"b{i}@example.com"} for i in range(250)])
        partial = bulk.value.bulk_result  # type: ignore[attr-defined]
        assert partial.failed == partial.total and partial.created == 0
        assert not fake.contacts


def test_a_refresh_token_revoked_mid_run_stops_the_run_with_its_partial_result() -> None:
    with oauth_fake(token_life=1.0, rate_limit=5, rate_window=1.0) as fake:
        hs = HubSpot(base_url=fake.url, oauth=app())

        def revoke_once_some_landed(done: int, _total: int | None) -> None:
            if done >= 500:
                fake.revoke(REFRESH)

        rows = [{"email": f"m{i}@example.com"} for i in range(3_000)]
        with pytest.raises(hu.AuthenticationError) as raised:
            hs.create_or_update_many(rows, progress=revoke_once_some_landed)
        partial = raised.value.bulk_result  # type: ignore[attr-defined]
        assert partial.created >= 500
        assert partial.created + partial.failed == partial.total
        assert len(fake.contacts) == partial.created


def test_credentials_from_the_environment_and_never_in_a_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with oauth_fake() as fake:
        monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
        monkeypatch.setenv("HUBSPOT_CLIENT_ID", "app-1")
        monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", SECRET)
        monkeypatch.setenv("HUBSPOT_REFRESH_TOKEN", REFRESH)
        hs = HubSpot(base_url=fake.url)
        assert hs.create_or_update("env@example.com").is_new
        assert SECRET not in repr(app()) and REFRESH not in repr(app())
        monkeypatch.delenv("HUBSPOT_REFRESH_TOKEN")
        with pytest.raises(ValueError, match="HUBSPOT_REFRESH_TOKEN not set"):
            HubSpot(base_url=fake.url)
        with pytest.raises(ValueError, match="not both"):
            HubSpot("pat-x", base_url=fake.url, oauth=app())
        with pytest.raises(ValueError, match="client_secret is empty"):
            OAuth("app-1", " ", REFRESH)


def test_async_clients_refresh_too() -> None:
    import asyncio

    with oauth_fake(token_life=1.0) as fake:

        async def main() -> int:
            async with hu.AsyncHubSpot(base_url=fake.url, oauth=app()) as ahs:
                first = await ahs.create_or_update("x@example.com")
                await asyncio.sleep(1.1)
                second = await ahs.create_or_update("x@example.com")
                assert first.vid == second.vid
                return fake.token_grants

        assert asyncio.run(main()) == 2
        assert fake.status_counts.get(401, 0) == 0


@pytest.mark.parametrize("path", ["/oauth/2026-03/token", "/oauth/v1/token"])
def test_the_fakes_token_endpoint_takes_an_authorization_code(path: str) -> None:
    with oauth_fake() as fake:
        code = fake.authorization_code()

        def grant(**form: str) -> tuple[int, dict[str, Any]]:
            request = urllib.request.Request(
                fake.url + path,
                data=urllib.parse.urlencode(form).encode(),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            try:
                with urllib.request.urlopen(request) as answer:
                    return answer.status, json.load(answer)
            except urllib.error.HTTPError as e:
                return e.code, json.load(e)

        app_form = {"client_id": "app-1", "client_secret": SECRET}
        status, tokens = grant(grant_type="authorization_code", code=code, **app_form)
        assert status == 200 and tokens["expires_in"] == 1800
        # A code is good once; the refresh token it gave works like any other.
        assert grant(grant_type="authorization_code", code=code, **app_form)[0] == 400
        hs = HubSpot(base_url=fake.url, oauth=OAuth("app-1", SECRET, tokens["refresh_token"]))
        assert hs.create_or_update("code@example.com").is_new
        status, refusal = grant(
            grant_type="refresh_token",
            refresh_token=REFRESH,
            client_id="app-1",
            client_secret="wrong",
        )
        assert status == 400
        if path == "/oauth/v1/token":
            assert refusal["status"] == "BAD_CLIENT_ID"
        else:  # RFC 6749's shape
            assert refusal == {
                "error": "invalid_client",
                "error_description": "missing or unknown client id or secret",
            }
