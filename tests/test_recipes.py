"""The recipes in examples/recipes run against the fake (Airflow and Django not needed)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot, ScriptedResponse

RECIPES = Path(__file__).resolve().parent.parent / "examples" / "recipes"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_notebook_recipe(hs: HubSpot, fake: FakeHubSpot, tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    csv = tmp_path / "export.csv"
    csv.write_text(
        "E-mail,First Name,Last Name,city\n"
        " Ada@Example.com ,Ada,Lovelace,London\n"
        "grace@example.com,Grace,Hopper,\n"
        ",Nobody,Noone,Nowhere\n"
        "alan@example,Alan,Turing,Manchester\n"
    )
    notebook = load("notebook")
    result, failures = notebook.sync_csv(str(csv), hs)
    assert (result.created, result.failed) == (2, 1)
    assert list(failures.columns) == ["row", "email", "code", "message"]
    assert failures.iloc[0]["code"] == "INVALID_EMAIL"
    ada = fake.contact("ada@example.com")
    assert ada is not None and ada.properties["firstname"] == "Ada"
    grace = fake.contact("grace@example.com")
    assert grace is not None and "city" not in grace.properties


def test_airflow_recipe(hs: HubSpot, fake: FakeHubSpot, caplog: pytest.LogCaptureFixture) -> None:
    airflow = load("airflow_dag")
    caplog.set_level(logging.INFO, logger="airflow.task")
    rows = [{"email": f"day{i}@example.com", "firstname": f"D{i}"} for i in range(150)]
    assert airflow.upsert_contacts(rows, hs) == {"created": 150, "updated": 0, "failed": 0}
    rows[3]["lifecyclestage"] = "not-a-stage"
    with pytest.raises(airflow.ContactsRejected, match="1 of 150"):
        airflow.upsert_contacts(rows, hs)
    assert len(fake.contacts) == 150
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("row 3 (day3@example.com): INVALID_OPTION" in w for w in warnings)


def test_django_recipe(
    fake: FakeHubSpot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    django_app = load("django_app")
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", fake.token)
    monkeypatch.setattr(django_app, "_client", HubSpot(fake.token, base_url=fake.url))
    fake.add_properties({"is_customer": "bool", "signup_date": "date"})
    committed: list[Any] = []
    monkeypatch.setattr(django_app, "on_commit", committed.append)
    user = SimpleNamespace(
        pk=7,
        email="ada@example.com",
        first_name="Ada",
        last_name="",
        is_customer=True,
        date_joined=dt.datetime(2024, 8, 15, 9, 30, tzinfo=dt.timezone.utc),
    )
    django_app.on_user_saved(sender=None, instance=user, created=True)
    assert fake.request_count == 0  # nothing before the commit
    for callback in committed:
        callback()
    stored = fake.contact("ada@example.com")
    assert stored is not None
    assert stored.properties["firstname"] == "Ada"
    assert "lastname" not in stored.properties
    assert stored.properties["signup_date"] == "1723680000000"
    # A HubSpot failure is logged, not raised into the request.
    fake.script(ScriptedResponse(401, {"status": "error"}))
    django_app.sync_user(user)
    assert "could not upsert user 7" in caplog.text
