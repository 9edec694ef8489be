"""Airflow 3 DAGs that upsert contacts into HubSpot with the package's own provider.

Installed beside Airflow, ``hubspot-upsert`` registers the connection type ``hubspot`` (its
password: a Service Key or private app token; its host: empty for HubSpot's own, ``https://...``
for a proxy or a regional host, ``http://127.0.0.1:...`` for a FakeHubSpot; an OAuth app puts
``client_id``, ``client_secret`` and ``refresh_token`` in its extras instead, and the client
refreshes its access tokens during long runs), ``HubSpotHook`` and ``HubSpotUpsertOperator``.

- ``hubspot_contacts``: a day's CSV file, named by the Variable ``hubspot_contacts_csv`` (by
  default the package's sample contacts), read as the ``hubspot-upsert`` command reads it.
- ``hubspot_contacts_from_task``: the records an upstream task returns (a list of dicts or a
  pandas DataFrame, through XCom); replace ``extract`` with your own step.

Transient trouble (rate limits, HubSpot's bad minutes) is retried inside the client first, then
by Airflow's own retries. Records HubSpot refused are listed in the task log and fail the task
with ``AirflowFailException``, without retries (sending them again changes nothing); the others
have landed. The operator returns the counts, which go to XCom.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import pendulum
from airflow.sdk import Variable, dag, task

from hubspot_upsert.airflow.operators import HubSpotUpsertOperator

SAMPLE = str(resources.files("hubspot_upsert") / "data" / "demo_contacts.csv")
START = pendulum.datetime(2026, 1, 1, tz="UTC")


@dag(schedule="@daily", start_date=START, catchup=False)
def hubspot_contacts() -> None:
    HubSpotUpsertOperator(
        task_id="upsert",
        records="{{ var.value.get('hubspot_contacts_csv', '" + SAMPLE + "') }}",
        # The command's options for the file: columns may be named by property labels
        # ("First Name"), as in the sample and in HubSpot's own exports.
        file_options=["--labels"],
        retries=2,
    )


@dag(schedule="@daily", start_date=START, catchup=False)
def hubspot_contacts_from_task() -> None:
    @task
    def extract() -> Any:
        """The records, keyed by HubSpot property names: a list of dicts, or a DataFrame."""
        rows = [
            {"email": "grace@example.com", "firstname": "Grace", "lastname": "Hopper"},
            {"email": "alan@example.com", "firstname": "Alan", "lastname": "Turing"},
        ]
        if Variable.get("hubspot_extract_as", default="list") == "dataframe":
            import pandas as pd

            return pd.DataFrame(rows)
        return rows

    HubSpotUpsertOperator(task_id="upsert", records=extract(), retries=2)


hubspot_contacts()
hubspot_contacts_from_task()
