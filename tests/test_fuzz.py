"""Generated records, with random text (lone surrogates and control characters included), numbers
of any size, nesting and odd types, through ``prepare``, a bulk run and the command. Whatever
they hold: nothing crashes, and every record ends landed or listed with its reason.

Seeded (``derandomize``) and bounded in examples, so a run in CI is repeatable and short.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hubspot_upsert as hu
from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot

from .conftest import EXTRA_PROPERTIES
from .test_nothing_lost import command


def bounded(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


NAMES = ["firstname", "lastname", "score", "note", "is_customer", "signup_date", "interests"]
text = st.text(st.characters(codec=None), max_size=40)  # surrogates included
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    text,
    st.dates(),
    st.datetimes(timezones=st.sampled_from([None, dt.timezone.utc])),
    st.binary(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.frozensets(st.one_of(st.integers(), text), max_size=3),
        st.dictionaries(text, inner, max_size=3),
    ),
    max_leaves=8,
)
properties = st.dictionaries(st.one_of(st.sampled_from(NAMES), text), values, max_size=6)
emails = st.one_of(
    st.integers(0, 10**6).map(lambda i: f"f{i}@example.com"),
    text,
    st.just("Mixed.Case@Example.COM"),
)


def records(n: int) -> st.SearchStrategy[list[dict[Any, Any]]]:
    return st.lists(
        st.builds(lambda e, p: {**p, "email": e}, emails, properties), min_size=1, max_size=n
    )


@bounded(1000)
@given(record=st.builds(lambda e, p: {**p, "email": e}, emails, properties))
def test_prepare_raises_only_type_and_value_errors(record: dict[Any, Any]) -> None:
    hs = HubSpot("t", base_url="http://127.0.0.1:9")  # never asked to send
    try:
        email, sent = hs.prepare(record)
    except (TypeError, ValueError) as e:
        assert str(e)  # a message naming what is wrong
        return
    assert isinstance(email, str) and all(isinstance(v, str) for v in sent.values())
    for value in sent.values():
        value.encode("utf-8")  # what goes to HubSpot is valid text
        assert "nan" not in value.lower() or not _is_float_text(value)


def _is_float_text(value: str) -> bool:
    try:
        return math.isnan(float(value))
    except ValueError:
        return False


@pytest.fixture(scope="module")
def portal() -> Iterator[FakeHubSpot]:
    """One portal for all the examples of a test: each run adds or updates contacts in it."""
    with FakeHubSpot(extra_properties=EXTRA_PROPERTIES) as fake:
        yield fake


@bounded(100)
@given(batch=records(250))
def test_bulk_lands_or_lists_every_record(batch: list[dict[Any, Any]], portal: FakeHubSpot) -> None:
    hs = HubSpot(portal.token, base_url=portal.url, backoff=0.01)
    result = hs.create_or_update_many(batch)
    assert len(result) == result.total == len(batch)
    assert result.created + result.updated + result.failed == len(batch)
    for outcome in result:
        if isinstance(outcome, hu.RecordError):
            assert outcome.message
        else:
            assert portal.contact(outcome.email) is not None


def _line(record: dict[Any, Any]) -> str:
    """A record as a JSON Lines row, as another program might write it: odd values as text."""

    def plain(value: Any) -> Any:
        if isinstance(value, (dt.date, decimal.Decimal, bytes)):
            return str(value)
        if isinstance(value, (frozenset, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return json.dumps({str(k): plain(v) for k, v in record.items()})  # ASCII, \u escapes


@bounded(30)
@given(batch=records(120), garbage=st.lists(text, max_size=5))
def test_the_command_lands_or_lists_every_line(
    batch: list[dict[Any, Any]], garbage: list[str], tmp_path_factory: Any, portal: FakeHubSpot
) -> None:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    lines = [_line(r) for r in batch] + [json.dumps(g)[1:-1] or "{" for g in garbage]
    path = tmp / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    failures, report = tmp / "failed.jsonl", tmp / "report.json"
    out = command(portal, str(path), "--failures", str(failures), "--report", str(report))
    assert out.returncode in (0, 1), out.stderr
    assert "Traceback" not in out.stderr
    summary = json.loads(report.read_text())
    read = sum(1 for line in lines if line.strip())
    assert summary["total"] == read
    assert summary["created"] + summary["updated"] + summary["failed"] == read
    rows = failures.read_text(encoding="utf-8").splitlines() if failures.exists() else []
    assert len(rows) == summary["failed"]
