"""pytest fixtures for testing code that uses hubspot-upsert, registered automatically when
the package is installed:

- ``hubspot_fake``: a running :class:`~hubspot_upsert.testing.FakeHubSpot`, emptied before
  each test (one server per test session, or per pytest-xdist worker);
- ``hubspot_client``: a :class:`~hubspot_upsert.HubSpot` pointed at it;
- ``hubspot_async_client``: an :class:`~hubspot_upsert.AsyncHubSpot` pointed at it (a plain
  fixture: await its methods in async tests under any async plugin, or ``asyncio.run``).

Custom properties: ``hubspot_fake.add_properties({"is_customer": "bool"})`` in a test or a
fixture of your own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import AsyncHubSpot, HubSpot
from .testing import FakeHubSpot


@pytest.fixture(scope="session")
def _hubspot_fake_server() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        yield fake


@pytest.fixture
def hubspot_fake(_hubspot_fake_server: FakeHubSpot) -> FakeHubSpot:
    """A running FakeHubSpot with no contacts, requests or scripted faults."""
    _hubspot_fake_server.reset()
    return _hubspot_fake_server


@pytest.fixture
def hubspot_client(hubspot_fake: FakeHubSpot) -> HubSpot:
    """A HubSpot client talking to ``hubspot_fake``."""
    return HubSpot(hubspot_fake.token, base_url=hubspot_fake.url, timeout=10)


@pytest.fixture
def hubspot_async_client(hubspot_fake: FakeHubSpot) -> AsyncHubSpot:
    """An AsyncHubSpot client talking to ``hubspot_fake``."""
    return AsyncHubSpot(hubspot_fake.token, base_url=hubspot_fake.url, timeout=10)
