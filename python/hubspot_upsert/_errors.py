"""The exceptions this package raises, with real attributes.

::

    HubSpotError                 any failure talking to HubSpot
     ├── ValidationError         400: HubSpot rejected property values (``errors``)
     ├── AuthenticationError     401: the token is missing, mistyped, revoked or expired
     ├── PermissionDeniedError   403: the token lacks a scope (``required_scopes``)
     ├── NotFoundError           404
     ├── EmailConflictError      409: the update sets an email another contact owns
     ├── RateLimitError          429: HubSpot's rate limit (``policy``)
     ├── ServerError             5xx, and any other status HubSpot should not answer
     ├── TransportError          no usable answer: connection refused or reset, TLS, DNS
     │    └── RequestTimeoutError
     └── BulkUpsertError         some records of a bulk upsert failed (``result``)

A bulk upsert reports each failed record as a :class:`RecordError` in its result.

Bad arguments (an invalid email, a value that cannot be sent) are ``ValueError`` or
``TypeError``, raised before anything is sent. No message carries the access token.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class FieldError(NamedTuple):
    """One rejected value of a :class:`ValidationError`: the property, HubSpot's code
    (``INVALID_EMAIL``, ``PROPERTY_DOESNT_EXIST``, ``INVALID_OPTION``...) and its message."""

    name: str | None
    code: str | None
    message: str | None


class HubSpotError(Exception):
    """A request to HubSpot failed.

    ``status`` is the HTTP status (None when no answer came), ``category`` HubSpot's error
    category, ``correlation_id`` the id HubSpot support asks for (of the last answer),
    ``body`` the parsed JSON body, ``attempts`` how many requests were made before giving up.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        category: str | None = None,
        correlation_id: str | None = None,
        body: Any = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.category = category
        self.correlation_id = correlation_id
        self.body = body
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message


class ValidationError(HubSpotError):
    """HubSpot rejected the request (400); ``errors`` lists the rejected values."""

    def __init__(self, message: str, *, errors: list[FieldError] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.errors: list[FieldError] = list(errors or [])


class AuthenticationError(HubSpotError):
    """The access token was not accepted (401); ``category`` is ``EXPIRED_AUTHENTICATION``
    for an expired OAuth token."""


class PermissionDeniedError(HubSpotError):
    """The token lacks a scope (403); ``required_scopes`` names them when HubSpot does."""

    def __init__(
        self, message: str, *, required_scopes: list[str] | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.required_scopes: list[str] = list(required_scopes or [])


class NotFoundError(HubSpotError):
    """HubSpot found no such endpoint or object (404)."""


class EmailConflictError(HubSpotError):
    """The update sets ``email`` to an address another contact owns (409).

    ``email`` is the address in conflict, ``existing_vid`` the id of the contact that has it.
    """

    def __init__(
        self,
        message: str,
        *,
        email: str | None = None,
        existing_vid: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.email = email
        self.existing_vid = existing_vid


class RateLimitError(HubSpotError):
    """HubSpot's rate limit was reached (429); ``policy`` is ``TEN_SECONDLY_ROLLING``,
    ``SECONDLY`` or ``DAILY``."""

    def __init__(self, message: str, *, policy: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.policy = policy


class ServerError(HubSpotError):
    """HubSpot failed (5xx) or answered with a status it should not have."""


class TransportError(HubSpotError):
    """No usable answer came: the connection failed, was reset, or TLS did not verify."""


class RequestTimeoutError(TransportError):
    """The request took longer than the client's ``timeout``."""


class RecordError:
    """One record that ``create_or_update_many`` could not upsert (immutable).

    ``index`` is its position in the input, ``email`` its address (None when it had none),
    ``error`` the exception: a :class:`HubSpotError` from HubSpot (a ``ValidationError`` with
    HubSpot's codes, say), or the ``ValueError``/``TypeError`` that refused it before sending.
    """

    __slots__ = ("email", "error", "index")
    index: int
    email: str | None
    error: BaseException

    def __init__(self, index: int, email: str | None, error: BaseException) -> None:
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "email", email)
        object.__setattr__(self, "error", error)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"RecordError is immutable: cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordError):
            return NotImplemented
        return (self.index, self.email, self.error) == (other.index, other.email, other.error)

    def __hash__(self) -> int:
        return hash((self.index, self.email, id(self.error)))

    def __repr__(self) -> str:
        return f"RecordError(index={self.index!r}, email={self.email!r}, error={self.error!r})"

    @property
    def code(self) -> str | None:
        """HubSpot's error code (``INVALID_EMAIL``, ``PROPERTY_DOESNT_EXIST``...), if any."""
        errors = getattr(self.error, "errors", None)
        if errors:
            return str(errors[0].code) if errors[0].code is not None else None
        return getattr(self.error, "category", None)

    @property
    def message(self) -> str:
        return str(self.error)

    def __str__(self) -> str:
        return f"record {self.index} ({self.email}): {self.error}"


class BulkUpsertError(HubSpotError):
    """Raised by ``BulkResult.raise_for_errors()`` when any record failed; ``result`` is the
    whole :class:`BulkResult`."""

    def __init__(self, message: str, *, result: Any = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.result = result


def add_note(error: BaseException, note: str) -> None:
    """``error.add_note(note)``, on Python 3.10 too (which has ``__notes__`` but no method)."""
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:  # Python 3.10
        error.__notes__ = [*getattr(error, "__notes__", []), note]  # type: ignore[attr-defined]
