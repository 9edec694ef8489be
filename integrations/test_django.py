"""The Django recipe in a real Django project with sqlite: commit and rollback, the async view,
and gunicorn --preload with two workers."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubspot_upsert.testing import FakeHubSpot, ScriptedResponse

from .conftest import ROOT, free_port

PROJECT = ROOT / "integrations" / "django_project"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as server:
        yield server


@pytest.fixture(scope="module")
def django_env(fake: FakeHubSpot, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    db = tmp_path_factory.mktemp("django") / "db.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_DB": str(db),
        "HUBSPOT_ACCESS_TOKEN": fake.token,
        "HUBSPOT_BASE_URL": fake.url,
        "PYTHONPATH": os.pathsep.join([str(PROJECT), str(ROOT / "examples" / "recipes")]),
    }
    subprocess.run(
        [sys.executable, str(PROJECT / "manage.py"), "migrate", "-v", "0"],
        env=env,
        check=True,
        timeout=120,
    )
    return env


@pytest.fixture(scope="module")
def django_setup(django_env: dict[str, str]) -> None:
    for key in ("DJANGO_SETTINGS_MODULE", "DJANGO_DB", "HUBSPOT_ACCESS_TOKEN", "HUBSPOT_BASE_URL"):
        os.environ[key] = django_env[key]
    sys.path.insert(0, str(PROJECT))
    import django

    django.setup()


def wait_for(fake: FakeHubSpot, email: str, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if fake.contact(email) is not None:
            return True
        time.sleep(0.02)
    return False


def test_commit_upserts_after_the_transaction(fake: FakeHubSpot, django_setup: None) -> None:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    users = get_user_model().objects
    with transaction.atomic():
        users.create(username="ada", email="ada@example.com", first_name="Ada")
        time.sleep(0.2)
        assert fake.contact("ada@example.com") is None, "sent before the commit"
    assert wait_for(fake, "ada@example.com")
    stored = fake.contact("ada@example.com")
    assert stored is not None and stored.properties["firstname"] == "Ada"

    with pytest.raises(RuntimeError), transaction.atomic():
        users.create(username="bob", email="bob@example.com")
        raise RuntimeError("rolled back")
    time.sleep(0.5)
    assert fake.contact("bob@example.com") is None


def test_the_async_view_uses_async_hubspot(fake: FakeHubSpot, django_setup: None) -> None:
    import asyncio

    from django.test import AsyncClient

    async def call() -> dict[str, object]:
        response = await AsyncClient().post(
            "/subscribe",
            data=json.dumps({"email": "grace@example.com", "first_name": "Grace"}),
            content_type="application/json",
        )
        assert response.status_code == 200
        return dict(json.loads(response.content))

    answer = asyncio.run(call())
    stored = fake.contact("grace@example.com")
    assert stored is not None and answer["vid"] == stored.vid


def test_gunicorn_preload_with_two_workers(fake: FakeHubSpot, django_env: dict[str, str]) -> None:
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [
            str(gunicorn),
            "--preload",
            "-w",
            "2",
            "--timeout",
            "5",
            "-b",
            f"127.0.0.1:{port}",
            "--chdir",
            str(PROJECT),
            "project.wsgi",
        ],
        env=django_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/signup", data=b"{}", timeout=1)
            except urllib.error.HTTPError:
                break  # up (the empty body is refused)
            except OSError:
                time.sleep(0.05)
        # HubSpot stalls for 8 s on the first upsert: the request path must not notice.
        fake.script(ScriptedResponse(200, {"vid": 1, "isNew": True}, delay=8))
        # One worker takes a request whose body has not come yet, so the other one serves the
        # requests meanwhile: which worker the kernel hands a connection to is not up to us.
        held_body = json.dumps({"email": "worker20@example.com", "first_name": "W20"}).encode()
        held = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        held.putrequest("POST", "/signup")
        held.putheader("Content-Type", "application/json")
        held.putheader("Content-Length", str(len(held_body)))
        held.endheaders()
        time.sleep(0.3)
        pids = set()
        for i in range(20):
            body = json.dumps({"email": f"worker{i}@example.com", "first_name": f"W{i}"}).encode()
            start = time.monotonic()
            with urllib.request.urlopen(base + "/signup", data=body, timeout=5) as response:
                assert response.status == 201
                pids.add(json.loads(response.read())["pid"])
            assert time.monotonic() - start < 2, "the upsert ran in the request"
        held.send(held_body)
        response = held.getresponse()
        assert response.status == 201
        pids.add(json.loads(response.read())["pid"])
        held.close()
        assert len(pids) == 2, pids
        for i in range(21):
            assert wait_for(fake, f"worker{i}@example.com", 20), i
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "panic" not in err.lower()
    assert "Traceback" not in err, err
