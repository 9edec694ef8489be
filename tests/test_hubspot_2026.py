"""HubSpot as it is in 2026, against a FakeHubSpot as strict as HubSpot: the owner property,
admins' validation rules, additional emails, partial answers (207, and 2026-09's 200 with
errors), IANA's top-level domains, ISO dates and a lifecycle stage that only moves forward."""

from __future__ import annotations

from typing import Any

import pytest

import hubspot_upsert as hu
from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot

from .conftest import batch_requests


def client(fake: FakeHubSpot, **kw: Any) -> HubSpot:
    return HubSpot(fake.token, base_url=fake.url, **kw)


def reads(fake: FakeHubSpot) -> int:
    return sum(r.path.endswith("/batch/read") for r in fake.requests)


# -- the owner and other enumerations whose options live elsewhere ------------------------------


def test_the_contact_owner_can_be_set_in_bulk() -> None:
    with FakeHubSpot(owners=["52550153", "52550154"]) as fake:
        rows = [
            {"email": f"o{i}@example.com", "hubspot_owner_id": "52550153"} for i in range(1_000)
        ]
        rows[500]["hubspot_owner_id"] = 999  # not an owner: HubSpot says so, and it is learned
        result = client(fake).create_or_update_many(rows)
        assert (result.created, result.failed) == (999, 1)
        (failure,) = result.failures
        assert failure.index == 500 and failure.code == "INVALID_OWNER_ID"
        assert fake.contact("o1@example.com").properties["hubspot_owner_id"] == "52550153"  # type: ignore[union-attr]
        assert len(batch_requests(fake)) <= 10 + 2
        # The definition lists no options: the client's own check lets owner ids through.
        assert client(fake).check_many(rows).failed == 0


# -- validation rules (2026-09) -----------------------------------------------------------------


def test_a_required_property_costs_reads_not_a_request_per_record() -> None:
    """2,000 records, half lacking firstname, which the portal requires on new contacts; 100
    of those lacking it exist already (an update does not need it)."""
    with FakeHubSpot(required_on_create=["firstname"]) as fake:
        hs = client(fake)
        existing = [f"r{i}@example.com" for i in range(1, 2_000, 20)]
        hs.create_or_update_many([{"email": e, "firstname": "Was"} for e in existing])
        before_upserts, before_reads = len(batch_requests(fake)), reads(fake)
        rows = [
            {"email": f"r{i}@example.com", **({"firstname": "F"} if i % 2 == 0 else {})}
            for i in range(2_000)
        ]
        result = hs.create_or_update_many(rows)
        assert result.failed == 900
        assert {f.code for f in result.failures} == {"MISSING_REQUIRED_PROPERTY"}
        assert all(f.index % 2 == 1 for f in result.failures)
        assert "firstname" in result.failures[0].message
        assert fake.contact("r21@example.com").properties["firstname"] == "Was"  # type: ignore[union-attr]
        assert fake.contact("r3@example.com") is None
        good = result.created + result.updated
        assert good == 1_100
        upserts = len(batch_requests(fake)) - before_upserts
        # ceil(1,100 / 100) upserts and the one refused that taught the cause (before: 2,043);
        # whether the 1,000 lacking it exist is read, 100 addresses a request.
        assert upserts <= 11 + 3, upserts
        assert reads(fake) - before_reads == 10


def test_rules_apply_from_2026_09_only() -> None:
    with FakeHubSpot(required_on_create=["firstname"]) as fake:
        old = client(fake, api_version="2026-03")
        assert old.create_or_update_many([{"email": "a@example.com"}]).created == 1
        with pytest.raises(hu.ValidationError) as info:
            client(fake, api_version="2026-09").create_or_update("b@example.com", {"city": "X"})
        assert info.value.errors[0].code == "MISSING_REQUIRED_PROPERTY"
        assert info.value.errors[0].name == "firstname"


def test_a_conditional_rule_fails_the_records_it_concerns() -> None:
    rule = ("lifecyclestage", "customer", "company")
    with FakeHubSpot(conditional_rules=[rule]) as fake:
        rows: list[dict[str, Any]] = [{"email": f"c{i}@example.com"} for i in range(300)]
        for i in range(0, 300, 30):
            rows[i]["lifecyclestage"] = "customer"  # without a company: refused
        rows[60]["company"] = "Acme"  # this one has it
        result = client(fake).create_or_update_many(rows)
        assert result.failed == 9
        assert {f.code for f in result.failures} == {"MISSING_CONDITIONAL_REQUIRED_PROPERTY"}
        assert fake.contact("c60@example.com") is not None
        assert len(batch_requests(fake)) < 3 + 2 * 9 * 8


# -- additional emails --------------------------------------------------------------------------


