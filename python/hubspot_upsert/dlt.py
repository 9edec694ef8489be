"""A dlt destination: the rows of any dlt source upserted into HubSpot.

    import dlt
    from hubspot_upsert.dlt import hubspot

    pipeline = dlt.pipeline("crm_sync", destination=hubspot())
    pipeline.run(my_source())

Each table's rows go to HubSpot's contacts (``objects=`` maps tables to other object types),
matched by the rows' ``email`` (``upsert_options`` of ``create_or_update_many`` change that:
``id_property``, ``mode``, ``associate``, ...). The access token is dlt's secret
``destination.hubspot.access_token`` (``DESTINATION__HUBSPOT__ACCESS_TOKEN``), else
``HUBSPOT_ACCESS_TOKEN``; ``base_url`` its config value or ``HUBSPOT_BASE_URL``.

dlt hands the rows over ``batch_size`` at a time (1,000 by default: ten HubSpot batches) and
remembers which were loaded, so a stopped load resumes where it was. Records HubSpot refused are
logged and, unless ``on_refused="log"``, end the load job with a terminal error naming them (dlt
does not retry it; the rows loaded before stay loaded, the job's later rows are not sent).
HubSpot's transient trouble beyond the client's own retries is a transient error: dlt retries
the job from the batch it stopped in (an upsert sent twice lands once).

Requires ``pip install dlt``; importing this module imports dlt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

import dlt
from dlt.common.destination.exceptions import (
    DestinationTerminalException,
    DestinationTransientException,
)
from dlt.common.typing import TSecretStrValue

from . import HubSpot, HubSpotError, RateLimitError, ServerError, TransportError
from ._bulk import refusals
from ._native import object_name
from ._objects import face

log = logging.getLogger("hubspot_upsert.dlt")

#: How many refused records a terminal error names, one line each (all are logged).
NAMED_FAILURES = 10

_clients: dict[tuple[str | None, str | None], HubSpot] = {}
_clients_lock = threading.Lock()


def _client(token: str | None, base_url: str | None) -> HubSpot:
    """One client per token and address in a process: its property definitions and its pacing
    carry over from batch to batch."""
    key = (token or None, base_url or None)
    with _clients_lock:
        hs = _clients.get(key)
        if hs is None:
            hs = _clients[key] = HubSpot(token or None, base_url=base_url or None)
        return hs


def hubspot(
    objects: str | Mapping[str, str] = "contacts",
    *,
    on_refused: Literal["raise", "log"] = "raise",
    batch_size: int = 1000,
    name: str = "hubspot",
    **upsert_options: Any,
) -> Any:
    """The destination. ``objects`` is the object type every table's rows go to, or a mapping
    of table names to object types (a table it does not name is refused before anything of it
    is sent). ``upsert_options`` go to ``create_or_update_many`` for every table."""
    if on_refused not in ("raise", "log"):
        raise ValueError(f"on_refused must be 'raise' or 'log', got {on_refused!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if isinstance(objects, str):
        every = object_name(objects)
        target_of: Callable[[str], str | None] = lambda table: every  # noqa: E731
    else:
        mapped = {table: object_name(kind) for table, kind in objects.items()}
        target_of = mapped.get
    if "keep" in upsert_options or "progress" in upsert_options:
        raise ValueError("keep= and progress= are the destination's own")

    def load(
        items: Any,
        table: Any,
        access_token: TSecretStrValue | None = None,
        base_url: str | None = None,
    ) -> None:
        table_name = str(table["name"])
        kind = target_of(table_name)
        if kind is None:
            raise DestinationTerminalException(
                f"table {table_name!r} has no HubSpot object type: name it in objects= "
                f"({', '.join(sorted(objects)) if not isinstance(objects, str) else ''})"
            )
        try:
            hs = _client(access_token, base_url)
        except (TypeError, ValueError) as e:
            raise DestinationTerminalException(str(e)) from None
        target: Any = face(hs, kind)
        try:
            result = target.create_or_update_many(items, keep="failures", **upsert_options)
        except (RateLimitError, ServerError, TransportError) as e:
            # HubSpot's trouble beyond the client's retries: dlt retries the job from here.
            raise DestinationTransientException(f"{table_name}: {e}") from None
        except (HubSpotError, TypeError, ValueError) as e:
            # A refused token or scope, or a value that cannot be converted (refused before
            # anything of the batch was sent): sending again changes nothing.
            raise DestinationTerminalException(f"{table_name}: {e}") from None
        refused = refusals(result)
        log.info(
            "%s -> %s: %d created, %d updated, %d skipped, %d refused",
            table_name,
            kind,
            result.created,
            result.updated,
            result.skipped,
            len(refused),
        )
        for failure in refused:
            log.warning("%s %s: %s %s", table_name, failure.email, failure.code, failure.message)
        if refused and on_refused == "raise":
            named = "; ".join(f"{f.email}: {f.code} {f.message}" for f in refused[:NAMED_FAILURES])
            left = len(refused) - NAMED_FAILURES
            more = f"; and {left} more" if left > 0 else ""
            raise DestinationTerminalException(
                f"HubSpot refused {len(refused)} of {result.total} rows of {table_name!r} "
                f"(the others landed): {named}{more}"
            )

    return dlt.destination(
        load,
        name=name,
        batch_size=batch_size,
        loader_file_format="typed-jsonl",
        naming_convention="direct",
        skip_dlt_columns_and_tables=True,
        max_table_nesting=0,
    )
