"""The fake portal's contacts: found by their primary address or any of their additional ones
(``hs_additional_emails``), no address owned twice, and what a write does to a contact
(``lifecyclestage`` only moving forward, ``;``-prefixed values appending).

The portal holds its lock around every call.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping

from ._records import Contact
from ._rules import PropertyType

ADDITIONAL = "hs_additional_emails"


def _addresses(value: str) -> list[str]:
    return [a.strip().lower() for a in value.split(";") if a.strip()]


class ContactBook:
    def __init__(self, first_vid: int) -> None:
        #: Contacts by their primary address (lower case).
        self.by_email: dict[str, Contact] = {}
        #: Additional address (lower case) to the primary address of its contact.
        self._additional: dict[str, str] = {}
        self._vids = itertools.count(first_vid)

    def __iter__(self) -> Iterator[tuple[str, Contact]]:
        return iter(self.by_email.items())

    def __len__(self) -> int:
        return len(self.by_email)

    def find(self, address: str) -> Contact | None:
        """The contact with this address, primary or additional (any case)."""
        key = address.lower()
        found = self.by_email.get(key)
        if found is None and key in self._additional:
            found = self.by_email.get(self._additional[key])
        return found

    def clash(self, address: str, values: Mapping[str, str]) -> Contact | None:
        """Another contact that already owns an address this write would give the contact it
        matches: a new primary ``email`` or an additional one. HubSpot answers 409."""
        mine = self.find(address)
        wanted = _addresses(values.get(ADDITIONAL, "").removeprefix(";"))
        if values.get("email"):
            wanted.append(values["email"].lower())
        for other in wanted:
            owner = self.find(other)
            if owner is not None and owner is not mine:
                return owner
        return None

    def store(
        self, address: str, values: Mapping[str, str], schema: Mapping[str, PropertyType]
    ) -> tuple[Contact, bool]:
        """Creates or updates the contact with this address (moving it when the values change
        its primary address); returns it and whether it is new."""
        contact = self.find(address)
        now = str(int(time.time() * 1000))
        is_new = contact is None
        if contact is None:
            contact = Contact(next(self._vids), {"email": address, "createdate": now})
            self.by_email[address.lower()] = contact
        old_key = contact.properties["email"].lower()
        for name, value in values.items():
            _write(contact, name, value, schema.get(name, "string"))
        contact.properties["lastmodifieddate"] = now
        new_key = contact.properties["email"].lower()
        if new_key != old_key:
            del self.by_email[old_key]
            self.by_email[new_key] = contact
        self._index(contact, old_key)
        return contact, is_new

    def _index(self, contact: Contact, old_key: str) -> None:
        """Keeps the additional addresses pointing at the contact's primary one."""
        key = contact.properties["email"].lower()
        for address in [a for a, owner in self._additional.items() if owner == old_key]:
            del self._additional[address]
        extra = [a for a in _addresses(contact.properties.get(ADDITIONAL, "")) if a != key]
        if extra:
            contact.properties[ADDITIONAL] = ";".join(extra)
        else:
            contact.properties.pop(ADDITIONAL, None)
        for address in extra:
            self._additional[address] = key


def _write(contact: Contact, name: str, value: str, kind: PropertyType) -> None:
    """One property write, as HubSpot does it."""
    properties = contact.properties
    if value == "":
        if name != "email":
            properties.pop(name, None)
    elif value.startswith(";") and (not isinstance(kind, str) or name == ADDITIONAL):
        old = properties.get(name, "")
        properties[name] = ";".join(filter(None, [old, value[1:]]))
    elif (
        name == "lifecyclestage"
        and not isinstance(kind, str)
        and _backward(kind, properties.get(name), value)
    ):
        # HubSpot moves the lifecycle stage only forward: an earlier stage is not applied
        # (clear it first, with an empty value, to move it back).
        return
    else:
        properties[name] = value


def _backward(stages: PropertyType, old: str | None, new: str) -> bool:
    order = list(stages)
    return old in order and new in order and order.index(new) < order.index(old)  # type: ignore[arg-type]
