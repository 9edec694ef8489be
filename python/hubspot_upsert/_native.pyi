"""Type stubs of the native core; checked against it by mypy.stubtest."""

from typing import Any, final

__all__ = ["Client", "UpsertResult", "__version__"]

__version__: str

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
    ) -> Client: ...
    @property
    def base_url(self) -> str: ...
    @property
    def rate_limit(self) -> tuple[int, float] | None: ...
    def upsert(self, email: str, properties: Any = None) -> UpsertResult: ...
