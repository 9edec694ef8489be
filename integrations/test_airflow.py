"""The Airflow recipe run by Airflow 3 itself: ``airflow dags test`` against a FakeHubSpot, the
token and address from an Airflow connection."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubspot_upsert.testing import FakeHubSpot

from .conftest import RECIPES


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("airflow")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(RECIPES / "airflow_dag.py", dags / "airflow_dag.py")
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


def dags_test(
    env: dict[str, str],
    fake: FakeHubSpot,
    connection: dict[str, object] | None = None,
    **variables: str,
) -> subprocess.CompletedProcess[str]:
    connection = connection or {"conn_type": "http", "host": fake.url, "password": fake.token}
    run_env = {**env, "AIRFLOW_CONN_HUBSPOT_DEFAULT": json.dumps(connection)}
    for name, value in variables.items():
        run_env[f"AIRFLOW_VAR_{name.upper()}"] = value
    return subprocess.run(
        [env["AIRFLOW_BIN"], "dags", "test", "hubspot_contacts"],
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
        assert "up_for_retry" not in log
        assert fake.contact("good@example.com") is not None
        assert fake.contact("bad@example.com") is None
        # One attempt: the definitions and one batch; no retry sent them again.
        assert [r.method for r in fake.requests] == ["GET", "POST"]


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
