"""The pytest plugin's fixtures, used as a user's test suite would, with and without xdist."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot


def test_fixtures_give_a_clean_fake_and_a_client(
    hubspot_fake: FakeHubSpot, hubspot_client: HubSpot
) -> None:
    assert hubspot_fake.contacts == {}
    hubspot_fake.add_properties({"is_customer": "bool"})
    assert hubspot_client.create_or_update("ada@example.com", {"is_customer": True}).is_new
    assert hubspot_fake.request_count == 1


def test_each_test_starts_clean(hubspot_fake: FakeHubSpot, hubspot_client: HubSpot) -> None:
    assert hubspot_fake.contacts == {} and hubspot_fake.request_count == 0
    # The property added by the test before is gone again.
    result = hubspot_client.create_or_update_many([{"email": "a@example.com", "is_customer": 1}])
    assert result.failed == 1


USER_TESTS = """
import pytest

@pytest.mark.parametrize("i", range(8))
def test_sync(hubspot_fake, hubspot_client, i):
    hubspot_client.create_or_update(f"user{i}@example.com", {"firstname": str(i)})
    assert list(hubspot_fake.contacts) == [f"user{i}@example.com"]
"""


def test_plugin_in_a_user_suite_with_xdist(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    for extra in ([], ["-p", "xdist", "-n", "2"]):
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(tmp_path)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "8 passed" in out.stdout
