"""Type stubs of the native core; checked against it by mypy.stubtest."""

from collections.abc import Callable, Iterator
from typing import Any, final

from ._errors import RecordError

__all__ = ["BulkResult", "Client", "Task", "UpsertResult", "__version__", "_release_before_fork"]

__version__: str

def _release_before_fork() -> None:
    """Run by ``os.fork()``: idle clients stop their I/O threads before the process forks."""

@final
class UpsertResult:
    """The result of one upsert: the contact's id, whether it was created, and its address."""

    @property
    def vid(self) -> int: ...
    @property
    def is_new(self) -> bool: ...
    @property
    def email(self) -> str: ...
    def __new__(cls, vid: int, is_new: bool, email: str) -> UpsertResult: ...
    def __getnewargs__(self) -> tuple[int, bool, str]: ...
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
    def total(self) -> int: ...
    @property
    def keep(self) -> str: ...
    @property
    def failures(self) -> list[RecordError]: ...
    def __len__(self) -> int: ...
    def __getitem__(self, key: int, /) -> UpsertResult | RecordError: ...
    def __iter__(self) -> Iterator[UpsertResult | RecordError]: ...
    def raise_for_errors(self) -> None: ...

@final
class Task:
    """An upsert running on the client's runtime."""

    def cancel(self) -> None: ...

@final
class Client:
    def __new__(
        cls,
        token: str,
        *,
        base_url: str,
        timeout: float,
        connect_timeout: float,
        user_agent: str,
        missing: str,
        assume_utc: bool,
        max_retries: int,
        deadline: float,
        backoff: float,
        rate_limit: int | None,
        rate_window: float,
        ca_bundle: str | None,
        api_version: str | None,
    ) -> Client: ...
    @property
    def base_url(self) -> str: ...
    @property
    def rate_limit(self) -> tuple[int, float] | None: ...
    def upsert(self, email: str, properties: Any = None) -> UpsertResult: ...
    def upsert_async(
        self, email: str, properties: Any, on_done: Callable[[bool, Any], None]
    ) -> Task: ...
    def convert_record(
        self, record: Any, *, email_field: str
    ) -> tuple[str, list[tuple[str, str]]]: ...
    def convert_many(self, records: Any, *, email_field: str) -> tuple[int, int, int]: ...
    def check_many(self, records: Any, *, email_field: str, definitions: bool) -> BulkResult: ...
    def upsert_many(
        self,
        records: Any,
        *,
        email_field: str,
        progress: Callable[[int], None] | None,
        keep_all: bool,
        max_in_flight: int,
    ) -> BulkResult: ...
