"""Email addresses: validated before sending, and always exactly one path segment."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest

from hubspot_upsert import HubSpot, ValidationError
from hubspot_upsert.testing import FakeHubSpot

PREFIX = "/contacts/v1/contact/createOrUpdate/email/"


@pytest.mark.parametrize(
    ("email", "segment"),
    [
        ("ada@example.com", "ada%40example.com"),
        ("a+tag@example.com", "a%2Btag%40example.com"),
        ("a/b@example.com", "a%2Fb%40example.com"),
        ("../../x@example.com", "..%2F..%2Fx%40example.com"),
        ("a?x=1#@example.com", "a%3Fx%3D1%23%40example.com"),
        ("a\\b@example.com", "a%5Cb%40example.com"),
        ("a%20b@example.com", "a%2520b%40example.com"),
        ("a;b&c=d@example.com", "a%3Bb%26c%3Dd%40example.com"),
        ("o'brien@example.ie", "o%27brien%40example.ie"),
        ("jörg@example.de", "j%C3%B6rg%40example.de"),
        ("A-Z.a_z~09@example.com", "A-Z.a_z~09%40example.com"),
    ],
)
def test_email_travels_as_one_segment_and_decodes_back(email: str, segment: str) -> None:
    # The fake answers 400 INVALID_EMAIL for some of these; what matters is what is sent.
    with FakeHubSpot() as fake:
        # v1 (api_version="legacy") carries the address in the path ...
        hs = HubSpot(fake.token, base_url=fake.url, api_version="legacy")
        try:
            hs.create_or_update(email, {"firstname": "X"})
        except ValidationError as e:
            assert [f.code for f in e.errors] == ["INVALID_EMAIL"]
        (req,) = fake.requests
        assert req.path == PREFIX + segment
        received = req.path[len(PREFIX) :]
        assert "/" not in received and "?" not in received and "#" not in received
        assert unquote(received, errors="strict") == email
        # ... the default's batch of one as the input's id, verbatim.
        try:
            HubSpot(fake.token, base_url=fake.url).create_or_update(email, {"firstname": "X"})
        except ValidationError as e:
            assert [f.code for f in e.errors] == ["INVALID_EMAIL"]
        batch = fake.requests[1]
        assert batch.path == "/crm/objects/2026-09/contacts/batch/upsert"
        assert [i["id"] for i in batch.json()["inputs"]] == [email]


def test_plus_address_is_stored_with_its_plus(fake: FakeHubSpot, hs: HubSpot) -> None:
    hs.create_or_update("a+tag@example.com", {"firstname": "A"})
    assert fake.contact("a+tag@example.com") is not None
    assert fake.contact("a tag@example.com") is None


@pytest.mark.parametrize(
    ("email", "match"),
    [
        ("", "it is empty"),
        ("ada", "no '@'"),
        ("a@b@example.com", "2 '@' characters"),
        ("@example.com", "nothing before the '@'"),
        ("ada@", "nothing after the '@'"),
        ("ada @example.com", "contains ' '"),
        ("ada\x00@example.com", "contains '\\\\0'"),
        ("ada\u2028@example.com", "contains"),
        ("a" * 250 + "@x.io", "255 bytes long, the limit is 254"),
        ("\ud800@example.com", "cannot be encoded as UTF-8"),
    ],
)
def test_invalid_email_is_refused_before_sending(
    email: str, match: str, hs: HubSpot, fake: FakeHubSpot
) -> None:
    with pytest.raises(ValueError, match=match):
        hs.create_or_update(email, {"firstname": "X"})
    assert fake.request_count == 0


@pytest.mark.parametrize("email", [" ada@example.com", "ada@example.com\n", "\tada@example.com "])
def test_white_space_around_an_address_is_trimmed(
    email: str, hs: HubSpot, fake: FakeHubSpot
) -> None:
    assert hs.create_or_update(email).email == "ada@example.com"
    assert fake.requests[-1].json()["inputs"][0]["id"] == "ada@example.com"
    result = hs.create_or_update_many([{"email": email}])
    assert result[0].email == "ada@example.com"


@pytest.mark.parametrize("email", [None, 42, b"ada@example.com"])
def test_email_must_be_a_str(email: Any, hs: HubSpot, fake: FakeHubSpot) -> None:
    with pytest.raises(TypeError, match="email must be a str"):
        hs.create_or_update(email)
    assert fake.request_count == 0


def test_the_longest_allowed_email_is_sent(hs: HubSpot, fake: FakeHubSpot) -> None:
    email = "a" * 240 + "@example.com"
    assert len(email) == 252
    hs.create_or_update(email)
    assert fake.contact(email) is not None
