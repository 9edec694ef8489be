"""Every error class, with its attributes, raised through the public API against the fake."""

from __future__ import annotations

import pickle
import socket
import traceback

import pytest

import hubspot_upsert as hu
from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot, ScriptedResponse


def assert_no_token(error: BaseException, token: str) -> None:
    text = "".join(traceback.format_exception(error))
    assert token not in text
    assert token not in repr(error)
    assert token not in repr(getattr(error, "body", None))


def test_validation_error_lists_each_rejected_value(hs: HubSpot, fake: FakeHubSpot) -> None:
    with pytest.raises(hu.ValidationError) as info:
        hs.create_or_update(
            "ada@example.com",
            {"shoe_size": 44, "lifecyclestage": "champion", "is_customer": "yes", "score": "1e5"},
        )
    e = info.value
    assert e.status == 400
    # HubSpot's batch answer names one value; the definitions, read once, show the others,
    # after it, in the record's order.
    named = e.errors[0]
    assert (named.name, named.code) == ("is_customer", "INVALID_OPTION")
    assert e.body["errors"][0]["context"]["propertyName"] == ["is_customer"]
    assert [(f.name, f.code) for f in e.errors[1:]] == [
        ("shoe_size", "PROPERTY_DOESNT_EXIST"),
        ("lifecyclestage", "INVALID_OPTION"),
        ("score", "INVALID_INTEGER"),
    ]
    assert all(isinstance(f, hu.FieldError) and f.message for f in e.errors)
    assert e.correlation_id and e.correlation_id in str(e)
    assert "shoe_size PROPERTY_DOESNT_EXIST" in str(e) and "also refuse" in str(e)
    assert [r.method for r in fake.requests] == ["POST", "GET"]
    assert fake.contacts == {}
    assert_no_token(e, fake.token)
    # v1 names each itself: nothing more is read.
    legacy = HubSpot(fake.token, base_url=fake.url, api_version="legacy")
    with pytest.raises(hu.ValidationError) as v1:
        legacy.create_or_update("ada@example.com", {"shoe_size": 44, "score": "1e5"})
    assert [f.name for f in v1.value.errors] == ["shoe_size", "score"]
    assert v1.value.body["validationResults"][0]["name"] == "shoe_size"
    assert fake.request_count == 3


def test_invalid_email_at_hubspot(hs: HubSpot) -> None:
    with pytest.raises(hu.ValidationError) as info:
        hs.create_or_update("ada@example.notatld1")
    assert info.value.errors == [
        hu.FieldError("email", "INVALID_EMAIL", "Email address ada@example.notatld1 is invalid")
    ]


def test_date_not_at_midnight_is_invalid_date(hs: HubSpot) -> None:
    import datetime as dt

    when = dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc)
    with pytest.raises(hu.ValidationError) as info:
        hs.create_or_update("ada@example.com", {"signup_date": when})
    assert [f.code for f in info.value.errors] == ["INVALID_DATE"]


def test_wrong_token_is_authentication_error(fake: FakeHubSpot) -> None:
    hs = HubSpot("pat-na1-wrong-secret-token", base_url=fake.url)
    with pytest.raises(hu.AuthenticationError) as info:
        hs.create_or_update("ada@example.com")
    e = info.value
    assert (e.status, e.category) == (401, "INVALID_AUTHENTICATION")
    assert isinstance(e, hu.HubSpotError)
    assert "access token" in str(e)
    assert_no_token(e, "pat-na1-wrong-secret-token")


def test_expired_token(fake: FakeHubSpot) -> None:
    with FakeHubSpot(expired_tokens=["pat-expired-secret"]) as fake:
        hs = HubSpot("pat-expired-secret", base_url=fake.url)
        with pytest.raises(hu.AuthenticationError) as info:
            hs.create_or_update("ada@example.com")
    assert info.value.category == "EXPIRED_AUTHENTICATION"
    assert_no_token(info.value, "pat-expired-secret")


