"""Shared fixtures: a running FakeHubSpot and a client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot, ReceivedRequest

# Properties of every type the fake knows, beside HubSpot's standard ones.
EXTRA_PROPERTIES = {
    "is_customer": "bool",
    "score": "number",
    "signup_date": "date",
    "last_seen": "datetime",
    "interests": ("python", "rust", "crm", "a", "b", "c", "1", "2", "3"),
    "note": "string",
}


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(extra_properties=EXTRA_PROPERTIES) as server:
        yield server


@pytest.fixture
def hs(fake: FakeHubSpot) -> HubSpot:
    return HubSpot(fake.token, base_url=fake.url, timeout=10)


def batch_requests(fake: FakeHubSpot) -> list[ReceivedRequest]:
    """The batch upsert requests the fake received, oldest first."""
    return [r for r in fake.requests if r.path.endswith("/contacts/batch/upsert")]


def sent_inputs(request: ReceivedRequest) -> dict[str, dict[str, str]]:
    """A batch request's inputs: id to properties, less the ``email`` that repeats the id."""
    return {
        i["id"]: {k: v for k, v in i["properties"].items() if not (k == "email" and v == i["id"])}
        for i in request.json()["inputs"]
    }


def sent_properties(fake: FakeHubSpot) -> dict[str, str]:
    """The properties of the last request the fake received (a batch of one, or v1's list), as
    a dict in the order sent."""
    body = fake.requests[-1].json()
    if "inputs" in body:
        (single,) = body["inputs"]
        return dict(single["properties"])
    return {p["property"]: p["value"] for p in body["properties"]}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long tests first: with pytest-xdist they then start at once, beside the short ones,
    instead of last, alone."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
