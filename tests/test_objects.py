"""Companies, deals, tickets and custom objects through HubSpot.objects(...): the same planner,
values rules, checks and results as contacts, on the object's own paths and definitions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hubspot_upsert import AsyncHubSpot, HubSpot, SkippedRecord, ValidationError
from hubspot_upsert.testing import FakeHubSpot, ScriptedResponse

OBJECTS = {
    "companies": {"unique": ["crm_id"]},
    "deals": {"unique": ["deal_key"]},
    "2-123456": {
        "name": "cars",
        "properties": {"vin": "string", "model": "string"},
        "unique": ["vin"],
    },
}


def paths(fake: FakeHubSpot) -> list[str]:
    return [r.path for r in fake.requests]


def companies(n: int) -> list[dict[str, object]]:
    return [
        {
            "crm_id": f"c{i}",
            "name": f"Company {i}",
            "domain": f"c{i}.example",
            "numberofemployees": i,
        }
        for i in range(n)
    ]


def test_companies_land_on_their_own_paths_matched_on_a_unique_property() -> None:
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        result = hs.objects("companies").create_or_update_many(companies(250), id_property="crm_id")
        assert (result.created, result.failed) == (250, 0)
        assert (
            paths(fake)
            == ["/crm/properties/2026-09/companies"]
            + ["/crm/objects/2026-09/companies/batch/upsert"] * 3
        )
        stored = fake.record("companies", "c7", by="crm_id")
        assert stored is not None and stored.properties["numberofemployees"] == "7"
        assert result[7].vid == stored.vid and result[7].id == "c7" and result[7].email is None
        # Contacts are untouched, and still the default face.
        assert fake.contacts == {}
        again = hs.objects("0-2").create_or_update_many(companies(250), id_property="crm_id")
        assert (again.created, again.updated) == (0, 250)
        # The definitions were read once per object type.
        assert paths(fake).count("/crm/properties/2026-09/companies") == 1


def test_a_property_that_is_not_unique_cannot_match_companies() -> None:
    """HubSpot's companies have no unique property of their own: domain is not one."""
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        with pytest.raises(ValueError, match="'domain' is not a unique property of companies"):
            hs.objects("companies").create_or_update_many(companies(10), id_property="domain")
        # email is no id of a company: a column of that name is an ordinary property.
        with_email = [{**r, "email": f"info@c{i}.example"} for i, r in enumerate(companies(10))]
        with pytest.raises(ValueError, match="companies have no property 'email'"):
            hs.objects("companies").create_or_update_many(with_email, id_property="email")
        assert not any("batch" in p for p in paths(fake))
        with pytest.raises(TypeError):
            hs.objects("companies").create_or_update_many(companies(10))  # type: ignore[call-arg]


def test_columns_the_object_lacks_fail_before_sending_per_object() -> None:
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        rows = [{**r, "firstname": "Ada"} for r in companies(20)]
        result = hs.objects("companies").create_or_update_many(rows, id_property="crm_id")
        assert result.failed == 20
        assert "the portal's companies have no property 'firstname'" in str(
            result.failures[0].error
        )
        assert not any("batch" in p for p in paths(fake))
        # The same column is a contact property: checked against the contacts' definitions.
        assert hs.check_many([{"email": "a@example.com", "firstname": "Ada"}]).failed == 0
        checked = hs.objects("companies").check_many(rows, id_property="crm_id")
        assert checked.failed == 20


def test_an_object_type_the_portal_lacks_stops_the_run_with_hubspots_answer() -> None:
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        with pytest.raises(ValidationError, match="Unable to infer object type from: widgets") as e:
            hs.objects("widgets").create_or_update_many([{"key": "1"}] * 5, id_property="key")
        assert e.value.bulk_result.failed == 5  # type: ignore[attr-defined]
        assert len(fake.requests) == 1
        # Where the definitions cannot tell, the first batch's answer stops the run.
        fake.properties_scope = False
        fake.script(ScriptedResponse(403, {"status": "error", "category": "MISSING_SCOPES"}))
        with pytest.raises(ValidationError, match="Unable to infer object type"):
            hs.objects("gadgets").create_or_update_many(
                [{"key": str(i)} for i in range(300)], id_property="key"
            )
        assert sum("batch" in p for p in paths(fake)) == 1
        with pytest.raises(ValueError, match="object type"):
            hs.objects("cars/../contacts")


