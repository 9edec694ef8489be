"""Create or update HubSpot contacts, on a Rust core.

>>> from hubspot_upsert import HubSpot
>>> hs = HubSpot()  # token from HUBSPOT_ACCESS_TOKEN
>>> hs.create_or_update("ada@example.com", {"firstname": "Ada"})  # doctest: +SKIP
UpsertResult(vid=3234574, is_new=False, email='ada@example.com')
"""

from typing import TYPE_CHECKING, Any

from ._client import HubSpot
from ._errors import (
    AuthenticationError,
    BulkUpsertError,
    EmailConflictError,
    FieldError,
    HubSpotError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RecordError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    ValidationError,
)
from ._mirror import MirrorRefusedError
from ._native import BulkResult, SkippedRecord, UpsertResult, __version__
from ._oauth import OAuth
from ._objects import CrmObjects

__all__ = [
    "AsyncHubSpot",
    "AuthenticationError",
    "BulkResult",
    "BulkUpsertError",
    "CrmObjects",
    "EmailConflictError",
    "FieldError",
    "HubSpot",
    "HubSpotError",
    "MirrorRefusedError",
    "NotFoundError",
    "OAuth",
    "PermissionDeniedError",
    "RateLimitError",
    "RecordError",
    "RequestTimeoutError",
    "ServerError",
    "SkippedRecord",
    "SyncState",
    "SyncStateError",
    "TransportError",
    "UpsertResult",
    "ValidationError",
    "__version__",
]

if TYPE_CHECKING:
    from ._async import AsyncHubSpot
    from ._state import SyncState, SyncStateError


def __getattr__(name: str) -> Any:
    # AsyncHubSpot brings asyncio in: loaded on first use, so that `import hubspot_upsert`
    # stays quick for the programs that never await.
    if name == "AsyncHubSpot":
        from ._async import AsyncHubSpot

        AsyncHubSpot.__module__ = __name__
        globals()[name] = AsyncHubSpot
        return AsyncHubSpot
    if name in ("SyncState", "SyncStateError"):
        # SQLite and the journal's other modules load with the first state.
        from . import _state

        for public in ("SyncState", "SyncStateError"):
            found = getattr(_state, public)
            found.__module__ = __name__
            globals()[public] = found
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Public classes show (and pickle) under the package's own name, not their private modules.
for _name in __all__:
    _obj = globals().get(_name)
    if isinstance(_obj, type) and _obj.__module__.startswith(f"{__name__}._"):
        _obj.__module__ = __name__
del _name, _obj
