"""Matching on a unique property or on HubSpot's own id, and the sync modes (update only,
create only, fill empty fields), through the public API against a FakeHubSpot that keeps
unique values unique and refuses to match on anything else, as HubSpot does."""

from __future__ import annotations

import asyncio
import collections
import json
import urllib.request
from typing import Any

import pytest

import hubspot_upsert as hu
from hubspot_upsert import AsyncHubSpot, HubSpot
from hubspot_upsert.testing import FakeHubSpot


def client(fake: FakeHubSpot, **kw: Any) -> HubSpot:
    return HubSpot(fake.token, base_url=fake.url, **kw)


def calls(fake: FakeHubSpot, since: int = 0) -> collections.Counter[str]:
    """Requests by kind (upsert, update, read, properties), from the ``since``-th on."""
    kinds: collections.Counter[str] = collections.Counter()
    for r in fake.requests[since:]:
        path = r.path.partition("?")[0].rstrip("/")
        kinds[path.rsplit("/", 1)[-1] if "/batch/" in path else "properties"] += 1
    return kinds


def seed(fake: FakeHubSpot, rows: list[dict[str, Any]], **kw: Any) -> int:
    """Stores these contacts; returns how many requests the fake has seen."""
    client(fake).create_or_update_many(rows, **kw).raise_for_errors()
    return fake.request_count


def test_records_match_on_a_unique_property_and_need_no_address() -> None:
    with FakeHubSpot(unique_properties=["external_id"]) as fake:
        hs = client(fake)
        rows = [{"external_id": f"crm-{i}", "firstname": f"F{i}"} for i in range(150)]
        rows[3]["email"] = "three@example.com"
        result = hs.create_or_update_many(rows, id_property="external_id")
        assert (result.created, result.updated, result.failed, result.skipped) == (150, 0, 0, 0)
        first = result[0]
        assert isinstance(first, hu.UpsertResult)
        assert (first.id, first.id_property, first.email) == ("crm-0", "external_id", None)
        assert result[3].email == "three@example.com"  # type: ignore[union-attr]
        stored = fake.contact("crm-7", by="external_id")
        assert stored is not None and stored.properties["firstname"] == "F7"
        assert "email" not in stored.properties
        assert fake.contact("three@example.com") is not None
        # An upsert run reads nothing: definitions, then one request per 100 records.
        assert calls(fake) == {"properties": 1, "upsert": 2}
        again = hs.create_or_update_many(
            [{"external_id": "crm-7", "firstname": "Seven"}], id_property="external_id"
        )
        assert (again.created, again.updated) == (0, 1)
        assert again[0].vid == stored.vid  # type: ignore[union-attr]


def test_ids_from_a_column_of_another_name_and_whole_numbers() -> None:
    with FakeHubSpot(unique_properties=["external_id"]) as fake:
        rows = [{"id": 10 + i, "lastname": "L"} for i in range(3)]
        result = client(fake).create_or_update_many(rows, id_property="external_id", id_field="id")
        assert result.created == 3
        stored = fake.contact("11", by="external_id")
        assert stored is not None and "id" not in stored.properties


def test_a_property_that_is_not_unique_is_refused_before_any_write() -> None:
    with FakeHubSpot() as fake:
        with pytest.raises(ValueError, match="'firstname' is not a unique property") as raised:
            client(fake).create_or_update_many(
                [{"firstname": "Ada", "lastname": "L"}], id_property="firstname"
            )
        assert calls(fake) == {"properties": 1}
        bulk_result = raised.value.bulk_result  # type: ignore[attr-defined]
        assert bulk_result.failed == 1 and bulk_result.failures[0].code == "NOT_SENT"
        with pytest.raises(ValueError, match="no contact property 'nope'"):
            client(fake).create_or_update_many([{"nope": "1"}], id_property="nope")


def test_hubspot_refuses_a_non_unique_property_when_definitions_cannot_be_read() -> None:
    with FakeHubSpot(properties_scope=False) as fake:
        with pytest.raises(hu.ValidationError, match="non-unique") as raised:
            client(fake).create_or_update_many(
                [{"firstname": f"A{i}"} for i in range(250)], id_property="firstname"
            )
        # The run stops at HubSpot's first refusal: it can land no batch.
        assert calls(fake)["upsert"] == 1
        stopped = raised.value.bulk_result  # type: ignore[attr-defined]
        assert stopped.failed == stopped.total > 0


def test_update_only_skips_contacts_that_do_not_exist() -> None:
    with FakeHubSpot() as fake:
        n = seed(
            fake, [{"email": f"u{i}@example.com", "lastname": "Old"} for i in range(0, 150, 5)]
        )
        rows = [{"email": f"u{i}@example.com", "lastname": "New"} for i in range(150)]
        result = client(fake).create_or_update_many(rows, mode="update")
        assert (result.created, result.updated, result.skipped, result.failed) == (0, 30, 120, 0)
        assert len(fake.contacts) == 30
        assert fake.contact("u5@example.com").properties["lastname"] == "New"  # type: ignore[union-attr]
        skipped = result[1]
        assert isinstance(skipped, hu.SkippedRecord)
        assert (skipped.index, skipped.id, skipped.code) == (1, "u1@example.com", "NOT_FOUND")
        assert len(result.skips) == 120 and "updates only" in str(skipped)
        # ceil(150/100) reads, ceil(30/100) writes, by HubSpot's ids: nothing can be created.
        assert calls(fake, n) == {"properties": 1, "read": 2, "update": 1}
        assert "skipped=120" in repr(result)


