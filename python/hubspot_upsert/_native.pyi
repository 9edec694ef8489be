"""Type stubs of the native core; checked against it by mypy.stubtest."""

from collections.abc import Callable, Iterator
from typing import Any, final

from ._errors import HubSpotError, RecordError
from ._state import StateRun

__all__ = [
    "BulkOptions",
    "BulkResult",
    "Client",
    "Converter",
    "SkippedRecord",
    "Task",
    "UpsertResult",
    "__version__",
    "_release_before_fork",
    "object_name",
]

__version__: str

def object_name(text: str) -> str:
    """An object type as HubSpot's paths name it (``"0-2"`` is ``"companies"``)."""

def _release_before_fork() -> None:
    """Run by ``os.fork()``: idle clients stop their I/O threads before the process forks."""

@final
class UpsertResult:
    """The result of one upsert: the contact's id, whether it was created, its address, and the
    id it was matched on."""

    @property
    def vid(self) -> int: ...
    @property
    def is_new(self) -> bool: ...
    @property
    def email(self) -> str | None: ...
    @property
    def id(self) -> str: ...
    @property
    def id_property(self) -> str: ...
    @property
    def unchanged(self) -> bool: ...
    def __new__(
        cls,
        vid: int,
        is_new: bool,
        email: str | None,
        id: str | None = None,
        id_property: str = "email",
        unchanged: bool = False,
    ) -> UpsertResult: ...
    def __getnewargs__(self) -> tuple[int, bool, str | None, str, str, bool]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class SkippedRecord:
    """A record a bulk run did not write because its sync mode said not to."""

    @property
    def index(self) -> int: ...
    @property
    def id(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def reason(self) -> str: ...
    def __new__(cls, index: int, id: str, code: str, reason: str) -> SkippedRecord: ...
    def __getnewargs__(self) -> tuple[int, str, str, str]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class BulkResult:
    """What ``create_or_update_many`` did: counts, and the outcome of each kept record."""

    @property
    def created(self) -> int: ...
    @property
    def updated(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def unchanged(self) -> int: ...
    @property
    def total(self) -> int: ...
    @property
    def keep(self) -> str: ...
    @property
    def associated(self) -> int: ...
    @property
    def archived(self) -> list[tuple[str, int]]: ...
    def _set_archived(self, archived: list[tuple[str, int]]) -> None: ...
    @property
    def failures(self) -> list[RecordError]: ...
    @property
    def not_associated(self) -> list[RecordError]: ...
    @property
    def skips(self) -> list[SkippedRecord]: ...
    def to_pandas(self) -> Any: ...
    def to_polars(self) -> Any: ...
    def _repr_html_(self) -> str: ...
    def __len__(self) -> int: ...
    def __getitem__(self, key: int, /) -> UpsertResult | SkippedRecord | RecordError: ...
    def __iter__(self) -> Iterator[UpsertResult | SkippedRecord | RecordError]: ...
    def raise_for_errors(self) -> None: ...

@final
class Converter:
    """Records converted as a client would send them, with no token and no request."""

    def __new__(cls, *, missing: str = "skip", assume_utc: bool = False) -> Converter: ...
    def prepare(
        self, record: Any, *, email_field: str, id_property: str = "email", object: str = "contacts"
    ) -> tuple[str, dict[str, str]]: ...
    def check_many(
        self,
        records: Any,
        options: BulkOptions,
        *,
        state: StateRun | None = None,
        object: str = "contacts",
    ) -> BulkResult: ...

@final
class BulkOptions:
    """A bulk run's options, checked (see ``HubSpot.create_or_update_many``)."""

    def __new__(
        cls,
        *,
        id_property: str | None = None,
        id_field: str | None = None,
        mode: str = "upsert",
        fill_empty: object = None,
        labels: object = None,
        keep: str = "all",
        max_in_flight: object = None,
        full: object = None,
        associate: object = None,
        mirror: object = None,
        max_archive: object = None,
    ) -> BulkOptions: ...
    def id_property_of(self, object: str) -> str: ...
    @property
    def mode(self) -> str: ...
    @property
    def full(self) -> bool: ...
    @property
    def mirror(self) -> bool: ...
    @property
    def max_archive(self) -> float: ...

@final
class Task:
    """An upsert running on the client's runtime."""

    def cancel(self) -> None: ...

@final
class Client:
    def __new__(cls, token: object, options: dict[str, object]) -> Client: ...
    @property
    def base_url(self) -> str: ...
    @property
    def rate_limit(self) -> tuple[int, float] | None: ...
    def portal_id(self) -> int: ...
    def archive(
        self, ids: list[int], *, object: str = "contacts"
    ) -> tuple[list[int], list[tuple[int, HubSpotError]]]: ...
    def close(self) -> bool: ...
    def create_or_update(
        self,
        id: str | int,
        properties: Any = None,
        *,
        id_property: str = "email",
        object: str = "contacts",
    ) -> UpsertResult: ...
    def create_or_update_async(
        self,
        id: str | int,
        properties: Any,
        on_done: Callable[[bool, Any], None],
        *,
        id_property: str = "email",
        object: str = "contacts",
    ) -> Task: ...
    @property
    def converter(self) -> Converter: ...
    def check_many(
        self,
        records: Any,
        options: BulkOptions,
        *,
        definitions: bool,
        state: StateRun | None = None,
        object: str = "contacts",
    ) -> BulkResult: ...
    def create_or_update_many(
        self,
        records: Any,
        options: BulkOptions,
        *,
        progress: Callable[[int], None] | None = None,
        state: StateRun | None = None,
        dry_run: bool = False,
        object: str = "contacts",
    ) -> BulkResult: ...
