"""Associations: each record that lands gets HubSpot's default association with the record of
another object type its key names, looked up and made 100 per request, nothing created; a key
no record has is reported with its own code while the record stays landed."""

from __future__ import annotations

import asyncio
import csv
import json
import math
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from hubspot_upsert import (
    AsyncHubSpot,
    BulkUpsertError,
    HubSpot,
    PermissionDeniedError,
    SyncState,
    ValidationError,
)
from hubspot_upsert.testing import FakeHubSpot

OBJECTS = {
    "companies": {"unique": ["crm_id"]},
    "2-123456": {"name": "cars", "properties": {"vin": "string"}, "unique": ["vin"]},
    "2-777": {"name": "boats", "properties": {"hull": "string"}, "unique": ["hull"]},
}
# Boats have a default association with contacts; cars have none.
OBJECTS["2-777"]["associations"] = ["contacts"]  # type: ignore[index]

ASSOCIATE = "/crm/associations/2026-09/contacts/companies/batch/associate/default"
READ_COMPANIES = "/crm/objects/2026-09/companies/batch/read"
UPSERT_CONTACTS = "/crm/objects/2026-09/contacts/batch/upsert"


def leads(n: int, companies: int) -> list[dict[str, object]]:
    return [
        {"email": f"lead{i}@example.com", "firstname": f"L{i}", "company_id": f"c{i % companies}"}
        for i in range(n)
    ]


def upsert_companies(hs: HubSpot, n: int) -> None:
    rows = [{"crm_id": f"c{i}", "name": f"Company {i}"} for i in range(n)]
    result = hs.objects("companies").create_or_update_many(rows, id_property="crm_id")
    assert (result.created + result.updated, result.failed) == (n, 0)


def paths(fake: FakeHubSpot, since: int = 0) -> list[str]:
    return [r.path for r in fake.requests[since:]]


def expected_pairs(fake: FakeHubSpot, rows: list[dict[str, object]]) -> set[tuple[int, int]]:
    pairs = set()
    for row in rows:
        contact = fake.contact(str(row["email"]))
        company = fake.record("companies", str(row["company_id"]), by="crm_id")
        assert contact is not None and company is not None
        pairs.add((contact.vid, company.vid))
    return pairs


def test_contacts_are_associated_with_their_companies_in_batches() -> None:
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        upsert_companies(hs, 30)
        before = fake.request_count
        rows = leads(250, 30)
        result = hs.create_or_update_many(rows, associate={"companies": ("company_id", "crm_id")})
        assert (result.created, result.failed, result.associated) == (250, 0, 250)
        assert result.not_associated == []
        assert "associated=250" in repr(result)
        # Every contact with its own company, and nothing else.
        assert fake.associations("contacts", "companies") == expected_pairs(fake, rows)
        assert len(fake.associations("companies", "contacts")) == 250
        # The key column is not a contact property.
        stored = fake.contact("lead7@example.com")
        assert stored is not None and "company_id" not in stored.properties
        # Contacts (3), the 30 keys looked up (1), the associations (3): nothing more.
        assert paths(fake, before) == (
            ["/crm/properties/2026-09/contacts"]
            + [UPSERT_CONTACTS] * 3
            + [READ_COMPANIES]
            + [ASSOCIATE] * 3
        )
        # Nothing was created: the companies are the 30 there were.
        assert len(fake.records("companies")) == 30


def test_a_company_that_does_not_exist_is_reported_and_the_contact_still_lands() -> None:
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        upsert_companies(hs, 3)
        rows = [*leads(8, 4), {"email": "nobody@example.com", "firstname": "N"}]
        result = hs.create_or_update_many(
            rows, associate={"companies": ("company_id", "crm_id")}, keep="failures"
        )
        assert (result.created, result.failed) == (9, 0)
        # c3 does not exist: leads 3 and 7; the last row names no company at all.
        assert result.associated == 6
        missing = result.not_associated
        assert [m.index for m in missing] == [3, 7]
        assert {m.code for m in missing} == {"ASSOCIATION_TARGET_NOT_FOUND"}
        assert isinstance(missing[0].error, ValidationError)
        assert "no company has crm_id 'c3'" in missing[0].message
        assert "the contact landed" in missing[0].message
        assert missing[0].email == "lead3@example.com"
        assert fake.contact("lead3@example.com") is not None
        assert len(fake.records("companies")) == 3
        with pytest.raises(BulkUpsertError, match="2 landed but were not associated"):
            result.raise_for_errors()


