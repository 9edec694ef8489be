"""The value rules: what each Python value becomes at HubSpot, and what is refused."""

from __future__ import annotations

import datetime as dt
import enum
import subprocess
import sys
import textwrap
from decimal import Decimal
from typing import Any

import pytest

from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot

from .conftest import EXTRA_PROPERTIES, sent_properties

UTC = dt.timezone.utc


class Color(enum.Enum):
    RED = "python"
    NUMBER = 7


class Level(enum.IntEnum):
    HIGH = 3


class Stage(str, enum.Enum):
    CUSTOMER = "customer"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("Ada", "Ada"),
        ("", ""),
        ('ünïcødé ✓ "quoted" ;semi', 'ünïcødé ✓ "quoted" ;semi'),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-42, "-42"),
        (2**100, "1267650600228229401496703205376"),
        (0.1, "0.1"),
        (1e20, "100000000000000000000"),
        (1e-7, "0.0000001"),
        (-2.5, "-2.5"),
        (1.0, "1"),
        (Decimal("1E+2"), "100"),
        (Decimal("1.50"), "1.50"),
        (Decimal("-0.005"), "-0.005"),
        (dt.date(2024, 8, 15), "1723680000000"),
        (dt.date(1969, 12, 31), "-86400000"),
        (dt.datetime(2024, 8, 15, 17, 9, 13, 648000, tzinfo=UTC), "1723741753648"),
        (
            dt.datetime(2024, 8, 15, 19, 9, 13, 648999, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "1723741753648",
        ),
        (["a", "b"], "a;b"),
        (("b", "a", 3), "b;a;3"),
        ({"c", "a", "b"}, "a;b;c"),
        (frozenset({2, 1}), "1;2"),
        ([], ""),
        ([True, 1.5, Decimal("2")], "true;1.5;2"),
        (Color.RED, "python"),
        (Color.NUMBER, "7"),
        (Level.HIGH, "3"),
        (Stage.CUSTOMER, "customer"),
    ],
)
def test_value_becomes_hubspot_text(value: Any, text: str, hs: HubSpot, fake: FakeHubSpot) -> None:
    hs.create_or_update("ada@example.com", {"note": value})
    assert sent_properties(fake) == {"note": text}


def test_typed_values_are_accepted_by_hubspot_rules(hs: HubSpot, fake: FakeHubSpot) -> None:
    """The fake checks numbers, checkboxes, dates and options as HubSpot does."""
    hs.create_or_update(
        "ada@example.com",
        {
            "score": 1e20,
            "annualrevenue": Decimal("1E+2"),
            "is_customer": True,
            "signup_date": dt.date(2024, 2, 29),
            "last_seen": dt.datetime(2024, 8, 15, 17, 9, 13, tzinfo=UTC),
            "interests": {"rust", "python"},
            "lifecyclestage": Stage.CUSTOMER,
        },
    )
    stored = fake.contact("ada@example.com")
    assert stored is not None
    assert stored.properties["score"] == "100000000000000000000"
    assert stored.properties["interests"] == "python;rust"
    assert stored.properties["signup_date"] == "1709164800000"


def test_empty_string_clears_at_hubspot(hs: HubSpot, fake: FakeHubSpot) -> None:
    hs.create_or_update("ada@example.com", {"firstname": "Ada", "city": "London"})
    hs.create_or_update("ada@example.com", {"city": ""})
    stored = fake.contact("ada@example.com")
    assert stored is not None
    assert "city" not in stored.properties
    assert stored.properties["firstname"] == "Ada"


@pytest.mark.parametrize("missing", [None, float("nan"), Decimal("NaN")])
def test_missing_values_are_left_out(missing: Any, hs: HubSpot, fake: FakeHubSpot) -> None:
    hs.create_or_update("ada@example.com", {"firstname": "Ada", "city": missing})
    assert sent_properties(fake) == {"firstname": "Ada"}
    assert b"null" not in fake.requests[-1].body


def test_missing_values_clear_when_asked(fake: FakeHubSpot) -> None:
    hs = HubSpot(fake.token, base_url=fake.url, missing="clear")
    hs.create_or_update("ada@example.com", {"firstname": "Ada", "city": "London"})
    hs.create_or_update("ada@example.com", {"city": None, "firstname": float("nan")})
    assert sent_properties(fake) == {"city": "", "firstname": ""}
    stored = fake.contact("ada@example.com")
    assert stored is not None
    assert "city" not in stored.properties
    assert "firstname" not in stored.properties


def test_naive_datetime_is_refused_unless_utc_is_assumed(fake: FakeHubSpot) -> None:
    naive = dt.datetime(2024, 8, 15, 17, 9, 13, 648000)
    hs = HubSpot(fake.token, base_url=fake.url)
    with pytest.raises(ValueError, match=r"property 'last_seen'.*no time zone.*assume_utc=True"):
        hs.create_or_update("ada@example.com", {"last_seen": naive})
    assert fake.request_count == 0
    utc = HubSpot(fake.token, base_url=fake.url, assume_utc=True)
    utc.create_or_update("ada@example.com", {"last_seen": naive})
    assert sent_properties(fake) == {"last_seen": "1723741753648"}


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque>"