def test_custom_objects_by_type_id_or_name_and_deals_by_hubspots_id() -> None:
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        cars = hs.objects("2-123456")
        assert (
            cars.create_or_update_many(
                [{"vin": "V1", "model": "T"}, {"vin": "V2", "model": "S"}], id_property="vin"
            ).created
            == 2
        )
        assert (
            hs.objects("cars").create_or_update("V1", {"model": "X"}, id_property="vin").is_new
            is False
        )
        assert fake.record("2-123456", "V1", by="vin").properties["model"] == "X"  # type: ignore[union-attr]

        deals = hs.objects("deals")
        made = deals.create_or_update_many(
            [
                {
                    "deal_key": "d1",
                    "dealname": "Big",
                    "amount": 10_000,
                    "dealstage": "qualifiedtobuy",
                }
            ],
            id_property="deal_key",
        )
        vid = made[0].vid
        updated = deals.create_or_update_many(
            [{"hs_object_id": vid, "dealstage": "closedwon"}, {"hs_object_id": 999, "amount": 1}],
            id_property="hs_object_id",
        )
        assert (updated.updated, updated.failed) == (1, 1)
        assert "DEAL objects" in str(updated.failures[0].error)
        assert (
            fake.record("deals", str(vid), by="hs_object_id").properties["dealstage"] == "closedwon"
        )  # type: ignore[union-attr]
        # An option HubSpot's deal stages lack fails its record, before sending.
        bad = deals.create_or_update_many(
            [{"deal_key": "d2", "dealstage": "won-ish"}], id_property="deal_key"
        )
        assert bad.failures[0].code == "INVALID_OPTION"


def test_modes_state_and_prepare_work_for_companies(tmp_path: Path) -> None:
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        co = hs.objects("companies")
        co.create_or_update_many(companies(50), id_property="crm_id")
        result = co.create_or_update_many(
            companies(60), id_property="crm_id", mode="update", keep="all"
        )
        assert (result.updated, result.skipped) == (50, 10)
        assert isinstance(result[55], SkippedRecord) and result[55].code == "NOT_FOUND"
        assert "/crm/objects/2026-09/companies/batch/read" in paths(fake)

        state = tmp_path / "sync.db"
        assert (
            co.create_or_update_many(companies(60), id_property="crm_id", state=state).updated == 50
        )
        assert (
            co.create_or_update_many(companies(60), id_property="crm_id", state=state).unchanged
            == 60
        )
        # The same ids as contacts' would be another set of records in the state.
        assert co.check_many(companies(60), id_property="crm_id", state=state).unchanged == 60
        assert co.prepare({"crm_id": " c1 ", "numberofemployees": 3.0}, id_property="crm_id") == (
            "c1",
            {"numberofemployees": "3"},
        )


def test_the_async_face_has_objects_too() -> None:
    async def go(fake: FakeHubSpot) -> tuple[int, bool]:
        async with AsyncHubSpot(fake.token, base_url=fake.url) as hs:
            co = hs.objects("companies")
            many = await co.create_or_update_many(companies(120), id_property="crm_id")
            one = await co.create_or_update("c200", {"name": "New"}, id_property="crm_id")
            return many.created, one.is_new

    with FakeHubSpot(objects=OBJECTS) as fake:
        assert asyncio.run(go(fake)) == (120, True)
        assert len(fake.records("companies")) == 121


def test_the_legacy_paths_name_the_object_too() -> None:
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url, api_version="legacy")
        hs.objects("companies").create_or_update_many(companies(5), id_property="crm_id")
        hs.objects("companies").create_or_update("c9", {"name": "Nine"}, id_property="crm_id")
        assert paths(fake) == [
            "/crm/v3/properties/companies",
            "/crm/v3/objects/companies/batch/upsert",
            "/crm/v3/objects/companies/batch/upsert",
        ]


def test_the_command_upserts_companies_from_a_file(tmp_path: Path) -> None:
    import csv
    import os
    import subprocess
    import sys

    data = tmp_path / "companies.csv"
    with data.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["crm_id", "name", "domain"])
        out.writerows([f"c{i}", f"Company {i}", f"c{i}.example"] for i in range(150))

    def command(fake: FakeHubSpot, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": fake.token, "HUBSPOT_BASE_URL": fake.url}
        return subprocess.run(
            [sys.executable, "-m", "hubspot_upsert", *args], env=env, capture_output=True, text=True
        )

    with FakeHubSpot(objects=OBJECTS) as fake:
        done = command(fake, str(data), "--object", "companies", "--id-property", "crm_id")
        assert done.returncode == 0, done.stderr
        assert "created 150" in done.stdout
        assert len(fake.records("companies")) == 150
        planned = command(
            fake, str(data), "--object", "0-2", "--id-property", "crm_id", "--dry-run", "--quiet"
        )
        assert planned.returncode == 0, planned.stderr
        refused = command(fake, str(data), "--object", "companies")
        assert refused.returncode == 2
        assert "--object companies needs --id-property" in refused.stderr
        bad = command(fake, str(data), "--object", "a/b", "--id-property", "crm_id")
        assert bad.returncode == 2 and "object type" in bad.stderr
