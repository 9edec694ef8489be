"""The dlt destination in real dlt pipelines: a local source's rows into a FakeHubSpot."""

from __future__ import annotations

import datetime
import decimal
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from hubspot_upsert.dlt import hubspot
from hubspot_upsert.testing import FakeHubSpot

from .conftest import ROOT


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        monkeypatch.setenv("DESTINATION__HUBSPOT__ACCESS_TOKEN", fake.token)
        monkeypatch.setenv("DESTINATION__HUBSPOT__BASE_URL", fake.url)
        monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
        yield fake


def pipeline(tmp_path: Path, destination: Any) -> Any:
    return dlt.pipeline(
        pipeline_name=f"to_hubspot_{tmp_path.name}",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=destination,
        dataset_name="crm",
    )


def people(n: int, bad: set[int] = frozenset()) -> Any:  # type: ignore[assignment]
    @dlt.resource(name="people", write_disposition="append")
    def rows() -> Iterator[dict[str, Any]]:
        for i in range(n):
            yield {
                "email": f"p{i}@example.com",
                "firstname": f"P{i}",
                "lifecyclestage": "not-a-stage" if i in bad else "lead",
                "annualrevenue": decimal.Decimal("1250.50"),
                "closedate": datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.timezone.utc),
            }

    return rows


def test_a_sources_rows_land_at_hubspot(fake: FakeHubSpot, tmp_path: Path) -> None:
    info = pipeline(tmp_path, hubspot()).run(people(2_500))
    assert not info.has_failed_jobs
    assert len(fake.contacts) == 2_500
    p7 = fake.contact("p7@example.com")
    assert p7 is not None
    assert p7.properties["firstname"] == "P7"
    assert p7.properties["annualrevenue"] == "1250.50"
    assert p7.properties["closedate"] == "1772357400000"
    # dlt's own columns stay at home; one client for the load: one definitions read, then
    # batches of 100.
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == 25
    assert "_dlt" not in str([r.body for r in posts[:1]])
    assert [r.method for r in fake.requests].count("GET") == 1


def test_refused_rows_end_the_load_naming_them(fake: FakeHubSpot, tmp_path: Path) -> None:
    with pytest.raises(PipelineStepFailed) as info:
        pipeline(tmp_path, hubspot(batch_size=500)).run(people(400, bad={3, 250}))
    message = str(info.value)
    assert "HubSpot refused 2 of 400" in message, message
    assert "p3@example.com" in message and "INVALID_OPTION" in message, message
    assert len(fake.contacts) == 398
    assert fake.contact("p3@example.com") is None


def test_refused_rows_logged_only(
    fake: FakeHubSpot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="hubspot_upsert.dlt"):
        info = pipeline(tmp_path, hubspot(on_refused="log")).run(people(300, bad={5}))
    assert not info.has_failed_jobs
    assert len(fake.contacts) == 299
    assert "p5@example.com: INVALID_OPTION" in caplog.text


def test_a_table_with_no_object_type_is_refused(fake: FakeHubSpot, tmp_path: Path) -> None:
    @dlt.resource(name="invoices")
    def invoices() -> Iterator[dict[str, Any]]:
        yield {"number": 1}

    with pytest.raises(PipelineStepFailed) as info:
        pipeline(tmp_path, hubspot({"people": "contacts"})).run([people(3), invoices])
    assert "'invoices' has no HubSpot object type" in str(info.value)
    assert len(fake.contacts) == 3
    assert fake.request_count == 2  # the people's definitions and batch; nothing of invoices


def test_no_token_is_a_terminal_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DESTINATION__HUBSPOT__ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    with pytest.raises(PipelineStepFailed) as info:
        pipeline(tmp_path, hubspot()).run(people(2))
    assert "HUBSPOT_ACCESS_TOKEN" in str(info.value)


def test_the_readme_example_runs(
    fake: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## dlt\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    code = block.replace('dlt.pipeline("crm_sync",', "dlt.pipeline(**PIPELINE,")
    assert code != block
    where = {"pipeline_name": f"readme_{tmp_path.name}", "pipelines_dir": str(tmp_path)}
    # dlt reads a resource's module: run the block as one.
    module = types.ModuleType("readme_dlt_example")
    module.PIPELINE = where  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, "README.md", "exec"), module.__dict__)
    ada = fake.contact("ada@example.com")
    assert ada is not None and ada.properties["lifecyclestage"] == "customer"
    assert len(fake.contacts) == 2