def test_missing_scope_is_permission_denied() -> None:
    with FakeHubSpot(readonly_tokens=["pat-readonly-secret"]) as fake:
        hs = HubSpot("pat-readonly-secret", base_url=fake.url)
        with pytest.raises(hu.PermissionDeniedError) as info:
            hs.create_or_update("ada@example.com")
    e = info.value
    assert (e.status, e.category) == (403, "MISSING_SCOPES")
    assert e.required_scopes == ["crm.objects.contacts.write"]
    assert "crm.objects.contacts.write" in str(e)
    assert_no_token(e, "pat-readonly-secret")


def test_wrong_base_path_is_not_found(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url + "/not-hubspot")
    with pytest.raises(hu.NotFoundError) as info:
        hs.create_or_update("ada@example.com")
    assert info.value.status == 404


@pytest.mark.parametrize("style", ["new", "old"])
def test_email_conflict(style: str) -> None:
    with FakeHubSpot(conflict_style=style) as fake:
        # v1's answer, in both of its styles.
        hs = HubSpot(fake.token, base_url=fake.url, api_version="legacy")
        ada = hs.create_or_update("ada@example.com")
        hs.create_or_update("grace@example.com", {"firstname": "Grace"})
        with pytest.raises(hu.EmailConflictError) as info:
            hs.create_or_update("grace@example.com", {"email": "ADA@example.com"})
        e = info.value
        assert e.status == 409
        assert e.existing_vid == ada.vid
        assert e.email == "ada@example.com"
        assert f"vid {ada.vid}" in str(e)
        assert e.correlation_id and e.correlation_id in str(e)
        assert e.category == ("OBJECT_ALREADY_EXISTS" if style == "new" else None)
        assert e.body["identityProfile"]["vid"] == ada.vid
        grace = fake.contact("grace@example.com")
        assert grace is not None and grace.properties["firstname"] == "Grace"
        assert_no_token(e, fake.token)


def test_email_conflict_on_the_default_batch_of_one(hs: HubSpot, fake: FakeHubSpot) -> None:
    ada = hs.create_or_update("ada@example.com")
    hs.create_or_update("grace@example.com", {"firstname": "Grace"})
    with pytest.raises(hu.EmailConflictError) as info:
        hs.create_or_update("grace@example.com", {"email": "ada@example.com"})
    e = info.value
    assert (e.status, e.existing_vid, e.email) == (409, ada.vid, "ada@example.com")
    assert f"vid {ada.vid}" in str(e) and e.correlation_id in str(e)
    assert fake.requests[-1].path == "/crm/objects/2026-09/contacts/batch/upsert"
    assert fake.request_count == 3, "a conflict reads nothing more"
    assert_no_token(e, fake.token)


def test_conflict_without_profile_reads_the_existing_id_text(
    hs: HubSpot, fake: FakeHubSpot
) -> None:
    fake.script(
        ScriptedResponse(
            409,
            {
                "status": "error",
                "message": "Contact already exists. Existing ID: 2926551",
                "category": "OBJECT_ALREADY_EXISTS",
            },
            headers={"x-hubspot-correlation-id": "from-header"},
        )
    )
    with pytest.raises(hu.EmailConflictError) as info:
        hs.create_or_update("a@example.com", {"email": "b@example.com"})
    assert info.value.existing_vid == 2926551
    assert info.value.email == "b@example.com"
    assert info.value.correlation_id == "from-header"


def test_changing_email_to_a_free_address_moves_the_contact(hs: HubSpot, fake: FakeHubSpot) -> None:
    vid = hs.create_or_update("old@example.com").vid
    assert hs.create_or_update("old@example.com", {"email": "new@example.com"}).vid == vid
    assert fake.contact("old@example.com") is None
    moved = fake.contact("new@example.com")
    assert moved is not None and moved.vid == vid


def test_rate_limited() -> None:
    with FakeHubSpot(rate_limit=1, rate_window=60) as fake:
        HubSpot(fake.token, base_url=fake.url).create_or_update("ada@example.com")
        # A second client has not yet learnt the limit from HubSpot's headers.
        hs = HubSpot(fake.token, base_url=fake.url, max_retries=0)
        with pytest.raises(hu.RateLimitError) as info:
            hs.create_or_update("ada@example.com")
    e = info.value
    assert (e.status, e.policy, e.category) == (429, "TEN_SECONDLY_ROLLING", "RATE_LIMIT")
    assert "rate limit" in str(e)
    assert e.attempts == 1