@pytest.mark.parametrize("by", ["email", "hs_object_id"])
def test_update_results_that_name_records_by_id_only_land_every_record(by: str) -> None:
    """HubSpot's spec marks the ``objectWriteTraceId`` echo optional: results of a batch
    update that name each record by the HubSpot id it was sent with, and echo nothing else
    (the address was not written), still land each record once."""
    with FakeHubSpot(update_trace_ids=False) as fake:
        n = seed(fake, [{"email": f"t{i}@example.com", "lastname": "Old"} for i in range(250)])
        vids = {c.properties["email"]: c.vid for c in fake.contacts.values()}
        if by == "email":
            rows: list[dict[str, Any]] = [
                {"email": f"t{i}@example.com", "lastname": f"New{i}"} for i in range(250)
            ]
        else:
            rows = [
                {"hs_object_id": vids[f"t{i}@example.com"], "lastname": f"New{i}"}
                for i in range(250)
            ]
        result = client(fake).create_or_update_many(rows, id_property=by, mode="update")
        assert (result.updated, result.created, result.failed, result.skipped) == (250, 0, 0, 0)
        for i in (0, 137, 249):
            landed = result[i]
            assert isinstance(landed, hu.UpsertResult)
            assert landed.vid == vids[f"t{i}@example.com"]
            stored = fake.contact(f"t{i}@example.com")
            assert stored is not None and stored.properties["lastname"] == f"New{i}"
        assert calls(fake, n)["update"] == 3
        # The answers named no trace id: as sent by hand, one comes back without it.
        body = {
            "inputs": [
                {
                    "id": str(vids["t0@example.com"]),
                    "objectWriteTraceId": "7",
                    "properties": {"lastname": "Raw"},
                }
            ]
        }
        request = urllib.request.Request(
            f"{fake.url}/crm/objects/2026-03/contacts/batch/update",
            data=json.dumps(body).encode(),
            headers={"authorization": f"Bearer {fake.token}", "content-type": "application/json"},
        )
        with urllib.request.urlopen(request) as answer:
            (one,) = json.load(answer)["results"]
        assert one["id"] == str(vids["t0@example.com"]) and "objectWriteTraceId" not in one


def test_create_only_leaves_existing_contacts_alone() -> None:
    with FakeHubSpot() as fake:
        n = seed(
            fake, [{"email": f"c{i}@example.com", "lastname": "Kept"} for i in range(0, 150, 5)]
        )
        rows = [{"email": f"C{i}@example.com", "lastname": "New"} for i in range(150)]
        result = client(fake).create_or_update_many(rows, mode="create")
        assert (result.created, result.updated, result.skipped) == (120, 0, 30)
        assert fake.contact("c5@example.com").properties["lastname"] == "Kept"  # type: ignore[union-attr]
        assert {s.code for s in result.skips} == {"EXISTS"}
        assert calls(fake, n) == {"properties": 1, "read": 2, "upsert": 2}


def test_fill_empty_writes_only_where_hubspot_has_no_value() -> None:
    with FakeHubSpot() as fake:
        seed(
            fake,
            [
                {"email": "full@example.com", "phone": "111", "lastname": "Rep"},
                {"email": "bare@example.com", "lastname": "Rep"},
            ],
        )
        rows = [
            {"email": "full@example.com", "phone": "999", "lastname": "Sync", "city": "Oslo"},
            {"email": "bare@example.com", "phone": "999", "lastname": "Sync"},
            {"email": "new@example.com", "phone": "999", "lastname": "Sync"},
        ]
        result = client(fake).create_or_update_many(rows, fill_empty=["phone"])
        assert (result.created, result.updated, result.skipped) == (1, 2, 0)
        full = fake.contact("full@example.com").properties  # type: ignore[union-attr]
        assert (full["phone"], full["lastname"], full["city"]) == ("111", "Sync", "Oslo")
        bare = fake.contact("bare@example.com").properties  # type: ignore[union-attr]
        assert bare["phone"] == "999"
        read = next(r for r in fake.requests if r.path.endswith("/batch/read")).json()
        assert "phone" in read["properties"]

        n = fake.request_count
        every = client(fake).create_or_update_many(
            [{"email": "full@example.com", "phone": "0", "lastname": "X"}], fill_empty=True
        )
        assert (every.updated, every.skipped) == (0, 1)
        assert every.skips[0].code == "NOTHING_TO_FILL"
        assert fake.contact("full@example.com").properties["lastname"] == "Sync"  # type: ignore[union-attr]
        assert calls(fake, n) == {"properties": 1, "read": 1}


