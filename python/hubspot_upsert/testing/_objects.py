"""The fake portal's object types: contacts, companies, deals, tickets and custom objects, each
with its property definitions, its unique properties and its records (a book of its own)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _rules as rules
from ._contacts import ContactBook
from ._rules import PropertyType

#: The standard objects: their type ids, and the properties a stock portal defines for them.
STANDARD_OBJECTS: Mapping[str, tuple[str, Mapping[str, PropertyType]]] = {
    "companies": (
        "0-2",
        {
            "name": "string",
            "domain": "string",
            "city": "string",
            "country": "string",
            "industry": "string",
            "phone": "string",
            "website": "string",
            "numberofemployees": "number",
            "annualrevenue": "number",
            "description": "string",
        },
    ),
    "deals": (
        "0-3",
        {
            "dealname": "string",
            "amount": "number",
            "dealstage": (
                "appointmentscheduled",
                "qualifiedtobuy",
                "presentationscheduled",
                "decisionmakerboughtin",
                "contractsent",
                "closedwon",
                "closedlost",
            ),
            "pipeline": ("default",),
            "closedate": "datetime",
            "description": "string",
        },
    ),
    "tickets": (
        "0-5",
        {
            "subject": "string",
            "content": "string",
            "hs_pipeline": ("0",),
            "hs_pipeline_stage": ("1", "2", "3", "4"),
            "hs_ticket_priority": ("LOW", "MEDIUM", "HIGH"),
        },
    ),
}


@dataclass
class ObjectKind:
    """One object type: how paths name it, its definitions and its records."""

    name: str
    type_id: str
    schema: dict[str, PropertyType]
    unique: frozenset[str]
    first_id: int
    #: The other object types it has a default association with (by name); the standard
    #: objects have one with each other.
    associates_with: frozenset[str] = frozenset()
    book: ContactBook = field(init=False)
    initial: dict[str, PropertyType] = field(init=False)

    def __post_init__(self) -> None:
        for name in self.unique:
            if self.schema.setdefault(name, "string") != "string":
                raise ValueError(f"unique property {name!r} of {self.name} must be a string")
        rules.check_types(self.schema)
        self.initial = dict(self.schema)
        self.reset()

    def reset(self) -> None:
        """No records, and the properties it was made with."""
        self.schema = dict(self.initial)
        self.reset_records()

    def reset_records(self) -> None:
        self.book = ContactBook(self.first_id, self.unique)

    @property
    def is_contacts(self) -> bool:
        return self.name == "contacts"


def object_kinds(specs: Mapping[str, Mapping[str, Any]] | None) -> dict[str, ObjectKind]:
    """The object types besides contacts: the standard ones, then ``specs`` (by name, or a
    custom object's type id ``2-...``; each ``{"properties": {...}, "unique": [...]}``, and a
    custom object's ``"name"``)."""
    specs = dict(specs or {})
    kinds: dict[str, ObjectKind] = {}
    for offset, (name, (type_id, properties)) in enumerate(STANDARD_OBJECTS.items(), 1):
        spec = specs.pop(name, {})
        schema = {**properties, **spec.get("properties", {})}
        kinds[name] = ObjectKind(
            name,
            type_id,
            schema,
            frozenset(spec.get("unique", ())),
            offset * 10_000_000,
            frozenset(("contacts", *STANDARD_OBJECTS)) - {name},
        )
    for offset, (type_id, spec) in enumerate(specs.items(), len(kinds) + 1):
        if not type_id.startswith("2-") or not type_id[2:].isdigit():
            raise ValueError(
                f"a custom object is given by its type id (2-123456), got {type_id!r}; "
                "the standard ones are companies, deals and tickets"
            )
        name = str(spec.get("name", type_id))
        schema = dict(spec.get("properties", {}))
        kinds[type_id] = ObjectKind(
            name,
            type_id,
            schema,
            frozenset(spec.get("unique", ())),
            offset * 10_000_000,
            frozenset(spec.get("associations", ())),
        )
    # Associations go both ways.
    for kind in list(kinds.values()):
        for other in kind.associates_with:
            found = find_kind(kinds, other)
            if found is not None and kind.name not in found.associates_with:
                found.associates_with = found.associates_with | {kind.name}
    return kinds


def associated(a: ObjectKind, b: ObjectKind) -> bool:
    """Whether records of ``a`` and ``b`` have a default association."""
    return b.name in a.associates_with or a.name in b.associates_with


_SINGULAR = {"contact": "contacts", "company": "companies", "deal": "deals", "ticket": "tickets"}


def find_kind(kinds: Mapping[str, ObjectKind], text: str) -> ObjectKind | None:
    """The object type a path names: its name (a standard one also in the singular) or its
    type id."""
    text = _SINGULAR.get(text.lower(), text.lower())
    for kind in kinds.values():
        if text in (kind.name.lower(), kind.type_id):
            return kind
    return None


def singular(kind: ObjectKind) -> str:
    """How HubSpot's messages name one record of the type."""
    for one, many in _SINGULAR.items():
        if kind.name == many:
            return one
    return "object"
