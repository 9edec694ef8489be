"""What the fake portal accepts: property types, values, addresses and request bodies.

Pure functions over a property schema: no state, no sockets. The portal (``_portal.py``) calls
them and answers with the bodies of ``_answers.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timezone
from importlib import resources
from typing import Any

from . import _answers as answers
from ._answers import Reply

#: A property type: "string", "number", "bool", "date", "datetime", "owner" (an enumeration
#: whose options live elsewhere: the portal's owners, as ``hubspot_owner_id``), or a sequence of
#: the allowed option values of an enumeration (several may be sent joined with ";").
PropertyType = str | Sequence[str]

#: Properties HubSpot sets itself: every portal has them, and writes to them are refused.
READ_ONLY_PROPERTIES: Mapping[str, str] = {
    "hs_object_id": "number",
    "createdate": "datetime",
    "lastmodifieddate": "datetime",
}

#: The contact properties every fake portal has (a subset of HubSpot's standard ones).
STANDARD_PROPERTIES: Mapping[str, PropertyType] = {
    "email": "string",
    # A contact's other addresses, ";"-separated: an upsert by any of them finds it.
    "hs_additional_emails": "string",
    "firstname": "string",
    "lastname": "string",
    "salutation": "string",
    "phone": "string",
    "mobilephone": "string",
    "fax": "string",
    "company": "string",
    "website": "string",
    "jobtitle": "string",
    "industry": "string",
    "address": "string",
    "city": "string",
    "state": "string",
    "zip": "string",
    "country": "string",
    "message": "string",
    "date_of_birth": "string",
    "annualrevenue": "number",
    "closedate": "datetime",
    "hubspot_owner_id": "owner",
    "lifecyclestage": (
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    ),
    "hs_lead_status": (
        "NEW",
        "OPEN",
        "IN_PROGRESS",
        "OPEN_DEAL",
        "UNQUALIFIED",
        "ATTEMPTED_TO_CONTACT",
        "CONNECTED",
        "BAD_TIMING",
    ),
}

#: HubSpot's labels of those properties: what the headers of its own exports say.
LABELS: Mapping[str, str] = {
    "email": "Email",
    "hs_additional_emails": "Additional email addresses",
    "firstname": "First Name",
    "lastname": "Last Name",
    "salutation": "Salutation",
    "phone": "Phone Number",
    "mobilephone": "Mobile Phone Number",
    "fax": "Fax Number",
    "company": "Company Name",
    "website": "Website URL",
    "jobtitle": "Job Title",
    "industry": "Industry",
    "address": "Street Address",
    "city": "City",
    "state": "State/Region",
    "zip": "Postal Code",
    "country": "Country/Region",
    "message": "Message",
    "date_of_birth": "Date of birth",
    "annualrevenue": "Annual Revenue",
    "closedate": "Close Date",
    "hubspot_owner_id": "Contact owner",
    "lifecyclestage": "Lifecycle Stage",
    "hs_lead_status": "Lead Status",
    "hs_object_id": "Record ID",
    "createdate": "Create Date",
    "lastmodifieddate": "Last Modified Date",
}

#: The labels of enumeration options whose label is not the value capitalised.
OPTION_LABELS: Mapping[str, str] = {
    "marketingqualifiedlead": "Marketing Qualified Lead",
    "salesqualifiedlead": "Sales Qualified Lead",
    "IN_PROGRESS": "In Progress",
    "OPEN_DEAL": "Open Deal",
    "ATTEMPTED_TO_CONTACT": "Attempted to Contact",
    "BAD_TIMING": "Bad Timing",
}


def option_label(value: str) -> str:
    return OPTION_LABELS.get(value, value.capitalize())


TYPES = frozenset({"string", "number", "bool", "date", "datetime", "owner"})
_NUMBER = re.compile(r"-?\d+(\.\d+)?\Z")
_INTEGER = re.compile(r"-?\d+\Z")
# HubSpot's check, roughly: no quoted local part, no white space, a domain ending in a real
# top-level domain (IDN domains and TLDs included).
_EMAIL = re.compile(
    r'[^@\s"(),:;<>\[\]\\]+@(?:[^\W_](?:[\w-]*[^\W_])?\.)+([^\W\d_]{2,}|xn--[a-z0-9-]+)\Z'
)
_DAY_MS = 86_400_000
#: The most inputs one batch upsert takes.
V3_BATCH_MAX = 100


# -- what is valid ------------------------------------------------------------------------


def check_types(properties: Mapping[str, PropertyType]) -> None:
    """Raises ValueError for a property type the fake does not know."""
    for name, kind in properties.items():
        if isinstance(kind, str) and kind not in TYPES:
            raise ValueError(
                f"property {name!r}: unknown type {kind!r} "
                f"(use one of {sorted(TYPES)} or a list of options)"
            )


_TLDS: list[frozenset[str]] = []


def _tlds() -> frozenset[str]:
    """IANA's top-level domains, from the list shipped beside this module (read once)."""
    if not _TLDS:
        text = resources.files(__package__).joinpath("tlds.txt").read_text(encoding="utf-8")
        lines = text.splitlines()
        _TLDS.append(frozenset(x.strip() for x in lines if x.strip() and not x.startswith("#")))
    return _TLDS[0]


