"""The operator that upserts a task's records into HubSpot."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import Asset, BaseOperator
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


def hubspot_asset(conn_id: str, object_type: str) -> Asset:
    """The Asset a task writing ``object_type`` records through connection ``conn_id``
    updates: ``hubspot://<conn_id>/<object type>`` (``contacts``, ``companies``, ``2-123``)."""
    from .. import _native

    name = _native.object_name(object_type)
    return Asset(uri=f"hubspot://{conn_id}/{name}", name=f"hubspot_{conn_id}_{name}")


def _object_of(file_options: Sequence[str], object_type: str) -> str:
    """The object type a file's options name (``--object companies``), else ``object_type``."""
    options = list(file_options)
    for i, option in enumerate(options):
        if option == "--object" and i + 1 < len(options):
            return options[i + 1]
        if option.startswith("--object="):
            return option.partition("=")[2]
    return object_type


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

    Lineage: the task's outlet is the Asset ``hubspot://<conn id>/<object type>``
    (:func:`hubspot_asset`; ``outlets=`` replaces it), whose event carries the counts and the
    portal id; with Airflow's OpenLineage provider, each run's events name the file read as
    the input dataset and ``hubspot://<portal id>``'s object type as the output, with the
    records written as its output statistics.
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
        written = _object_of(file_options, object_type)
        if "outlets" not in kwargs and "{{" not in written:
            kwargs["outlets"] = [hubspot_asset(hubspot_conn_id, written)]
        super().__init__(**kwargs)
        self._lineage: tuple[str | None, str, int, int] | None = None
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
        source: str | None = None
        object_type = self.object_type
        with hook.get_conn() as hs:
            try:
                if isinstance(self.records, (str, os.PathLike)):
                    path = os.fspath(self.records)
                    source = os.path.abspath(path)
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
            # Whose records were written: one request (read once per client), only if any were.
            portal = _portal(hs) if result.created + result.updated else None
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
        written = result.created + result.updated
        self._lineage = (source, _native_name(object_type), portal or 0, written)
        self._asset_event(context, object_type, {**counts, "portal_id": portal})
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

    def _asset_event(self, context: Any, object_type: str, extra: dict[str, Any]) -> None:
        """Puts the counts on the event of the Asset this task updates."""
        asset = hubspot_asset(self.hubspot_conn_id, object_type)
        if not any(getattr(o, "uri", None) == asset.uri for o in self.outlets or ()):
            return
        events = context.get("outlet_events") if hasattr(context, "get") else None
        if events is not None:
            events[asset].extra = extra

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The run's lineage for Airflow's OpenLineage provider: the file read (if the records
        came from one) as input, the HubSpot object type written as output."""
        try:
            from airflow.providers.common.compat.openlineage.facet import (
                Dataset,
                OutputDataset,
                OutputStatisticsOutputDatasetFacet,
            )
            from airflow.providers.openlineage.extractors import OperatorLineage
        except ImportError:
            return None
        if self._lineage is None:
            return OperatorLineage()
        source, object_type, portal, written = self._lineage
        inputs = [] if source is None else [Dataset(namespace="file", name=source)]
        if not portal:  # nothing was written
            return OperatorLineage(inputs=inputs)
        statistics = OutputStatisticsOutputDatasetFacet(rowCount=written)
        output = OutputDataset(
            namespace=f"hubspot://{portal}",
            name=object_type,
            outputFacets={"outputStatistics": statistics},
        )
        return OperatorLineage(inputs=inputs, outputs=[output])


def _portal(hs: Any) -> int | None:
    """The portal the connection's credentials belong to (read once per client)."""
    try:
        return int(hs._native.portal_id())
    except Exception:  # lineage must not fail a task whose records landed
        return None


def _native_name(object_type: str) -> str:
    from .. import _native

    return _native.object_name(object_type)