def test_daily_limit() -> None:
    with FakeHubSpot(daily_limit=1) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        hs.create_or_update("ada@example.com")
        with pytest.raises(hu.RateLimitError) as info:
            hs.create_or_update("ada@example.com")
    assert info.value.policy == "DAILY"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 418])
def test_server_errors(status: int, fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url, max_retries=0)
    page = "<html><body><h1>502 Bad Gateway</h1>\n<p>cloudflare</p></body></html>"
    fake.script(ScriptedResponse(status, page, content_type="text/html"))
    with pytest.raises(hu.ServerError) as info:
        hs.create_or_update("ada@example.com")
    e = info.value
    assert e.status == status
    assert e.body is None
    assert "502 Bad Gateway" in str(e)
    assert "\n" not in str(e)


def test_redirects_are_not_followed(hs: HubSpot, fake: FakeHubSpot) -> None:
    fake.script(ScriptedResponse(302, "", headers={"Location": fake.url + "/elsewhere"}))
    with pytest.raises(hu.ServerError, match="unexpected status 302") as info:
        hs.create_or_update("ada@example.com")
    assert info.value.status == 302
    assert fake.request_count == 1


def test_unreadable_success_is_an_error(hs: HubSpot, fake: FakeHubSpot) -> None:
    fake.script(ScriptedResponse(200, {"vid": "12", "isNew": False}))
    with pytest.raises(hu.HubSpotError, match="not understood") as info:
        hs.create_or_update("ada@example.com")
    assert info.value.status == 200


def test_huge_error_body_is_not_read_whole(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url, max_retries=0)
    fake.script(ScriptedResponse(500, "x" * (5 * 1024 * 1024), content_type="text/plain"))
    with pytest.raises(hu.ServerError) as info:
        hs.create_or_update("ada@example.com")
    assert len(str(info.value)) < 500


def test_connection_refused_is_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hs = HubSpot("pat-na1-refused-secret", base_url=f"http://127.0.0.1:{port}", max_retries=0)
    with pytest.raises(hu.TransportError) as info:
        hs.create_or_update("ada@example.com")
    e = info.value
    assert not isinstance(e, hu.RequestTimeoutError)
    assert e.status is None
    assert "refused" in str(e).lower()
    assert "ada" not in str(e)
    assert_no_token(e, "pat-na1-refused-secret")


def test_slow_answer_is_request_timeout() -> None:
    with FakeHubSpot(latency=1.0) as fake:
        hs = HubSpot(fake.token, base_url=fake.url, timeout=0.2, max_retries=0)
        with pytest.raises(hu.RequestTimeoutError) as info:
            hs.create_or_update("ada@example.com")
    assert isinstance(info.value, hu.TransportError)
    assert "timed out" in str(info.value)
    assert "ada" not in str(info.value)


def test_errors_pickle_with_their_attributes(hs: HubSpot, fake: FakeHubSpot) -> None:
    hs.create_or_update("ada@example.com")
    hs.create_or_update("bob@example.com")
    with pytest.raises(hu.EmailConflictError) as info:
        hs.create_or_update("bob@example.com", {"email": "ada@example.com"})
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is hu.EmailConflictError
    assert (copy.existing_vid, copy.email, copy.status) == (1001, "ada@example.com", 409)
    assert str(copy) == str(info.value)


def test_exception_tree() -> None:
    for cls in (
        hu.ValidationError,
        hu.AuthenticationError,
        hu.PermissionDeniedError,
        hu.NotFoundError,
        hu.EmailConflictError,
        hu.RateLimitError,
        hu.ServerError,
        hu.TransportError,
    ):
        assert issubclass(cls, hu.HubSpotError)
        assert cls.__module__ == "hubspot_upsert"
    assert issubclass(hu.RequestTimeoutError, hu.TransportError)
    assert issubclass(hu.HubSpotError, Exception)
