"""Companies, deals, tickets and custom objects: :meth:`HubSpot.objects`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from . import _bulk, _native
from ._mirror import MAX_ARCHIVE

if TYPE_CHECKING:
    from ._client import HubSpot
    from ._state import SyncState


def face(client: HubSpot, object_type: str) -> Any:
    """What upserts records of ``object_type`` on ``client``: the client itself for contacts
    (matched on email by default), else ``client.objects(object_type)``. The command, the
    Airflow operator and the dlt destination take the type as a name."""
    name = _native.object_name(object_type)
    return client if name == "contacts" else client.objects(name)


class CrmObjects:
    """One object type of the portal, on a client: the contacts face's methods for companies,
    deals, tickets or a custom object. Records are matched on ``id_property``: a property of
    the object whose definition has ``hasUniqueValue``, or ``"hs_object_id"``. HubSpot's
    ``domain`` is not unique (two companies may share it): match companies on a unique
    property of your own (a CRM id), or on ``hs_object_id``."""

    def __init__(self, client: HubSpot, object_type: str) -> None:
        self._client = client
        #: The object type as HubSpot's paths name it (``"0-2"`` is ``"companies"``).
        self.name = _native.object_name(object_type)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} at {self._client.base_url}>"

    def create_or_update(
        self, id: str | int, properties: Mapping[str, object] | None = None, *, id_property: str
    ) -> _native.UpsertResult:
        """Create the record whose ``id_property`` is ``id``, or update it (a batch upsert of
        one; by ``hs_object_id``, a batch update of one, which never creates)."""
        return self._client._native.create_or_update(
            id, properties, id_property=id_property, object=self.name
        )

    def create_or_update_many(
        self,
        records: Iterable[Mapping[str, Any]] | Any,
        *,
        id_property: str,
        id_field: str | None = None,
        mode: Literal["upsert", "update", "create"] = "upsert",
        fill_empty: bool | str | Iterable[str] = False,
        labels: bool = False,
        progress: bool | _bulk.ProgressCallback | None = None,
        keep: Literal["all", "failures"] = "all",
        max_in_flight: int = 64,
        state: SyncState | str | os.PathLike[str] | None = None,
        full: bool = False,
        associate: _bulk.Associate | None = None,
        mirror: bool = False,
        max_archive: float = MAX_ARCHIVE,
    ) -> _native.BulkResult:
        """:meth:`HubSpot.create_or_update_many` for this object type: each record's id is
        read from ``id_field`` (by default the id property's own name); ``associate`` and
        ``mirror`` as there (a deal with its company: ``{"companies": ("company_id",
        "crm_id")}``)."""
        return self._client._many(
            self.name,
            records,
            id_field or id_property,
            id_property=id_property,
            mode=mode,
            fill_empty=fill_empty,
            labels=labels,
            progress=progress,
            keep=keep,
            max_in_flight=max_in_flight,
            state=state,
            full=full,
            associate=associate,
            mirror=mirror,
            max_archive=max_archive,
        )

    def check_many(
        self,
        records: Iterable[Mapping[str, Any]] | Any,
        *,
        id_property: str,
        id_field: str | None = None,
        definitions: bool = True,
        read: bool = False,
        mode: Literal["upsert", "update", "create"] = "upsert",
        fill_empty: bool | str | Iterable[str] = False,
        labels: bool = False,
        state: SyncState | str | os.PathLike[str] | None = None,
        associate: _bulk.Associate | None = None,
        mirror: bool = False,
        max_archive: float = MAX_ARCHIVE,
    ) -> _native.BulkResult:
        """:meth:`HubSpot.check_many` for this object type (its own property definitions)."""
        return self._client._check(
            self.name,
            records,
            id_field or id_property,
            definitions=definitions,
            read=read,
            id_property=id_property,
            mode=mode,
            fill_empty=fill_empty,
            labels=labels,
            state=state,
            associate=associate,
            mirror=mirror,
            max_archive=max_archive,
        )

    def prepare(
        self, record: Mapping[str, Any], *, id_property: str, id_field: str | None = None
    ) -> tuple[str, dict[str, str]]:
        """One record as :meth:`create_or_update_many` would send it: ``(id, {property:
        text})``; no request."""
        return self._client._native.converter.prepare(
            record, email_field=id_field or id_property, id_property=id_property, object=self.name
        )
