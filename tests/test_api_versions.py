"""HubSpot's date-versioned API: what each ``api_version`` setting calls, and that errors,
conflicts and rate limits read the same on every path."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import hubspot_upsert as hu
from hubspot_upsert import HubSpot
from hubspot_upsert.testing import API_VERSIONS, FakeHubSpot, ScriptedResponse

from .conftest import EXTRA_PROPERTIES

V1 = "/contacts/v1/contact/createOrUpdate/email/"


@pytest.fixture
def fake() -> Any:
    with FakeHubSpot(extra_properties=EXTRA_PROPERTIES) as server:
        yield server


def paths(fake: FakeHubSpot) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests]


def test_the_default_single_and_bulk_on_the_newest_date(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url)
    hs.create_or_update("ada@example.com")
    hs.create_or_update_many([{"email": "bob@example.com"}])
    assert paths(fake) == [
        "POST /crm/objects/2026-09/contacts/batch/upsert",
        "GET /crm/properties/2026-09/contacts",
        "POST /crm/objects/2026-09/contacts/batch/upsert",
    ]
    assert API_VERSIONS[-1] == "2026-09"


@pytest.mark.parametrize("version", ["2026-03", "2026-09"])
def test_a_date_version_moves_both(fake: FakeHubSpot, version: str) -> None:
    hs = HubSpot(fake.token, base_url=fake.url, api_version=version)
    first = hs.create_or_update("ada@example.com", {"firstname": "Ada", "is_customer": True})
    again = hs.create_or_update("ADA@example.com", {"lastname": "Lovelace"})
    assert (first.is_new, again.is_new, again.vid) == (True, False, first.vid)
    assert isinstance(first, hu.UpsertResult) and first.email == "ada@example.com"
    stored = fake.contact("ada@example.com")
    assert stored is not None and stored.vid == first.vid
    assert stored.properties["is_customer"] == "true"
    single = fake.requests[0].json()["inputs"]
    assert single == [
        {
            "id": "ada@example.com",
            "idProperty": "email",
            "objectWriteTraceId": "0",
            "properties": {"firstname": "Ada", "is_customer": "true"},
        }
    ]
    result = hs.create_or_update_many([{"email": "bob@example.com"}])
    assert result.created == 1
    assert paths(fake) == [
        f"POST /crm/objects/{version}/contacts/batch/upsert",
        f"POST /crm/objects/{version}/contacts/batch/upsert",
        f"GET /crm/properties/{version}/contacts",
        f"POST /crm/objects/{version}/contacts/batch/upsert",
    ]


def test_legacy_keeps_the_numbered_paths(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url, api_version="legacy")
    hs.create_or_update("ada@example.com")
    hs.create_or_update_many([{"email": "bob@example.com"}])
    assert paths(fake) == [
        f"POST {V1}ada%40example.com",
        "GET /crm/v3/properties/contacts",
        "POST /crm/v3/objects/contacts/batch/upsert",
    ]


@pytest.mark.parametrize("version", [None, "2026-09", "legacy"])
def test_errors_read_the_same_on_every_path(fake: FakeHubSpot, version: str | None) -> None:
    hs = HubSpot(fake.token, base_url=fake.url, api_version=version, backoff=0.01)
    with pytest.raises(hu.ValidationError) as bad:
        hs.create_or_update("ada@example.com", {"shoe_size": 44})
    assert [(e.name, e.code) for e in bad.value.errors] == [("shoe_size", "PROPERTY_DOESNT_EXIST")]
    assert bad.value.status == 400 and bad.value.correlation_id

    owner = hs.create_or_update("taken@example.com")
    hs.create_or_update("grace@example.com")
    with pytest.raises(hu.EmailConflictError) as conflict:
        hs.create_or_update("grace@example.com", {"email": "taken@example.com"})
    assert conflict.value.existing_vid == owner.vid
    assert conflict.value.email == "taken@example.com"
    assert conflict.value.status == 409

    fake.script(
        ScriptedResponse(
            429,
            {"status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"},
            headers={"Retry-After": "0.05"},
        )
    )
    assert hs.create_or_update("ada@example.com").is_new
    assert fake.status_counts[429] == 1


def test_a_version_hubspot_does_not_serve_names_the_setting(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url, api_version="2027-03")
    with pytest.raises(hu.NotFoundError) as single:
        hs.create_or_update("ada@example.com")
    message = str(single.value)
    assert "'2027-03'" in message and "api_version" in message and "legacy" in message
    with pytest.raises(hu.NotFoundError) as bulk:
        hs.create_or_update_many([{"email": "ada@example.com"}])
    assert "'2027-03'" in str(bulk.value)
    assert bulk.value.bulk_result.failed == 1  # type: ignore[attr-defined]
    assert not fake.contacts


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("2025-09", "older than HubSpot's first date version, 2026-03"),
        ("2026-9", "'legacy' or a date version"),
        ("v3", "'legacy' or a date version"),
        ("2026-13", "'legacy' or a date version"),
    ],
)
def test_the_setting_is_checked(value: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HubSpot("pat-na1-x", base_url="http://127.0.0.1:9", api_version=value)


def test_the_paths_are_logged_once_per_process(
    fake: FakeHubSpot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hubspot_upsert")
    hs = HubSpot(fake.token, base_url=fake.url, api_version="2026-03")
    hs.create_or_update("a@example.com")
    hs.create_or_update("b@example.com")
    HubSpot(fake.token, base_url=fake.url, api_version="2026-03").create_or_update("c@example.com")
    lines = [r.getMessage() for r in caplog.records if "HubSpot API paths" in r.getMessage()]
    assert len(lines) <= 1  # another test in this process may have said it already
    if lines:
        assert "/crm/objects/2026-03/contacts/batch/upsert" in lines[0]


def test_the_official_client_and_hubspot_sdk_work_against_the_fake(fake: FakeHubSpot) -> None:
    """Unmodified peers: hubspot-api-client calls v3, hubspot-sdk the 2026-03 path."""
    hubspot = pytest.importorskip("hubspot")
    contacts = pytest.importorskip("hubspot.crm.contacts")
    hubspot_sdk = pytest.importorskip("hubspot_sdk")
    official = hubspot.HubSpot(access_token=fake.token, host=fake.url)
    one = contacts.SimplePublicObjectBatchInputUpsert(
        id="ada@example.com", id_property="email", properties={"firstname": "Ada"}
    )
    answer = official.crm.contacts.batch_api.upsert(
        batch_input_simple_public_object_batch_input_upsert=(
            contacts.BatchInputSimplePublicObjectBatchInputUpsert(inputs=[one])
        )
    )
    assert answer.results[0].id == str(fake.contact("ada@example.com").vid)  # type: ignore[union-attr]
    sdk = hubspot_sdk.HubSpot(access_token=fake.token, base_url=fake.url)
    sdk.crm.objects.contacts.batch.upsert(
        inputs=[{"id": "bob@example.com", "idProperty": "email", "properties": {"lastname": "B"}}]
    )
    stored = fake.contact("bob@example.com")
    assert stored is not None and stored.properties["lastname"] == "B"
    assert [r.path for r in fake.requests] == [
        "/crm/v3/objects/contacts/batch/upsert",
        "/crm/objects/2026-03/contacts/batch/upsert",
    ]