def valid_email(address: str) -> bool:
    match = _EMAIL.match(address)
    if match is None:
        return False
    tld = match.group(1).lower()
    if tld.startswith("xn--"):
        try:
            tld = tld.encode("ascii").decode("idna")
        except UnicodeError:
            return False
    return tld in _tlds()


def _iso_date(value: str) -> bool:
    """``YYYY-MM-DD``, which HubSpot takes for dates and date-times (as midnight UTC)."""
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _iso_datetime(value: str) -> bool:
    """A full ISO 8601 timestamp (``2020-02-29T03:30:17.000Z``, or with an offset)."""
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return "T" in value


def invalid_value(
    kind: PropertyType, name: str, value: str, owners: frozenset[str] = frozenset()
) -> tuple[str, str] | None:
    """HubSpot's error code and message for a value that does not fit, else None. ``owners``
    are the portal's owner ids, the options of an ``owner`` property."""
    if value == "":
        return None
    if name == "email":
        if not valid_email(value):
            return "INVALID_EMAIL", f"Email address {value} is invalid"
        return None
    if isinstance(kind, str):
        if kind == "number" and not _NUMBER.match(value):
            return "INVALID_INTEGER", f"{value} is not a valid number"
        if kind == "bool" and value not in ("true", "false"):
            return "INVALID_OPTION", f"{value} was not one of the allowed options: true, false"
        if kind == "owner" and value not in owners:
            return "INVALID_OWNER_ID", f"{value} is not a valid owner id"
        if kind in ("date", "datetime"):
            return _invalid_date(kind, value)
        return None
    for option in value.removeprefix(";").split(";"):
        if option not in kind:
            return (
                "INVALID_OPTION",
                f"{option} was not one of the allowed options: [{', '.join(kind)}]",
            )
    return None


def _invalid_date(kind: str, value: str) -> tuple[str, str] | None:
    """HubSpot takes epoch milliseconds, ``YYYY-MM-DD`` and ISO 8601 timestamps; a date
    property's value must be at midnight UTC."""
    if _iso_date(value):
        return None
    if _iso_datetime(value):
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(timezone.utc)
        if kind == "date" and stamp.time() != time(0):
            return "INVALID_DATE", f"{value} is not at midnight UTC"
        return None
    if not _INTEGER.match(value):
        return "INVALID_DATE", f"{value} is not a valid date: epoch milliseconds or ISO 8601"
    if kind == "date" and int(value) % _DAY_MS:
        return "INVALID_DATE", f"{value} is not at midnight UTC"
    return None