@pytest.mark.parametrize(
    ("properties", "error", "match"),
    [
        ({"note": float("inf")}, ValueError, r"property 'note': inf is not a number"),
        ({"note": float("-inf")}, ValueError, r"property 'note': -inf"),
        ({"note": Decimal("Infinity")}, ValueError, r"property 'note': Decimal\('Infinity'\)"),
        ({"note": Decimal("1E+100000")}, ValueError, r"property 'note'.*too large"),
        ({"note": b"bytes"}, TypeError, r"property 'note': a value of type bytes"),
        ({"note": {"nested": 1}}, TypeError, r"property 'note': a value of type dict"),
        ({"note": Opaque()}, TypeError, r"property 'note'.*Opaque"),
        ({"note": [["nested"]]}, TypeError, r"property 'note': a list item is itself a list"),
        ({"note": ["a", None]}, ValueError, r"property 'note': a list item is missing"),
        ({"note": ["a", float("nan")]}, ValueError, r"property 'note': a list item is missing"),
        ({"note": "\ud800"}, ValueError, r"property 'note'.*cannot be encoded as UTF-8"),
        ({5: "x"}, TypeError, r"property names must be str, got int 5"),
        ({"": "x"}, ValueError, r"a property name is empty"),
        ({"\udc80": "x"}, ValueError, r"property name.*UTF-8"),
        ({"note": 1j}, TypeError, r"property 'note': a value of type complex"),
    ],
)
def test_bad_values_are_refused_before_anything_is_sent(
    properties: dict[Any, Any], error: type[Exception], match: str, hs: HubSpot, fake: FakeHubSpot
) -> None:
    with pytest.raises(error, match=match):
        hs.create_or_update("ada@example.com", {"firstname": "Ada", **properties})
    assert fake.request_count == 0


@pytest.mark.parametrize("properties", [["firstname", "Ada"], "firstname=Ada", 42])
def test_properties_must_be_a_mapping(properties: Any, hs: HubSpot, fake: FakeHubSpot) -> None:
    with pytest.raises(TypeError, match="properties must be a mapping"):
        hs.create_or_update("ada@example.com", properties)
    assert fake.request_count == 0


def test_numpy_values(hs: HubSpot, fake: FakeHubSpot) -> None:
    np = pytest.importorskip("numpy")
    hs.create_or_update(
        "ada@example.com",
        {
            "is_customer": np.bool_(True),
            "score": np.int64(-7),
            "annualrevenue": np.uint8(200),
            "firstname": np.float32(0.5),
            "lastname": np.float64(1e20),
            "city": np.float64("nan"),
            "country": np.float32("nan"),
            "note": np.str_("text"),
            "interests": [np.int16(1), np.int32(2)],
        },
    )
    assert sent_properties(fake) == {
        "is_customer": "true",
        "score": "-7",
        "annualrevenue": "200",
        "firstname": "0.5",
        "lastname": "100000000000000000000",
        "note": "text",
        "interests": "1;2",
    }
    with pytest.raises(ValueError, match=r"property 'score'.*inf"):
        hs.create_or_update("ada@example.com", {"score": np.float32("inf")})
    with pytest.raises(TypeError, match=r"property 'note'.*numpy\.ndarray"):
        hs.create_or_update("ada@example.com", {"note": np.array([1, 2])})


def test_pandas_values(hs: HubSpot, fake: FakeHubSpot) -> None:
    pd = pytest.importorskip("pandas")
    ts = pd.Timestamp("2024-08-15T17:09:13.648Z")
    hs.create_or_update(
        "ada@example.com",
        {"last_seen": ts, "city": pd.NA, "country": pd.NaT, "firstname": "Ada"},
    )
    assert sent_properties(fake) == {"last_seen": "1723741753648", "firstname": "Ada"}
    with pytest.raises(ValueError, match=r"property 'last_seen'.*no time zone"):
        hs.create_or_update("ada@example.com", {"last_seen": pd.Timestamp("2024-08-15")})


def test_numpy_and_pandas_are_never_imported_by_the_package(fake: FakeHubSpot) -> None:
    """Run in a fresh interpreter where importing numpy or pandas would fail."""
    code = textwrap.dedent(
        f"""
        import sys, datetime, decimal
        sys.modules["numpy"] = None
        sys.modules["pandas"] = None
        from hubspot_upsert import HubSpot
        hs = HubSpot({fake.token!r}, base_url={fake.url!r})
        r = hs.create_or_update("np@example.com", {{
            "note": 1.5, "score": decimal.Decimal("2"), "is_customer": True,
            "signup_date": datetime.date(2024, 1, 1), "interests": ["a"], "city": None}})
        assert r.is_new, r
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert fake.contact("np@example.com") is not None


def test_extra_properties_in_conftest_cover_every_fake_type() -> None:
    kinds = {k if isinstance(k, str) else "enumeration" for k in EXTRA_PROPERTIES.values()}
    assert kinds == {"bool", "number", "date", "datetime", "enumeration", "string"}
