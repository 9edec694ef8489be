"""OAuth apps: :class:`OAuth`, the credentials a :class:`HubSpot` client refreshes its access
tokens with."""

from __future__ import annotations

import os

CLIENT_ID_ENV = "HUBSPOT_CLIENT_ID"
CLIENT_SECRET_ENV = "HUBSPOT_CLIENT_SECRET"
REFRESH_TOKEN_ENV = "HUBSPOT_REFRESH_TOKEN"


class OAuth:
    """An OAuth app's ``client_id`` and ``client_secret``, and the ``refresh_token`` one
    installation of it gave. A client made with it gets access tokens from HubSpot's token
    endpoint and refreshes them before they expire. Its repr never shows the secrets."""

    __slots__ = ("client_id", "client_secret", "refresh_token")
    client_id: str
    client_secret: str
    refresh_token: str

    def __init__(self, client_id: str, client_secret: str, refresh_token: str) -> None:
        for name, value in (
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("refresh_token", refresh_token),
        ):
            if not isinstance(value, str):
                raise TypeError(f"OAuth {name} must be a str, got {type(value).__name__}")
            if not value.strip():
                raise ValueError(f"OAuth {name} is empty")
            object.__setattr__(self, name, value.strip())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"OAuth is immutable: cannot set {name!r}")

    def __repr__(self) -> str:
        return (
            f"OAuth(client_id={self.client_id!r}, client_secret=<hidden>, refresh_token=<hidden>)"
        )

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("OAuth credentials are not pickled: read them in the worker instead")

    @classmethod
    def from_env(cls) -> OAuth | None:
        """The credentials in ``HUBSPOT_CLIENT_ID``, ``HUBSPOT_CLIENT_SECRET`` and
        ``HUBSPOT_REFRESH_TOKEN``; None when none is set. Some set, others not: ValueError
        naming the missing ones."""
        names = (CLIENT_ID_ENV, CLIENT_SECRET_ENV, REFRESH_TOKEN_ENV)
        values = [os.environ.get(n, "").strip() for n in names]
        if not any(values):
            return None
        missing = [n for n, v in zip(names, values, strict=True) if not v]
        if missing:
            raise ValueError(f"an OAuth app needs {', '.join(names)}; {', '.join(missing)} not set")
        return cls(*values)