def test_a_missing_edit_associations_permission_costs_one_request_and_says_so() -> None:
    with FakeHubSpot(objects=OBJECTS, edit_associations=False) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        upsert_companies(hs, 5)
        before = fake.request_count
        result = hs.create_or_update_many(
            leads(450, 5), associate={"companies": ("company_id", "crm_id")}
        )
        assert (result.created, result.associated) == (450, 0)
        assert len(result.not_associated) == 450
        error = result.not_associated[0].error
        assert isinstance(error, PermissionDeniedError)
        assert "'Edit Associations' permission" in str(error)
        # The first association request is refused: the other four are not sent.
        assert paths(fake, before).count(ASSOCIATE) == 1
        assert fake.associations("contacts", "companies") == set()


def test_hubspot_ids_need_no_lookup_and_bad_ones_fail_before_sending() -> None:
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        upsert_companies(hs, 2)
        ids = sorted(int(v) for v in fake.records("companies"))
        rows: list[dict[str, object]] = [
            {"email": "a@example.com", "company": ids[0]},
            {"email": "b@example.com", "company": str(ids[1])},
            {"email": "c@example.com", "company": "acme.example"},
            {"email": "d@example.com", "company": 999},
        ]
        before = fake.request_count
        result = hs.create_or_update_many(
            rows, associate={"companies": ("company", "hs_object_id")}
        )
        assert (result.created, result.failed, result.associated) == (3, 1, 2)
        refused = result.failures[0]
        assert refused.index == 2 and isinstance(refused.error, ValueError)
        assert "'acme.example'" in refused.message and "not a HubSpot record id" in refused.message
        assert fake.contact("c@example.com") is None
        # 999 is no company: HubSpot refuses that input, the others are made.
        [missing] = result.not_associated
        assert missing.index == 3 and "999" in missing.message
        assert READ_COMPANIES not in paths(fake, before)
        assert len(fake.associations("contacts", "companies")) == 2


def test_what_cannot_be_associated_is_refused_before_anything_is_sent() -> None:
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        # domain is not unique at HubSpot: a company cannot be looked up by it.
        with pytest.raises(ValueError, match="'domain' is not a unique property of companies"):
            hs.create_or_update_many(leads(5, 1), associate={"companies": ("company_id", "domain")})
        with pytest.raises(ValidationError, match="Unable to infer object type from: planets"):
            hs.create_or_update_many(leads(5, 1), associate={"planets": ("company_id", "name")})
        with pytest.raises(TypeError, match=r"takes \(field, property\)"):
            hs.create_or_update_many(leads(5, 1), associate={"companies": "company_id"})  # type: ignore[dict-item]
        assert UPSERT_CONTACTS not in paths(fake)
        assert fake.contacts == {}


def test_custom_objects_associate_only_where_hubspot_has_an_association_type() -> None:
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        hs.objects("2-777").create_or_update_many([{"hull": "H1"}], id_property="hull")
        hs.objects("2-123456").create_or_update_many([{"vin": "V1"}], id_property="vin")
        rows = [{"email": "sailor@example.com", "boat": "H1", "car": "V1"}]
        result = hs.create_or_update_many(
            rows, associate={"2-777": ("boat", "hull"), "2-123456": ("car", "vin")}
        )
        assert (result.created, result.associated) == (1, 1)
        [no_type] = result.not_associated
        assert "No default association type exists between 0-1 and 2-123456" in no_type.message
        boat = fake.record("2-777", "H1", by="hull")
        sailor = fake.contact("sailor@example.com")
        assert boat is not None and sailor is not None
        assert fake.associations("contacts", "2-777") == {(sailor.vid, boat.vid)}


def test_legacy_paths_use_the_v4_associations_api() -> None:
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url, api_version="legacy")
        upsert_companies(hs, 2)
        result = hs.create_or_update_many(
            leads(4, 2), associate={"companies": ("company_id", "crm_id")}
        )
        assert result.associated == 4
        assert "/crm/v4/associations/contacts/companies/batch/associate/default" in paths(fake)
        assert "/crm/v3/objects/companies/batch/read" in paths(fake)


