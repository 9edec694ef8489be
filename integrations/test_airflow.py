"""The package's Airflow provider and the recipe built on it, run by Airflow 3 itself:
``airflow dags test`` against a FakeHubSpot, the token and address from a ``hubspot``
connection."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubspot_upsert.testing import FakeHubSpot

from .conftest import RECIPES, ROOT

# Records written into the DAG: their text is data, never a template.
LITERAL_DAG = """
import pendulum
from airflow.sdk import dag
from hubspot_upsert.airflow.operators import HubSpotUpsertOperator

@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def literal_records():
    HubSpotUpsertOperator(
        task_id="upsert",
        records=[{"email": "curly@example.com", "firstname": "{{ 7 * 7 }}"}],
    )

literal_records()
"""


def readme_dag() -> str:
    """The DAG the README's Airflow section shows, as written."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Airflow\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return str(block)


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("airflow")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(RECIPES / "airflow_dag.py", dags / "airflow_dag.py")
    (dags / "readme_dag.py").write_text(readme_dag(), encoding="utf-8")
    (dags / "literal_dag.py").write_text(LITERAL_DAG, encoding="utf-8")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run(
        [airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=600
    )
    env["AIRFLOW_BIN"] = airflow
    yield env


def with_connection(
    env: dict[str, str], fake: FakeHubSpot, connection: dict[str, object] | None = None
) -> dict[str, str]:
    connection = connection or {"conn_type": "hubspot", "host": fake.url, "password": fake.token}
    return {**env, "AIRFLOW_CONN_HUBSPOT_DEFAULT": json.dumps(connection)}


def dags_test(
    env: dict[str, str],
    fake: FakeHubSpot,
    connection: dict[str, object] | None = None,
    dag_id: str = "hubspot_contacts",
    **variables: str,
) -> subprocess.CompletedProcess[str]:
    run_env = with_connection(env, fake, connection)
    for name, value in variables.items():
        run_env[f"AIRFLOW_VAR_{name.upper()}"] = value
    return subprocess.run(
        [env["AIRFLOW_BIN"], "dags", "test", dag_id],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_dag_runs_green(airflow_home: dict[str, str]) -> None:
    with FakeHubSpot() as fake:
        out = dags_test(airflow_home, fake)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        assert len(fake.contacts) == 11  # the sample's twelve rows, one address twice
        assert fake.contact("ada@example.com") is not None


def test_the_recipe_imports_nothing_airflow_deprecates(airflow_home: dict[str, str]) -> None:
    """Airflow 3.3 warns of imports it moved (AirflowFailException lives in airflow.sdk)."""
    out = subprocess.run(
        [sys.executable, "-c", "import airflow_dag"],
        cwd=RECIPES,
        env=airflow_home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "deprecated" not in (out.stdout + out.stderr).lower(), out.stderr[-3000:]


def test_refused_records_fail_the_task_without_retries(
    airflow_home: dict[str, str], tmp_path: Path
) -> None:
    rows = tmp_path / "day.csv"
    rows.write_text(
        "email,firstname,lifecyclestage\n"
        "good@example.com,Good,lead\n"
        "bad@example.com,Bad,not-a-stage\n",
        encoding="utf-8",
    )
    with FakeHubSpot() as fake:
        out = dags_test(airflow_home, fake, hubspot_contacts_csv=str(rows))
        log = out.stdout + out.stderr
        assert out.returncode != 0, log[-3000:]
        assert "AirflowFailException" in log and "HubSpot refused 1 of 2" in log, log[-3000:]
        assert "INVALID_OPTION" in log, log[-3000:]  # the refused record, in the task log
        assert "up_for_retry" not in log
        assert fake.contact("good@example.com") is not None
        assert fake.contact("bad@example.com") is None
        # One attempt: the definitions, one batch, the portal's id for the lineage; no retry
        # sent them again.
        assert [r.method for r in fake.requests] == ["GET", "POST", "GET"]


def test_an_oauth_app_from_the_connections_extras(airflow_home: dict[str, str]) -> None:
    app = {"client_id": "app-1", "client_secret": "secret-5a9d", "refresh_token": "refresh-c07e"}
    with FakeHubSpot(
        oauth_clients={"app-1": "secret-5a9d"}, refresh_tokens=["refresh-c07e"]
    ) as fake:
        connection = {"conn_type": "http", "host": fake.url, "extra": app}
        out = dags_test(airflow_home, fake, connection)
        log = out.stdout + out.stderr
        assert out.returncode == 0, log[-3000:]
        assert len(fake.contacts) == 11 and fake.token_grants == 1
        assert "secret-5a9d" not in log and "refresh-c07e" not in log


def test_the_records_of_an_upstream_task_list_or_dataframe(airflow_home: dict[str, str]) -> None:
    for shape in ("list", "dataframe"):
        with FakeHubSpot() as fake:
            out = dags_test(
                airflow_home,
                fake,
                dag_id="hubspot_contacts_from_task",
                hubspot_extract_as=shape,
            )
            assert out.returncode == 0, shape + (out.stdout + out.stderr)[-3000:]
            grace = fake.contact("grace@example.com")
            assert grace is not None and grace.properties["firstname"] == "Grace", shape
            assert len(fake.contacts) == 2, shape


def test_a_file_the_command_cannot_read_fails_without_retries(
    airflow_home: dict[str, str], tmp_path: Path
) -> None:
    rows = tmp_path / "day.csv"
    rows.write_text("email,no_such_property\nx@example.com,1\n", encoding="utf-8")
    with FakeHubSpot() as fake:
        out = dags_test(airflow_home, fake, hubspot_contacts_csv=str(tmp_path / "missing.csv"))
        log = out.stdout + out.stderr
        assert out.returncode != 0 and "AirflowFailException" in log, log[-3000:]
        assert "cannot read" in log and "up_for_retry" not in log, log[-3000:]
        assert fake.request_count == 0
        # An unknown column: named before anything is written.
        out = dags_test(airflow_home, fake, hubspot_contacts_csv=str(rows))
        log = out.stdout + out.stderr
        assert out.returncode != 0 and "no_such_property" in log, log[-3000:]
        assert "up_for_retry" not in log
        assert [r.method for r in fake.requests] == ["GET"]


PROVIDER_CHECK = """
import json
from airflow.providers_manager import ProvidersManager
from hubspot_upsert.airflow.hooks import HubSpotHook
manager = ProvidersManager()
info = manager.hooks.get("hubspot")
provider = manager.providers.get("hubspot-upsert")
ok, message = HubSpotHook().test_connection()
print(json.dumps({
    "hook": info.hook_class_name if info else None,
    "provider": provider.version if provider else None,
    "behaviour": manager.field_behaviours.get("hubspot"),
    "secret": manager.connection_form_widgets["extra__hubspot__client_secret"].is_sensitive,
    "test": [ok, message],
}))
"""


def test_the_provider_registers_the_hubspot_connection_type(
    airflow_home: dict[str, str],
) -> None:
    with FakeHubSpot() as fake:
        env = with_connection(airflow_home, fake)
        out = subprocess.run(
            [sys.executable, "-c", PROVIDER_CHECK],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        found = json.loads(out.stdout.strip().splitlines()[-1])
        assert found["hook"] == "hubspot_upsert.airflow.hooks.HubSpotHook", found
        assert found["provider"], found
        assert found["behaviour"]["relabeling"]["password"] == "Access token", found
        assert found["secret"] is True, found
        assert found["test"] == [True, "HubSpot answered"], found
        assert fake.request_count == 1
        # A wrong token: the test says so, and never shows the token.
        wrong = {"conn_type": "hubspot", "host": fake.url, "password": "pat-na1-wrong-5e1d"}
        out = subprocess.run(
            [sys.executable, "-c", PROVIDER_CHECK],
            env=with_connection(airflow_home, fake, wrong),
            capture_output=True,
            text=True,
            timeout=300,
        )
        found = json.loads(out.stdout.strip().splitlines()[-1])
        assert found["test"][0] is False and "401" in found["test"][1], found
        assert "pat-na1-wrong-5e1d" not in out.stdout + out.stderr


def test_the_readme_dag_loads_hubspots_own_export_back(
    airflow_home: dict[str, str], tmp_path: Path
) -> None:
    export = tmp_path / "hubspot-crm-exports-all-contacts-2026-12-01.csv"
    export.write_text(
        "Record ID,First Name,Last Name,Email,Lifecycle Stage,Create Date\n"
        "101,Ada,Lovelace,ada@example.com,Customer,2026-01-04 09:30\n"
        "102,Grace,Hopper,grace@example.com,Marketing Qualified Lead,2026-02-11 14:02\n",
        encoding="utf-8-sig",
    )
    with FakeHubSpot() as fake:
        out = dags_test(airflow_home, fake, dag_id="nightly_contacts", contacts_export=str(export))
        log = out.stdout + out.stderr
        assert out.returncode == 0, log[-3000:]
        ada = fake.contact("ada@example.com")
        grace = fake.contact("grace@example.com")
        assert ada is not None and ada.properties["lifecyclestage"] == "customer"
        assert grace is not None
        assert grace.properties["lifecyclestage"] == "marketingqualifiedlead"
        assert grace.properties["firstname"] == "Grace"
        assert "hs_object_id" not in str([r.body for r in fake.requests if r.method == "POST"])


def test_records_given_as_data_are_not_templates(airflow_home: dict[str, str]) -> None:
    with FakeHubSpot() as fake:
        out = dags_test(airflow_home, fake, dag_id="literal_records")
        assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
        curly = fake.contact("curly@example.com")
        assert curly is not None and curly.properties["firstname"] == "{{ 7 * 7 }}"


LINEAGE_CHECK = """
import json, sys
from sqlalchemy import select
from airflow.models.asset import AssetEvent, AssetModel
from airflow.utils.session import create_session
with create_session() as session:
    rows = session.execute(
        select(AssetModel.uri, AssetEvent.extra).join(
            AssetEvent, AssetEvent.asset_id == AssetModel.id
        )
    ).all()
print(json.dumps([[uri, extra] for uri, extra in rows]))
"""


def test_the_task_updates_its_asset_and_emits_openlineage_datasets(
    airflow_home: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    events = tmp_path / "lineage.json"
    env = {
        **airflow_home,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "tests",
    }
    with FakeHubSpot() as fake:
        out = dags_test(env, fake)
        log = out.stdout + out.stderr
        assert out.returncode == 0, log[-3000:]
        portal = fake.portal_id
    emitted = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
    done = [
        e
        for e in emitted
        if e.get("eventType") == "COMPLETE" and e["job"]["name"] == "hubspot_contacts.upsert"
    ]
    assert done, [e["job"]["name"] for e in emitted]
    (output,) = done[-1]["outputs"]
    assert (output["namespace"], output["name"]) == (f"hubspot://{portal}", "contacts")
    written = output["outputFacets"]["outputStatistics"]["rowCount"]
    (source,) = done[-1]["inputs"]
    assert source["namespace"] == "file" and source["name"].endswith(".csv")
    assets = subprocess.run(
        [sys.executable, "-c", LINEAGE_CHECK],
        env=airflow_home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert assets.returncode == 0, assets.stderr[-3000:]
    asset = "hubspot://hubspot_default/contacts"
    updated = [extra for uri, extra in json.loads(assets.stdout) if uri == asset]
    assert updated and updated[-1]["created"] == 11 and updated[-1]["portal_id"] == portal
    assert written == updated[-1]["created"] + updated[-1]["updated"]
