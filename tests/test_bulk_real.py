"""Bulk against a HubSpot that behaves like the real one: answers that take time, rejected
batches that name only their first bad input, results that echo only what was written, a rate
limit that is enforced, and a token that may or may not read the property definitions."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest

import hubspot_upsert as hu
from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot, ScriptedResponse

from .conftest import EXTRA_PROPERTIES, batch_requests


def people(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"email": f"p{i}@example.com", "firstname": f"P{i}", **extra} for i in range(n)]


def portal(*, scope: bool, **options: Any) -> FakeHubSpot:
    return FakeHubSpot(extra_properties=EXTRA_PROPERTIES, properties_scope=scope, **options)


@pytest.mark.parametrize("scope", [False, True])
def test_a_column_the_portal_lacks_costs_almost_nothing(scope: bool) -> None:
    with portal(scope=scope) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        result = hs.create_or_update_many(people(10_000, shoe_size=44))
        assert (result.created, result.failed) == (0, 10_000)
        assert {f.code for f in result.failures} == {"PROPERTY_DOESNT_EXIST"}
        assert all("shoe_size" in f.message for f in result.failures)
        assert fake.request_count <= 8
        assert len(batch_requests(fake)) == (0 if scope else 1)
        assert not fake.contacts


@pytest.mark.parametrize("scope", [False, True])
def test_bad_enumeration_values_are_learned_once(scope: bool) -> None:
    records = people(10_000)
    bad = set(range(3, 10_000, 10))
    for i in bad:
        records[i]["lifecyclestage"] = "bogus"
    with portal(scope=scope) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        result = hs.create_or_update_many(records)
        good = 10_000 - len(bad)
        assert (result.created, result.failed) == (good, len(bad))
        assert {f.index for f in result.failures} == bad
        assert {f.code for f in result.failures} == {"INVALID_OPTION"}
        assert all("lifecyclestage" in f.message for f in result.failures)
        batches = len(batch_requests(fake))
        if scope:
            assert batches == math.ceil(good / 100)
            assert fake.request_count == batches + 1
        else:
            assert fake.request_count <= math.ceil(good / 100) + 7
        assert len(fake.contacts) == good


def test_refused_addresses_cost_about_a_request_each() -> None:
    records = people(10_000)
    bad = set(range(42, 10_000, 100))
    for i in bad:
        records[i]["email"] = f"p{i}@example.ik"  # not a real top-level domain
    with portal(scope=False) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        result = hs.create_or_update_many(records)
        good = 10_000 - len(bad)
        assert (result.created, result.failed) == (good, len(bad))
        assert {f.index for f in result.failures} == bad
        assert {f.code for f in result.failures} == {"INVALID_EMAIL"}
        assert fake.request_count <= math.ceil(good / 100) + 2 * len(bad) + 4
        assert len(fake.contacts) == good


def test_read_only_properties_from_an_export(fake: FakeHubSpot, hs: HubSpot) -> None:
    records = people(5)
    records[2]["hs_object_id"] = "123"
    records[3]["createdate"] = "1723680000000"
    result = hs.create_or_update_many(records)
    assert [(f.index, f.code) for f in result.failures] == [
        (2, "READ_ONLY_VALUE"),
        (3, "READ_ONLY_VALUE"),
    ]
    assert result.failures[0].error.status is None  # refused before sending
    with portal(scope=False) as blind:
        hs2 = HubSpot(blind.token, base_url=blind.url)
        result = hs2.create_or_update_many(records)
        assert [(f.index, f.code) for f in result.failures] == [
            (2, "READ_ONLY_VALUE"),
            (3, "READ_ONLY_VALUE"),
        ]
        assert result.failures[0].error.status == 400


def test_without_the_scope_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hubspot_upsert")
    with portal(scope=False) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        hs.create_or_update_many(people(150))
        hs.create_or_update_many(people(150))
        lines = [r for r in caplog.records if "property definitions" in r.getMessage()]
        assert len(lines) == 1 and lines[0].levelno == logging.INFO
        assert "crm.schemas.contacts.read" in lines[0].getMessage()
        # Asked once per client: the second run does not ask again.
        assert [r.method for r in fake.requests].count("GET") == 1


def test_results_are_matched_without_an_echo(fake: FakeHubSpot, hs: HubSpot) -> None:
    result = hs.create_or_update_many(people(250))
    assert (result.created, result.failed) == (250, 0)
    for req in batch_requests(fake):
        assert all("objectWriteTraceId" in i for i in req.json()["inputs"])
    # An answer whose results name no input is never guessed at.
    fake.script(
        ScriptedResponse(
            200, {"status": "COMPLETE", "results": [{"id": "77", "new": False, "properties": {}}]}
        )
    )
    odd = hs.create_or_update_many(people(3))
    assert (odd.created, odd.updated, odd.failed) == (0, 0, 3)
    assert all("may have been applied" in f.message for f in odd.failures)


def test_batches_keep_up_with_the_rate_limit_at_real_latency() -> None:
    with portal(scope=True, latency=0.3, rate_limit=190) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        result = hs.create_or_update_many(people(6_000))
        assert (result.created, result.failed) == (6_000, 0)
        # Sixty batches at 0.3 s each: far more than four in flight at once, and no 429.
        assert fake.peak_in_flight > 8
        assert fake.status_counts.get(429, 0) == 0
        assert len(batch_requests(fake)) == 60


def test_the_first_batch_goes_alone(fake: FakeHubSpot) -> None:
    fake.latency = 0.1
    hs = HubSpot(fake.token, base_url=fake.url)
    hs.create_or_update_many(people(1_000, shoe_size=1))
    assert fake.peak_in_flight == 1
    assert len(batch_requests(fake)) == 0  # the definitions refused it all
    with portal(scope=False, latency=0.1) as blind:
        hs2 = HubSpot(blind.token, base_url=blind.url)
        hs2.create_or_update_many(people(1_000, shoe_size=1))
        assert blind.peak_in_flight == 1
        assert len(batch_requests(blind)) == 1


@pytest.mark.parametrize("window", [2.0, 10.0])
def test_the_first_batch_is_waited_for_a_tenth_of_the_window_at_most(window: float) -> None:
    """With the definitions read (the causes they show are known before sending), the first
    batch goes alone for a tenth of the window at most: waiting for 1.5 s answers would leave
    that much of every window's room unused. The definitions read answers quickly (a light
    read: the network's share only), so it says nothing of how long writes take."""
    with portal(scope=True, latency=1.5, rate_limit=40, rate_window=window) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        result = hs.create_or_update_many(people(1_000))
        assert (result.created, result.failed) == (1_000, 0)
        batches = [r for r in fake.requests if r.path.endswith("/batch/upsert")]
        assert len(batches) == 10
        gap = batches[1].received_at - batches[0].received_at
        assert window / 10 - 0.05 <= gap < window / 10 + 0.3, gap


