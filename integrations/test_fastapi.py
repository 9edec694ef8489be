"""The FastAPI recipe, served in-process through its ASGI app and FastAPI's test client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from hubspot_upsert.testing import FakeHubSpot


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHubSpot]:
    with FakeHubSpot(latency=0.2) as server:
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", server.token)
        monkeypatch.setenv("HUBSPOT_BASE_URL", server.url)
        yield server


def test_the_endpoint_upserts_and_reports_refusals(fake: FakeHubSpot) -> None:
    import fastapi_app

    with TestClient(fastapi_app.app) as client:
        ok = client.post("/contacts", json={"email": "ada@example.com", "first_name": "Ada"})
        assert ok.status_code == 200 and ok.json()["is_new"] is True
        bad = client.post("/contacts", json={"email": "ada"})
        assert bad.status_code == 422 and "'@'" in bad.json()["detail"]
    stored = fake.contact("ada@example.com")
    assert stored is not None and stored.properties["firstname"] == "Ada"


def test_health_answers_while_ten_upserts_wait_on_hubspot(fake: FakeHubSpot) -> None:
    import fastapi_app

    async def main() -> tuple[float, float]:
        app = fastapi_app.app
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            start = time.perf_counter()
            upserts = [
                asyncio.ensure_future(client.post("/contacts", json={"email": f"u{i}@example.com"}))
                for i in range(10)
            ]
            await asyncio.sleep(0.05)
            health_start = time.perf_counter()
            health = await client.get("/health")
            health_took = time.perf_counter() - health_start
            assert health.status_code == 200
            answers = await asyncio.gather(*upserts)
            assert all(a.status_code == 200 for a in answers)
            return time.perf_counter() - start, health_took

    took, health_took = asyncio.run(main())
    assert health_took < 0.1, health_took  # the loop was free while HubSpot answered
    assert took < 1.5, took  # ten 0.2 s answers together, not one after another
    assert len(fake.contacts) == 10