def test_records_addressed_by_hubspot_id_are_updated_never_created() -> None:
    with FakeHubSpot() as fake:
        n = seed(fake, [{"email": f"h{i}@example.com"} for i in range(3)])
        vids = {c.vid for c in fake.contacts.values()}
        rows = [{"hs_object_id": vid, "lastname": "ById"} for vid in sorted(vids)]
        rows.append({"hs_object_id": "999999", "lastname": "Nobody"})
        result = client(fake).create_or_update_many(rows, id_property="hs_object_id")
        assert (result.updated, result.created, result.failed) == (3, 0, 1)
        assert "not exist" in str(result.failures[0].error)
        assert len(fake.contacts) == 3
        assert calls(fake, n) == {"properties": 1, "update": 1}
        # Update only: a read first, the unknown id skipped instead of failed.
        only = client(fake).create_or_update_many(rows, id_property="hs_object_id", mode="update")
        assert (only.updated, only.skipped, only.failed) == (3, 1, 0)
        with pytest.raises(ValueError, match="hs_object_id"):
            client(fake).create_or_update_many(rows, id_property="hs_object_id", mode="create")
        bad = client(fake).create_or_update_many(
            [{"hs_object_id": "12a"}], id_property="hs_object_id"
        )
        assert bad.failed == 1 and "positive whole number" in str(bad.failures[0].error)


def test_single_upserts_by_a_unique_property_and_by_hubspot_id() -> None:
    with FakeHubSpot(unique_properties=["external_id"]) as fake:
        hs = client(fake)
        made = hs.create_or_update("crm-1", {"firstname": "Ada"}, id_property="external_id")
        assert made.is_new and (made.id, made.email) == ("crm-1", None)
        again = hs.create_or_update(
            "crm-1", {"email": "ada@example.com"}, id_property="external_id"
        )
        assert (again.vid, again.is_new, again.email) == (made.vid, False, "ada@example.com")
        by_vid = hs.create_or_update(made.vid, {"lastname": "L"}, id_property="hs_object_id")
        assert (by_vid.vid, by_vid.is_new) == (made.vid, False)
        assert fake.contact("ada@example.com").properties["lastname"] == "L"  # type: ignore[union-attr]
        with pytest.raises(hu.HubSpotError):
            hs.create_or_update(424242, {"lastname": "L"}, id_property="hs_object_id")
        with pytest.raises(hu.ValidationError, match="non-unique"):
            hs.create_or_update("x", {"lastname": "L"}, id_property="lastname")

        async def main() -> hu.UpsertResult:
            async with AsyncHubSpot(fake.token, base_url=fake.url) as ahs:
                return await ahs.create_or_update(
                    "crm-2", {"firstname": "B"}, id_property="external_id"
                )

        assert asyncio.run(main()).is_new
        assert repr(made).endswith("id='crm-1', id_property='external_id')")
        assert hu.UpsertResult(1, True, "a@example.com").id == "a@example.com"


def test_a_unique_value_owned_by_another_contact_is_refused() -> None:
    with FakeHubSpot(unique_properties=["external_id"]) as fake:
        seed(fake, [{"email": "a@example.com", "external_id": "crm-1"}])
        result = client(fake).create_or_update_many(
            [
                {"email": "b@example.com", "external_id": "crm-1"},
                {"email": "c@example.com", "external_id": "crm-3"},
            ]
        )
        assert (result.created, result.failed) == (1, 1)
        assert "already exists" in str(result.failures[0].error)


def test_async_runs_take_the_same_settings() -> None:
    with FakeHubSpot() as fake:
        seed(fake, [{"email": "x@example.com"}])

        async def main() -> hu.BulkResult:
            async with AsyncHubSpot(fake.token, base_url=fake.url) as ahs:
                return await ahs.create_or_update_many(
                    [{"email": "x@example.com", "lastname": "A"}, {"email": "y@example.com"}],
                    mode="update",
                )

        result = asyncio.run(main())
        assert (result.updated, result.skipped) == (1, 1)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"mode": "merge"}, "mode must be"),
        ({"fill_empty": 3}, "fill_empty must be"),
        ({"fill_empty": [""]}, "fill_empty must name"),
        ({"id_property": " "}, "id_property must name"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_sent(kw: dict[str, Any], message: str) -> None:
    with FakeHubSpot() as fake:
        with pytest.raises((ValueError, TypeError), match=message):
            client(fake).create_or_update_many([{"email": "a@example.com"}], **kw)
        assert fake.request_count == 0


def test_records_named_by_labels_from_python() -> None:
    with FakeHubSpot() as fake:
        hs = client(fake)
        rows = [
            {"Email": "l@example.com", "First Name": "L", "Lead Status": "Attempted to Contact"}
        ]
        assert hs.check_many(rows, labels=True).failed == 0
        assert hs.check_many([{"email": "l@example.com", "First Name": "L"}]).failed == 1
        result = hs.create_or_update_many(rows, labels=True)
        assert result.created == 1
        stored = fake.contact("l@example.com").properties  # type: ignore[union-attr]
        assert (stored["firstname"], stored["hs_lead_status"]) == ("L", "ATTEMPTED_TO_CONTACT")
