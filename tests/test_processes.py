"""A client used across fork(): the child builds its own connection pool and exits cleanly."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from hubspot_upsert.testing import FakeHubSpot

SCRIPT = """
import os, sys, time
from hubspot_upsert import HubSpot
hs = HubSpot({token!r}, base_url={url!r}, timeout=20)
if {use_first}:
    hs.create_or_update("parent@example.com")
pid = os.fork()
if pid == 0:
    start = time.monotonic()
    hs.create_or_update("child@example.com")
    print(f"child took {{time.monotonic() - start:.3f}}", flush=True)
    sys.exit(0)  # a normal interpreter exit drops the inherited client
_, status = os.waitpid(pid, 0)
hs.create_or_update("parent-after@example.com")
print("child status", os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
@pytest.mark.parametrize("use_first", [True, False])
def test_fork_child_uses_the_client_and_exits_cleanly(use_first: bool) -> None:
    with FakeHubSpot() as fake:
        code = textwrap.dedent(SCRIPT.format(token=fake.token, url=fake.url, use_first=use_first))
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
        assert out.returncode == 0, out.stderr
        assert "child status 0" in out.stdout
        assert "panic" not in out.stderr.lower() and out.stderr == ""
        took = float(out.stdout.split("child took ")[1].split()[0])
        assert took < 10, "the child waited for a timeout instead of building its own pool"
        assert fake.contact("child@example.com") is not None
        assert fake.contact("parent-after@example.com") is not None


POOL_SCRIPT = """
import multiprocessing
from hubspot_upsert import HubSpot
hs = HubSpot({token!r}, base_url={url!r}, timeout=20)
hs.create_or_update("parent@example.com")

def upsert(i):
    return hs.create_or_update(f"worker{{i}}@example.com").vid

if __name__ == "__main__":
    with multiprocessing.get_context("fork").Pool(3) as pool:
        vids = pool.map(upsert, range(12))
    print(len(set(vids)))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_fork_pool_workers_share_a_module_level_client() -> None:
    with FakeHubSpot() as fake:
        code = textwrap.dedent(POOL_SCRIPT.format(token=fake.token, url=fake.url))
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "12"
        assert "panic" not in out.stderr.lower()
        assert len(fake.contacts) == 13


def test_pickling_a_client_is_refused_with_advice() -> None:
    import pickle

    from hubspot_upsert import HubSpot

    with pytest.raises(TypeError, match="HUBSPOT_ACCESS_TOKEN"):
        pickle.dumps(HubSpot("pat-na1-xyz", base_url="http://127.0.0.1:9"))
