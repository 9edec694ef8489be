"""What the fake keeps and reports: stored contacts, received requests, scripted answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the fake received it. ``path`` is the raw request target, query included;
    ``headers`` has lower-case names."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    status: int = 0
    #: ``time.monotonic()`` when the request was read.
    received_at: float = 0.0

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class ScriptedResponse:
    """An answer for :meth:`FakeHubSpot.script` to give instead of the normal one.

    ``body`` is sent as JSON when it is a dict or list, as it is when ``bytes`` or ``str``
    (say, an HTML error page); ``content_type`` says what it is. ``delay`` holds the answer
    back that many seconds; ``disconnect=True`` closes the connection halfway through the
    answer instead of finishing it.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=utf-8"
    delay: float = 0.0
    disconnect: bool = False


@dataclass(frozen=True)
class StoredContact:
    """A contact as the fake stores it: every property value is a string."""

    vid: int
    properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def email(self) -> str:
        return self.properties.get("email", "")


class Contact:
    __slots__ = ("properties", "vid")

    def __init__(self, vid: int, properties: dict[str, str]) -> None:
        self.vid = vid
        self.properties = properties