def problems(
    schema: Mapping[str, PropertyType],
    strict: bool,
    email: str | None,
    values: Mapping[str, str],
    owners: frozenset[str] = frozenset(),
) -> list[tuple[str, str, str]]:
    """``(property, code, message)`` of everything HubSpot would refuse in an upsert (by
    ``email``; None when the write is matched on another property)."""
    results = []
    if email is None:
        email = values.get("email") or None
    if email is not None and not valid_email(email):
        results.append(("email", "INVALID_EMAIL", f"Email address {email} is invalid"))
    for name, value in values.items():
        if name in READ_ONLY_PROPERTIES:
            message = f'"{name}" is a read-only property; its value cannot be set'
            results.append((name, "READ_ONLY_VALUE", message))
        elif name not in schema and strict:
            results.append((name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
        else:
            problem = invalid_value(schema.get(name, "string"), name, value, owners)
            if problem is not None:
                results.append((name, *problem))
    return results


def rule_problems(
    required: Sequence[str],
    conditional: Sequence[tuple[str, str, str]],
    existing: Mapping[str, str] | None,
    written: Mapping[str, str],
) -> list[tuple[str, str, str]]:
    """What the portal's validation rules (enforced from 2026-09 on) refuse in one write:
    ``required`` properties a new contact lacks, and ``conditional`` rules ``(property,
    value, required)``: when the contact, as written, has ``property`` = ``value``, it must
    have ``required``. ``existing`` is the contact as stored (None for a new one)."""
    found = []
    if existing is None:
        for name in required:
            if not written.get(name):
                found.append((name, "MISSING_REQUIRED_PROPERTY", f"Property '{name}' is required"))
    after = {**(existing or {}), **written}
    for prop, value, needed in conditional:
        if after.get(prop) == value and not after.get(needed):
            message = f"Property '{needed}' is required when '{prop}' is '{value}'"
            found.append((needed, "MISSING_CONDITIONAL_REQUIRED_PROPERTY", message))
    return found


def definitions(
    schema: Mapping[str, PropertyType], unique: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """The property definitions as HubSpot's properties API lists them."""
    results = []
    for name, kind in {**schema, **READ_ONLY_PROPERTIES}.items():
        read_only = name in READ_ONLY_PROPERTIES
        options: list[dict[str, Any]]
        extra: dict[str, Any] = {}
        if kind == "owner":
            # The options live elsewhere (the owners API): the definition lists none.
            options, kind_name = [], "enumeration"
            extra = {"externalOptions": True, "referencedObjectType": "OWNER"}
        elif isinstance(kind, str):
            options = (
                [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}]
                if kind == "bool"
                else []
            )
            kind_name = kind
        else:
            options = [{"label": option_label(o), "value": o, "hidden": False} for o in kind]
            kind_name = "enumeration"
        field_type = {"bool": "booleancheckbox", "enumeration": "select"}.get(kind_name, "text")
        results.append(
            {
                "name": name,
                "label": LABELS.get(name, name.replace("_", " ").title()),
                "type": kind_name,
                "fieldType": field_type,
                "options": options,
                "calculated": False,
                "hubspotDefined": name in STANDARD_PROPERTIES or read_only,
                "hasUniqueValue": name in unique or name == "hs_object_id",
                "modificationMetadata": {
                    "archivable": not read_only,
                    "readOnlyDefinition": read_only,
                    "readOnlyValue": read_only,
                },
                **extra,
            }
        )
    return results


# -- request bodies ----------------------------------------------------------------------


def parse_json(body: bytes, correlation_id: str) -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise Reply(
            400, answers.error_body("Invalid input JSON: not UTF-8", correlation_id)
        ) from None
    except json.JSONDecodeError as e:
        message = f"Invalid input JSON on line {e.lineno}, column {e.colno}: {e.msg}"
        raise Reply(400, answers.error_body(message, correlation_id)) from None


def v1_values(payload: Any, correlation_id: str) -> dict[str, str]:
    """The property values of a v1 upsert body, as strings."""
    items = payload.get("properties", []) if isinstance(payload, dict) else None
    if not isinstance(items, list):
        message = "Invalid input JSON: expected a properties array"
        raise Reply(400, answers.error_body(message, correlation_id))
    values: dict[str, str] = {}
    for item in items:
        name = item.get("property") if isinstance(item, dict) else None
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(name, str) or isinstance(value, (dict, list)) or value is None:
            message = f"Invalid input JSON: bad property entry {json.dumps(item)}"
            raise Reply(400, answers.error_body(message, correlation_id))
        values[name] = value if isinstance(value, str) else json.dumps(value)
    return values


def v3_inputs(
    payload: Any, correlation_id: str, update: bool = False
) -> list[tuple[str, str, dict[str, str], Any]]:
    """``(idProperty, id, properties, objectWriteTraceId)`` of each input of a batch upsert
    body (or of a batch update, where ``idProperty`` may be left out: the id is then
    HubSpot's own)."""
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise Reply(400, answers.v3_error("inputs must be a non-empty array", correlation_id))
    if len(inputs) > V3_BATCH_MAX:
        message = f"Batch input size {len(inputs)} exceeds limit {V3_BATCH_MAX}"
        raise Reply(400, answers.v3_error(message, correlation_id))
    parsed: list[tuple[str, str, dict[str, str], Any]] = []
    seen: set[str] = set()
    for item in inputs:
        ok = isinstance(item, dict) and isinstance(item.get("id"), str)
        props = item.get("properties", {}) if ok else None
        id_property = item.get("idProperty", "hs_object_id" if update else None) if ok else None
        if not ok or not isinstance(id_property, str) or not isinstance(props, dict):
            message = "each input needs a string id, an idProperty and properties"
            raise Reply(400, answers.v3_error(message, correlation_id))
        if any(not isinstance(v, str) for v in props.values()):
            raise Reply(400, answers.v3_error("property values must be strings", correlation_id))
        key = item["id"].lower() if id_property == "email" else item["id"]
        if key in seen:
            raise Reply(400, duplicate_id(item["id"], correlation_id))
        seen.add(key)
        parsed.append((id_property, item["id"], dict(props), item.get("objectWriteTraceId")))
    return parsed


def v3_read_inputs(payload: Any, correlation_id: str) -> tuple[str, list[str], list[str]]:
    """The id property of a batch read (``hs_object_id`` when it names none), the ids it
    asks for, and the properties it wants back."""
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    id_property = payload.get("idProperty", "hs_object_id") if isinstance(payload, dict) else None
    if (
        not isinstance(inputs, list)
        or not 0 < len(inputs) <= V3_BATCH_MAX
        or not isinstance(id_property, str)
    ):
        message = f"inputs must be 1 to {V3_BATCH_MAX} ids"
        raise Reply(400, answers.v3_error(message, correlation_id))
    ids: list[str] = [
        i["id"] for i in inputs if isinstance(i, dict) and isinstance(i.get("id"), str)
    ]
    if len(ids) != len(inputs):
        raise Reply(400, answers.v3_error("each input needs a string id", correlation_id))
    wanted = payload.get("properties") or []
    return id_property, ids, [p for p in wanted if isinstance(p, str)]


def non_unique(name: str, correlation_id: str, type_id: str = "0-1") -> dict[str, Any]:
    """HubSpot's refusal of an id property whose values are not unique."""
    return answers.v3_error(
        f"Unable to perform update/upsert by non-unique {type_id} property {name} in portal ID 0",
        correlation_id,
    )


def duplicate_id(email: str, correlation_id: str) -> dict[str, Any]:
    return answers.v3_error(
        f"Duplicate IDs found in batch input: [{email}]. IDs must be unique",
        correlation_id,
        errors=[
            {
                "message": "Duplicate IDs found in batch input",
                "code": "DUPLICATE_ID",
                "context": {"ids": [email]},
            }
        ],
    )