def test_without_the_definitions_the_first_batch_waits_for_its_answer() -> None:
    with portal(scope=False, latency=0.6, rate_limit=40, rate_window=2.0) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        result = hs.create_or_update_many(people(300))
        assert (result.created, result.failed) == (300, 0)
        batches = [r for r in fake.requests if r.path.endswith("/batch/upsert")]
        assert batches[1].received_at - batches[0].received_at >= 0.55


def test_a_bad_record_among_good_ones_is_reported_with_hubspots_code(hs: HubSpot) -> None:
    records = people(300)
    records[150]["score"] = "twelve"
    records[250]["lifecyclestage"] = "Lead"  # the label, not the internal value
    result = hs.create_or_update_many(records)
    assert [(f.index, f.code) for f in result.failures] == [
        (150, "INVALID_INTEGER"),
        (250, "INVALID_OPTION"),
    ]
    assert isinstance(result.failures[0].error, hu.ValidationError)
    assert result.failures[0].error.errors[0].name == "score"
    assert "'twelve'" in result.failures[0].message


def test_check_many_writes_nothing(fake: FakeHubSpot, hs: HubSpot) -> None:
    records = people(300)
    records[7]["lifecyclestage"] = "bogus"
    records[9]["email"] = "not an address"
    checked = hs.check_many(records)
    assert (checked.total, checked.failed, checked.created) == (300, 2, 0)
    assert [(f.index, f.code) for f in checked.failures] == [(7, "INVALID_OPTION"), (9, None)]
    assert [r.method for r in fake.requests] == ["GET"]
    assert not fake.contacts
    offline = hs.check_many(records, definitions=False)
    assert [f.index for f in offline.failures] == [9]
    assert fake.request_count == 1