def test_a_sync_state_counts_the_company_as_part_of_the_record(tmp_path: Path) -> None:
    state = tmp_path / "sync.db"
    link = {"companies": ("company_id", "crm_id")}
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        upsert_companies(hs, 2)
        rows = leads(6, 3)  # c2 does not exist yet
        first = hs.create_or_update_many(rows, associate=link, state=state)
        assert (first.created, first.associated, len(first.not_associated)) == (6, 4, 2)
        # Unchanged records are not sent, nor associated again; the two whose company was
        # missing are sent again, and associated now that it exists.
        upsert_companies(hs, 3)
        before = fake.request_count
        second = hs.create_or_update_many(rows, associate=link, state=state)
        assert (second.unchanged, second.updated, second.associated) == (4, 2, 2)
        assert second.not_associated == []
        assert paths(fake, before).count(ASSOCIATE) == 1
        # A contact moved to another company is a change.
        moved = [dict(r) for r in rows]
        moved[0]["company_id"] = "c1"
        third = hs.create_or_update_many(moved, associate=link, state=state)
        assert (third.unchanged, third.updated, third.associated) == (5, 1, 1)
        contact = fake.contact("lead0@example.com")
        c1 = fake.record("companies", "c1", by="crm_id")
        assert contact is not None and c1 is not None
        assert (contact.vid, c1.vid) in fake.associations("contacts", "companies")
        SyncState(state).close()


def test_check_many_and_the_async_face_take_the_same_associations() -> None:
    link = {"companies": ("company_id", "crm_id")}
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        upsert_companies(hs, 2)
        # The key column is no unknown property; a bad key property is found by the check.
        checked = hs.check_many(leads(10, 2), associate=link)
        assert (checked.total, checked.failed) == (10, 0)
        with pytest.raises(ValueError, match="no property 'nope'"):
            hs.check_many(leads(10, 2), associate={"companies": ("company_id", "nope")})

        async def main() -> tuple[int, int]:
            async with AsyncHubSpot(fake.token, base_url=fake.url) as ahs:
                result = await ahs.create_or_update_many(leads(10, 2), associate=link)
                return result.created, result.associated

        assert asyncio.run(main()) == (10, 10)


def command(fake: FakeHubSpot, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": fake.token, "HUBSPOT_BASE_URL": fake.url}
    return subprocess.run(
        [sys.executable, "-m", "hubspot_upsert", *args], env=env, capture_output=True, text=True
    )


def test_ten_thousand_leads_of_three_hundred_companies_by_the_command(tmp_path: Path) -> None:
    n, companies = 10_000, 300
    data = tmp_path / "leads.csv"
    with data.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["email", "firstname", "company_id", "company_name"])
        out.writerows(
            [f"lead{i}@example.com", f"L{i}", f"c{i % companies}", f"Company {i % companies}"]
            for i in range(n)
        )
    with FakeHubSpot(objects=OBJECTS) as fake:
        # The companies first, once each (the distinct ones of the file).
        firms = tmp_path / "companies.csv"
        with data.open(newline="") as f, firms.open("w", newline="") as g:
            seen: dict[str, str] = {}
            for row in csv.DictReader(f):
                seen.setdefault(row["company_id"], row["company_name"])
            out = csv.writer(g)
            out.writerow(["crm_id", "name"])
            out.writerows(seen.items())
        done = command(fake, str(firms), "--object", "companies", "--id-property", "crm_id")
        assert done.returncode == 0, done.stderr
        assert paths(fake).count("/crm/objects/2026-09/companies/batch/upsert") == 3
        before = fake.request_count
        done = command(
            fake,
            str(data),
            "--associate",
            "companies=company_id:crm_id",
            "--skip",
            "company_name",
        )
        assert done.returncode == 0, done.stderr + done.stdout
        assert "created 10000" in done.stdout and "associated 10000" in done.stdout
        sent = paths(fake, before)
        writes = sent.count(UPSERT_CONTACTS) + sent.count(ASSOCIATE)
        lookups = sent.count(READ_COMPANIES)
        assert sent.count(UPSERT_CONTACTS) == math.ceil(n / 100)
        assert sent.count(ASSOCIATE) == math.ceil(n / 100)
        assert lookups == math.ceil(companies / 100)
        # and the definitions of contacts and of companies (a new process)
        assert len(sent) == writes + lookups + 2
        assert len(fake.associations("contacts", "companies")) == n
        # A company the portal lacks: exit 1, the cause named, the contacts landed.
        with data.open("a", newline="") as f:
            csv.writer(f).writerow(["late@example.com", "Late", "c999", "Nobody"])
        failed = tmp_path / "failed.jsonl"
        again = command(
            fake,
            str(data),
            "--associate",
            "companies=company_id:crm_id",
            "--skip",
            "company_name",
            "--failures",
            str(failed),
        )
        assert again.returncode == 1, again.stderr
        assert "not associated 1" in again.stdout
        assert "ASSOCIATION_TARGET_NOT_FOUND" in again.stdout
        assert fake.contact("late@example.com") is not None
        [line] = failed.read_text().splitlines()
        assert '"company_id": "c999"' in line and "ASSOCIATION_TARGET_NOT_FOUND" in line
        usage = command(fake, str(data), "--associate", "companies=company_id")
        assert usage.returncode == 2
        assert "--associate takes OBJECT=COLUMN:PROPERTY" in usage.stderr
        absent = command(fake, str(data), "--associate", "companies=firm:crm_id")
        assert absent.returncode == 2
        assert "no column 'firm' for --associate companies" in absent.stderr
        # --only keeps the key column: it names the company, it is not a property.
        only = command(
            fake, str(data), "--associate", "companies=company_id:crm_id", "--only", "firstname"
        )
        assert "associated 10000" in only.stdout


