"""A short demo against the built-in FakeHubSpot: ``python -m hubspot_upsert.demo``.

It starts a fake HubSpot on loopback, creates and updates a few contacts through the same
client a real program uses, shows two refusals HubSpot would give, and prints what was stored.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

from . import EmailConflictError, HubSpot, ValidationError, __version__
from .testing import FakeHubSpot


def main() -> None:
    print(f"hubspot-upsert {__version__}: demo against the built-in FakeHubSpot")
    extra = {"is_customer": "bool", "signup_date": "date", "interests": ("python", "rust", "crm")}
    with FakeHubSpot(extra_properties=extra) as fake:
        hs = HubSpot(fake.token, base_url=fake.url)
        print(f"fake HubSpot at {fake.url}\n")
        people: list[tuple[str, dict[str, object]]] = [
            ("ada@example.com", {"firstname": "Ada", "lastname": "Lovelace", "is_customer": True}),
            ("grace@example.com", {"firstname": "Grace", "annualrevenue": Decimal("1E+6")}),
            ("alan+test@example.org", {"firstname": "Alan", "interests": {"rust", "python"}}),
            (
                "ada@example.com",
                {"signup_date": dt.date(2024, 8, 15), "lifecyclestage": "customer"},
            ),
        ]
        for email, properties in people:
            start = time.perf_counter()
            result = hs.create_or_update(email, properties)
            ms = (time.perf_counter() - start) * 1000
            verb = "created" if result.is_new else "updated"
            print(f"{verb:8} vid={result.vid} {result.email:24} ({ms:.1f} ms)")

        print("\nWhat HubSpot refuses is a Python exception with attributes:")
        try:
            hs.create_or_update("grace@example.com", {"email": "ada@example.com"})
        except EmailConflictError as e:
            print(f"EmailConflictError: existing_vid={e.existing_vid} email={e.email!r}")
        try:
            hs.create_or_update("bob@example.com", {"shoe_size": 44})
        except ValidationError as e:
            print(f"ValidationError: {[(f.name, f.code) for f in e.errors]}")

        print("\nStored at the fake:")
        for email, contact in fake.contacts.items():
            shown = {
                k: v
                for k, v in contact.properties.items()
                if k not in ("createdate", "lastmodifieddate", "email")
            }
            print(f"  {contact.vid} {email}: {shown}")
        print(f"\n{fake.request_count} requests on {fake.connections_opened} connection(s)")


if __name__ == "__main__":
    main()
