"""HubSpot's answers: the bodies and statuses the fake portal replies with.

No state, no sockets: the portal (``_portal.py``) raises these, the server (``_server.py``)
writes them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any


class Reply(Exception):
    """An answer; raised inside a handler to answer at once."""

    def __init__(
        self,
        status: int,
        body: Any,
        headers: Mapping[str, str] | None = None,
        *,
        delay: float = 0.0,
        disconnect: bool = False,
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.delay = delay
        self.disconnect = disconnect


def error_body(message: str, correlation_id: str, **extra: Any) -> dict[str, Any]:
    return {"status": "error", "message": message, "correlationId": correlation_id, **extra}


def v3_error(
    message: str, correlation_id: str, *, category: str = "VALIDATION_ERROR", **extra: Any
) -> dict[str, Any]:
    return error_body(message, correlation_id, category=category, **extra)


def missing_scope(scope: str, correlation_id: str) -> Reply:
    """HubSpot's 403 for a token without ``scope``."""
    return Reply(
        403,
        error_body(
            "This app hasn't been granted all required scopes to make this call.",
            correlation_id,
            category="MISSING_SCOPES",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": [scope]},
                }
            ],
        ),
    )


def unauthorized(message: str, category: str, correlation_id: str) -> Reply:
    body = error_body(message, correlation_id, category=category)
    return Reply(401, body, {"x-hubspot-auth-failure": "401 Unauthorized"})


def rate_limited(policy: str, correlation_id: str) -> Reply:
    text = "daily" if policy == "DAILY" else "ten_secondly_rolling"
    return Reply(
        429,
        {
            "status": "error",
            "message": f"You have reached your {text} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id,
            "policyName": policy,
            "groupName": "fake-hubspot",
        },
    )


def v1_validation_error(found: list[tuple[str, str, str]], correlation_id: str) -> Reply:
    results = [{"isValid": False, "message": m, "error": c, "name": n} for n, c, m in found]
    message = "Property values were not valid"
    return Reply(400, error_body(message, correlation_id, validationResults=results))


def v3_validation_error(errors: list[dict[str, Any]], correlation_id: str) -> Reply:
    """The batch 400: the v3 ``errors`` and the v1-style list inside ``message``."""
    legacy = [
        {
            "isValid": False,
            "message": e["message"],
            "error": e["code"],
            "name": e["context"]["propertyName"][0],
        }
        for e in errors
    ]
    message = f"Property values were not valid: {json.dumps(legacy)}"
    return Reply(400, v3_error(message, correlation_id, errors=errors))


def input_error(
    trace: Any, found: list[tuple[str, str, str]], correlation_id: str
) -> dict[str, Any]:
    """One refused input of a partial answer (a 207, or a 200 with ``errors``): HubSpot's
    ``StandardError``, its input named by ``context.objectWriteTraceId``."""
    errors = [
        {"message": message, "code": code, "context": {"propertyName": [name]}}
        for name, code, message in found
    ]
    legacy = [{"isValid": False, "message": m, "error": c, "name": n} for n, c, m in found]
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": f"Property values were not valid: {json.dumps(legacy)}",
        "correlationId": correlation_id,
        "context": {"objectWriteTraceId": [] if trace is None else [str(trace)]},
        "errors": errors,
    }


def read_result(vid: int, properties: dict[str, str]) -> dict[str, Any]:
    """One contact of a batch read."""
    return {
        "id": str(vid),
        "properties": properties,
        "createdAt": iso_now(),
        "updatedAt": iso_now(),
        "archived": False,
    }


def not_found(
    ids: list[str], correlation_id: str, trace: Any = None, what: str = "CONTACT"
) -> dict[str, Any]:
    """The error of a batch read (or update) naming the ids no record (of ``what``) has."""
    context: dict[str, Any] = {"ids": ids}
    if trace is not None:
        context["objectWriteTraceId"] = [trace]
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": f"Could not get some {what} objects, they may be deleted or not exist. "
        "Check that ids are valid.",
        "correlationId": correlation_id,
        "context": context,
    }


def v1_conflict(vid: int, email: str, new_style: bool, correlation_id: str) -> dict[str, Any]:
    """The v1 409 body for an address contact ``vid`` already has."""
    now = int(time.time() * 1000)
    body: dict[str, Any] = error_body(
        "Contact already exists",
        correlation_id,
        error="CONTACT_EXISTS",
        identityProfile={
            "vid": vid,
            "identity": [
                {"value": email, "type": "EMAIL", "timestamp": now, "isPrimary": True},
                {"value": str(uuid.uuid4()), "type": "LEAD_GUID", "timestamp": now},
            ],
            "linkedVid": [],
            "isContact": True,
            "savedAtTimestamp": now,
        },
        requestId=str(uuid.uuid4()),
    )
    if new_style:
        body["message"] = f"Contact already exists. Existing ID: {vid}"
        body["category"] = "OBJECT_ALREADY_EXISTS"
        body["errors"] = [
            {
                "message": f"A contact with email {email} already exists. Existing ID: {vid}",
                "in": "email",
            }
        ]
    return body


def iso(millis: int) -> str:
    seconds, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def iso_now() -> str:
    return iso(int(time.time() * 1000))
