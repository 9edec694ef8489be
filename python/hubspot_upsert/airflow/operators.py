"""The operator that upserts a task's records into HubSpot."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from .. import HubSpotError
from .._bulk import refusals
from .._objects import face
from ..cli._args import UsageError
from ..cli._inputs import InputError
from ..cli._run import file_records
from .hooks import HubSpotHook

#: How many refused records the task log lists, one line each.
LOGGED_FAILURES = 100


class HubSpotUpsertOperator(BaseOperator):  # type: ignore[misc]
    """Creates or updates records in HubSpot and returns the counts (pushed to XCom).

    ``records`` is a file (a path, templated: ``"/exports/{{ ds }}.csv"``) read as the
    ``hubspot-upsert`` command reads it, with ``file_options`` its options (``["--labels"]``,
    ``["--decimal", ","]``, ``["--object", "companies", "--id-property", "crm_id"]``); or a
    DataFrame, a list of dicts, or an upstream task's output (an ``XComArg``), given to
    ``create_or_update_many`` with ``upsert_options`` (``id_property``, ``mode``,
    ``associate``, ...). ``object_type`` picks companies, deals, tickets or a custom object for
    those.

    Transient trouble (rate limits, HubSpot's bad minutes) is retried inside the client, then by
    Airflow's retries. Records HubSpot refused are listed in the task log and fail the task with
    ``AirflowFailException``, so Airflow does not retry it (sending them again changes nothing);
    the records that landed stay landed. ``fail_on_refused=False`` logs them and succeeds.
    """

    template_fields: Sequence[str] = ("records", "file_options", "object_type")
    ui_color = "#ff7a59"

    def __init__(
        self,
        *,
        records: Any,
        hubspot_conn_id: str = HubSpotHook.default_conn_name,
        object_type: str = "contacts",
        file_options: Sequence[str] = (),
        upsert_options: Mapping[str, Any] | None = None,
        client_options: Mapping[str, Any] | None = None,
        fail_on_refused: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.records = records
        self.hubspot_conn_id = hubspot_conn_id
        self.object_type = object_type
        self.file_options = list(file_options)
        self.upsert_options = dict(upsert_options or {})
        self.client_options = dict(client_options or {})
        self.fail_on_refused = fail_on_refused

    def render_template(
        self,
        content: Any,
        context: Any,
        jinja_env: Any = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        # Records given as data are sent as they are: a value that looks like a template
        # ("{{ ... }}") is the user's text. A path is rendered, an upstream task's output
        # resolved.
        if content is self.records and isinstance(content, (list, tuple, dict, set)):
            return content
        return super().render_template(content, context, jinja_env, seen_oids)

    def execute(self, context: Any) -> dict[str, int]:
        hook = HubSpotHook(self.hubspot_conn_id, **self.client_options)
        with hook.get_conn() as hs:
            try:
                if isinstance(self.records, (str, os.PathLike)):
                    path = os.fspath(self.records)
                    with file_records(path, self.file_options) as (object_type, rows, options):
                        target: Any = face(hs, object_type)
                        options.update(self.upsert_options)
                        result = target.create_or_update_many(rows, keep="failures", **options)
                else:
                    if self.file_options:
                        raise UsageError("file_options are for a file: records is not one")
                    target = face(hs, self.object_type)
                    result = target.create_or_update_many(
                        self.records, keep="failures", **self.upsert_options
                    )
            except (UsageError, InputError, TypeError, ValueError) as e:
                if isinstance(e, HubSpotError):
                    raise
                # The task's input or options are wrong (refused before anything was sent):
                # retrying cannot help.
                raise AirflowFailException(str(e)) from None
        counts = {
            "total": result.total,
            "created": result.created,
            "updated": result.updated,
            "skipped": result.skipped,
            "failed": result.failed,
            "associated": result.associated,
            "not_associated": len(result.not_associated),
        }
        self.log.info("HubSpot upsert: %s", counts)
        refused = refusals(result)
        for failure in refused[:LOGGED_FAILURES]:
            self.log.warning(
                "record %s (%s): %s %s", failure.index, failure.email, failure.code, failure.message
            )
        if len(refused) > LOGGED_FAILURES:
            self.log.warning("... and %d more", len(refused) - LOGGED_FAILURES)
        if refused and self.fail_on_refused:
            unlinked = len(result.not_associated)
            also = f" and {unlinked} landed but were not associated" if unlinked else ""
            raise AirflowFailException(
                f"HubSpot refused {result.failed} of {result.total} records{also} (see the log); "
                "the others landed"
            )
        return counts
