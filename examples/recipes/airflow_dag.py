"""An Airflow DAG that upserts a day's contacts into HubSpot.

The token comes from the Airflow connection ``hubspot_default`` (its password field), or the
variable ``hubspot_access_token``. Transient trouble (rate limits, HubSpot's bad minutes) is
retried inside the client; records HubSpot refuses are logged to the task log and fail the
task at the end, after every good record has landed; a refused token or a daily limit fails it
at once, so Airflow's own retries can take over.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from hubspot_upsert import HubSpot

# Airflow shows this logger in the task log.
log = logging.getLogger("airflow.task")


class ContactsRejected(Exception):
    """Some records were refused by HubSpot; the others landed."""


def hubspot_from_airflow() -> HubSpot:
    """A client built inside the task (never pickled into XCom or across workers)."""
    from airflow.hooks.base import BaseHook
    from airflow.models import Variable

    try:
        token = BaseHook.get_connection("hubspot_default").password
    except Exception:
        token = Variable.get("hubspot_access_token")
    return HubSpot(token)


def upsert_contacts(rows: Iterable[Mapping[str, Any]], hs: HubSpot) -> dict[str, int]:
    """The task's work: upsert, log failures, fail only on records HubSpot refused."""
    result = hs.create_or_update_many(rows, keep="failures")
    summary = {"created": result.created, "updated": result.updated, "failed": result.failed}
    log.info("HubSpot upsert: %s", summary)
    for failure in result.failures[:50]:
        log.warning(
            "row %s (%s): %s %s", failure.index, failure.email, failure.code, failure.message
        )
    if result.failed:
        raise ContactsRejected(f"{result.failed} of {result.total} contacts were rejected")
    return summary


def load_rows(ds: str) -> list[dict[str, Any]]:
    """Stands for your extract step: the day's contacts as dicts."""
    raise NotImplementedError("read the day's contacts from your source system here")


try:
    import pendulum
    from airflow.decorators import dag, task
except ImportError:  # Airflow is not installed: the functions above still work.
    pass
else:

    @dag(schedule="@daily", start_date=pendulum.datetime(2024, 1, 1), catchup=False)
    def hubspot_contacts() -> None:
        @task(retries=3)
        def upsert(ds: str | None = None) -> dict[str, int]:
            return upsert_contacts(load_rows(ds or ""), hubspot_from_airflow())

        upsert()

    hubspot_contacts()
