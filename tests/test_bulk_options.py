"""A bulk run's options, declared once: every face (the client's contacts methods, each object
type's, sync and async) takes the same names, read and checked by the native options before
any record is read or any request sent."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from hubspot_upsert import AsyncHubSpot, HubSpot
from hubspot_upsert._bulk import CheckOptions, ManyOptions
from hubspot_upsert._native import BulkOptions
from hubspot_upsert._objects import CrmObjects, face
from hubspot_upsert.testing import FakeHubSpot

# What a run takes besides its settings: the caller's objects.
OBJECTS = {"state", "progress", "definitions", "read"}


def rows(n: int) -> list[dict[str, object]]:
    return [{"email": f"p{i}@example.com", "firstname": f"P{i}"} for i in range(n)]


def test_the_declared_options_are_the_native_ones() -> None:
    native = set(inspect.signature(BulkOptions).parameters)
    assert set(ManyOptions.__optional_keys__) - OBJECTS == native
    # check_many takes the settings that decide what a run would send, and its own two.
    check = set(CheckOptions.__optional_keys__)
    assert check - OBJECTS <= native
    assert {"definitions", "read", "state"} <= check
    assert not check & {"progress", "keep", "max_in_flight", "full"}


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"mdoe": "update"}, TypeError, "create_or_update_many.*'mdoe'"),
        ({"mode": "merge"}, ValueError, "mode must be 'upsert', 'update' or 'create', got 'merge'"),
        ({"keep": "some"}, ValueError, "keep must be 'all' or 'failures', got 'some'"),
        ({"max_in_flight": 0}, ValueError, "max_in_flight must be at least 1, got 0"),
        ({"max_in_flight": True}, TypeError, "max_in_flight must be an int, got bool"),
        ({"max_archive": 2}, ValueError, "max_archive must be a share between 0 and 1.*got 2"),
        ({"max_archive": "all"}, TypeError, "max_archive must be a number, got str"),
        ({"fill_empty": [1]}, TypeError, r"fill_empty must name properties \(str\), got int"),
        ({"id_property": " "}, ValueError, "id_property must name a unique property"),
        ({"mode": "create", "id_property": "hs_object_id"}, ValueError, "mode='create'"),
        ({"associate": {"companies": "company_id"}}, TypeError, "associate=.'companies'"),
        ({"associate": {"companies": ("c", "crm_id", " ")}}, ValueError, "label is empty"),
        ({"associate": [("companies", "c", "crm_id")]}, TypeError, "associate must map"),
        ({"mirror": True}, ValueError, "mirror=True needs a sync state"),
    ],
)
def test_a_wrong_option_is_refused_before_anything_is_sent(
    fake: FakeHubSpot, hs: HubSpot, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    read: list[int] = []

    def source() -> Any:
        read.append(1)
        yield from rows(3)

    for target in (hs, hs.contacts):
        with pytest.raises(error, match=match):
            target.create_or_update_many(source(), **options)
    if not {"keep", "max_in_flight"} & set(options):
        with pytest.raises(error, match=match.replace("create_or_update_many", "check_many")):
            hs.check_many(source(), **options)
    assert fake.request_count == 0
    assert read == []
    assert fake.contacts == {}


def test_check_many_refuses_what_only_a_run_takes(fake: FakeHubSpot, hs: HubSpot) -> None:
    for name, value in (("keep", "failures"), ("progress", True), ("max_in_flight", 8)):
        with pytest.raises(TypeError, match=f"check_many.*'{name}'"):
            hs.check_many(rows(2), **{name: value})  # type: ignore[misc]
    with pytest.raises(ValueError, match="state or read=True, not both"):
        hs.check_many(rows(2), read=True, state=":memory:")
    assert fake.request_count == 0


def test_other_object_types_need_their_id_property(fake: FakeHubSpot, hs: HubSpot) -> None:
    companies = hs.objects("companies")
    for call in (
        lambda: companies.create_or_update_many([{"crm_id": "c1"}]),
        lambda: companies.check_many([{"crm_id": "c1"}]),
        lambda: companies.create_or_update("c1", {"name": "C"}),
        lambda: companies.prepare({"crm_id": "c1"}),
    ):
        with pytest.raises(TypeError, match="records of companies are matched on id_property="):
            call()
    assert fake.request_count == 0


def test_contacts_are_one_object_type_like_the_others(fake: FakeHubSpot, hs: HubSpot) -> None:
    contacts = hs.contacts
    assert isinstance(contacts, CrmObjects) and contacts.name == "contacts"
    assert face(hs, "0-1") is hs  # whose methods also take email_field
    first = contacts.create_or_update_many(rows(150))
    assert (first.created, first.updated) == (150, 0)
    # The client's own method is the contacts' with email_field naming the id's field.
    moved = [{"Mail": r["email"], "firstname": "Q"} for r in rows(150)]
    again = hs.create_or_update_many(moved, "Mail", mode="update")
    assert (again.created, again.updated, again.skipped) == (0, 150, 0)
    assert contacts.prepare(moved[0], id_field="Mail") == hs.prepare(moved[0], "Mail")
    one = contacts.create_or_update("p0@example.com", {"lastname": "Zero"})
    assert not one.is_new and one.vid == fake.contact("p0@example.com").vid  # type: ignore[union-attr]
    assert contacts.check_many(rows(3), read=True).updated == 3
    assert all(r.path.startswith("/crm/") for r in fake.requests)  # nothing on v1


def test_the_async_faces_take_the_same_options(fake: FakeHubSpot) -> None:
    async def main() -> None:
        async with AsyncHubSpot(fake.token, base_url=fake.url) as hs:
            with pytest.raises(TypeError, match=r"create_or_update_many.*'mdoe'"):
                await hs.create_or_update_many(rows(2), mdoe="update")  # type: ignore[call-arg]
            with pytest.raises(ValueError, match="keep must be"):
                await hs.contacts.create_or_update_many(rows(2), keep="some")  # type: ignore[typeddict-item]
            assert fake.request_count == 0
            done = await hs.create_or_update_many(rows(120), max_in_flight=2, keep="failures")
            assert (done.created, len(list(done))) == (120, 0)
            checked = await hs.check_many(rows(2), read=True)
            assert checked.updated == 2

    asyncio.run(main())
