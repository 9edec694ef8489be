"""One object type of the portal on a client, contacts as the others: :meth:`HubSpot.objects`
and :attr:`HubSpot.contacts`. Every bulk run, of any face, is run here."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import _bulk, _mirror, _native, _telemetry

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._client import HubSpot
    from ._state import StateRun, SyncState

_log = logging.getLogger("hubspot_upsert")


def face(client: HubSpot, object_type: str) -> HubSpot | CrmObjects:
    """What upserts records of ``object_type`` on ``client``, by the keyword arguments of
    ``create_or_update_many``: the client itself for contacts (whose methods are
    :attr:`HubSpot.contacts`' and take ``email_field`` too), else ``client.objects(...)``.
    The command, the Airflow operator and the dlt destination take the type as a name."""
    name = _native.object_name(object_type)
    return client if name == "contacts" else client.objects(name)


class CrmObjects:
    """One object type of the portal, on a client: contacts (:attr:`HubSpot.contacts`, whose
    methods the client's own are), companies, deals, tickets or a custom object. Records are
    matched on ``id_property``: a property of the object whose definition has
    ``hasUniqueValue``, or ``"hs_object_id"``; contacts on ``"email"`` unless told otherwise.
    HubSpot's ``domain`` is not unique (two companies may share it): match companies on a
    unique property of your own (a CRM id), or on ``hs_object_id``."""

    def __init__(self, client: HubSpot, object_type: str) -> None:
        self._client = client
        #: The object type as HubSpot's paths name it (``"0-2"`` is ``"companies"``).
        self.name = _native.object_name(object_type)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} at {self._client.base_url}>"

    def _id_property(self, id_property: str | None) -> str:
        """``id_property``, or this type's default (email for contacts; others have none)."""
        if id_property is None:
            return _native.BulkOptions().id_property_of(self.name)
        return id_property

    def create_or_update(
        self,
        id: str | int,
        properties: Mapping[str, object] | None = None,
        *,
        id_property: str | None = None,
    ) -> _native.UpsertResult:
        """Create the record whose ``id_property`` is ``id``, or update it (a batch upsert of
        one; by ``hs_object_id``, a batch update of one, which never creates); see
        :meth:`HubSpot.create_or_update`."""
        return self._client._native.create_or_update(
            id, properties, id_property=self._id_property(id_property), object=self.name
        )

    def create_or_update_many(
        self, records: Iterable[Mapping[str, Any]] | Any, **options: Unpack[_bulk.ManyOptions]
    ) -> _native.BulkResult:
        """:meth:`HubSpot.create_or_update_many` for this object type, with the same options:
        each record's id is read from ``id_field`` (by default the id property's own name);
        ``associate`` and ``mirror`` as there (a deal with its company: ``{"companies":
        ("company_id", "crm_id")}``)."""
        settings, state = _bulk.options(options, _bulk.ManyOptions, "create_or_update_many")
        return self._many(records, settings, state, options.get("progress"))

    def _many(
        self,
        records: Iterable[Mapping[str, Any]] | Any,
        settings: _native.BulkOptions,
        state: SyncState | str | os.PathLike[str] | None,
        progress: bool | _bulk.ProgressCallback | None,
    ) -> _native.BulkResult:
        native = self._client._native
        id_property = settings.id_property_of(self.name)
        _mirror.check_options(settings.mirror, state)
        rows, total = _bulk.records_and_total(records)

        def run_many(run: StateRun | None) -> _native.BulkResult:
            on_progress, finish = _bulk.progress_reporter(progress, total)
            try:
                return native.create_or_update_many(
                    rows, settings, progress=on_progress, state=run, object=self.name
                )
            finally:
                finish()

        def mirrored(run: StateRun) -> _native.BulkResult:
            run.mirror = True
            result = run_many(run)
            # The run read its whole source (a stop raises before this).
            _mirror.mirror(native, self.name, run, result, settings.max_archive)
            return result

        with _telemetry.run_span(
            "create_or_update_many",
            self.name,
            id_property,
            mode=settings.mode,
            state=state is not None,
            mirror=settings.mirror,
        ) as span:
            if state is None:
                result = run_many(None)
            else:
                work = mirrored if settings.mirror else run_many
                result = self._with_state(state, id_property, settings.full, work)
            span.finish(result)
            return result

    def _with_state(
        self,
        state: SyncState | str | os.PathLike[str],
        id_property: str,
        full: bool,
        work: Callable[[StateRun], _native.BulkResult],
    ) -> _native.BulkResult:
        """Runs ``work`` as one run of the sync state, recording how it ended."""
        from ._state import open_state

        store, owned = open_state(state)
        try:
            # Before the run is recorded: a refused token leaves no run behind.
            portal = self._client._native.portal_id()
            run = store.begin(portal, self.name, id_property, full=full)
            try:
                result = work(run)
            except BaseException as e:
                partial = getattr(e, "bulk_result", None)
                # What stopped the run is what the caller sees, even if the state cannot
                # record it (its status then says the run did not finish).
                with contextlib.suppress(Exception):
                    run.end(partial, f"stopped: {type(e).__name__}: {e}")
                raise
            run.end(result, "finished")
            return result
        finally:
            if owned:
                store.close()

    def check_many(
        self, records: Iterable[Mapping[str, Any]] | Any, **options: Unpack[_bulk.CheckOptions]
    ) -> _native.BulkResult:
        """:meth:`HubSpot.check_many` for this object type (its own property definitions),
        with the same options."""
        read = bool(options.get("read", False))
        settings, state = _bulk.options(
            options, _bulk.CheckOptions, "check_many", **({"keep": "failures"} if read else {})
        )
        native = self._client._native
        id_property = settings.id_property_of(self.name)
        _mirror.check_options(settings.mirror, state)
        rows, _ = _bulk.records_and_total(records)
        if read:
            if state is not None:
                raise ValueError("check_many takes state or read=True, not both")
            return native.create_or_update_many(rows, settings, dry_run=True, object=self.name)
        from ._state import open_state

        store, owned = (None, False) if state is None else open_state(state)
        try:
            view = None
            if store is not None:
                view = store.looking(self.name, id_property)
                view.mirror = settings.mirror
            result = native.check_many(
                rows,
                settings,
                definitions=bool(options.get("definitions", True)),
                state=view,
                object=self.name,
            )
            if view is not None and settings.mirror:
                why = _mirror.plan(view, result, settings.max_archive)
                if why is not None:
                    _log.warning("a mirror run would archive nothing: %s", why)
            return result
        finally:
            if owned and store is not None:
                store.close()

    def prepare(
        self,
        record: Mapping[str, Any],
        *,
        id_property: str | None = None,
        id_field: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """One record as :meth:`create_or_update_many` would send it: ``(id, {property:
        text})``; no request (see :meth:`HubSpot.prepare`)."""
        id_property = self._id_property(id_property)
        return self._client._native.converter.prepare(
            record,
            email_field=id_property.strip() if id_field is None else id_field,
            id_property=id_property,
            object=self.name,
        )
