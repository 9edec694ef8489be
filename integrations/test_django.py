"""The Django recipe in a real Django project with sqlite: the outbox written in the save's
transaction (commit and rollback), a HubSpot outage and a killed worker that lose nothing,
refused records kept with their reason, the async view, and gunicorn --preload with two
workers while HubSpot stalls."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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

    assert wait_until(lambda: outbox_rows() == [])

    with pytest.raises(RuntimeError), transaction.atomic():
        users.create(username="bob", email="bob@example.com")
        assert len(outbox_rows()) == 1, "the row is written in the transaction"
        raise RuntimeError("rolled back")
    assert outbox_rows() == []
    time.sleep(0.5)
    assert fake.contact("bob@example.com") is None


def outbox_rows() -> list[Any]:
    import django_app

    return list(django_app.outbox().objects.order_by("pk"))


def wait_until(check: Callable[[], bool], seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def outage(fake: FakeHubSpot) -> None:
    """HubSpot answers 503 to everything, each after a while, until unscripted."""
    fake.script(*[ScriptedResponse(503, {"status": "error", "message": "down"}, delay=0.5)] * 200)


def test_an_outage_longer_than_the_deadline_loses_nothing(
    fake: FakeHubSpot, django_setup: None
) -> None:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    outage(fake)
    with transaction.atomic():
        for i in range(5):
            get_user_model().objects.create(username=f"out{i}", email=f"out{i}@example.com")
    # The drain gives up at its deadline (10 s); the rows stay, to be tried again.
    assert wait_until(lambda: any(r.attempts for r in outbox_rows()), 30)
    assert all(fake.contact(f"out{i}@example.com") is None for i in range(5))
    assert len(outbox_rows()) == 5
    fake.unscript()
    # The next try (a timer, 1 s here) sends them.
    for i in range(5):
        assert wait_for(fake, f"out{i}@example.com", 20), i
    assert wait_until(lambda: outbox_rows() == [])


def test_a_refused_record_keeps_its_reason_and_is_not_retried(
    fake: FakeHubSpot, django_setup: None
) -> None:
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    users.create(username="fine", email="fine@example.com")
    users.create(username="typo", email="typo@example.invalid")
    assert wait_for(fake, "fine@example.com")
    assert wait_until(lambda: [r.email for r in outbox_rows()] == ["typo@example.invalid"])
    (row,) = outbox_rows()
    assert wait_until(lambda: outbox_rows()[0].refused != "")
    (row,) = outbox_rows()
    assert row.refused.startswith("INVALID_EMAIL: "), row.refused
    sent = fake.request_count
    import django_app

    assert django_app.drain_all() == {"landed": 0, "retry": 0, "refused": 0}
    assert fake.request_count == sent
    row.delete()


KILLED = """
import os, sys, time
import django
django.setup()
import django_app
from django.contrib.auth import get_user_model
get_user_model().objects.create(username="killed", email="killed@example.com")
print("committed", flush=True)
time.sleep(60)
"""


def test_a_worker_killed_while_sending_loses_nothing(
    fake: FakeHubSpot, django_env: dict[str, str], django_setup: None
) -> None:
    import django_app

    outage(fake)
    worker = subprocess.Popen(
        [sys.executable, "-c", KILLED],
        env=django_env,
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "committed"
        # Its drainer holds the row while HubSpot is down: kill the worker then.
        assert wait_until(lambda: any(r.claim for r in outbox_rows()))
    finally:
        worker.kill()
        worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
    fake.unscript()
    assert fake.contact("killed@example.com") is None
    # Another process drains once the dead worker's lease (12 s here) has run out.
    (row,) = outbox_rows()
    assert row.claimed_until is not None
    assert wait_until(lambda: django_app.drain_all()["landed"] == 1 or not outbox_rows(), 30)
    assert fake.contact("killed@example.com") is not None
    assert outbox_rows() == []


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
        fake.script(ScriptedResponse(503, {"status": "error", "message": "slow"}, delay=8))
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


def test_the_outbox_model_and_its_migration_agree(django_env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, str(PROJECT / "manage.py"), "makemigrations", "--check", "--dry-run"],
        env=django_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
