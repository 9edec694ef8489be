"""The fake portal's contacts: found by their primary address or any of their additional ones
(``hs_additional_emails``), by their id (``hs_object_id``) or by the value of a unique
property; no address or unique value owned twice; contacts without an address; and what a
write does to a contact (``lifecyclestage`` only moving forward, ``;``-prefixed values
appending).

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


OBJECT_ID = "hs_object_id"


class ContactBook:
    def __init__(self, first_vid: int, unique: frozenset[str] = frozenset()) -> None:
        #: Contacts by their primary address (lower case).
        self.by_email: dict[str, Contact] = {}
        #: Every contact, by its id.
        self.by_vid: dict[int, Contact] = {}
        #: Additional address (lower case) to the primary address of its contact.
        self._additional: dict[str, str] = {}
        #: Each unique property's values, to the id of the contact holding it.
        self._unique: dict[str, dict[str, int]] = {name: {} for name in unique}
        self._vids = itertools.count(first_vid)
        #: Archived records, by id (HubSpot keeps them restorable for 90 days).
        self.archived: dict[int, Contact] = {}

    def __iter__(self) -> Iterator[tuple[str, Contact]]:
        """Contacts by lower-case address; one without an address by its id, as text."""
        for vid, contact in self.by_vid.items():
            email = contact.properties.get("email", "")
            yield (email.lower() if email else str(vid)), contact

    def __len__(self) -> int:
        return len(self.by_vid)

    def is_unique(self, name: str) -> bool:
        return name in self._unique

    def find_by(self, id_property: str, value: str) -> Contact | None:
        """The contact whose ``id_property`` is ``value``: an address (primary or additional),
        an id, or a unique property's value (exactly)."""
        if id_property == "email":
            return self.find(value)
        if id_property == OBJECT_ID:
            return self.by_vid.get(int(value)) if value.isdigit() else None
        vid = self._unique.get(id_property, {}).get(value)
        return None if vid is None else self.by_vid.get(vid)

    def unique_clash(
        self, mine: Contact | None, values: Mapping[str, str]
    ) -> tuple[str, str, Contact] | None:
        """A unique value this write would give its contact that another contact holds."""
        for name, index in self._unique.items():
            value = values.get(name)
            owner = self.by_vid.get(index[value]) if value and value in index else None
            if owner is not None and owner is not mine:
                return name, value, owner  # type: ignore[return-value]
        return None

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
        return self.clash_for(self.find(address), values)

    def clash_for(self, mine: Contact | None, values: Mapping[str, str]) -> Contact | None:
        """As :meth:`clash`, for the contact ``mine`` (None: a new one)."""
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
        return self.store_by("email", address, values, schema)

    def store_by(
        self,
        id_property: str,
        value: str,
        values: Mapping[str, str],
        schema: Mapping[str, PropertyType],
    ) -> tuple[Contact, bool]:
        """Creates or updates the contact whose ``id_property`` is ``value`` (never creates
        one by ``hs_object_id``: the caller checks it exists); returns it and whether it is
        new."""
        contact = self.find_by(id_property, value)
        now = str(int(time.time() * 1000))
        is_new = contact is None
        if contact is None:
            contact = Contact(next(self._vids), {id_property: value, "createdate": now})
            self.by_vid[contact.vid] = contact
        old_key = contact.properties.get("email", "").lower()
        old_unique = {n: contact.properties.get(n) for n in self._unique}
        for name, written in values.items():
            _write(contact, name, written, schema.get(name, "string"))
        contact.properties["lastmodifieddate"] = now
        new_key = contact.properties.get("email", "").lower()
        if new_key != old_key or is_new:
            self.by_email.pop(old_key, None)
            if new_key:
                self.by_email[new_key] = contact
        for name, index in self._unique.items():
            old, new = old_unique[name], contact.properties.get(name)
            if old != new and old is not None:
                index.pop(old, None)
            if new:
                index[new] = contact.vid
        self._index(contact, old_key)
        return contact, is_new

    def archive(self, vid: int) -> Contact | None:
        """Archives the record with this id (it is found no more, and its address and unique
        values are free again); returns it, or None when no record has it."""
        contact = self.by_vid.pop(vid, None)
        if contact is None:
            return None
        key = contact.properties.get("email", "").lower()
        if self.by_email.get(key) is contact:
            del self.by_email[key]
        for address in [a for a, owner in self._additional.items() if owner == key]:
            del self._additional[address]
        for index in self._unique.values():
            for value in [v for v, owner in index.items() if owner == vid]:
                del index[value]
        self.archived[vid] = contact
        return contact

    def _index(self, contact: Contact, old_key: str) -> None:
        """Keeps the additional addresses pointing at the contact's primary one."""
        key = contact.properties.get("email", "").lower()
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