def test_an_additional_address_matches_without_becoming_the_primary_one(
    fake: FakeHubSpot,
) -> None:
    hs = client(fake)
    hs.create_or_update_many(
        [{"email": "ada@example.com", "hs_additional_emails": "ada.l@example.org"}]
    )
    ada = fake.contact("ada@example.com")
    assert ada is not None and fake.contact("ada.l@example.org") == ada
    result = hs.create_or_update_many([{"email": "ada.l@example.org", "firstname": "Ada"}])
    (landed,) = list(result)
    assert not landed.is_new and landed.vid == ada.vid  # type: ignore[union-attr]
    stored = fake.contact("ada@example.com")
    assert stored is not None and stored.properties["firstname"] == "Ada"
    assert stored.email == "ada@example.com"  # the primary address stays
    sent = batch_requests(fake)[-1].json()["inputs"][0]
    assert "email" not in sent["properties"]
    # A second contact with someone's additional address: 409.
    with pytest.raises(hu.EmailConflictError):
        hs.create_or_update("grace@example.com", {"email": "ada.l@example.org"})
    # A record that sets email itself still sends it (it moves the contact's address).
    hs.create_or_update_many([{"email": "ada@example.com", "firstname": "A"}])
    assert "email" not in batch_requests(fake)[-1].json()["inputs"][0]["properties"]


# -- partial answers ----------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "status"), [("2026-03", 207), ("2026-09", 200)])
def test_partial_answers_give_each_refused_input_its_code(version: str, status: int) -> None:
    with FakeHubSpot(partial_answers=True) as fake:
        rows: list[dict[str, Any]] = [{"email": f"p{i}@example.com"} for i in range(250)]
        rows[7]["lifecyclestage"] = "bogus"
        rows[120]["lifecyclestage"] = "bogus"
        rows[200]["hs_lead_status"] = "nope"
        result = client(fake, api_version=version).create_or_update_many(rows)
        assert (result.created, result.failed) == (247, 3)
        assert {f.index: f.code for f in result.failures} == {
            7: "INVALID_OPTION",
            120: "INVALID_OPTION",
            200: "INVALID_OPTION",
        }
        single = client(fake, api_version=version)
        fake.properties_scope = False  # HubSpot's answer decides, not the definitions
        with pytest.raises(hu.ValidationError) as info:
            single.create_or_update("q@example.com", {"lifecyclestage": "bogus"})
        assert info.value.status == status
        assert info.value.errors[0].code == "INVALID_OPTION"


def test_partial_answers_without_the_definitions() -> None:
    with FakeHubSpot(partial_answers=True, properties_scope=False) as fake:
        rows: list[dict[str, Any]] = [{"email": f"p{i}@example.com"} for i in range(300)]
        for i in (5, 150, 299):
            rows[i]["lifecyclestage"] = "bogus"
        result = client(fake).create_or_update_many(rows)
        assert (result.created, result.failed) == (297, 3)
        assert {f.code for f in result.failures} == {"INVALID_OPTION"}
        # Each batch is answered once: nothing is split or sent again.
        assert len(batch_requests(fake)) == 3


# -- what the fake accepts and refuses, as HubSpot does -----------------------------------------


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("a@b.vegas", True),
        ("a@b.photography", True),
        ("a@b.com", True),
        ("a@b.xn--p1ai", True),  # .рф
        ("a@b.рф", True),
        ("a@b.test", False),
        ("a@b.example", False),
        ("a@b.ik", False),
    ],
)
def test_addresses_need_one_of_iana_s_top_level_domains(
    fake: FakeHubSpot, address: str, ok: bool
) -> None:
    hs = client(fake)
    if ok:
        assert hs.create_or_update(address).is_new
    else:
        with pytest.raises(hu.ValidationError) as info:
            hs.create_or_update(address)
        assert info.value.errors[0].code == "INVALID_EMAIL"


@pytest.mark.parametrize(
    ("prop", "value", "ok"),
    [
        ("signup_date", "2020-02-29", True),
        ("signup_date", "2020-02-29T00:00:00.000Z", True),
        ("signup_date", "2020-02-29T03:30:17.000Z", False),
        ("last_seen", "2020-02-29T03:30:17.000Z", True),
        ("last_seen", "2020-02-29", True),
        ("last_seen", "29/02/2020", False),
    ],
)
def test_iso_dates_are_accepted(fake: FakeHubSpot, prop: str, value: str, ok: bool) -> None:
    hs = client(fake, api_version="2026-09")
    if ok:
        hs.create_or_update("d@example.com", {prop: value})
        assert fake.contact("d@example.com").properties[prop] == value  # type: ignore[union-attr]
    else:
        with pytest.raises((hu.ValidationError, ValueError)):
            hs.create_or_update("d@example.com", {prop: value})


def test_the_lifecycle_stage_only_moves_forward(fake: FakeHubSpot) -> None:
    hs = client(fake)
    hs.create_or_update("l@example.com", {"lifecyclestage": "customer"})
    hs.create_or_update("l@example.com", {"lifecyclestage": "lead"})  # accepted, not applied
    assert fake.contact("l@example.com").properties["lifecyclestage"] == "customer"  # type: ignore[union-attr]
    hs.create_or_update("l@example.com", {"lifecyclestage": ""})  # cleared first
    hs.create_or_update("l@example.com", {"lifecyclestage": "lead"})
    assert fake.contact("l@example.com").properties["lifecyclestage"] == "lead"  # type: ignore[union-attr]


def test_the_object_type_id_in_date_versioned_paths(fake: FakeHubSpot) -> None:
    import json
    import urllib.request

    body = {"inputs": [{"id": "t@example.com", "idProperty": "email", "properties": {}}]}
    request = urllib.request.Request(
        f"{fake.url}/crm/objects/2026-09/0-1/batch/upsert",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {fake.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 200
    assert fake.contact("t@example.com") is not None
