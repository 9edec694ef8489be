"""A typed program using the public API; `make lint` checks it with mypy --strict."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hubspot_upsert import (
    BulkResult,
    BulkUpsertError,
    EmailConflictError,
    FieldError,
    HubSpot,
    HubSpotError,
    RecordError,
    SkippedRecord,
    UpsertResult,
    ValidationError,
)
from hubspot_upsert.testing import FakeHubSpot, StoredContact


def sync(hs: HubSpot, email: str) -> UpsertResult | None:
    try:
        return hs.create_or_update(
            email,
            {
                "firstname": "Ada",
                "annualrevenue": Decimal("1E+6"),
                "closedate": dt.datetime(2024, 8, 15, tzinfo=dt.timezone.utc),
            },
        )
    except EmailConflictError as e:
        existing: int | None = e.existing_vid
        print("conflict with", existing)
    except ValidationError as e:
        errors: list[FieldError] = e.errors
        print([(f.name, f.code) for f in errors])
    except HubSpotError as e:
        status: int | None = e.status
        print(status, e.correlation_id)
    return None


def sync_many(hs: HubSpot) -> int:
    rows = ({"email": f"user{i}@example.com", "firstname": "U"} for i in range(250))
    result: BulkResult = hs.create_or_update_many(rows, progress=lambda done, total: None)
    for outcome in result:
        if isinstance(outcome, RecordError):
            print(outcome.index, outcome.email, outcome.code, outcome.message)
        elif isinstance(outcome, SkippedRecord):
            print(outcome.index, outcome.id, outcome.code)
        else:
            print(outcome.vid, outcome.is_new)
    try:
        result.raise_for_errors()
    except BulkUpsertError as e:
        print(e.result)
    # Every face takes the same options, each typed.
    again = hs.contacts.check_many(
        [{"email": "user1@example.com", "firstname": "V"}], read=True, mode="update"
    )
    companies = hs.objects("companies").check_many(
        [{"crm_id": "c1", "name": "C"}], id_property="crm_id", definitions=False
    )
    return result.created + result.updated + again.updated - companies.failed


def main() -> None:
    with FakeHubSpot() as fake:
        hs = HubSpot(fake.token, base_url=fake.url, timeout=5.0, missing="skip")
        result = sync(hs, "ada@example.com")
        if result is not None:
            vid: int = result.vid
            new: bool = result.is_new
            print(vid, new, result.email)
        stored: StoredContact | None = fake.contact("ada@example.com")
        print(stored)
        print(sync_many(hs))


if __name__ == "__main__":
    main()