def test_the_fake_reads_associations_back_and_refuses_what_hubspot_refuses() -> None:
    import json
    import urllib.error
    import urllib.request

    def post(fake: FakeHubSpot, path: str, body: object) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(
            fake.url + path,
            data=json.dumps(body).encode(),
            headers={"authorization": f"Bearer {fake.token}", "content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        upsert_companies(hs, 1)
        hs.create_or_update_many(leads(2, 1), associate={"companies": ("company_id", "crm_id")})
        company = fake.record("companies", "c0", by="crm_id")
        assert company is not None
        for path in (
            "/crm/associations/2026-03/companies/contacts/batch/read",
            "/crm/v4/associations/0-2/0-1/batch/read",
        ):
            status, body = post(fake, path, {"inputs": [{"id": str(company.vid)}]})
            assert status == 200
            [result] = body["results"]  # type: ignore[misc]
            assert {t["toObjectId"] for t in result["to"]} == {
                fake.contact(f"lead{i}@example.com").vid  # type: ignore[union-attr]
                for i in range(2)
            }
        status, body = post(
            fake,
            "/crm/associations/2026-09/contacts/planets/batch/associate/default",
            {"inputs": [{"from": {"id": "1"}, "to": {"id": "2"}}]},
        )
        assert status == 400 and body["message"] == "Unable to infer object type from: planets"
        # A record that does not exist is refused on its own (a 200 with errors from 2026-09
        # would be the objects' shape; associations answer 207 on their 2026-03 path).
        contact = fake.contact("lead0@example.com")
        assert contact is not None
        status, body = post(
            fake,
            "/crm/associations/2026-03/contacts/companies/batch/associate/default",
            {"inputs": [{"from": {"id": str(contact.vid)}, "to": {"id": "424242"}}]},
        )
        assert status == 207 and body["numErrors"] == 1
        assert "424242" in body["errors"][0]["message"]  # type: ignore[index]


def test_the_readme_example_prints_what_it_says(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Associating contacts with their companies", 1)[1]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)[:1]
    exec(compile(block, "README.md", "exec"), {})
    said = [line.strip()[2:] for line in block.splitlines() if line.strip().startswith("# ")]
    assert capsys.readouterr().out.splitlines() == said


# -- labels, other pairs, and associations that stay true -----------------------------------


def test_labelled_associations_are_checked_then_made_with_hubspots_labelled_create() -> None:
    labels = {"contacts/companies": ["Billing contact"]}
    with FakeHubSpot(objects=OBJECTS, association_labels=labels) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        upsert_companies(hs, 3)
        rows = leads(250, 3)
        since = fake.request_count
        result = hs.create_or_update_many(
            rows, associate={"companies": ("company_id", "crm_id", "billing CONTACT")}
        )
        assert (result.created, result.associated) == (250, 250)
        sent = paths(fake, since)
        assert sent[0] == "/crm/associations/2026-09/contacts/companies/labels"
        creates = [p for p in sent if p.endswith("/batch/create")]
        assert creates == ["/crm/associations/2026-09/contacts/companies/batch/create"] * 3
        assert ASSOCIATE not in sent
        typed = fake.association_types("contacts", "companies")
        assert set(typed) == expected_pairs(fake, rows)
        assert all(names == {"Billing contact"} for names in typed.values())
        body = next(r for r in fake.requests if r.path.endswith("/batch/create")).json()
        assert body["inputs"][0]["types"] == [
            {"associationCategory": "USER_DEFINED", "associationTypeId": 100}
        ]
        # HubSpot's own label is there too; a label the portal lacks is refused before any
        # write, naming those it has.
        primary = hs.create_or_update_many(
            rows[:5], associate={"companies": ("company_id", "crm_id", "Primary")}
        )
        assert primary.associated == 5
        before = fake.request_count
        with pytest.raises(ValueError, match="no association label 'Decision maker'") as bad:
            hs.create_or_update_many(
                rows[:5], associate={"companies": ("company_id", "crm_id", "Decision maker")}
            )
        assert "'Primary', 'Billing contact'" in str(bad.value)
        assert not [p for p in paths(fake, before) if "/batch/upsert" in p]


def test_contacts_with_deals_and_deals_with_companies() -> None:
    objects = {**OBJECTS, "deals": {"unique": ["deal_ref"]}}
    with FakeHubSpot(objects=objects) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        upsert_companies(hs, 2)
        deals = [
            {"deal_ref": f"d{i}", "dealname": f"Deal {i}", "company": f"c{i % 2}"} for i in range(4)
        ]
        made = hs.objects("deals").create_or_update_many(
            deals, id_property="deal_ref", associate={"companies": ("company", "crm_id", "Primary")}
        )
        assert (made.created, made.associated) == (4, 4)
        assert len(fake.associations("deals", "companies")) == 4
        people = [{"email": f"buyer{i}@example.com", "deal": f"d{i}"} for i in range(4)]
        done = hs.create_or_update_many(people, associate={"deals": ("deal", "deal_ref")})
        assert done.associated == 4
        assert len(fake.associations("contacts", "deals")) == 4


def test_a_record_that_moved_loses_the_association_this_state_made(tmp_path: Path) -> None:
    state = tmp_path / "sync.db"
    with FakeHubSpot(objects=OBJECTS) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        upsert_companies(hs, 3)
        rows = leads(10, 3)
        link = {"companies": ("company_id", "crm_id")}
        hs.create_or_update_many(rows, state=state, associate=link)
        assert fake.associations("contacts", "companies") == expected_pairs(fake, rows)
        # An association the state did not make (another integration's) stays.
        other = fake.record("companies", "c2", by="crm_id")
        lead0 = fake.contact("lead0@example.com")
        assert other is not None and lead0 is not None
        request = urllib.request.Request(
            fake.url + ASSOCIATE,
            data=json.dumps(
                {"inputs": [{"from": {"id": str(lead0.vid)}, "to": {"id": str(other.vid)}}]}
            ).encode(),
            headers={"authorization": f"Bearer {fake.token}", "content-type": "application/json"},
        )
        urllib.request.urlopen(request).close()
        rows[0]["company_id"] = "c1"  # lead0 moved from c0 to c1
        rows[4]["company_id"] = "c0"  # lead4 moved from c1 to c0
        since = fake.request_count
        second = hs.create_or_update_many(rows, state=state, associate=link)
        assert (second.updated, second.unchanged, second.associated) == (2, 8, 2)
        kept = {(lead0.vid, other.vid)}
        assert fake.associations("contacts", "companies") == expected_pairs(fake, rows) | kept
        archived = [r for r in fake.requests[since:] if r.path.endswith("/batch/archive")]
        assert [r.path for r in archived] == [
            "/crm/associations/2026-09/contacts/companies/batch/archive"
        ]
        assert len(archived[0].json()["inputs"]) == 2
        # A third run sends nothing and removes nothing.
        since = fake.request_count
        third = hs.create_or_update_many(rows, state=state, associate=link)
        assert third.unchanged == 10 and fake.request_count == since
