"""Testing helpers: a faithful fake HubSpot to point clients at.

>>> from hubspot_upsert import HubSpot
>>> from hubspot_upsert.testing import FakeHubSpot
>>> with FakeHubSpot() as fake:
...     hs = HubSpot(fake.token, base_url=fake.url)
...     hs.create_or_update("ada@example.com", {"firstname": "Ada"}).is_new
True
"""

from ._fake import FakeHubSpot
from ._portal import API_VERSIONS
from ._records import ReceivedRequest, ScriptedResponse, StoredContact
from ._rules import STANDARD_PROPERTIES

__all__ = [
    "API_VERSIONS",
    "STANDARD_PROPERTIES",
    "FakeHubSpot",
    "ReceivedRequest",
    "ScriptedResponse",
    "StoredContact",
]
