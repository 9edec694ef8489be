"""An Airflow 3 DAG that upserts a day's contacts into HubSpot.

- The token and address come from the Airflow connection ``hubspot_default``: its password
  (a Service Key or private app token) and its host (empty for HubSpot's own,
  ``https://...`` for a proxy or a regional host, ``http://127.0.0.1:...`` for a FakeHubSpot).
  An OAuth app puts ``client_id``, ``client_secret`` and ``refresh_token`` in the connection's
  extras instead: the client refreshes its access tokens during long runs.
- Transient trouble (rate limits, HubSpot's bad minutes) is retried inside the client first,
  then by Airflow's own retries. Records HubSpot refused are listed in the task log and fail the
  task with ``AirflowFailException``, without retries: sending them again changes nothing.
- The records come from the CSV file that the Variable ``hubspot_contacts_csv`` names (by
  default the package's sample contacts); replace ``load_rows`` with your extract step.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import pendulum
from airflow.sdk import BaseHook, Variable, dag, task
from airflow.sdk.exceptions import AirflowFailException

from hubspot_upsert import HubSpot, OAuth

log = logging.getLogger(__name__)


def hubspot_from_connection(conn_id: str = "hubspot_default") -> HubSpot:
    """A client made inside the task (never pickled into XCom or across workers)."""
    conn = BaseHook.get_connection(conn_id)
    host = (conn.host or "").strip()
    if host and "://" not in host:
        host = f"https://{host}" + (f":{conn.port}" if conn.port else "")
    extra = conn.extra_dejson
    app = [extra.get(k) for k in ("client_id", "client_secret", "refresh_token")]
    if all(app):
        return HubSpot(base_url=host or None, oauth=OAuth(*app))
    return HubSpot(conn.password, base_url=host or None)


def load_rows(path: str | None) -> list[dict[str, Any]]:
    """The day's contacts, as dicts whose keys are HubSpot property names."""
    source = path or str(resources.files("hubspot_upsert") / "data" / "demo_contacts.csv")
    renames = {"First Name": "firstname", "Last Name": "lastname"}
    with open(source, newline="", encoding="utf-8-sig") as f:
        return [
            {renames.get(k, k): (v or None) for k, v in row.items()} for row in csv.DictReader(f)
        ]


def upsert_contacts(rows: Iterable[Mapping[str, Any]], hs: HubSpot) -> dict[str, int]:
    """Upserts, logs each refused record, and fails the task (no retry) if any was refused."""
    result = hs.create_or_update_many(rows, keep="failures")
    summary = {"created": result.created, "updated": result.updated, "failed": result.failed}
    log.info("HubSpot upsert: %s", summary)
    for failure in result.failures[:100]:
        log.warning(
            "row %s (%s): %s %s", failure.index, failure.email, failure.code, failure.message
        )
    if result.failed:
        raise AirflowFailException(
            f"HubSpot refused {result.failed} of {result.total} contacts (see the log); "
            "the others landed"
        )
    return summary


@dag(schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def hubspot_contacts() -> None:
    @task(retries=2)
    def upsert() -> dict[str, int]:
        path = Variable.get("hubspot_contacts_csv", default=None)
        return upsert_contacts(load_rows(path), hubspot_from_connection())

    upsert()


hubspot_contacts()
